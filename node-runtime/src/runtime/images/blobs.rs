//! The node's content-addressed blobs (`<images>/blobs/sha256/<hex>`): every blob is written
//! through a temporary file, hashed on the way, and kept only if its digest is the one asked
//! for, so a file in the store always holds what its name says. Images share blobs by name.

use std::path::{Path, PathBuf};

use futures::{Stream, StreamExt};
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

/// Why a blob is refused.
#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    #[error("{digest:?} is not a sha256 digest (sha256:<64 hex digits>)")]
    BadDigest { digest: String },
    #[error("blob {expected} does not match its digest: its content hashes to {actual}")]
    Mismatch { expected: String, actual: String },
    #[error("blob {digest} is over the node's image size limit of {max} bytes (--max-image-size)")]
    TooLarge { digest: String, max: u64 },
    #[error("downloading blob {digest}: {message}")]
    Download { digest: String, message: String },
    #[error("writing blob {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// `sha256:<hex>` of `bytes`.
pub fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// Checks that `digest` is `sha256:<64 lowercase hex>` and returns its hex part.
pub fn digest_hex(digest: &str) -> Result<&str, BlobError> {
    digest
        .strip_prefix("sha256:")
        .filter(|hex| {
            hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        })
        .ok_or_else(|| BlobError::BadDigest {
            digest: digest.to_string(),
        })
}

/// The blob directory of an image store.
#[derive(Debug, Clone)]
pub struct Blobs {
    dir: PathBuf,
}

impl Blobs {
    /// Blobs under `<images>/blobs/sha256`.
    pub fn new(images: &Path) -> Self {
        Blobs {
            dir: images.join("blobs").join("sha256"),
        }
    }

    /// Where the blob `digest` lies (whether it is there or not).
    pub fn path(&self, digest: &str) -> Result<PathBuf, BlobError> {
        Ok(self.dir.join(digest_hex(digest)?))
    }

    /// The blob's path if the store has it.
    pub fn get(&self, digest: &str) -> Option<PathBuf> {
        self.path(digest).ok().filter(|path| path.is_file())
    }

    /// Stores `bytes` as the blob `digest`, refusing them if they hash to anything else.
    pub async fn put(&self, digest: &str, bytes: &[u8]) -> Result<PathBuf, BlobError> {
        let stream = futures::stream::once(async { Ok::<_, std::convert::Infallible>(bytes) });
        self.put_stream(digest, u64::MAX, stream).await
    }

    /// Streams the blob `digest` into the store, at most `max` bytes; nothing is kept unless
    /// the whole content hashes to `digest`. A blob already stored is not fetched again.
    pub async fn put_stream<S, B, E>(
        &self,
        digest: &str,
        max: u64,
        stream: S,
    ) -> Result<PathBuf, BlobError>
    where
        S: Stream<Item = Result<B, E>>,
        B: AsRef<[u8]>,
        E: std::fmt::Display,
    {
        let path = self.path(digest)?;
        if path.is_file() {
            return Ok(path);
        }
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| BlobError::Io { path, source }
        };
        tokio::fs::create_dir_all(&self.dir)
            .await
            .map_err(io(&self.dir))?;
        let tmp = path.with_extension(format!("tmp-{}", uuid::Uuid::new_v4()));
        let written = async {
            let mut file = tokio::fs::File::create(&tmp).await.map_err(io(&tmp))?;
            let mut hasher = Sha256::new();
            let mut size = 0u64;
            futures::pin_mut!(stream);
            while let Some(chunk) = stream.next().await {
                let chunk = chunk.map_err(|err| BlobError::Download {
                    digest: digest.to_string(),
                    message: err.to_string(),
                })?;
                let chunk = chunk.as_ref();
                size += chunk.len() as u64;
                if size > max {
                    return Err(BlobError::TooLarge {
                        digest: digest.to_string(),
                        max,
                    });
                }
                hasher.update(chunk);
                file.write_all(chunk).await.map_err(io(&tmp))?;
            }
            file.sync_all().await.map_err(io(&tmp))?;
            let actual = format!("sha256:{}", hex::encode(hasher.finalize()));
            if actual != digest {
                return Err(BlobError::Mismatch {
                    expected: digest.to_string(),
                    actual,
                });
            }
            tokio::fs::rename(&tmp, &path).await.map_err(io(&path))
        }
        .await;
        if written.is_err() {
            let _ = tokio::fs::remove_file(&tmp).await;
        }
        written.map(|()| path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn keeps_only_content_that_matches_its_digest() {
        let dir = tempfile::tempdir().expect("tempdir");
        let blobs = Blobs::new(dir.path());
        let digest = sha256(b"module");
        let path = blobs.put(&digest, b"module").await.expect("put");
        assert_eq!(std::fs::read(&path).expect("read"), b"module");
        assert_eq!(blobs.get(&digest), Some(path.clone()));
        assert!(path.ends_with(format!("blobs/sha256/{}", &digest[7..])));

        // Tampered content under a trusted digest is refused and leaves nothing behind.
        let other = sha256(b"other");
        let err = blobs.put(&other, b"tampered").await.expect_err("tampered");
        assert!(
            matches!(&err, BlobError::Mismatch { expected, actual }
                if *expected == other && *actual == sha256(b"tampered")),
            "{err}"
        );
        assert_eq!(blobs.get(&other), None);
        let left: Vec<_> = std::fs::read_dir(dir.path().join("blobs/sha256"))
            .expect("dir")
            .collect();
        assert_eq!(left.len(), 1, "only the good blob: {left:?}");
    }

    #[tokio::test]
    async fn caps_the_size_and_checks_digest_names() {
        let dir = tempfile::tempdir().expect("tempdir");
        let blobs = Blobs::new(dir.path());
        let chunks = futures::stream::iter(
            [&b"0123"[..], b"4567", b"89"].map(Ok::<_, std::convert::Infallible>),
        );
        let digest = sha256(b"0123456789");
        let err = blobs
            .put_stream(&digest, 8, chunks)
            .await
            .expect_err("too large");
        assert!(matches!(err, BlobError::TooLarge { max: 8, .. }), "{err}");
        for bad in ["sha256:../../etc/passwd", "md5:abc", "sha256:ABC", ""] {
            let err = blobs.put(bad, b"x").await.expect_err(bad);
            assert!(matches!(err, BlobError::BadDigest { .. }), "{bad}: {err}");
        }
    }
}
