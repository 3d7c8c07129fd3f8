//! Histories saved as JSON lines (one operation a line), so that a run the checker failed can
//! be studied and checked again: `check_measured(&load_history(path)?, budget)`.

use std::path::Path;

use anyhow::Context;
use serde_json::{json, Value};

use super::{Op, OpKind, Outcome};

/// Writes `history` to `path`, one JSON object per operation.
pub fn save_history(path: &Path, history: &[Op]) -> std::io::Result<()> {
    let lines: Vec<String> = history.iter().map(|op| to_json(op).to_string()).collect();
    std::fs::write(path, lines.join("\n") + "\n")
}

/// Reads a history written by [`save_history`].
pub fn load_history(path: &Path) -> anyhow::Result<Vec<Op>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(i, line)| {
            from_json(line).with_context(|| format!("{} line {}", path.display(), i + 1))
        })
        .collect()
}

fn to_json(op: &Op) -> Value {
    let mut object = json!({
        "client": op.client,
        "key": op.key,
        "invoked": op.invoked,
        "completed": op.completed,
        "outcome": match op.outcome {
            Outcome::Ok => "ok",
            Outcome::Unknown => "unknown",
        },
    });
    let fields = match &op.kind {
        OpKind::Read(seen) => json!({"op": "read", "value": seen}),
        OpKind::Write(value) => json!({"op": "write", "value": value}),
        OpKind::Cas {
            expected,
            new,
            succeeded,
        } => json!({"op": "cas", "expected": expected, "value": new, "succeeded": succeeded}),
    };
    if let (Some(object), Value::Object(fields)) = (object.as_object_mut(), fields) {
        object.extend(fields);
    }
    object
}

fn from_json(line: &str) -> anyhow::Result<Op> {
    let v: Value = serde_json::from_str(line)?;
    let text = |field: &str| -> anyhow::Result<String> {
        v[field]
            .as_str()
            .map(str::to_string)
            .with_context(|| format!("{field} is not a string"))
    };
    let number = |field: &str| -> anyhow::Result<u64> {
        v[field]
            .as_u64()
            .with_context(|| format!("{field} is not a number"))
    };
    let optional = |field: &str| v[field].as_str().map(str::to_string);
    let kind = match text("op")?.as_str() {
        "read" => OpKind::Read(optional("value")),
        "write" => OpKind::Write(text("value")?),
        "cas" => OpKind::Cas {
            expected: optional("expected"),
            new: text("value")?,
            succeeded: v["succeeded"]
                .as_bool()
                .context("succeeded is not a bool")?,
        },
        other => anyhow::bail!("unknown op {other:?}"),
    };
    let outcome = match text("outcome")?.as_str() {
        "ok" => Outcome::Ok,
        "unknown" => Outcome::Unknown,
        other => anyhow::bail!("unknown outcome {other:?}"),
    };
    Ok(Op {
        client: number("client")? as usize,
        key: text("key")?,
        kind,
        invoked: number("invoked")?,
        completed: number("completed")?,
        outcome,
    })
}
