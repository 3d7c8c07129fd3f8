//! A pod sandbox on the host: the pod's IPC and UTS namespaces (and its network namespace,
//! when it has its own) bind-mounted onto files of the sandbox's state directory, so that
//! they live without a process and every container of the pod joins the same ones; and the
//! `/etc/hosts`, `/etc/hostname` and `/etc/resolv.conf` its containers see.

use std::os::fd::AsRawFd;
use std::path::Path;

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{unshare, CloneFlags};

use crate::runtime::PodSandboxConfig;

/// The namespaces a sandbox holds, as file names in its directory.
pub const NAMESPACES: [&str; 3] = ["ipc", "uts", "net"];

/// Host name given to containers of pods that name none: the pod's name, cut to the
/// kernel's 64 bytes.
pub fn hostname(config: &PodSandboxConfig) -> String {
    let name = if config.hostname.is_empty() {
        &config.name
    } else {
        &config.hostname
    };
    let mut name = name.clone();
    name.truncate(64);
    name
}

/// Creates the sandbox's namespaces and /etc files in `dir`.
pub fn create(dir: &Path, config: &PodSandboxConfig) -> std::io::Result<()> {
    std::fs::create_dir_all(dir.join("etc"))?;
    write_etc(&dir.join("etc"), config)?;
    let name = hostname(config);
    let (ipc, uts) = (dir.join("ipc"), dir.join("uts"));
    for file in [&ipc, &uts] {
        std::fs::File::create(file)?;
    }
    // unshare(IPC|UTS) is allowed on one thread of a multi-threaded process and leaves the
    // others alone; the thread binds its new namespaces to the files and ends.
    std::thread::spawn(move || -> std::io::Result<()> {
        unshare(CloneFlags::CLONE_NEWIPC | CloneFlags::CLONE_NEWUTS)?;
        nix::unistd::sethostname(&name)?;
        bind("/proc/thread-self/ns/ipc", &ipc)?;
        bind("/proc/thread-self/ns/uts", &uts)
    })
    .join()
    .map_err(|_| std::io::Error::other("the namespace thread panicked"))??;
    if let Some(network) = &config.network {
        let net = dir.join("net");
        std::fs::File::create(&net)?;
        bind(
            &format!("/proc/self/fd/{}", network.netns.as_raw_fd()),
            &net,
        )?;
    }
    Ok(())
}

fn bind(source: &str, target: &Path) -> std::io::Result<()> {
    mount(
        Some(source),
        target,
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )?;
    Ok(())
}

/// Releases the sandbox's namespaces (unmounting their files); those already released are
/// fine.
pub fn release(dir: &Path) -> std::io::Result<()> {
    for ns in NAMESPACES {
        match umount2(&dir.join(ns), MntFlags::MNT_DETACH) {
            Ok(()) | Err(nix::Error::EINVAL) | Err(nix::Error::ENOENT) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

fn write_etc(etc: &Path, config: &PodSandboxConfig) -> std::io::Result<()> {
    let name = hostname(config);
    std::fs::write(etc.join("hostname"), format!("{name}\n"))?;
    let mut hosts = String::from(
        "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n\
         fe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\n\
         ff02::2\tip6-allrouters\n",
    );
    if let Some(network) = &config.network {
        hosts.push_str(&format!("{}\t{name}\n", network.ip));
    }
    std::fs::write(etc.join("hosts"), hosts)?;
    let resolv = match &config.dns {
        Some(dns) => {
            let mut text = String::new();
            for server in &dns.nameservers {
                text.push_str(&format!("nameserver {server}\n"));
            }
            if !dns.searches.is_empty() {
                text.push_str(&format!("search {}\n", dns.searches.join(" ")));
            }
            if !dns.options.is_empty() {
                text.push_str(&format!("options {}\n", dns.options.join(" ")));
            }
            text
        }
        None => std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default(),
    };
    std::fs::write(etc.join("resolv.conf"), resolv)
}
