use super::*;
use crate::identity::MASTERS_GROUP;

fn names() -> Vec<String> {
    serving_names("127.0.0.1:6443".parse().unwrap(), "box", None, &[])
}

#[test]
fn the_first_start_makes_a_ca_and_restarts_reuse_it() {
    let data = tempfile::tempdir().unwrap();
    let options = TlsOptions {
        serving_names: names(),
        ..Default::default()
    };
    let first = ServerTls::prepare(data.path(), &options).unwrap();
    let again = ServerTls::prepare(data.path(), &options).unwrap();
    assert_eq!(first.ca_pem(), again.ca_pem());
    assert_eq!(first.admin().cert_pem, again.admin().cert_pem);
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(first.dir().join(CA_KEY))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    first.server_config().expect("a rustls config");
    let serving = std::fs::read_to_string(first.dir().join(SERVING_CERT)).unwrap();
    // New names: a new serving certificate from the same CA.
    let wider = TlsOptions {
        serving_names: serving_names(
            "127.0.0.1:6443".parse().unwrap(),
            "box",
            None,
            &["api.example".into()],
        ),
        ..Default::default()
    };
    let third = ServerTls::prepare(data.path(), &wider).unwrap();
    assert_eq!(third.ca_pem(), first.ca_pem());
    let renewed = std::fs::read_to_string(first.dir().join(SERVING_CERT)).unwrap();
    assert_ne!(serving, renewed);
}

#[test]
fn the_admin_certificate_names_a_cluster_admin() {
    let data = tempfile::tempdir().unwrap();
    let tls = ServerTls::prepare(data.path(), &TlsOptions::default()).unwrap();
    let der = serving::first_der(&tls.admin().cert_pem).unwrap();
    let user = user_of_certificate(&der).unwrap().user;
    assert_eq!(user.name, "admin");
    assert!(user.in_group(MASTERS_GROUP));
}

#[test]
fn members_of_a_cluster_share_a_ca_or_refuse_to_start() {
    let data = tempfile::tempdir().unwrap();
    let shared = TlsOptions {
        needs_shared_ca: true,
        ..Default::default()
    };
    let refused = ServerTls::prepare(data.path(), &shared).expect_err("refused");
    assert!(matches!(refused, PkiError::NoSharedCa { .. }), "{refused}");
    assert!(refused.to_string().contains("skiff certificate create-ca"));

    let ca_dir = tempfile::tempdir().unwrap();
    let ca = ClusterCa::create().unwrap();
    ca.write(ca_dir.path()).unwrap();
    let with_ca = TlsOptions {
        cluster_ca: Some(ca_dir.path().to_path_buf()),
        ..shared
    };
    let tls = ServerTls::prepare(data.path(), &with_ca).unwrap();
    assert_eq!(tls.ca_pem(), ca.cert_pem());
    assert_eq!(ca_hash(tls.ca_pem()).len(), 64);
}

#[test]
fn the_token_key_is_private_kept_and_shared_through_the_ca_dir() {
    use std::os::unix::fs::PermissionsExt;
    let data = tempfile::tempdir().unwrap();
    let first = ServerTls::prepare(data.path(), &TlsOptions::default()).unwrap();
    let path = first.dir().join(SERVICE_ACCOUNT_KEY);
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let again = ServerTls::prepare(data.path(), &TlsOptions::default()).unwrap();
    assert_eq!(
        first.service_account_key().public_key_raw(),
        again.service_account_key().public_key_raw()
    );

    // Two members started from one CA directory sign with one key.
    let ca_dir = tempfile::tempdir().unwrap();
    ClusterCa::create().unwrap().write(ca_dir.path()).unwrap();
    let shared = ServiceAccountKey::create().unwrap();
    shared.write(ca_dir.path()).unwrap();
    let options = TlsOptions {
        cluster_ca: Some(ca_dir.path().to_path_buf()),
        needs_shared_ca: true,
        ..Default::default()
    };
    for member in [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()] {
        let tls = ServerTls::prepare(member.path(), &options).unwrap();
        assert_eq!(
            tls.service_account_key().public_key_raw(),
            shared.public_key_raw()
        );
    }
}
