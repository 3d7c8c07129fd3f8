//! Kubeconfig files as kubectl reads them: clusters (server URL, CA), users (client
//! certificate and key, or a bearer token, and whom to impersonate) and contexts tying them
//! together. Skiff writes `DATA_DIR/admin.kubeconfig` in this shape and reads any such file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use base64::Engine;
use serde::{Deserialize, Serialize};

use crate::{ClientError, Impersonation};

/// A kubeconfig file (`apiVersion: v1`, `kind: Config`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Kubeconfig {
    #[serde(rename = "apiVersion", default)]
    pub api_version: String,
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub clusters: Vec<NamedCluster>,
    #[serde(default)]
    pub users: Vec<NamedUser>,
    #[serde(default)]
    pub contexts: Vec<NamedContext>,
    #[serde(default)]
    pub current_context: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct NamedCluster {
    pub name: String,
    pub cluster: ClusterEntry,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct ClusterEntry {
    pub server: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub certificate_authority_data: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub certificate_authority: Option<PathBuf>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct NamedUser {
    pub name: String,
    pub user: UserEntry,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct UserEntry {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_certificate_data: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_key_data: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_certificate: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_key: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// The user to act as (`as`, as kubectl's `--as`).
    #[serde(rename = "as", skip_serializing_if = "Option::is_none")]
    pub act_as: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub as_groups: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub as_uid: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub as_user_extra: BTreeMap<String, Vec<String>>,
}

impl UserEntry {
    /// Whom the entry impersonates, if it sets any of the `as` fields (its `user` is empty
    /// when it sets groups, a uid or extra fields alone).
    fn impersonation(&self) -> Option<Impersonation> {
        let any = self.act_as.is_some()
            || !self.as_groups.is_empty()
            || self.as_uid.is_some()
            || !self.as_user_extra.is_empty();
        any.then(|| Impersonation {
            user: self.act_as.clone().unwrap_or_default(),
            groups: self.as_groups.clone(),
            uid: self.as_uid.clone(),
            extra: self.as_user_extra.clone(),
        })
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct NamedContext {
    pub name: String,
    pub context: ContextEntry,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ContextEntry {
    pub cluster: String,
    pub user: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

/// What a client needs to reach a cluster securely.
#[derive(Debug, Clone, Default)]
pub struct Credentials {
    /// The CA (PEM) the servers' certificates must chain to; `None`: public authorities.
    pub ca_pem: Option<Vec<u8>>,
    /// A client certificate (PEM) and its key (PEM).
    pub identity: Option<(Vec<u8>, Vec<u8>)>,
    /// A bearer token.
    pub token: Option<String>,
}

/// A kubeconfig's current context, resolved.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub server: String,
    pub credentials: Credentials,
    pub namespace: Option<String>,
    /// Whom the user entry impersonates.
    pub impersonation: Option<Impersonation>,
}

fn b64(text: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(text)
}

impl Kubeconfig {
    /// A kubeconfig for one user of one cluster, everything embedded.
    pub fn embedded(
        name: &str,
        server: &str,
        ca_pem: &str,
        user: &str,
        cert_pem: &str,
        key_pem: &str,
    ) -> Kubeconfig {
        Kubeconfig {
            api_version: "v1".into(),
            kind: "Config".into(),
            clusters: vec![NamedCluster {
                name: name.into(),
                cluster: ClusterEntry {
                    server: server.into(),
                    certificate_authority_data: Some(b64(ca_pem)),
                    certificate_authority: None,
                },
            }],
            users: vec![NamedUser {
                name: user.into(),
                user: UserEntry {
                    client_certificate_data: Some(b64(cert_pem)),
                    client_key_data: Some(b64(key_pem)),
                    ..Default::default()
                },
            }],
            contexts: vec![NamedContext {
                name: name.into(),
                context: ContextEntry {
                    cluster: name.into(),
                    user: user.into(),
                    namespace: None,
                },
            }],
            current_context: name.into(),
        }
    }

    /// The YAML text.
    pub fn to_yaml(&self) -> String {
        serde_yaml_ng::to_string(self).expect("a kubeconfig serializes")
    }

    /// Reads and resolves the kubeconfig at `path`.
    pub fn load(path: &Path) -> Result<Resolved, ClientError> {
        let bad = |reason: String| ClientError::Kubeconfig {
            path: path.to_path_buf(),
            reason,
        };
        let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
        let config: Kubeconfig = serde_yaml_ng::from_str(&text).map_err(|e| bad(e.to_string()))?;
        config
            .resolve(path.parent().unwrap_or(Path::new(".")))
            .map_err(bad)
    }

    /// The current context's server and credentials; relative file paths are under `base`.
    fn resolve(&self, base: &Path) -> Result<Resolved, String> {
        let context = self
            .contexts
            .iter()
            .find(|c| c.name == self.current_context)
            .or_else(|| self.contexts.first())
            .ok_or("it has no context")?;
        let cluster = self
            .clusters
            .iter()
            .find(|c| c.name == context.context.cluster)
            .ok_or_else(|| format!("no cluster {:?}", context.context.cluster))?;
        let user = self
            .users
            .iter()
            .find(|u| u.name == context.context.user)
            .map(|u| u.user.clone())
            .unwrap_or_default();
        let data = |inline: &Option<String>, file: &Option<PathBuf>, what: &str| {
            if let Some(text) = inline {
                return base64::engine::general_purpose::STANDARD
                    .decode(text.trim())
                    .map(Some)
                    .map_err(|e| format!("{what}: {e}"));
            }
            match file {
                Some(file) => std::fs::read(base.join(file))
                    .map(Some)
                    .map_err(|e| format!("{what} {}: {e}", file.display())),
                None => Ok(None),
            }
        };
        let ca_pem = data(
            &cluster.cluster.certificate_authority_data,
            &cluster.cluster.certificate_authority,
            "certificate-authority",
        )?;
        let cert = data(
            &user.client_certificate_data,
            &user.client_certificate,
            "client-certificate",
        )?;
        let key = data(&user.client_key_data, &user.client_key, "client-key")?;
        Ok(Resolved {
            server: cluster.cluster.server.clone(),
            credentials: Credentials {
                ca_pem,
                identity: cert.zip(key),
                token: user.token.clone(),
            },
            namespace: context.context.namespace.clone(),
            impersonation: user.impersonation(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_embedded_kubeconfig_resolves_to_its_server_and_credentials() {
        let config =
            Kubeconfig::embedded("skiff", "https://127.0.0.1:6443", "CA", "admin", "C", "K");
        let dir = tempfile_dir();
        let path = dir.join("kubeconfig");
        std::fs::write(&path, config.to_yaml()).unwrap();
        let resolved = Kubeconfig::load(&path).unwrap();
        assert_eq!(resolved.server, "https://127.0.0.1:6443");
        assert_eq!(resolved.credentials.ca_pem.as_deref(), Some(&b"CA"[..]));
        assert_eq!(
            resolved.credentials.identity,
            Some((b"C".to_vec(), b"K".to_vec()))
        );
        assert_eq!(resolved.impersonation, None);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_user_entry_impersonates_with_kubectls_fields() {
        let entry: UserEntry = serde_yaml_ng::from_str(
            "token: t\nas: bob\nas-groups: [dev]\nas-uid: u1\nas-user-extra: {acme.com/team: [a, b]}\n",
        )
        .unwrap();
        let expected = Impersonation {
            user: "bob".into(),
            groups: vec!["dev".into()],
            uid: Some("u1".into()),
            extra: BTreeMap::from([("acme.com/team".into(), vec!["a".into(), "b".into()])]),
        };
        assert_eq!(entry.impersonation(), Some(expected));
        let written = serde_yaml_ng::to_string(&entry).unwrap();
        assert!(written.contains("as: bob"), "{written}");
    }

    fn tempfile_dir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!("skiff-kubeconfig-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }
}
