use std::os::unix::fs::{FileTypeExt, MetadataExt};

use super::*;

/// One entry of a test layer.
enum E<'a> {
    File(&'a str, &'a [u8]),
    Dir(&'a str),
    Symlink(&'a str, &'a str),
    HardLink(&'a str, &'a str),
    Device(&'a str),
}

/// A tar of `entries`, names written raw (the tar crate refuses `..` in names it sets).
fn tar(entries: &[E<'_>]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for entry in entries {
        let mut header = tar::Header::new_ustar();
        let (name, kind, data, link): (&str, tar::EntryType, &[u8], Option<&str>) = match entry {
            E::File(name, data) => (name, tar::EntryType::Regular, data, None),
            E::Dir(name) => (name, tar::EntryType::Directory, b"", None),
            E::Symlink(name, to) => (name, tar::EntryType::Symlink, b"", Some(to)),
            E::HardLink(name, to) => (name, tar::EntryType::Link, b"", Some(to)),
            E::Device(name) => (name, tar::EntryType::Char, b"", None),
        };
        header.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        if let Some(link) = link {
            header.as_old_mut().linkname[..link.len()].copy_from_slice(link.as_bytes());
        }
        header.set_entry_type(kind);
        header.set_size(data.len() as u64);
        header.set_mode(if kind.is_dir() { 0o750 } else { 0o640 });
        header.set_uid(1234);
        header.set_gid(5678);
        header.set_mtime(1_000_000);
        header.set_cksum();
        builder.append(&header, data).expect("append");
    }
    builder.into_inner().expect("tar")
}

struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(dir.path().join("layer")).expect("layer dir");
        Fixture { dir }
    }

    fn root(&self) -> PathBuf {
        self.dir.path().join("layer")
    }

    fn unpack(&self, entries: &[E<'_>]) -> Result<(), UnpackError> {
        unpack_into(&tar(entries)[..], &self.root())
    }

    /// Nothing was written beside the layer directory.
    fn assert_nothing_outside(&self) {
        let names: Vec<_> = std::fs::read_dir(self.dir.path())
            .expect("read")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names, ["layer"], "written outside the layer");
    }
}

fn xattr(path: &Path, name: &str) -> Option<Vec<u8>> {
    let c_path = CString::new(path.as_os_str().as_bytes()).expect("path");
    let c_name = CString::new(name).expect("name");
    let mut value = [0u8; 64];
    // SAFETY: NUL-terminated strings and a buffer of the length passed.
    let len = unsafe {
        libc::lgetxattr(
            c_path.as_ptr(),
            c_name.as_ptr(),
            value.as_mut_ptr().cast(),
            value.len(),
        )
    };
    usize::try_from(len).ok().map(|len| value[..len].to_vec())
}

#[test]
fn unpacks_files_links_and_metadata() {
    let f = Fixture::new();
    f.unpack(&[
        E::Dir("./"),
        E::Dir("bin/"),
        E::File("./bin/busybox", b"elf"),
        E::Symlink("bin/sh", "/bin/busybox"),
        E::HardLink("bin/cat", "bin/busybox"),
        E::File("/etc/motd", b"hi"),
        E::File("deep/er/file", b"x"),
    ])
    .expect("unpack");
    let root = f.root();
    assert_eq!(
        std::fs::read(root.join("bin/busybox")).expect("read"),
        b"elf"
    );
    assert_eq!(
        std::fs::read_link(root.join("bin/sh")).expect("link"),
        Path::new("/bin/busybox")
    );
    let busybox = std::fs::metadata(root.join("bin/busybox")).expect("meta");
    let cat = std::fs::metadata(root.join("bin/cat")).expect("meta");
    assert_eq!(busybox.ino(), cat.ino(), "a hard link");
    // A leading `/` is the layer's root.
    assert_eq!(std::fs::read(root.join("etc/motd")).expect("read"), b"hi");
    assert_eq!(
        std::fs::read(root.join("deep/er/file")).expect("read"),
        b"x"
    );
    assert_eq!(busybox.mode() & 0o7777, 0o640);
    assert_eq!(busybox.mtime(), 1_000_000);
    let bin = std::fs::metadata(root.join("bin")).expect("meta");
    assert_eq!((bin.mode() & 0o7777, bin.mtime()), (0o750, 1_000_000));
    // SAFETY: geteuid cannot fail.
    if unsafe { libc::geteuid() } == 0 {
        assert_eq!((busybox.uid(), busybox.gid()), (1234, 5678));
    }
    f.assert_nothing_outside();
}

