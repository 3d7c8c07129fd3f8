//! Telling Wasm from anything else: the header of a core module or a component.

use std::io::Read;
use std::path::Path;

/// Whether the bytes are a core module or a component.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WasmKind {
    Module,
    Component,
}

/// Tells a Wasm binary's kind from its header, or says why it is not Wasm.
pub fn wasm_kind(bytes: &[u8]) -> Result<WasmKind, String> {
    if bytes.len() < 8 || &bytes[..4] != b"\0asm" {
        return Err("it does not start with the WebAssembly magic bytes \\0asm".into());
    }
    match &bytes[4..8] {
        [1, 0, 0, 0] => Ok(WasmKind::Module),
        [0x0d, 0, 1, 0] => Ok(WasmKind::Component),
        other => Err(format!(
            "unsupported WebAssembly version/layer {other:02x?}"
        )),
    }
}

/// The kind of the Wasm file at `path`, from its first eight bytes.
pub fn file_kind(path: &Path) -> Result<WasmKind, String> {
    let mut header = Vec::with_capacity(8);
    std::fs::File::open(path)
        .and_then(|file| file.take(8).read_to_end(&mut header))
        .map_err(|e| format!("reading {}: {e}", path.display()))?;
    wasm_kind(&header)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tells_modules_from_components() {
        assert_eq!(wasm_kind(b"\0asm\x01\0\0\0"), Ok(WasmKind::Module));
        assert_eq!(wasm_kind(b"\0asm\x0d\0\x01\0"), Ok(WasmKind::Component));
        assert!(wasm_kind(b"\x7fELF\x02\x01\x01\0").is_err());
        assert!(wasm_kind(b"\0as").is_err());
    }

    #[test]
    fn reads_only_the_header_of_a_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("m.wasm");
        std::fs::write(&path, b"\0asm\x01\0\0\0rest of the module").expect("write");
        assert_eq!(file_kind(&path), Ok(WasmKind::Module));
        assert!(file_kind(&dir.path().join("missing")).is_err());
    }
}
