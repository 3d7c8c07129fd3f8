//! `file:` images: Wasm files on the node, read only from regular files under the directories
//! the agent allows (`--allow-image-dir`), size-capped (`--max-image-size`) and checked for the
//! Wasm magic before they are read whole.
//!
//! A reference is resolved (symlinks included) before it is checked against the allowed
//! directories, and anything outside them is refused with the same message whether it exists
//! or not, so pods cannot probe the host's files.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use skiff_api::image::{check_reference, file_image_path, ImageReferenceError};

/// The default cap on a `file:` image's size: 256 MiB.
pub const DEFAULT_MAX_IMAGE_SIZE: u64 = 256 * 1024 * 1024;

/// Every `file:` image is a Wasm binary (the API requires `.wasm`); what kind of Wasm, and
/// whether a runtime can run it, is the runtimes' business.
const WASM_MAGIC: &[u8; 4] = b"\0asm";
/// The bytes read before deciding whether to read the whole file.
const HEADER_LEN: usize = 8;

/// Why a `file:` image is refused.
#[derive(Debug, thiserror::Error)]
pub enum FileImageError {
    #[error("is invalid: {0}")]
    Invalid(#[from] ImageReferenceError),
    #[error("is not under an allowed image directory (the agent's --allow-image-dir)")]
    NotAllowed,
    #[error("cannot be read: {source}")]
    Read {
        #[source]
        source: std::io::Error,
    },
    #[error("is not a regular file")]
    NotRegular,
    #[error("is {size} bytes, over the node's image size limit of {max} bytes (--max-image-size)")]
    TooLarge { size: u64, max: u64 },
    #[error("is not a WebAssembly binary (it does not start with \\0asm)")]
    NotWasm,
    #[error("cannot be used as an image directory: {dir}: {source}")]
    AllowedDir {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Where `file:` images may come from and how large they may be; by default nothing is
/// allowed.
#[derive(Debug, Clone)]
pub struct FileImages {
    allowed: Vec<PathBuf>,
    max_size: u64,
}

impl Default for FileImages {
    fn default() -> Self {
        FileImages {
            allowed: Vec::new(),
            max_size: DEFAULT_MAX_IMAGE_SIZE,
        }
    }
}

impl FileImages {
    /// Allows images in `dir` and below; `dir` is resolved now (it must exist), so a symlink
    /// to it allows its target.
    pub fn allow_dir(mut self, dir: &Path) -> Result<Self, FileImageError> {
        let resolved = dir
            .canonicalize()
            .and_then(|resolved| {
                if resolved.is_dir() {
                    Ok(resolved)
                } else {
                    Err(std::io::Error::new(
                        std::io::ErrorKind::NotADirectory,
                        "not a directory",
                    ))
                }
            })
            .map_err(|source| FileImageError::AllowedDir {
                dir: dir.to_path_buf(),
                source,
            })?;
        if !self.allowed.contains(&resolved) {
            self.allowed.push(resolved);
        }
        Ok(self)
    }

    /// Caps the size of an image file, in bytes.
    pub fn max_size(mut self, bytes: u64) -> Self {
        self.max_size = bytes;
        self
    }

    /// The size cap, in bytes (it caps registry modules too).
    pub fn size_limit(&self) -> u64 {
        self.max_size
    }

    /// The allowed directories, resolved.
    pub fn allowed_dirs(&self) -> &[PathBuf] {
        &self.allowed
    }

    fn allows(&self, resolved: &Path) -> bool {
        self.allowed.iter().any(|dir| resolved.starts_with(dir))
    }

    /// Reads the image a `file:` reference names (blocking: run it off the async threads).
    pub(super) fn read(&self, reference: &str) -> Result<Vec<u8>, FileImageError> {
        check_reference(reference)?;
        let path = Path::new(file_image_path(reference).unwrap_or_default());
        let resolved = self.resolve(path)?;
        // `resolved` has no symlinks left: what it names now is what was checked.
        let metadata = std::fs::metadata(&resolved).map_err(read_error)?;
        if !metadata.is_file() {
            return Err(FileImageError::NotRegular);
        }
        self.check_size(metadata.len())?;
        let mut file = File::open(&resolved).map_err(read_error)?;
        // The file could have been replaced in between: check what was opened.
        let metadata = file.metadata().map_err(read_error)?;
        if !metadata.is_file() {
            return Err(FileImageError::NotRegular);
        }
        self.check_size(metadata.len())?;

        let mut bytes = Vec::with_capacity(metadata.len() as usize);
        (&mut file)
            .take(HEADER_LEN as u64)
            .read_to_end(&mut bytes)
            .map_err(read_error)?;
        if bytes.len() < HEADER_LEN || !bytes.starts_with(WASM_MAGIC) {
            return Err(FileImageError::NotWasm);
        }
        // Bounded even if the file grows while it is read.
        file.take((self.max_size + 1).saturating_sub(HEADER_LEN as u64))
            .read_to_end(&mut bytes)
            .map_err(read_error)?;
        self.check_size(bytes.len() as u64)?;
        Ok(bytes)
    }

    /// Resolves `path` and checks it lies under an allowed directory. A path that cannot be
    /// resolved is judged by its deepest existing ancestor, so the answer for a path outside
    /// the allowed directories is the same whether it exists or not.
    fn resolve(&self, path: &Path) -> Result<PathBuf, FileImageError> {
        match path.canonicalize() {
            Ok(resolved) if self.allows(&resolved) => Ok(resolved),
            Ok(_) => Err(FileImageError::NotAllowed),
            Err(source) => {
                // The deepest entry that exists (a dangling symlink counts, and is refused:
                // where it points must not show).
                let existing = path.ancestors().find(|a| a.symlink_metadata().is_ok());
                match existing.map(Path::canonicalize) {
                    Some(Ok(resolved)) if self.allows(&resolved) => Err(read_error(source)),
                    _ => Err(FileImageError::NotAllowed),
                }
            }
        }
    }

    fn check_size(&self, size: u64) -> Result<(), FileImageError> {
        if size > self.max_size {
            return Err(FileImageError::TooLarge {
                size,
                max: self.max_size,
            });
        }
        Ok(())
    }
}

fn read_error(source: std::io::Error) -> FileImageError {
    FileImageError::Read { source }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::symlink;

    use super::*;
    use crate::runtime::{ImageService, ImageStore, RuntimeError};

    const MODULE: &[u8] = b"\0asm\x01\0\0\0";

    /// A store allowing `file:` images in `<tmp>/allowed` (and `extra`), with `<tmp>/outside`
    /// beside it.
    struct Fixture {
        tmp: tempfile::TempDir,
        store: ImageStore,
    }

    fn fixture(extra: &[&Path], max: u64) -> Fixture {
        let tmp = tempfile::tempdir().expect("tempdir");
        for dir in ["allowed", "outside"] {
            std::fs::create_dir(tmp.path().join(dir)).expect("mkdir");
        }
        let mut files = FileImages::default().max_size(max);
        for dir in [&tmp.path().join("allowed").as_path()]
            .into_iter()
            .chain(extra)
        {
            files = files.allow_dir(dir).expect("allow");
        }
        let store = ImageStore::open(tmp.path().join("images"))
            .expect("open")
            .with_file_images(files);
        Fixture { tmp, store }
    }

    impl Fixture {
        fn path(&self, relative: &str) -> PathBuf {
            self.tmp.path().join(relative)
        }

        async fn refusal(&self, path: &Path) -> FileImageError {
            let reference = format!("file:{}", path.display());
            match self.store.pull_image(&reference, None).await {
                Err(RuntimeError::FileImage { source, .. }) => source,
                other => panic!("{reference}: expected a refusal, got {other:?}"),
            }
        }
    }

    #[tokio::test]
    async fn reads_a_wasm_file_under_an_allowed_dir() {
        let f = fixture(&[], DEFAULT_MAX_IMAGE_SIZE);
        std::fs::write(f.path("allowed/g.wasm"), MODULE).expect("write");
        // Through a symlink that stays inside, too.
        symlink(f.path("allowed/g.wasm"), f.path("allowed/link.wasm")).expect("symlink");
        for name in ["allowed/g.wasm", "allowed/link.wasm"] {
            let reference = format!("file:{}", f.path(name).display());
            let image = f.store.pull_image(&reference, None).await.expect("pull");
            assert_eq!(image.size, MODULE.len() as u64);
        }
    }

    #[tokio::test]
    async fn refuses_non_regular_files() {
        let f = fixture(&[Path::new("/dev")], DEFAULT_MAX_IMAGE_SIZE);
        // /dev/zero itself, by a name the API lets through, in an allowed dir.
        symlink("/dev/zero", f.path("allowed/zero.wasm")).expect("symlink");
        std::fs::create_dir(f.path("allowed/dir.wasm")).expect("mkdir");
        let _socket =
            std::os::unix::net::UnixListener::bind(f.path("allowed/sock.wasm")).expect("socket");
        for name in ["allowed/zero.wasm", "allowed/dir.wasm", "allowed/sock.wasm"] {
            let err = f.refusal(&f.path(name)).await;
            assert!(matches!(err, FileImageError::NotRegular), "{name}: {err}");
        }
    }

    #[tokio::test]
    async fn refuses_invalid_references_before_touching_the_filesystem() {
        let f = fixture(
            &[Path::new("/dev"), Path::new("/etc")],
            DEFAULT_MAX_IMAGE_SIZE,
        );
        for path in ["/dev/zero", "/etc/shadow", "/dev/../dev/zero.wasm"] {
            let err = f.refusal(Path::new(path)).await;
            assert!(matches!(err, FileImageError::Invalid(_)), "{path}: {err}");
        }
    }

    #[tokio::test]
    async fn paths_outside_the_allowed_dirs_look_the_same_whether_they_exist_or_not() {
        let f = fixture(&[], DEFAULT_MAX_IMAGE_SIZE);
        std::fs::write(f.path("outside/secret.wasm"), MODULE).expect("write");
        symlink(f.path("outside/secret.wasm"), f.path("allowed/escape.wasm")).expect("symlink");
        symlink(
            f.path("outside/missing.wasm"),
            f.path("allowed/dangling.wasm"),
        )
        .expect("symlink");
        symlink(f.path("outside"), f.path("allowed/outside")).expect("symlink");
        let paths = [
            f.path("outside/secret.wasm"),
            f.path("outside/missing.wasm"),
            f.path("nowhere/missing.wasm"),
            f.path("allowed/escape.wasm"),
            f.path("allowed/dangling.wasm"),
            f.path("allowed/outside/secret.wasm"),
            f.path("allowed/outside/missing.wasm"),
            PathBuf::from("/etc/shadow.wasm"),
            PathBuf::from("/root/nope/guest.wasm"),
        ];
        for path in paths {
            let reference = format!("file:{}", path.display());
            let err = f
                .store
                .pull_image(&reference, None)
                .await
                .expect_err("refused");
            assert_eq!(
                err.to_string(),
                format!(
                    "image {reference} is not under an allowed image directory \
                     (the agent's --allow-image-dir)"
                )
            );
        }
        // Inside, a missing file is named as such.
        let err = f.refusal(&f.path("allowed/missing.wasm")).await;
        assert!(matches!(err, FileImageError::Read { .. }), "{err}");
    }

    #[tokio::test]
    async fn refuses_an_oversize_file_by_its_size_before_reading_it() {
        let f = fixture(&[], 1024 * 1024);
        // Not even Wasm: had its header been read first, the answer would be NotWasm.
        let big = std::fs::File::create(f.path("allowed/big.wasm")).expect("create");
        big.set_len(64 << 30).expect("sparse 64 GiB");
        let err = f.refusal(&f.path("allowed/big.wasm")).await;
        assert!(
            matches!(err, FileImageError::TooLarge { size, max } if size == 64 << 30 && max == 1 << 20),
            "{err}"
        );
        // At the limit is fine.
        let mut exact = MODULE.to_vec();
        exact.resize(1024 * 1024, 0);
        std::fs::write(f.path("allowed/exact.wasm"), exact).expect("write");
        let reference = format!("file:{}", f.path("allowed/exact.wasm").display());
        f.store.pull_image(&reference, None).await.expect("pull");
    }

    #[tokio::test]
    async fn refuses_a_non_wasm_file_by_its_header() {
        let f = fixture(&[], DEFAULT_MAX_IMAGE_SIZE);
        for (name, bytes) in [
            ("notes.wasm", &b"plain text, not a module"[..]),
            ("elf.wasm", b"\x7fELF\x02\x01\x01\0\0\0"),
            ("short.wasm", b"\0asm"),
        ] {
            std::fs::write(f.path(&format!("allowed/{name}")), bytes).expect("write");
            let err = f.refusal(&f.path(&format!("allowed/{name}"))).await;
            assert!(matches!(err, FileImageError::NotWasm), "{name}: {err}");
        }
    }

    #[test]
    fn allowed_dirs_must_exist_and_are_resolved() {
        let tmp = tempfile::tempdir().expect("tempdir");
        symlink(tmp.path(), tmp.path().join("link")).expect("symlink");
        let files = FileImages::default()
            .allow_dir(&tmp.path().join("link"))
            .expect("allow");
        assert_eq!(
            files.allowed_dirs(),
            [tmp.path().canonicalize().expect("resolve")]
        );
        let err = FileImages::default()
            .allow_dir(&tmp.path().join("missing"))
            .expect_err("missing");
        assert!(err.to_string().contains("missing"), "{err}");
    }
}
