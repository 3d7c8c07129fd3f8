//! Label selectors (`app=web,tier in (a,b),!legacy`) and field selectors (`spec.nodeName=n1`).

use std::collections::{BTreeMap, BTreeSet};
use std::str::FromStr;

use k8s_openapi::apimachinery::pkg::apis::meta::v1 as metav1;
use serde_json::Value;

/// A selector that could not be parsed or converted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectorError {
    #[error("cannot parse {input:?}: {reason}")]
    Syntax { input: String, reason: String },
    #[error("matchExpressions[{index}].operator: unsupported operator {operator:?} (use In, NotIn, Exists, DoesNotExist)")]
    Operator { index: usize, operator: String },
    #[error("matchExpressions[{index}].values: {reason}")]
    Values { index: usize, reason: &'static str },
    #[error("field selector: field {0:?} is not supported (supported: metadata.name, metadata.namespace, spec.nodeName, spec.unschedulable, status.phase, involvedObject.*)")]
    UnknownField(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Requirement {
    Equals(String, String),
    NotEquals(String, String),
    In(String, BTreeSet<String>),
    NotIn(String, BTreeSet<String>),
    Exists(String),
    DoesNotExist(String),
}

impl Requirement {
    fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        match self {
            Requirement::Equals(k, v) => labels.get(k) == Some(v),
            Requirement::NotEquals(k, v) => labels.get(k) != Some(v),
            Requirement::In(k, vs) => labels.get(k).is_some_and(|v| vs.contains(v)),
            Requirement::NotIn(k, vs) => labels.get(k).is_none_or(|v| !vs.contains(v)),
            Requirement::Exists(k) => labels.contains_key(k),
            Requirement::DoesNotExist(k) => !labels.contains_key(k),
        }
    }
}

/// A parsed label selector; the empty selector matches everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LabelSelector {
    requirements: Vec<Requirement>,
}

impl LabelSelector {
    /// From a manifest's `matchLabels` and `matchExpressions`.
    pub fn from_k8s(selector: &metav1::LabelSelector) -> Result<Self, SelectorError> {
        let mut requirements: Vec<Requirement> = selector
            .match_labels
            .iter()
            .flatten()
            .map(|(k, v)| Requirement::Equals(k.clone(), v.clone()))
            .collect();
        for (index, expr) in selector.match_expressions.iter().flatten().enumerate() {
            let values: BTreeSet<String> = expr.values.iter().flatten().cloned().collect();
            let key = expr.key.clone();
            let requirement = match expr.operator.as_str() {
                "In" | "NotIn" if values.is_empty() => {
                    return Err(SelectorError::Values {
                        index,
                        reason: "must be non-empty for In and NotIn",
                    })
                }
                "Exists" | "DoesNotExist" if !values.is_empty() => {
                    return Err(SelectorError::Values {
                        index,
                        reason: "must be empty for Exists and DoesNotExist",
                    })
                }
                "In" => Requirement::In(key, values),
                "NotIn" => Requirement::NotIn(key, values),
                "Exists" => Requirement::Exists(key),
                "DoesNotExist" => Requirement::DoesNotExist(key),
                other => {
                    return Err(SelectorError::Operator {
                        index,
                        operator: other.to_string(),
                    })
                }
            };
            requirements.push(requirement);
        }
        Ok(LabelSelector { requirements })
    }

    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.requirements.iter().all(|r| r.matches(labels))
    }

    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }
}

impl FromStr for LabelSelector {
    type Err = SelectorError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let syntax = |reason: String| SelectorError::Syntax {
            input: input.to_string(),
            reason,
        };
        let mut requirements = Vec::new();
        for term in split_terms(input) {
            let term = term.trim();
            if term.is_empty() {
                continue;
            }
            let requirement = if let Some(key) = term.strip_prefix('!') {
                Requirement::DoesNotExist(checked_key(key.trim()).map_err(syntax)?)
            } else if let Some((key, rest)) = split_set_op(term) {
                let (negated, values) = rest;
                let key = checked_key(key).map_err(syntax)?;
                if negated {
                    Requirement::NotIn(key, values)
                } else {
                    Requirement::In(key, values)
                }
            } else if let Some((key, value)) = term.split_once("!=") {
                Requirement::NotEquals(
                    checked_key(key.trim()).map_err(syntax)?,
                    value.trim().to_string(),
                )
            } else if let Some((key, value)) =
                term.split_once("==").or_else(|| term.split_once('='))
            {
                Requirement::Equals(
                    checked_key(key.trim()).map_err(syntax)?,
                    value.trim().to_string(),
                )
            } else {
                Requirement::Exists(checked_key(term).map_err(syntax)?)
            };
            requirements.push(requirement);
        }
        Ok(LabelSelector { requirements })
    }
}

