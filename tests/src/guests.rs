//! Wasm guests for tests: the examples `scripts/build-guests.sh` builds, and small guests
//! written in the text format and compiled here.

use std::path::{Path, PathBuf};

use crate::repo_root;

/// The built `wasm32-wasip1` example guest `name`, failing clearly when the guests have not
/// been built.
pub fn example_guest(name: &str) -> anyhow::Result<PathBuf> {
    let path = repo_root()
        .join("wasm-examples/target/wasm32-wasip1/release")
        .join(format!("{name}.wasm"));
    anyhow::ensure!(
        path.exists(),
        "{} is missing: build the guests first with scripts/build-guests.sh (scripts/test.sh does)",
        path.display()
    );
    Ok(path)
}

/// Copies the example guest `name` into `dir` (a directory a server may load images from);
/// the copy's path.
pub fn copy_example_guest(dir: &Path, name: &str) -> anyhow::Result<String> {
    let path = dir.join(format!("{name}.wasm"));
    std::fs::copy(example_guest(name)?, &path)?;
    Ok(path.display().to_string())
}

/// Compiles the text-format guest `wat` into `dir/NAME.wasm`; its path.
pub fn wat_guest(dir: &Path, name: &str, wat: &str) -> anyhow::Result<String> {
    let path = dir.join(format!("{name}.wasm"));
    std::fs::write(&path, wat::parse_str(wat)?)?;
    Ok(path.display().to_string())
}
