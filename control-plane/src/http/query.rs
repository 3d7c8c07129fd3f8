//! Query parameters of API requests.

use std::collections::HashMap;

use crate::error::ApiError;
use crate::registry::{ListOptions, ReadAt};

/// Parsed query string, by Kubernetes parameter name.
pub struct Query(HashMap<String, String>);

impl Query {
    pub fn parse(raw: Option<&str>) -> Self {
        let pairs = raw
            .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
            .unwrap_or_default();
        Query(pairs)
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    pub fn flag(&self, name: &str) -> bool {
        matches!(self.get(name), Some("true" | "1"))
    }

    pub fn int(&self, name: &str) -> Result<Option<i64>, ApiError> {
        self.get(name)
            .map(|v| {
                v.parse().map_err(|_| {
                    ApiError::BadRequest(format!("query parameter {name}: {v:?} is not an integer"))
                })
            })
            .transpose()
    }

    /// `dryRun`: `All` checks a write without making it; any other value is refused, as
    /// Kubernetes refuses it.
    pub fn dry_run(&self) -> Result<bool, ApiError> {
        match self.get("dryRun") {
            None => Ok(false),
            Some("All") => Ok(true),
            Some(other) => Err(ApiError::BadRequest(format!(
                "invalid dryRun value {other:?}: the only accepted value is \"All\""
            ))),
        }
    }

    /// `labelSelector`, `fieldSelector` and `allowWatchBookmarks`.
    pub fn list_options(&self) -> Result<ListOptions, ApiError> {
        let label_selector = self
            .get("labelSelector")
            .map(|s| {
                s.parse()
                    .map_err(|e| ApiError::BadRequest(format!("labelSelector {s:?}: {e}")))
            })
            .transpose()?;
        let field_selector = self
            .get("fieldSelector")
            .map(|s| {
                s.parse()
                    .map_err(|e| ApiError::BadRequest(format!("fieldSelector {s:?}: {e}")))
            })
            .transpose()?;
        Ok(ListOptions {
            label_selector,
            field_selector,
            allow_bookmarks: self.flag("allowWatchBookmarks"),
        })
    }

    /// Which revision a list reads: `resourceVersion` with `resourceVersionMatch`
    /// (`NotOlderThan`, the default for a non-zero version, or `Exact`). A match rule without
    /// a version, with a `continue` token, or `Exact` with version 0 is a 400 naming the field.
    pub fn read_at(&self) -> Result<ReadAt, ApiError> {
        let version = self.get("resourceVersion").filter(|v| !v.is_empty());
        let matching = self.get("resourceVersionMatch").filter(|v| !v.is_empty());
        let forbidden = |why: &str| {
            Err(ApiError::BadRequest(format!(
                "resourceVersionMatch: Forbidden: {why}"
            )))
        };
        if matching.is_some() && self.get("continue").is_some() {
            return forbidden("resourceVersionMatch is forbidden when continue is provided");
        }
        let exact = match matching {
            None | Some("NotOlderThan") => false,
            Some("Exact") => true,
            Some(other) => {
                return Err(ApiError::BadRequest(format!(
                    "resourceVersionMatch: Unsupported value: {other:?}: supported values: \
                     \"Exact\", \"NotOlderThan\""
                )))
            }
        };
        let Some(version) = version else {
            if matching.is_some() {
                return forbidden(
                    "resourceVersionMatch is forbidden unless resourceVersion is provided",
                );
            }
            return Ok(ReadAt::Latest);
        };
        let revision: u64 = version.parse().map_err(|_| {
            ApiError::BadRequest(format!(
                "resourceVersion: Invalid value: {version:?}: not a valid resource version"
            ))
        })?;
        match (revision, exact) {
            (0, true) => {
                forbidden("resourceVersionMatch \"Exact\" is forbidden for resourceVersion \"0\"")
            }
            (0, false) => Ok(ReadAt::Latest),
            (rv, true) => Ok(ReadAt::Exact(rv)),
            (rv, false) => Ok(ReadAt::NotOlderThan(rv)),
        }
    }

    /// `resourceVersion` for a watch: `None` (or "0") means "start from the current state".
    pub fn watch_from(&self) -> Result<Option<u64>, ApiError> {
        match self.get("resourceVersion") {
            None | Some("0") => Ok(None),
            Some(rv) => rv.parse().map(Some).map_err(|_| {
                ApiError::BadRequest(format!("resourceVersion {rv:?} is not a valid revision"))
            }),
        }
    }
}
