//! CertificateSigningRequests (certificates.k8s.io/v1): the signer names and key usages
//! Kubernetes defines, what a PKCS#10 request names (parsed with x509-parser), and the checks
//! the built-in signers and the node-client approver make, as Kubernetes' own.

use std::collections::BTreeSet;
use std::net::IpAddr;

use x509_parser::certification_request::X509CertificationRequest;
use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::prelude::FromDer;

/// Client certificates for users of the API.
pub const KUBE_APISERVER_CLIENT: &str = "kubernetes.io/kube-apiserver-client";
/// Client certificates of nodes (`system:node:NAME` in `system:nodes`).
pub const KUBE_APISERVER_CLIENT_KUBELET: &str = "kubernetes.io/kube-apiserver-client-kubelet";
/// Serving certificates of nodes' own listeners (CN `system:node:NAME`, O `system:nodes`,
/// the node's addresses as SANs).
pub const KUBELET_SERVING: &str = "kubernetes.io/kubelet-serving";
/// The group every node certificate names.
pub const NODES_GROUP: &str = "system:nodes";
/// The user-name prefix of node certificates.
pub const NODE_USER_PREFIX: &str = "system:node:";
/// The shortest validity a request may ask for (Kubernetes: 10 minutes).
pub const MIN_EXPIRATION_SECONDS: i32 = 600;

/// The key usages a CertificateSigningRequest may list (Kubernetes' `KeyUsage` values).
pub const KNOWN_USAGES: [&str; 23] = [
    "signing",
    "digital signature",
    "content commitment",
    "key encipherment",
    "key agreement",
    "data encipherment",
    "cert sign",
    "crl sign",
    "encipher only",
    "decipher only",
    "any",
    "server auth",
    "client auth",
    "code signing",
    "email protection",
    "s/mime",
    "ipsec end system",
    "ipsec tunnel",
    "ipsec user",
    "timestamping",
    "ocsp signing",
    "microsoft sgc",
    "netscape sgc",
];

/// What a PKCS#10 request asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedRequest {
    /// The subject's CN.
    pub common_name: String,
    /// The subject's O fields.
    pub organizations: Vec<String>,
    /// Whether it asks for any subject alternative name (DNS, IP, e-mail or URI).
    pub has_alt_names: bool,
    /// The DNS names and IP addresses (as text) it asks for.
    pub dns_and_ips: Vec<String>,
    /// Whether it asks for an e-mail address or URI.
    pub has_other_names: bool,
}

/// Why a request's PEM is not a usable certificate request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    #[error("PEM block type must be CERTIFICATE REQUEST")]
    NotPem,
    #[error("the PEM holds {0} blocks; a request holds one CERTIFICATE REQUEST")]
    Blocks(usize),
    #[error("not a PKCS#10 certificate request: {0}")]
    Der(String),
}

/// Parses the one `CERTIFICATE REQUEST` PEM block of `pem`.
pub fn parse_request(pem: &[u8]) -> Result<ParsedRequest, RequestError> {
    let blocks: Vec<_> = x509_parser::pem::Pem::iter_from_buffer(pem)
        .collect::<Result<_, _>>()
        .map_err(|_| RequestError::NotPem)?;
    let block = match blocks.as_slice() {
        [] => return Err(RequestError::NotPem),
        [one] => one,
        more => return Err(RequestError::Blocks(more.len())),
    };
    if block.label != "CERTIFICATE REQUEST" && block.label != "NEW CERTIFICATE REQUEST" {
        return Err(RequestError::NotPem);
    }
    let (_, request) = X509CertificationRequest::from_der(&block.contents)
        .map_err(|e| RequestError::Der(e.to_string()))?;
    let subject = &request.certification_request_info.subject;
    let text = |s: Result<&str, _>| s.ok().map(str::to_string);
    let common_name = subject
        .iter_common_name()
        .next()
        .and_then(|cn| text(cn.as_str()))
        .unwrap_or_default();
    let organizations = subject
        .iter_organization()
        .filter_map(|o| text(o.as_str()))
        .collect();
    let names: Vec<&GeneralName> = request
        .requested_extensions()
        .into_iter()
        .flatten()
        .filter_map(|ext| match ext {
            ParsedExtension::SubjectAlternativeName(san) => Some(san.general_names.iter()),
            _ => None,
        })
        .flatten()
        .collect();
    let dns_and_ips: Vec<String> = names
        .iter()
        .filter_map(|name| match name {
            GeneralName::DNSName(dns) => Some(dns.to_string()),
            GeneralName::IPAddress(bytes) => ip_text(bytes),
            _ => None,
        })
        .collect();
    Ok(ParsedRequest {
        common_name,
        organizations,
        has_alt_names: !names.is_empty(),
        has_other_names: names.len() > dns_and_ips.len(),
        dns_and_ips,
    })
}

