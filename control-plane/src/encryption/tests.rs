use std::os::unix::fs::PermissionsExt;

use super::*;

const SECRET: &[u8] = b"/registry/core/secrets/default/a";
const POD: &[u8] = b"/registry/core/pods/default/a";

fn generated() -> (EncryptionConfiguration, Encryption) {
    let config = EncryptionConfiguration::generate().expect("generate");
    let encryption = Encryption::from_config(&config).expect("valid");
    (config, encryption)
}

#[test]
fn listed_resources_are_sealed_and_others_stay_clear() {
    let (_, encryption) = generated();
    let sealed = encryption
        .seal(SECRET, b"{\"data\":1}".to_vec())
        .expect("seal");
    assert!(sealed.starts_with(b"k8s:enc:aesgcm:v1:key1:"));
    assert!(encryption.is_current(SECRET, &sealed));
    assert_eq!(
        encryption.open(SECRET, sealed).expect("open"),
        b"{\"data\":1}"
    );
    let pod = encryption.seal(POD, b"{}".to_vec()).expect("seal");
    assert_eq!(pod, b"{}");
    assert!(!encryption.encrypts(POD));
}

#[test]
fn values_written_before_encryption_still_read() {
    let (_, encryption) = generated();
    assert_eq!(
        encryption
            .open(SECRET, b"{\"old\":1}".to_vec())
            .expect("open"),
        b"{\"old\":1}"
    );
    assert!(!encryption.is_current(SECRET, b"{\"old\":1}"));
}

#[test]
fn a_value_under_a_key_this_member_lacks_is_a_clear_error() {
    let (_, writer) = generated();
    let (_, reader) = generated();
    let sealed = writer.seal(SECRET, b"{}".to_vec()).expect("seal");
    let err = reader.open(SECRET, sealed.clone()).expect_err("other key");
    assert!(matches!(err, EncryptionError::Open { .. }), "{err}");
    let err = Encryption::identity()
        .open(SECRET, sealed)
        .expect_err("no key");
    assert!(
        err.to_string().contains("encrypted with key \"key1\""),
        "{err}"
    );
}

#[test]
fn clear_text_is_refused_without_identity() {
    let (mut config, _) = generated();
    config.resources[0].providers.pop();
    let encryption = Encryption::from_config(&config).expect("valid");
    let err = encryption.open(SECRET, b"{}".to_vec()).expect_err("clear");
    assert!(matches!(err, EncryptionError::NotEncrypted { .. }), "{err}");
}

#[test]
fn a_lone_member_generates_a_private_config_once_and_others_do_not() {
    let dir = tempfile::tempdir().expect("tempdir");
    let first = setup(dir.path(), None, true).expect("setup");
    let path = dir.path().join(DEFAULT_FILE);
    let mode = std::fs::metadata(&path).expect("file").permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let sealed = first.seal(SECRET, b"{}".to_vec()).expect("seal");
    let again = setup(dir.path(), None, true).expect("setup");
    assert_eq!(again.open(SECRET, sealed.clone()).expect("open"), b"{}");

    let rotated = again.add_key().expect("rotate");
    assert_eq!(rotated, "key2");
    assert_eq!(again.write_key(SECRET).as_deref(), Some("key2"));
    assert!(!again.is_current(SECRET, &sealed));
    let reread = setup(dir.path(), None, true).expect("setup");
    assert_eq!(reread.write_key(SECRET).as_deref(), Some("key2"));
    assert_eq!(reread.open(SECRET, sealed).expect("old key reads"), b"{}");

    let member = tempfile::tempdir().expect("tempdir");
    let clear = setup(member.path(), None, false).expect("setup");
    assert!(!clear.encrypts(SECRET));
    assert!(!member.path().join(DEFAULT_FILE).exists());
}

#[test]
fn a_given_config_is_not_edited_by_the_server() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("given.yaml");
    let (config, _) = generated();
    std::fs::write(&path, config.to_yaml()).expect("write");
    let encryption = setup(dir.path(), Some(&path), true).expect("setup");
    assert!(encryption.encrypts(SECRET));
    assert!(matches!(
        encryption.add_key(),
        Err(EncryptionError::NotManaged { .. })
    ));
    let missing = setup(dir.path(), Some(&dir.path().join("absent.yaml")), true);
    assert!(matches!(missing, Err(EncryptionError::File { .. })));
}
