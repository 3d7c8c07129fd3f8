//! Query parameters of list, watch, delete and log calls.

/// Selectors of a list or watch.
#[derive(Debug, Clone, Default)]
pub struct ListParams {
    pub label_selector: Option<String>,
    pub field_selector: Option<String>,
}

impl ListParams {
    /// `?labelSelector=..&fieldSelector=..` plus `extra` pairs (empty string if none).
    pub(crate) fn query(&self, extra: &[(&str, &str)]) -> String {
        let mut pairs: Vec<(&str, &str)> = Vec::new();
        if let Some(s) = self.label_selector.as_deref().filter(|s| !s.is_empty()) {
            pairs.push(("labelSelector", s));
        }
        if let Some(s) = self.field_selector.as_deref().filter(|s| !s.is_empty()) {
            pairs.push(("fieldSelector", s));
        }
        pairs.extend(extra.iter().filter(|(_, v)| !v.is_empty()));
        encode(&pairs)
    }
}

/// Options of a delete.
#[derive(Debug, Clone, Default)]
pub struct DeleteParams {
    /// Seconds the pod gets to stop; 0 deletes at once.
    pub grace_period_seconds: Option<i64>,
}

impl DeleteParams {
    pub(crate) fn query(&self) -> String {
        match self.grace_period_seconds {
            Some(g) => encode(&[("gracePeriodSeconds", &g.to_string())]),
            None => String::new(),
        }
    }
}

/// Options of `pods/{name}/log`.
#[derive(Debug, Clone, Default)]
pub struct LogParams {
    pub container: Option<String>,
    pub follow: bool,
    pub tail_lines: Option<i64>,
    pub previous: bool,
    /// Stop after this many bytes of output.
    pub limit_bytes: Option<i64>,
    /// Only output newer than this many seconds.
    pub since_seconds: Option<i64>,
    /// Only output written at or after this RFC 3339 time.
    pub since_time: Option<String>,
    /// Prefix each line with the time it was written.
    pub timestamps: bool,
}

impl LogParams {
    pub(crate) fn query(&self) -> String {
        let tail = self.tail_lines.map(|t| t.to_string());
        let limit = self.limit_bytes.map(|b| b.to_string());
        let since = self.since_seconds.map(|s| s.to_string());
        let mut pairs: Vec<(&str, &str)> = Vec::new();
        if let Some(c) = self.container.as_deref() {
            pairs.push(("container", c));
        }
        if self.follow {
            pairs.push(("follow", "true"));
        }
        if let Some(t) = tail.as_deref() {
            pairs.push(("tailLines", t));
        }
        if self.previous {
            pairs.push(("previous", "true"));
        }
        if let Some(b) = limit.as_deref() {
            pairs.push(("limitBytes", b));
        }
        if let Some(s) = since.as_deref() {
            pairs.push(("sinceSeconds", s));
        }
        if let Some(t) = self.since_time.as_deref() {
            pairs.push(("sinceTime", t));
        }
        if self.timestamps {
            pairs.push(("timestamps", "true"));
        }
        encode(&pairs)
    }
}

fn encode(pairs: &[(&str, &str)]) -> String {
    if pairs.is_empty() {
        return String::new();
    }
    let mut serializer = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        serializer.append_pair(k, v);
    }
    format!("?{}", serializer.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_selectors() {
        let params = ListParams {
            label_selector: Some("app in (a,b)".into()),
            field_selector: Some("spec.nodeName=n1".into()),
        };
        assert_eq!(
            params.query(&[("watch", "true")]),
            "?labelSelector=app+in+%28a%2Cb%29&fieldSelector=spec.nodeName%3Dn1&watch=true"
        );
        assert_eq!(ListParams::default().query(&[]), "");
        assert_eq!(
            DeleteParams {
                grace_period_seconds: Some(0)
            }
            .query(),
            "?gracePeriodSeconds=0"
        );
    }
}
