//! Data directories (0700) and secret files (0600) readable by their owner only: made so
//! when created, and tightened when they already exist.

use std::fs::{DirBuilder, OpenOptions, Permissions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

use anyhow::Context;

const DIR_MODE: u32 = 0o700;
const FILE_MODE: u32 = 0o600;

/// Creates `dir` (and missing parents) with mode 0700, or tightens it to 0700.
pub fn private_dir(dir: &Path) -> anyhow::Result<()> {
    DirBuilder::new()
        .recursive(true)
        .mode(DIR_MODE)
        .create(dir)
        .with_context(|| format!("creating {}", dir.display()))?;
    std::fs::set_permissions(dir, Permissions::from_mode(DIR_MODE))
        .with_context(|| format!("restricting {} to its owner", dir.display()))
}

/// Writes a secret file with mode 0600 (tightening an existing one first).
pub fn write_secret(path: &Path, contents: &str) -> anyhow::Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(FILE_MODE)
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    file.set_permissions(Permissions::from_mode(FILE_MODE))
        .with_context(|| format!("restricting {} to its owner", path.display()))?;
    file.write_all(contents.as_bytes())
        .with_context(|| format!("writing {}", path.display()))
}

/// Tightens an existing secret file to 0600.
pub fn tighten_secret(path: &Path) -> anyhow::Result<()> {
    std::fs::set_permissions(path, Permissions::from_mode(FILE_MODE))
        .with_context(|| format!("restricting {} to its owner", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path)
            .expect("metadata")
            .permissions()
            .mode()
            & 0o777
    }

    #[test]
    fn directories_and_secrets_are_owner_only_new_or_existing() {
        let root = tempfile::tempdir().expect("tempdir");
        let new = root.path().join("a/b");
        private_dir(&new).expect("create");
        assert_eq!(mode(&new), 0o700);
        let old = root.path().join("old");
        std::fs::create_dir(&old).expect("mkdir");
        std::fs::set_permissions(&old, Permissions::from_mode(0o755)).expect("chmod");
        private_dir(&old).expect("tighten");
        assert_eq!(mode(&old), 0o700);

        let token = root.path().join("token");
        write_secret(&token, "secret").expect("write");
        assert_eq!(mode(&token), 0o600);
        assert_eq!(std::fs::read_to_string(&token).expect("read"), "secret");
        std::fs::set_permissions(&token, Permissions::from_mode(0o644)).expect("chmod");
        tighten_secret(&token).expect("tighten");
        assert_eq!(mode(&token), 0o600);
    }
}
