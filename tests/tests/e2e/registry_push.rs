//! `push_wasm` against Debian's `docker-registry` on 127.0.0.1: a module larger than one
//! upload chunk goes up chunk by chunk, its progress climbing to the module's size, and the
//! node's image store pulls the same module back under the pushed digest.

use std::sync::{Arc, Mutex};

use sha2::{Digest, Sha256};
use skiff_e2e::Registry;
use skiff_node_runtime::runtime::{push_wasm, ImageService, ImageStore, PUSH_CHUNK};

/// Appends `n` in unsigned LEB128, as Wasm encodes sizes.
fn leb128(mut n: usize, out: &mut Vec<u8>) {
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// A valid module holding `size` bytes in a custom section.
fn module_with_payload(size: usize) -> Vec<u8> {
    let name = b"payload";
    let mut section = Vec::new();
    leb128(name.len(), &mut section);
    section.extend_from_slice(name);
    section.extend((0..size).map(|i| (i % 251) as u8));
    // The header, then the custom section's id (0) and size.
    let mut module = b"\0asm\x01\0\0\0\0".to_vec();
    leb128(section.len(), &mut module);
    module.extend(section);
    module
}

#[test]
fn a_module_larger_than_a_chunk_goes_up_in_chunks_with_progress() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let registry = Registry::start(tmp.path())?;
    let module = module_with_payload(9 << 20);
    wat::parse_bytes(&module)?;
    let size = module.len() as u64;
    let runtime = tokio::runtime::Runtime::new()?;

    let progress = Arc::new(Mutex::new(Vec::new()));
    let pushed = runtime.block_on(push_wasm(
        &format!("{}/demo/big:v1", registry.host()),
        &module,
        None,
        &[],
        {
            let progress = progress.clone();
            move |sent| progress.lock().unwrap().push(sent)
        },
    ))?;
    let chunk = PUSH_CHUNK as u64;
    assert_eq!(
        *progress.lock().unwrap(),
        [0, chunk, 2 * chunk, size],
        "bytes sent, reported after each chunk"
    );
    assert_eq!(pushed.size, size);

    let images = ImageStore::open(tmp.path().join("images"))?;
    let image = runtime.block_on(images.pull_image(
        &format!("{}/demo/big@{}", registry.host(), pushed.digest),
        None,
    ))?;
    assert_eq!(
        (image.digest.as_str(), image.size),
        (pushed.digest.as_str(), size)
    );
    let pulled = std::fs::read(&image.content)?;
    assert_eq!(
        hex::encode(Sha256::digest(&pulled)),
        hex::encode(Sha256::digest(&module)),
        "the pulled module is the pushed one"
    );
    Ok(())
}
