//! A Linux image for the Linux runtime's tests, built from the host's Debian `busybox-static`
//! (`/bin/busybox`): one layer directory holding busybox, its applets as symlinks, and a
//! minimal /etc.

use std::path::{Path, PathBuf};

use skiff_node_runtime::runtime::linux::{teardown, LinuxConfig};
use skiff_node_runtime::runtime::{ImageConfig, ImageRef};

/// Where Debian's busybox-static puts the binary.
pub const BUSYBOX: &str = "/bin/busybox";

/// The applets the tests use.
const APPLETS: [&str; 18] = [
    "sh", "echo", "cat", "sleep", "ls", "ps", "id", "hostname", "true", "false", "dd", "head",
    "mkdir", "touch", "wc", "kill", "grep", "unshare",
];

/// Builds the busybox layer under `dir` and returns an image of it whose command is `cmd`
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

/// The layer directory `dir/busybox-layer`, made once.
pub fn layer(dir: &Path) -> PathBuf {
    assert!(
        Path::new(BUSYBOX).exists(),
        "install Debian's busybox-static (scripts/install-deps.sh does): missing {BUSYBOX}"
    );
    let layer = dir.join("busybox-layer");
    if layer.exists() {
        return layer;
    }
    for sub in ["bin", "etc", "tmp", "proc", "sys", "dev", "root"] {
        std::fs::create_dir_all(layer.join(sub)).expect("layer directory");
    }
    std::fs::copy(BUSYBOX, layer.join("bin/busybox")).expect("copy busybox");
    for applet in APPLETS {
        std::os::unix::fs::symlink("busybox", layer.join("bin").join(applet)).expect("applet");
    }
    std::fs::write(
        layer.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n",
    )
    .expect("passwd");
    std::fs::write(layer.join("etc/group"), "root:x:0:\nnogroup:x:65534:\n").expect("group");
    layer
}

/// Tears down all a Linux runtime's containers and sandboxes when dropped (also when the
/// test fails): processes, cgroups, mounts and state.
pub struct Teardown(pub LinuxConfig);

impl Drop for Teardown {
    fn drop(&mut self) {
        teardown(&self.0);
    }
}