/// An IP address SAN's bytes (4 or 16) as text.
pub fn ip_text(bytes: &[u8]) -> Option<String> {
    let ip = match bytes.len() {
        4 => IpAddr::from(<[u8; 4]>::try_from(bytes).ok()?),
        16 => IpAddr::from(<[u8; 16]>::try_from(bytes).ok()?),
        _ => return None,
    };
    Some(ip.to_string())
}

/// Why a signer refuses a request (Kubernetes' `SignerValidationFailure` messages).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignerRefusal {
    #[error("usages must include \"client auth\" and may add only \"digital signature\" and \"key encipherment\", not {0:?}")]
    Usages(Vec<String>),
    #[error("a client certificate may not name DNS names, IP addresses, e-mail addresses or URIs")]
    AltNames,
    #[error("the subject must be CN=system:node:<node name>, O=system:nodes")]
    NotANode,
    #[error("usages must include \"server auth\" and may add only \"digital signature\" and \"key encipherment\", not {0:?}")]
    ServingUsages(Vec<String>),
    #[error("a kubelet serving certificate names at least one DNS name or IP address, and no e-mail address or URI")]
    ServingNames,
}

/// Whether `usages` fit a client certificate: `client auth`, plus at most `digital signature`
/// and `key encipherment` (Kubernetes' kube-apiserver-client signers).
fn client_usages(usages: &[String]) -> bool {
    let set: BTreeSet<&str> = usages.iter().map(String::as_str).collect();
    set.contains("client auth")
        && set
            .iter()
            .all(|u| matches!(*u, "client auth" | "digital signature" | "key encipherment"))
}

/// Checks a request for `signer` as Kubernetes' built-in client signers do.
pub fn check_client_request(
    signer: &str,
    request: &ParsedRequest,
    usages: &[String],
) -> Result<(), SignerRefusal> {
    if !client_usages(usages) {
        return Err(SignerRefusal::Usages(usages.to_vec()));
    }
    if request.has_alt_names {
        return Err(SignerRefusal::AltNames);
    }
    if signer == KUBE_APISERVER_CLIENT_KUBELET && !is_node_client(request) {
        return Err(SignerRefusal::NotANode);
    }
    Ok(())
}

/// Whether `usages` fit a serving certificate: `server auth`, plus at most `digital
/// signature` and `key encipherment` (Kubernetes' kubelet-serving signer).
pub fn serving_usages(usages: &[String]) -> bool {
    let set: BTreeSet<&str> = usages.iter().map(String::as_str).collect();
    set.contains("server auth")
        && set
            .iter()
            .all(|u| matches!(*u, "server auth" | "digital signature" | "key encipherment"))
}

/// Checks a request for `kubernetes.io/kubelet-serving` as Kubernetes' signer does: serving
/// usages, a node's subject, at least one DNS name or IP address and nothing else.
pub fn check_serving_request(
    request: &ParsedRequest,
    usages: &[String],
) -> Result<(), SignerRefusal> {
    if !serving_usages(usages) {
        return Err(SignerRefusal::ServingUsages(usages.to_vec()));
    }
    if !is_node_client(request) {
        return Err(SignerRefusal::NotANode);
    }
    if request.dns_and_ips.is_empty() || request.has_other_names {
        return Err(SignerRefusal::ServingNames);
    }
    Ok(())
}

/// Whether the request names a node client: CN `system:node:NAME`, O exactly `system:nodes`.
pub fn is_node_client(request: &ParsedRequest) -> bool {
    request
        .common_name
        .strip_prefix(NODE_USER_PREFIX)
        .is_some_and(|name| !name.is_empty())
        && request.organizations == [NODES_GROUP]
}

