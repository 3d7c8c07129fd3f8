//! `fieldValidation=Strict|Warn|Ignore` on create, update and patch, as Kubernetes honours
//! it: unknown fields (by the kind's OpenAPI schema) and duplicate fields fail a `Strict`
//! request with 400 naming each field, are dropped (unknown) or the last kept (duplicate)
//! with a `Warning: 299 - "unknown field \"spec.replicaz\""` header under `Warn` (the
//! default), and silently under `Ignore`.

use axum::http::{HeaderName, HeaderValue};
use axum::response::Response;
use serde_json::Value;
use skiff_api::resources::ResourceKind;

use super::query::Query;
use crate::error::ApiError;
use crate::openapi::documents;

/// A request's field validation directive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldValidation {
    /// Refuse unknown and duplicate fields.
    Strict,
    /// Drop unknown fields, keep the last duplicate, and say so in `Warning` headers.
    Warn,
    /// Drop unknown fields and keep the last duplicate silently.
    Ignore,
}

impl FieldValidation {
    /// `fieldValidation` of the query; `Warn` without one, as Kubernetes defaults it.
    pub fn from_query(query: &Query) -> Result<Self, ApiError> {
        match query.get("fieldValidation") {
            None | Some("Warn") => Ok(FieldValidation::Warn),
            Some("Strict") => Ok(FieldValidation::Strict),
            Some("Ignore") => Ok(FieldValidation::Ignore),
            Some(other) => Err(ApiError::BadRequest(format!(
                "fieldValidation instance value {other:?} is invalid, must be one of: Ignore, \
                 Warn, Strict"
            ))),
        }
    }
}

/// What field validation found in one request, to refuse it or to warn.
#[derive(Debug, Default)]
pub struct Findings {
    duplicates: Vec<String>,
    unknown: Vec<String>,
}

impl Findings {
    /// Findings starting with the duplicate fields the body's decoding noted.
    pub fn with_duplicates(duplicates: Vec<String>) -> Self {
        Findings {
            duplicates,
            unknown: Vec::new(),
        }
    }

    /// Removes the unknown fields of `value` (an object of `kind`, or a patch of one when
    /// `patch`), noting them.
    pub fn remove_unknown(&mut self, kind: &ResourceKind, value: &mut Value, patch: bool) {
        let found = documents().remove_unknown_fields(kind, value, patch);
        self.unknown.extend(found);
    }

    /// Notes the unknown fields of `value` without changing it.
    pub fn note_unknown(&mut self, kind: &ResourceKind, value: &Value) {
        let mut copy = value.clone();
        self.remove_unknown(kind, &mut copy, false);
    }

    fn messages(&self) -> Vec<String> {
        let duplicates = self
            .duplicates
            .iter()
            .map(|f| format!("duplicate field {f:?}"));
        let unknown = self.unknown.iter().map(|f| format!("unknown field {f:?}"));
        duplicates.chain(unknown).collect()
    }

    /// Under `Strict`, the 400 that refuses the request if anything was found; for a whole
    /// object (`decoded`: create, update) the message starts as Kubernetes' decoder's does
    /// (`Deployment in version "v1" cannot be handled as a Deployment: `).
    pub fn check(
        &self,
        validation: FieldValidation,
        decoded: Option<&ResourceKind>,
    ) -> Result<(), ApiError> {
        let messages = self.messages();
        if validation != FieldValidation::Strict || messages.is_empty() {
            return Ok(());
        }
        let prefix = decoded
            .map(|k| {
                format!(
                    "{} in version {:?} cannot be handled as a {}: ",
                    k.kind, k.version, k.kind
                )
            })
            .unwrap_or_default();
        Err(ApiError::BadRequest(format!(
            "{prefix}strict decoding error: {}",
            messages.join(", ")
        )))
    }

