//! The busybox test image's content, built from the host's Debian `busybox-static`
//! (`/bin/busybox`): busybox, its applets as symlinks and a minimal /etc in one layer. The
//! layer comes as a tar (for [`TestImage::busybox`](crate::oci_image::TestImage::busybox),
//! which pushes or saves it) or unpacked into a directory with an [`ImageRef`] of it for the
//! Linux runtime's own tests.

use std::path::{Path, PathBuf};

use skiff_node_runtime::runtime::linux::{teardown, LinuxConfig, ShimCommand};
use skiff_node_runtime::runtime::{ImageConfig, ImageRef};

use crate::oci_image::{layer_tar, Entry};

/// Where Debian's `busybox-static` puts the binary (scripts/install-deps.sh installs it).
pub const BUSYBOX: &str = "/bin/busybox";

/// The applets linked to busybox in the image's `/bin`.
pub const APPLETS: &[&str] = &[
    "sh", "echo", "cat", "sleep", "ls", "ps", "id", "hostname", "wget", "nc", "true", "false",
    "env", "mkdir", "rm", "touch", "test", "head", "dd", "grep", "ip", "kill", "mount", "uname",
    "seq", "yes", "wc", "unshare", "nslookup", "tar",
];

/// The busybox layer as an uncompressed tar: `/bin/busybox` and its applets, `/etc/passwd`,
/// `/etc/group`, `/etc/motd`, and empty `/tmp`, `/proc`, `/sys`, `/dev` and `/root`.
pub fn layer_tar_bytes() -> std::io::Result<Vec<u8>> {
    let busybox = std::fs::read(BUSYBOX).map_err(|err| {
        std::io::Error::new(
            err.kind(),
            format!("{BUSYBOX}: {err} (install Debian's busybox-static: scripts/install-deps.sh)"),
        )
    })?;
    let mut entries = vec![
        Entry::Dir("bin"),
        Entry::File("bin/busybox", &busybox, 0o755),
        Entry::Dir("etc"),
        Entry::File("etc/motd", b"busybox test image\n", 0o644),
        Entry::File(
            "etc/passwd",
            b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n",
            0o644,
        ),
        Entry::File("etc/group", b"root:x:0:\nnogroup:x:65534:\n", 0o644),
    ];
    entries.extend(["tmp", "proc", "sys", "dev", "root"].map(Entry::Dir));
    let links: Vec<String> = APPLETS.iter().map(|a| format!("bin/{a}")).collect();
    entries.extend(links.iter().map(|l| Entry::Symlink(l, "busybox")));
    Ok(layer_tar(&entries))
}

/// Unpacks the busybox layer under `dir` and returns an image of it whose command is `cmd`
/// (run by `sh -c`). Panics, naming the package, if busybox is not installed.
pub fn image(dir: &Path, cmd: &str) -> ImageRef {
    let layer = layer(dir);
    ImageRef {
        reference: "test.local/busybox:1".into(),
        digest: format!("sha256:{}", "b".repeat(64)),
        size: 0,
        config: ImageConfig {
            entrypoint: vec!["/bin/sh".into(), "-c".into()],
            cmd: vec![cmd.into()],
            env: vec![("PATH".into(), "/bin".into())],
            working_dir: None,
            user: None,
        },
        content: PathBuf::new(),
        layers: vec![layer],
    }
}

/// The layer directory `dir/busybox-layer`, unpacked once.
pub fn layer(dir: &Path) -> PathBuf {
    let layer = dir.join("busybox-layer");
    if layer.exists() {
        return layer;
    }
    let tar = layer_tar_bytes().unwrap_or_else(|err| panic!("{err}"));
    tar::Archive::new(&tar[..])
        .unpack(&layer)
        .expect("unpacking the busybox layer");
    layer
}

/// Tears down all a Linux runtime's containers and sandboxes when dropped (also when the
/// test fails): processes, cgroups, mounts and state.
pub struct Teardown(pub LinuxConfig);

impl Teardown {
    /// The teardown of the Linux runtime of an agent on data dir `data`, whose shims are
    /// `skiff container-shim` (`skiff`: the binary's path). Shims are sessions of their own
    /// and outlive a failed end-to-end test without it.
    pub fn of_agent(data: &Path, skiff: PathBuf) -> Teardown {
        let shim = ShimCommand {
            program: skiff,
            args: vec!["container-shim".into()],
        };
        Teardown(LinuxConfig::new(data.join("linux"), shim))
    }
}

impl Drop for Teardown {
    fn drop(&mut self) {
        teardown(&self.0);
    }
}