/// Whether `usages` are what the node-client approver accepts: digital signature and client
/// auth, optionally key encipherment (Kubernetes' `kubeletClientUsages`).
pub fn node_client_usages(usages: &[String]) -> bool {
    let set: BTreeSet<&str> = usages.iter().map(String::as_str).collect();
    let base = BTreeSet::from(["digital signature", "client auth"]);
    let with_encipherment =
        BTreeSet::from(["digital signature", "client auth", "key encipherment"]);
    set == base || set == with_encipherment
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A request made with OpenSSL (`openssl req -new -subj "/O=system:nodes/CN=system:node:node-one"`).
    const NODE_CSR: &str = "-----BEGIN CERTIFICATE REQUEST-----
MIHxMIGYAgEAMDYxFTATBgNVBAoMDHN5c3RlbTpub2RlczEdMBsGA1UEAwwUc3lz
dGVtOm5vZGU6bm9kZS1vbmUwWTATBgcqhkjOPQIBBggqhkjOPQMBBwNCAAT8Ln7K
AAcIWcpMbucv3IX4CJy24NGzON4dRQdzN/8N2OGWFVJPpIeEQzWuDKJIZoD6pxJH
3H/3UQQ6ah6SSa1GoAAwCgYIKoZIzj0EAwIDSAAwRQIhAJkEQAZ6UJPNpXQFxrlp
xWLIH0epVMdqh+8h/WW0SnXtAiAm89gvaL9uNyP/s5RTy5BPq/gtTXfian7VjLSg
lYaweg==
-----END CERTIFICATE REQUEST-----
";

    fn usages(list: &[&str]) -> Vec<String> {
        list.iter().map(|u| u.to_string()).collect()
    }

    #[test]
    fn a_request_names_its_subject_and_bad_pem_is_refused() {
        let parsed = parse_request(NODE_CSR.as_bytes()).expect("a request");
        assert_eq!(parsed.common_name, "system:node:node-one");
        assert_eq!(parsed.organizations, ["system:nodes"]);
        assert!(!parsed.has_alt_names);
        assert!(is_node_client(&parsed));
        assert_eq!(parse_request(b"hello"), Err(RequestError::NotPem));
        let cert = NODE_CSR.replace("CERTIFICATE REQUEST", "CERTIFICATE");
        assert_eq!(parse_request(cert.as_bytes()), Err(RequestError::NotPem));
        let twice = format!("{NODE_CSR}{NODE_CSR}");
        assert_eq!(
            parse_request(twice.as_bytes()),
            Err(RequestError::Blocks(2))
        );
    }

    #[test]
    fn client_signers_check_usages_and_subjects() {
        let node = parse_request(NODE_CSR.as_bytes()).expect("a request");
        let client = usages(&["digital signature", "client auth"]);
        assert_eq!(
            check_client_request(KUBE_APISERVER_CLIENT_KUBELET, &node, &client),
            Ok(())
        );
        let server = usages(&["digital signature", "server auth"]);
        assert!(matches!(
            check_client_request(KUBE_APISERVER_CLIENT, &node, &server),
            Err(SignerRefusal::Usages(_))
        ));
        let both = usages(&["client auth", "server auth"]);
        assert!(check_client_request(KUBE_APISERVER_CLIENT, &node, &both).is_err());
        let user = ParsedRequest {
            common_name: "bob".into(),
            organizations: vec!["devs".into()],
            has_alt_names: false,
            dns_and_ips: Vec::new(),
            has_other_names: false,
        };
        assert_eq!(
            check_client_request(KUBE_APISERVER_CLIENT, &user, &client),
            Ok(())
        );
        assert_eq!(
            check_client_request(KUBE_APISERVER_CLIENT_KUBELET, &user, &client),
            Err(SignerRefusal::NotANode)
        );
        assert!(node_client_usages(&client));
        assert!(node_client_usages(&usages(&[
            "key encipherment",
            "digital signature",
            "client auth"
        ])));
        assert!(!node_client_usages(&usages(&["client auth"])));
    }

    #[test]
    fn serving_requests_need_server_usages_a_node_subject_and_names() {
        let node = ParsedRequest {
            common_name: "system:node:n1".into(),
            organizations: vec![NODES_GROUP.into()],
            has_alt_names: true,
            dns_and_ips: vec!["10.0.0.5".into()],
            has_other_names: false,
        };
        let serving = usages(&["digital signature", "key encipherment", "server auth"]);
        assert_eq!(check_serving_request(&node, &serving), Ok(()));
        let client = usages(&["digital signature", "client auth"]);
        assert!(matches!(
            check_serving_request(&node, &client),
            Err(SignerRefusal::ServingUsages(_))
        ));
        let user = ParsedRequest {
            common_name: "bob".into(),
            ..node.clone()
        };
        assert_eq!(
            check_serving_request(&user, &serving),
            Err(SignerRefusal::NotANode)
        );
        let with_uri = ParsedRequest {
            has_other_names: true,
            ..node.clone()
        };
        assert_eq!(
            check_serving_request(&with_uri, &serving),
            Err(SignerRefusal::ServingNames)
        );
        let nameless = ParsedRequest {
            has_alt_names: false,
            dns_and_ips: Vec::new(),
            ..node
        };
        assert_eq!(
            check_serving_request(&nameless, &serving),
            Err(SignerRefusal::ServingNames)
        );
    }
}