/// Splits on commas outside parentheses.
fn split_terms(input: &str) -> Vec<&str> {
    let mut terms = Vec::new();
    let (mut depth, mut start) = (0usize, 0usize);
    for (i, c) in input.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                terms.push(&input[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    terms.push(&input[start..]);
    terms
}

/// `key in (a,b)` / `key notin (a)`: (key, (negated, values)).
fn split_set_op(term: &str) -> Option<(&str, (bool, BTreeSet<String>))> {
    let open = term.find('(')?;
    let close = term.rfind(')')?;
    let head = term[..open].trim();
    let (key, negated) = if let Some(key) = head.strip_suffix(" notin") {
        (key, true)
    } else if let Some(key) = head.strip_suffix(" in") {
        (key, false)
    } else {
        return None;
    };
    let values = term[open + 1..close]
        .split(',')
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
        .collect();
    Some((key.trim(), (negated, values)))
}

fn checked_key(key: &str) -> Result<String, String> {
    let valid = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'));
    if valid {
        Ok(key.to_string())
    } else {
        Err(format!("invalid label key {key:?}"))
    }
}

/// A parsed field selector: `=`/`==`/`!=` terms on supported fields.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldSelector {
    terms: Vec<(String, bool, String)>,
}

impl FromStr for FieldSelector {
    type Err = SelectorError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let mut terms = Vec::new();
        for term in input.split(',').map(str::trim).filter(|t| !t.is_empty()) {
            let (field, equal, value) = if let Some((f, v)) = term.split_once("!=") {
                (f, false, v)
            } else if let Some((f, v)) = term.split_once("==").or_else(|| term.split_once('=')) {
                (f, true, v)
            } else {
                return Err(SelectorError::Syntax {
                    input: input.to_string(),
                    reason: format!("{term:?} is not of the form field=value or field!=value"),
                });
            };
            let field = field.trim();
            let supported = matches!(
                field,
                "metadata.name"
                    | "metadata.namespace"
                    | "spec.nodeName"
                    | "spec.unschedulable"
                    | "status.phase"
            ) || field.starts_with("involvedObject.");
            if !supported {
                return Err(SelectorError::UnknownField(field.to_string()));
            }
            terms.push((field.to_string(), equal, value.trim().to_string()));
        }
        Ok(FieldSelector { terms })
    }
}

impl FieldSelector {
    /// Whether a JSON object satisfies every term (a missing field reads as "").
    pub fn matches(&self, obj: &Value) -> bool {
        self.terms.iter().all(|(field, equal, value)| {
            let pointer = format!("/{}", field.replace('.', "/"));
            let actual = match obj.pointer(&pointer) {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Bool(b)) => b.to_string(),
                Some(Value::Number(n)) => n.to_string(),
                _ => String::new(),
            };
            (actual == *value) == *equal
        })
    }

    /// The fields the terms read.
    pub fn fields(&self) -> impl Iterator<Item = &str> {
        self.terms.iter().map(|(field, _, _)| field.as_str())
    }

    /// The value an `=` term requires of `field`.
    pub fn get(&self, field: &str) -> Option<&str> {
        self.terms
            .iter()
            .find(|(f, equal, _)| f == field && *equal)
            .map(|(_, _, v)| v.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn parses_and_matches_label_selectors() {
        let s: LabelSelector = "app=web,tier in (a, b),env!=prod,!legacy,team"
            .parse()
            .expect("parse");
        assert!(s.matches(&labels(&[("app", "web"), ("tier", "a"), ("team", "x")])));
        assert!(!s.matches(&labels(&[("app", "web"), ("tier", "c"), ("team", "x")])));
        assert!(!s.matches(&labels(&[
            ("app", "web"),
            ("tier", "a"),
            ("team", "x"),
            ("legacy", "1")
        ])));
        assert!(!s.matches(&labels(&[
            ("app", "web"),
            ("tier", "a"),
            ("team", "x"),
            ("env", "prod")
        ])));
        let notin: LabelSelector = "tier notin (a)".parse().expect("parse");
        assert!(notin.matches(&labels(&[])));
        assert!("".parse::<LabelSelector>().expect("empty").is_empty());
        assert!("app==web"
            .parse::<LabelSelector>()
            .expect("==")
            .matches(&labels(&[("app", "web")])));
        assert!("bad key=x".parse::<LabelSelector>().is_err());
    }

    #[test]
    fn converts_manifest_selectors() {
        let k8s: metav1::LabelSelector = serde_json::from_value(json!({
            "matchLabels": {"app": "web"},
            "matchExpressions": [{"key": "tier", "operator": "In", "values": ["a"]}]
        }))
        .expect("selector");
        let s = LabelSelector::from_k8s(&k8s).expect("convert");
        assert!(s.matches(&labels(&[("app", "web"), ("tier", "a")])));
        assert!(!s.matches(&labels(&[("app", "web")])));
        let bad: metav1::LabelSelector =
            serde_json::from_value(json!({"matchExpressions": [{"key": "k", "operator": "Near"}]}))
                .expect("selector");
        assert!(matches!(
            LabelSelector::from_k8s(&bad),
            Err(SelectorError::Operator { index: 0, .. })
        ));
    }

    #[test]
    fn field_selectors() {
        let pod = json!({"metadata": {"name": "p"}, "spec": {"nodeName": "n1"}, "status": {"phase": "Running"}});
        let s: FieldSelector = "spec.nodeName=n1,status.phase!=Failed"
            .parse()
            .expect("parse");
        assert!(s.matches(&pod));
        assert_eq!(s.get("spec.nodeName"), Some("n1"));
        assert!(!"spec.nodeName=n2"
            .parse::<FieldSelector>()
            .expect("parse")
            .matches(&pod));
        assert!("spec.nodeName="
            .parse::<FieldSelector>()
            .expect("parse")
            .matches(&json!({"spec": {}})));
        assert!(matches!(
            "spec.foo=x".parse::<FieldSelector>(),
            Err(SelectorError::UnknownField(_))
        ));
    }
}
