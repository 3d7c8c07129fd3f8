//! CertificateSigningRequest validation, as Kubernetes' `ValidateCertificateSigningRequest`:
//! a parseable PKCS#10 request, a signer name, known usages, a long enough duration, and
//! not both Approved and Denied.

use k8s_openapi::api::certificates::v1::CertificateSigningRequest;

use super::meta::{self, NameRule};
use super::{Errors, FieldErrorReason};
use crate::certificates::{parse_request, KNOWN_USAGES, MIN_EXPIRATION_SECONDS};

/// A CertificateSigningRequest.
pub fn validate_csr(csr: &CertificateSigningRequest, errors: &mut Errors) {
    meta::validate_object_meta(&csr.metadata, false, NameRule::PathSegment, errors);
    let spec = &csr.spec;
    if spec.request.0.is_empty() {
        errors.required("spec.request");
    } else if let Err(err) = parse_request(&spec.request.0) {
        errors.push("spec.request", FieldErrorReason::Invalid, err.to_string());
    }
    match spec.signer_name.split_once('/') {
        None if spec.signer_name.is_empty() => errors.required("spec.signerName"),
        Some((domain, path)) if domain.contains('.') && !path.is_empty() => {}
        _ => errors.invalid(
            "spec.signerName",
            &spec.signer_name,
            "must be a fully qualified domain and path of the form 'example.com/signer-name'",
        ),
    }
    for (i, usage) in spec.usages.iter().flatten().enumerate() {
        if !KNOWN_USAGES.contains(&usage.as_str()) {
            errors.push(
                format!("spec.usages[{i}]"),
                FieldErrorReason::NotSupported,
                format!("{usage:?}"),
            );
        }
    }
    if let Some(seconds) = spec.expiration_seconds {
        if seconds < MIN_EXPIRATION_SECONDS {
            errors.invalid(
                "spec.expirationSeconds",
                seconds,
                format!("may not specify a duration less than {MIN_EXPIRATION_SECONDS} seconds"),
            );
        }
    }
    let conditions = csr
        .status
        .iter()
        .flat_map(|s| s.conditions.iter().flatten());
    let (mut approved, mut denied) = (false, false);
    for (i, condition) in conditions.enumerate() {
        match condition.type_.as_str() {
            "Approved" => approved = true,
            "Denied" => denied = true,
            "Failed" => {}
            other => errors.push(
                format!("status.conditions[{i}].type"),
                FieldErrorReason::NotSupported,
                format!("{other:?}"),
            ),
        }
    }
    if approved && denied {
        errors.invalid(
            "status.conditions",
            "Approved, Denied",
            "Approved and Denied conditions are mutually exclusive",
        );
    }
}
