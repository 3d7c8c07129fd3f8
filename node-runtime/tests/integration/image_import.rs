//! `skiff image import` at the store: OCI image layouts and `docker save` tarballs (plain or
//! gzipped) of the busybox test image are imported under their names, sharing layers; an
//! archive that is not an image, a tampered blob or a manifest naming files outside the
//! archive is refused and leaves no scratch behind.

use std::io::Cursor;
use std::os::unix::fs::FileTypeExt;
use std::path::Path;

use skiff_node_runtime::runtime::{ImageService, ImageStore, RuntimeError};
use skiff_test_support::oci_image::{digest, gzip, TestImage};

async fn import(store: &ImageStore, archive: Vec<u8>) -> Result<Vec<String>, RuntimeError> {
    let images = store.import_images(Box::new(Cursor::new(archive))).await?;
    Ok(images.into_iter().map(|i| i.reference).collect())
}

/// Nothing but the store's own entries is left in its directory (no import scratch).
fn assert_no_scratch(images: &Path) {
    for entry in std::fs::read_dir(images).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        assert!(!name.starts_with("import-"), "scratch left: {name}");
    }
}

#[tokio::test]
async fn imports_oci_layouts_and_docker_save_tarballs() {
    let image = TestImage::busybox(true).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let images = dir.path().join("images");
    let store = ImageStore::open(images.clone()).unwrap();

    let names = import(&store, image.oci_layout_tar("busybox:oci").unwrap())
        .await
        .unwrap();
    assert_eq!(names, ["busybox:oci"]);
    let oci = store.image_status("busybox:oci").await.unwrap().unwrap();
    assert_eq!(oci.digest, digest(&image.manifest()));
    assert_eq!(oci.config.cmd, ["sh"]);
    assert_eq!(oci.layers.len(), 2);
    assert!(oci.layers[0].join("bin/busybox").is_file());
    assert_eq!(
        std::fs::read_link(oci.layers[0].join("bin/sh")).unwrap(),
        Path::new("busybox")
    );
    let whiteout = std::fs::symlink_metadata(oci.layers[1].join("etc/motd")).unwrap();
    assert!(whiteout.file_type().is_char_device());
    assert_no_scratch(&images);

    // A gzipped docker save tarball with two tags: both names, the same (shared) layers.
    let saved = gzip(&image.docker_save_tar(&["busybox:a", "busybox:b"]).unwrap());
    let names = import(&store, saved).await.unwrap();
    assert_eq!(names, ["busybox:a", "busybox:b"]);
    let a = store.image_status("busybox:a").await.unwrap().unwrap();
    assert_eq!(a.layers, oci.layers);
    assert_eq!(a.digest, digest(&image.config));
    assert_eq!(store.list_images().await.unwrap().len(), 3);
    assert_no_scratch(&images);
}

#[tokio::test]
async fn refuses_archives_that_are_not_sound_images() {
    let image = TestImage::busybox(false).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let images = dir.path().join("images");
    let store = ImageStore::open(images.clone()).unwrap();

    let mut other = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(5);
    header.set_mode(0o644);
    other
        .append_data(&mut header, "notes.txt", &b"notes"[..])
        .unwrap();
    let err = import(&store, other.into_inner().unwrap())
        .await
        .expect_err("not an image");
    assert!(err.to_string().contains("not an image"), "{err}");

    let err = import(&store, b"garbage, not a tar at all".repeat(40))
        .await
        .expect_err("not a tar");
    assert!(err.to_string().contains("cannot be unpacked"), "{err}");

    // A manifest.json naming a file outside the archive.
    let mut hostile = tar::Builder::new(Vec::new());
    let manifest = br#"[{"Config":"../../../../etc/hostname","RepoTags":["evil:1"],"Layers":[]}]"#;
    let mut header = tar::Header::new_gnu();
    header.set_size(manifest.len() as u64);
    header.set_mode(0o644);
    hostile
        .append_data(&mut header, "manifest.json", &manifest[..])
        .unwrap();
    let err = import(&store, hostile.into_inner().unwrap())
        .await
        .expect_err("outside");
    assert!(
        err.to_string().contains("not a file in the archive"),
        "{err}"
    );

    // An OCI layout whose layer blob was changed after it was named.
    let layout = tempfile::tempdir().unwrap();
    image
        .write_oci_layout(layout.path(), "busybox:bad")
        .unwrap();
    let layer = layout
        .path()
        .join("blobs/sha256")
        .join(&digest(&image.layers[0])[7..]);
    let mut bytes = std::fs::read(&layer).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&layer, bytes).unwrap();
    let mut tampered = tar::Builder::new(Vec::new());
    tampered.append_dir_all(".", layout.path()).unwrap();
    let err = import(&store, tampered.into_inner().unwrap())
        .await
        .expect_err("tampered");
    assert!(
        err.to_string().contains("does not match its digest"),
        "{err}"
    );

    assert!(store.list_images().await.unwrap().is_empty());
    assert_no_scratch(&images);
    let layers = images.join("layers/sha256");
    assert!(!layers.exists() || std::fs::read_dir(&layers).unwrap().count() == 0);
}