    /// Under `Warn`, one `Warning` header per finding on `response`, at most `MAX_WARNINGS`
    /// (a body with thousands of unknown fields must not make a response of headers).
    pub fn warn(&self, validation: FieldValidation, mut response: Response) -> Response {
        if validation != FieldValidation::Warn {
            return response;
        }
        let messages = self.messages();
        let more = messages.len().saturating_sub(MAX_WARNINGS);
        let shown = messages.into_iter().take(MAX_WARNINGS);
        let tail = (more > 0).then(|| format!("{more} more unknown or duplicate fields"));
        for message in shown.chain(tail) {
            let text = format!("299 - {}", quoted(&message));
            if let Ok(value) = HeaderValue::from_str(&text) {
                response
                    .headers_mut()
                    .append(HeaderName::from_static("warning"), value);
            }
        }
        response
    }
}

/// The most `Warning` headers one response carries; the rest are counted in one more.
const MAX_WARNINGS: usize = 32;

/// A Go-quoted string, as Kubernetes writes warning texts.
fn quoted(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_ascii_graphic() || c == ' ' => out.push(c),
            c => out.push_str(&c.escape_unicode().to_string()),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::response::IntoResponse;
    use serde_json::json;
    use skiff_api::resources::by_kind;

    fn deployment() -> &'static ResourceKind {
        by_kind("apps/v1", "Deployment").expect("served")
    }

    #[test]
    fn the_directive_defaults_to_warn_and_bad_values_are_refused() {
        let parse = |q: &str| FieldValidation::from_query(&Query::parse(Some(q)));
        assert_eq!(parse("").expect("default"), FieldValidation::Warn);
        assert_eq!(
            parse("fieldValidation=Strict").expect("strict"),
            FieldValidation::Strict
        );
        assert_eq!(
            parse("fieldValidation=Ignore").expect("ignore"),
            FieldValidation::Ignore
        );
        let err = parse("fieldValidation=strict").expect_err("case matters");
        assert!(err.to_string().contains("fieldValidation"), "{err}");
    }

    #[test]
    fn strict_refuses_naming_each_field_and_warn_warns() {
        let mut obj = json!({"metadata": {"name": "web"}, "spec": {"replicaz": 2, "paused": true}});
        let mut findings = Findings::with_duplicates(vec!["spec.paused".into()]);
        findings.remove_unknown(deployment(), &mut obj, false);
        assert_eq!(obj["spec"], json!({"paused": true}));
        let err = findings
            .check(FieldValidation::Strict, Some(deployment()))
            .expect_err("refused");
        assert_eq!(err.code(), axum::http::StatusCode::BAD_REQUEST);
        assert_eq!(
            err.to_string(),
            r#"Deployment in version "v1" cannot be handled as a Deployment: strict decoding error: duplicate field "spec.paused", unknown field "spec.replicaz""#
        );
        let err = findings
            .check(FieldValidation::Strict, None)
            .expect_err("refused");
        assert!(
            err.to_string()
                .starts_with("strict decoding error: duplicate"),
            "{err}"
        );
        findings
            .check(FieldValidation::Warn, Some(deployment()))
            .expect("warn passes");
        Findings::default()
            .check(FieldValidation::Strict, None)
            .expect("nothing found");
        let response = findings.warn(FieldValidation::Warn, ().into_response());
        let warnings = warnings(&response);
        assert_eq!(
            warnings,
            [
                r#"299 - "duplicate field \"spec.paused\"""#,
                r#"299 - "unknown field \"spec.replicaz\"""#
            ]
        );
        let quiet = findings.warn(FieldValidation::Ignore, ().into_response());
        assert!(quiet.headers().get("warning").is_none());
    }

    /// The `Warning` headers of `response`, in order.
    fn warnings(response: &Response) -> Vec<&str> {
        response
            .headers()
            .get_all("warning")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect()
    }

    #[test]
    fn warnings_are_capped_and_the_rest_counted() {
        let findings = Findings::with_duplicates((0..40).map(|i| format!("spec.f{i}")).collect());
        let response = findings.warn(FieldValidation::Warn, ().into_response());
        let warnings = warnings(&response);
        assert_eq!(warnings.len(), MAX_WARNINGS + 1);
        assert_eq!(
            warnings.last().copied(),
            Some(r#"299 - "8 more unknown or duplicate fields""#)
        );
    }
}
