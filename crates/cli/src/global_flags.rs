//! kubectl takes its connection flags before the command too (`kubectl --server URL get
//! pods`); clap only takes them after it. Flags written before the command are moved to the
//! end of the arguments (before any `--`), where every subcommand accepts them.

use std::ffi::OsString;

/// Flags that every client command takes; `true` if the flag has a separate value.
const GLOBAL: &[(&str, bool)] = &[("--server", true), ("--namespace", true), ("-n", true)];

/// Moves leading global flags (and their values) after the command and its arguments.
pub fn hoist(args: impl IntoIterator<Item = OsString>) -> Vec<OsString> {
    let mut args = args.into_iter();
    let mut out: Vec<OsString> = args.next().into_iter().collect();
    let mut hoisted = Vec::new();
    let mut rest: Vec<OsString> = Vec::new();
    let mut leading = true;
    while let Some(arg) = args.next() {
        if !leading {
            rest.push(arg);
            continue;
        }
        let text = arg.to_string_lossy();
        let takes_value = GLOBAL.iter().find_map(|(flag, takes_value)| {
            if text == *flag {
                Some(*takes_value)
            } else if text.starts_with(&format!("{flag}=")) {
                Some(false)
            } else {
                None
            }
        });
        match takes_value {
            Some(takes_value) => {
                hoisted.push(arg);
                if takes_value {
                    hoisted.extend(args.next());
                }
            }
            None => {
                leading = false;
                rest.push(arg);
            }
        }
    }
    if hoisted.is_empty() {
        out.extend(rest);
        return out;
    }
    let end = rest.iter().position(|a| a == "--").unwrap_or(rest.len());
    out.extend(rest.drain(..end));
    out.extend(hoisted);
    out.extend(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(args: &str) -> String {
        let args = args.split(' ').map(OsString::from);
        let out: Vec<String> = hoist(args)
            .into_iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        out.join(" ")
    }

    #[test]
    fn leading_connection_flags_move_after_the_command() {
        assert_eq!(
            run("skiff --server http://a,http://b get pods"),
            "skiff get pods --server http://a,http://b"
        );
        assert_eq!(
            run("skiff -n kube-system --server=http://a cluster status"),
            "skiff cluster status -n kube-system --server=http://a"
        );
        assert_eq!(
            run("skiff --server http://a logs p -- extra"),
            "skiff logs p --server http://a -- extra"
        );
        assert_eq!(run("skiff get pods -n x"), "skiff get pods -n x");
    }
}