#[test]
fn whiteouts_become_overlay_whiteouts() {
    let f = Fixture::new();
    f.unpack(&[
        E::File("etc/.wh.motd", b""),
        E::Dir("var/cache/"),
        E::File("var/cache/.wh..wh..opq", b""),
        E::File("var/cache/new", b"n"),
        E::File("tmp/.wh..wh.plnk", b""),
    ])
    .expect("unpack");
    let root = f.root();
    let whiteout = std::fs::symlink_metadata(root.join("etc/motd")).expect("whiteout");
    assert!(whiteout.file_type().is_char_device(), "{whiteout:?}");
    assert_eq!(whiteout.rdev(), 0);
    assert!(!root.join("etc/.wh.motd").exists());
    assert_eq!(
        xattr(&root.join("var/cache"), "trusted.overlay.opaque").as_deref(),
        Some(&b"y"[..])
    );
    assert!(!root.join("var/cache/.wh..wh..opq").exists());
    assert_eq!(
        std::fs::read(root.join("var/cache/new")).expect("read"),
        b"n"
    );
    assert_eq!(std::fs::read_dir(root.join("tmp")).expect("tmp").count(), 0);
}

#[test]
fn refuses_parent_dir_entries() {
    for name in ["../escaped", "a/../../escaped", "./../escaped"] {
        let f = Fixture::new();
        let err = f.unpack(&[E::File(name, b"x")]).expect_err(name);
        assert!(
            matches!(&err, UnpackError::ParentDir { path } if path.contains("..")),
            "{name}: {err}"
        );
        assert!(err.to_string().contains("climbs out"), "{err}");
        f.assert_nothing_outside();
    }
}

#[test]
fn refuses_writes_through_symlinks_absolute_or_relative() {
    for (link, to) in [
        ("evil", "/tmp"),
        ("evil", ".."),
        ("a/evil", "../.."),
        ("ok", "bin"),
    ] {
        let f = Fixture::new();
        let file = format!("{link}/x");
        let err = f
            .unpack(&[E::Dir("bin/"), E::Symlink(link, to), E::File(&file, b"x")])
            .expect_err(link);
        assert!(
            matches!(&err, UnpackError::ThroughSymlink { link: l, .. } if l == link),
            "{link} -> {to}: {err}"
        );
        f.assert_nothing_outside();
        assert!(!Path::new("/tmp/x").exists() || to != "/tmp");
    }
    // A symlink replaced by a file is not written through.
    let f = Fixture::new();
    f.unpack(&[E::Symlink("f", "../outside"), E::File("f", b"x")])
        .expect("unpack");
    assert_eq!(std::fs::read(f.root().join("f")).expect("read"), b"x");
    f.assert_nothing_outside();
}

#[test]
fn refuses_hard_links_out_of_the_layer() {
    for to in ["../../etc/passwd", "missing", "dir", "sym/x"] {
        let f = Fixture::new();
        let err = f
            .unpack(&[
                E::Dir("dir/"),
                E::Symlink("sym", "/etc"),
                E::HardLink("link", to),
            ])
            .expect_err(to);
        assert!(
            matches!(&err, UnpackError::HardLink { target, .. } if target == to),
            "{to}: {err}"
        );
        f.assert_nothing_outside();
    }
}

#[test]
fn skips_device_nodes_and_reads_compressed_layers() {
    let f = Fixture::new();
    f.unpack(&[E::Device("dev/sda"), E::File("a", b"a")])
        .expect("unpack");
    assert!(!f.root().join("dev/sda").exists());

    let plain = tar(&[E::File("z", b"zstd")]);
    let zstd = zstd::encode_all(&plain[..], 1).expect("zstd");
    let path = f.dir.path().join("z.tar.zst");
    std::fs::write(&path, zstd).expect("write");
    let reader = decompressed(std::fs::File::open(&path).expect("open")).expect("reader");
    let out = f.dir.path().join("z");
    std::fs::create_dir(&out).expect("dir");
    unpack_into(reader, &out).expect("unpack zstd");
    assert_eq!(std::fs::read(out.join("z")).expect("read"), b"zstd");

    let garbage = f.dir.path().join("garbage");
    std::fs::write(&garbage, vec![7u8; 1024]).expect("write");
    let reader = decompressed(std::fs::File::open(&garbage).expect("open")).expect("reader");
    assert!(matches!(
        unpack_into(reader, &out),
        Err(UnpackError::Read { .. })
    ));
}
