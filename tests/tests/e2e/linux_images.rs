//! Linux images on a node: the busybox test image (Debian's busybox-static) pushed to Debian's
//! docker-registry is pulled with `skiff image pull` and unpacked into shared layers (its
//! whiteout in overlayfs form), a tampered layer blob is refused by its digest, and
//! `skiff image import` brings a `docker save` tarball and an OCI image layout directory
//! onto the node under their tags; an archive that is not an image is refused.

use skiff_e2e::{DevServer, Registry};
use skiff_test_support::oci_image::{digest, TestImage};

#[test]
fn linux_images_are_pulled_and_imported() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let registry = Registry::start(tmp.path())?;
    let image = TestImage::busybox(true)?;
    let pushed = registry.push_image("test/busybox", "1", &image.blobs(), &image.manifest())?;
    let data = tmp.path().join("data");
    let server = DevServer::start(&data)?;
    let cli = server.cli();

    let reference = format!("{}/test/busybox:1", registry.host());
    let pulled = cli.ok(&["image", "pull", &reference])?;
    assert!(pulled.contains(&pushed), "{pulled}");
    let layers = data.join("agent/images/layers/sha256");
    for layer in &image.layers {
        assert!(
            layers.join(&digest(layer)[7..]).is_dir(),
            "layer {} unpacked",
            digest(layer)
        );
    }
    let base = layers.join(&digest(&image.layers[0])[7..]);
    assert!(base.join("bin/busybox").is_file());
    // The upper layer's whiteout of /etc/motd is an overlayfs whiteout (a 0/0 char device).
    let upper = layers.join(&digest(&image.layers[1])[7..]);
    let whiteout = std::fs::symlink_metadata(upper.join("etc/motd"))?;
    assert!(
        std::os::unix::fs::FileTypeExt::is_char_device(&whiteout.file_type()),
        "{whiteout:?}"
    );

    // A layer blob changed in the registry's storage is refused by its digest.
    let other = TestImage::new(
        vec![skiff_test_support::oci_image::layer_tar(&[
            skiff_test_support::oci_image::Entry::File("tampered", b"original", 0o644),
        ])],
        &["sh"],
    );
    registry.push_image("test/tampered", "1", &other.blobs(), &other.manifest())?;
    let blob = registry.blob_path(&digest(&other.layers[0]));
    let mut bytes = std::fs::read(&blob)?;
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&blob, bytes)?;
    let tampered = format!("{}/test/tampered:1", registry.host());
    let out = cli.run(&["image", "pull", &tampered])?;
    assert!(
        !out.success && out.stderr.contains(&digest(&other.layers[0])),
        "{} {}",
        out.stdout,
        out.stderr
    );
    assert!(!layers.join(&digest(&other.layers[0])[7..]).exists());

    // A docker save tarball and an OCI layout directory, imported under their tags.
    let saved = tmp.path().join("busybox.tar");
    std::fs::write(&saved, image.docker_save_tar(&["busybox:saved"])?)?;
    let out = cli.ok(&["image", "import", saved.to_str().expect("utf-8")])?;
    assert!(out.contains("Imported busybox:saved"), "{out}");
    let layout = tmp.path().join("layout");
    TestImage::busybox(false)?.write_oci_layout(&layout, "busybox:layout")?;
    let out = cli.ok(&["image", "import", layout.to_str().expect("utf-8")])?;
    assert!(out.contains("Imported busybox:layout"), "{out}");
    let listed = cli.ok(&["image", "ls"])?;
    for name in [reference.as_str(), "busybox:saved", "busybox:layout"] {
        assert!(listed.contains(name), "{name} listed: {listed}");
    }
    // The pulled and imported images share their base layer: it was unpacked once.
    assert_eq!(std::fs::read_dir(&layers)?.count(), 2);

    let notes = tmp.path().join("notes.txt");
    std::fs::write(&notes, "not an image")?;
    let out = cli.run(&["image", "import", notes.to_str().expect("utf-8")])?;
    assert!(
        !out.success
            && (out.stderr.contains("cannot be unpacked") || out.stderr.contains("not an image")),
        "{} {}",
        out.stdout,
        out.stderr
    );

    let out = cli.ok(&["image", "rm", "busybox:saved"])?;
    assert!(out.contains("Deleted"), "{out}");
    assert!(base.is_dir(), "a layer other images share stays");
    Ok(())
}
