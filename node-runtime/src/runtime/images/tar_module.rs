//! Finding a `wasi/wasm` image's module inside its tar layers (plain or gzip), the upper
//! layer first, honouring whiteouts. Nothing is unpacked: only the module's bytes are read.

use std::io::Read;
use std::path::{Component, Path, PathBuf};

/// Why the module could not be taken from the layers.
#[derive(Debug, thiserror::Error)]
pub enum TarModuleError {
    #[error("the module {path} is not a regular file in the image's layers")]
    Missing { path: String },
    #[error(
        "the module {path} is over the node's image size limit of {max} bytes (--max-image-size)"
    )]
    TooLarge { path: String, max: u64 },
    #[error("reading layer {}: {source}", layer.display())]
    Read {
        layer: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The normalized relative form of `path` (`/app.wasm` and `./app.wasm` → `app.wasm`).
fn normalize(path: &str) -> PathBuf {
    Path::new(path)
        .components()
        .filter_map(|c| match c {
            Component::Normal(part) => Some(part),
            _ => None,
        })
        .collect()
}

/// What one layer says about `wanted`.
enum Found {
    File(Vec<u8>),
    Deleted,
    Absent,
}

/// Reads the file `path` from `layers` (lowest first, as in the manifest), at most `max` bytes.
pub fn read_module(layers: &[PathBuf], path: &str, max: u64) -> Result<Vec<u8>, TarModuleError> {
    let wanted = normalize(path);
    for layer in layers.iter().rev() {
        match find_in_layer(layer, &wanted, path, max)? {
            Found::File(bytes) => return Ok(bytes),
            Found::Deleted => break,
            Found::Absent => {}
        }
    }
    Err(TarModuleError::Missing {
        path: path.to_string(),
    })
}

fn find_in_layer(
    layer: &Path,
    wanted: &Path,
    path: &str,
    max: u64,
) -> Result<Found, TarModuleError> {
    let read = |source| TarModuleError::Read {
        layer: layer.to_path_buf(),
        source,
    };
    let mut file = std::fs::File::open(layer).map_err(read)?;
    let mut magic = [0u8; 2];
    let gzip = file.read_exact(&mut magic).is_ok() && magic == [0x1f, 0x8b];
    let file = std::fs::File::open(layer).map_err(read)?;
    let reader: Box<dyn Read> = if gzip {
        Box::new(flate2::read::GzDecoder::new(file))
    } else {
        Box::new(file)
    };
    let whiteout = wanted.file_name().map(|name| {
        let mut whiteout = std::ffi::OsString::from(".wh.");
        whiteout.push(name);
        wanted.with_file_name(whiteout)
    });
    let mut archive = tar::Archive::new(reader);
    let mut found = Found::Absent;
    for entry in archive.entries().map_err(read)? {
        let entry = entry.map_err(read)?;
        let name = normalize(&entry.path().map_err(read)?.to_string_lossy());
        if Some(&name) == whiteout.as_ref() {
            found = Found::Deleted;
        } else if name == wanted {
            if !entry.header().entry_type().is_file() {
                return Err(TarModuleError::Missing {
                    path: path.to_string(),
                });
            }
            if entry.size() > max {
                return Err(TarModuleError::TooLarge {
                    path: path.to_string(),
                    max,
                });
            }
            let mut bytes = Vec::with_capacity(entry.size() as usize);
            entry.take(max).read_to_end(&mut bytes).map_err(read)?;
            found = Found::File(bytes);
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Writes a tar layer of `files` (name, content), gzipped if asked.
    pub(crate) fn layer(dir: &Path, name: &str, files: &[(&str, &[u8])], gzip: bool) -> PathBuf {
        let mut builder = tar::Builder::new(Vec::new());
        for (path, bytes) in files {
            let mut header = tar::Header::new_gnu();
            header.set_size(bytes.len() as u64);
            header.set_mode(0o644);
            header.set_cksum();
            builder
                .append_data(&mut header, path, *bytes)
                .expect("append");
        }
        let tar = builder.into_inner().expect("tar");
        let bytes = if gzip {
            let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            std::io::Write::write_all(&mut enc, &tar).expect("gzip");
            enc.finish().expect("gzip")
        } else {
            tar
        };
        let path = dir.join(name);
        std::fs::write(&path, bytes).expect("write");
        path
    }

    #[test]
    fn reads_the_module_from_the_upper_layer_first() {
        let dir = tempfile::tempdir().expect("tempdir");
        let lower = layer(
            dir.path(),
            "l",
            &[("app.wasm", b"old"), ("etc/x", b"x")],
            true,
        );
        let upper = layer(dir.path(), "u", &[("./app.wasm", b"new")], false);
        let module = read_module(&[lower.clone(), upper], "/app.wasm", 100).expect("module");
        assert_eq!(module, b"new");
        let deleted = layer(dir.path(), "d", &[(".wh.app.wasm", b"")], false);
        let err = read_module(&[lower.clone(), deleted], "/app.wasm", 100).expect_err("whiteout");
        assert!(matches!(err, TarModuleError::Missing { .. }), "{err}");
        let err = read_module(std::slice::from_ref(&lower), "/app.wasm", 2).expect_err("cap");
        assert!(
            matches!(err, TarModuleError::TooLarge { max: 2, .. }),
            "{err}"
        );
        let garbage = dir.path().join("g");
        std::fs::write(&garbage, vec![7u8; 1024]).expect("write");
        assert!(read_module(&[garbage], "/app.wasm", 100).is_err());
    }
}
