//! Linux capability names as `securityContext.capabilities` spells them: with or without the
//! `CAP_` prefix, in any case (`NET_RAW`, `CAP_NET_RAW`, `net_raw`), or `ALL`.

/// The capabilities by number (`linux/capability.h`), without their `CAP_` prefix.
pub const CAPABILITIES: [&str; 41] = [
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "KILL",
    "SETGID",
    "SETUID",
    "SETPCAP",
    "LINUX_IMMUTABLE",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_ADMIN",
    "NET_RAW",
    "IPC_LOCK",
    "IPC_OWNER",
    "SYS_MODULE",
    "SYS_RAWIO",
    "SYS_CHROOT",
    "SYS_PTRACE",
    "SYS_PACCT",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_NICE",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "MKNOD",
    "LEASE",
    "AUDIT_WRITE",
    "AUDIT_CONTROL",
    "SETFCAP",
    "MAC_OVERRIDE",
    "MAC_ADMIN",
    "SYSLOG",
    "WAKE_ALARM",
    "BLOCK_SUSPEND",
    "AUDIT_READ",
    "PERFMON",
    "BPF",
    "CHECKPOINT_RESTORE",
];

/// The set a container has unless its security context adds or drops some: Docker's and
/// containerd's default (CHOWN, DAC_OVERRIDE, FOWNER, FSETID, KILL, SETGID, SETUID, SETPCAP,
/// NET_BIND_SERVICE, NET_RAW, SYS_CHROOT, MKNOD, AUDIT_WRITE, SETFCAP).
pub const DEFAULT: [u32; 14] = [0, 1, 3, 4, 5, 6, 7, 8, 10, 13, 18, 27, 29, 31];

/// One entry of an `add` or `drop` list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Capability {
    /// `ALL`: every capability.
    All,
    /// One capability, by number.
    One(u32),
}

/// Parses a name as Kubernetes, Docker and containerd accept it; `None` for an unknown one.
pub fn parse(name: &str) -> Option<Capability> {
    let upper = name.trim().to_ascii_uppercase();
    if upper == "ALL" {
        return Some(Capability::All);
    }
    let bare = upper.strip_prefix("CAP_").unwrap_or(&upper);
    CAPABILITIES
        .iter()
        .position(|c| *c == bare)
        .map(|i| Capability::One(i as u32))
}

/// A capability name that is not one (from an `add` or `drop` list).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a Linux capability")]
pub struct UnknownCapability(pub String);

/// The capability set of a container that adds `add` to and drops `drop` from [`DEFAULT`],
/// in containerd's order: `ALL` in `add` starts from every capability, then `ALL` in `drop`
/// from none; then the named ones are added, then the named ones dropped (a drop beats an add
/// of the same capability). Sorted, without duplicates.
pub fn resolve(add: &[String], drop: &[String]) -> Result<Vec<u32>, UnknownCapability> {
    let parse_all = |names: &[String]| -> Result<Vec<Capability>, UnknownCapability> {
        names
            .iter()
            .map(|n| parse(n).ok_or_else(|| UnknownCapability(n.clone())))
            .collect()
    };
    let (add, drop) = (parse_all(add)?, parse_all(drop)?);
    let numbers = |list: &[Capability]| -> Vec<u32> {
        list.iter()
            .filter_map(|c| match c {
                Capability::One(n) => Some(*n),
                Capability::All => None,
            })
            .collect()
    };
    let mut set: Vec<u32> = DEFAULT.to_vec();
    if add.contains(&Capability::All) {
        set = (0..CAPABILITIES.len() as u32).collect();
    }
    if drop.contains(&Capability::All) {
        set.clear();
    }
    set.extend(numbers(&add));
    let dropped = numbers(&drop);
    set.retain(|c| !dropped.contains(c));
    set.sort_unstable();
    set.dedup();
    Ok(set)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn names_parse_with_or_without_the_prefix() {
        assert_eq!(parse("NET_RAW"), Some(Capability::One(13)));
        assert_eq!(parse("CAP_NET_RAW"), Some(Capability::One(13)));
        assert_eq!(parse("cap_sys_admin"), Some(Capability::One(21)));
        assert_eq!(parse("all"), Some(Capability::All));
        assert_eq!(parse("CAP_ALL"), None);
        assert_eq!(parse("NET_FOO"), None);
        assert_eq!(parse("CHECKPOINT_RESTORE"), Some(Capability::One(40)));
    }

    #[test]
    fn add_and_drop_combine_as_containerd_does() {
        assert_eq!(resolve(&[], &[]), Ok(DEFAULT.to_vec()));
        assert_eq!(
            resolve(&names(&["NET_RAW"]), &names(&["ALL"])),
            Ok(vec![13])
        );
        assert_eq!(resolve(&[], &names(&["ALL"])), Ok(vec![]));
        let without_chown = resolve(&names(&["SYS_TIME"]), &names(&["CAP_CHOWN"])).expect("ok");
        assert!(!without_chown.contains(&0) && without_chown.contains(&25));
        assert_eq!(without_chown.len(), DEFAULT.len());
        let all = resolve(&names(&["ALL"]), &names(&["SYS_ADMIN"])).expect("ok");
        assert_eq!(all.len(), CAPABILITIES.len() - 1);
        assert!(!all.contains(&21));
        assert_eq!(
            resolve(&names(&["ALL"]), &names(&["ALL"])),
            Ok(vec![]),
            "ALL is added, then ALL dropped"
        );
        assert_eq!(
            resolve(&names(&["NET_RAW", "SYS_TIME"]), &names(&["NET_RAW"])),
            Ok(vec![0, 1, 3, 4, 5, 6, 7, 8, 10, 18, 25, 27, 29, 31]),
            "a drop beats an add of the same capability"
        );
        assert_eq!(
            resolve(&names(&["NET_FOO"]), &[]),
            Err(UnknownCapability("NET_FOO".into()))
        );
    }
}
