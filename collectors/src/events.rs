//! Decoder of `POST /api/v1/events` bodies into [`model::ChangeEvent`]s, and the splitter of
//! the three body shapes that this endpoint and `POST /api/v1/dq/generic` share.
//!
//! A body is one JSON object, a JSON array of objects, or newline-delimited JSON (one object
//! per line, blank lines ignored). Every refusal names where the bad record is — `line 3` for
//! NDJSON, `[2]` for an array element — and the field, so a sender can fix the one record.
//!
//! An event is `{"time": RFC 3339, "node": name, "kind": text, "detail": text}` with optional
//! `"labels"` (object of strings) and `"version"` (string).

use model::ChangeEvent;
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt;
use thiserror::Error;

/// Longest `node`, `kind`, label name or value, and `version` accepted, in bytes: names, not
/// documents.
pub const MAX_NAME_BYTES: usize = 256;
/// Longest `detail` accepted, in bytes.
pub const MAX_DETAIL_BYTES: usize = 8 * 1024;
/// Most labels on one event.
pub const MAX_LABELS: usize = 32;

/// Where a record sat in the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Position {
    /// The body was one JSON object.
    Whole,
    /// Element of a JSON array (0-based, as JSON paths count).
    Index(usize),
    /// Line of an NDJSON body (1-based, as editors count).
    Line(usize),
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Whole => f.write_str("the object"),
            Self::Index(i) => write!(f, "element [{i}]"),
            Self::Line(n) => write!(f, "line {n}"),
        }
    }
}

/// A body that is not one of the three shapes, or a record that is not what the endpoint takes.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RecordError {
    #[error("body is empty; send one JSON object, a JSON array of objects, or one object per line (NDJSON)")]
    Empty,
    #[error("{0}")]
    Shape(String),
    #[error("{position}: {message}")]
    Record { position: Position, message: String },
}

impl RecordError {
    pub fn at(position: Position, message: impl Into<String>) -> Self {
        Self::Record {
            position,
            message: message.into(),
        }
    }
}

/// Splits a body into its JSON objects, each with its position.
pub fn records(bytes: &[u8]) -> Result<Vec<(Position, Value)>, RecordError> {
    let text = std::str::from_utf8(bytes)
        .map_err(|e| RecordError::Shape(format!("body is not UTF-8 ({e}); send JSON text")))?;
    let trimmed = text.trim_start();
    if trimmed.trim_end().is_empty() {
        return Err(RecordError::Empty);
    }
    let whole = serde_json::from_str::<Value>(text);
    let out = match whole {
        Ok(Value::Array(items)) => items
            .into_iter()
            .enumerate()
            .map(|(i, v)| (Position::Index(i), v))
            .collect(),
        Ok(v) => vec![(Position::Whole, v)],
        Err(whole_err) => {
            // Not one JSON document: NDJSON when its first record parses alone. Otherwise the
            // document's own error (with its line and column) is the useful one.
            let mut lines = text
                .lines()
                .enumerate()
                .filter(|(_, l)| !l.trim().is_empty());
            let first_ok = lines
                .next()
                .is_some_and(|(_, l)| serde_json::from_str::<Value>(l).is_ok());
            if !first_ok {
                return Err(RecordError::Shape(format!(
                    "body is not JSON: {whole_err}; send one JSON object, a JSON array of objects, or one object per line (NDJSON)"
                )));
            }
            let mut out = Vec::new();
            for (i, line) in text.lines().enumerate() {
                if line.trim().is_empty() {
                    continue;
                }
                let v = serde_json::from_str::<Value>(line).map_err(|e| {
                    RecordError::at(
                        Position::Line(i + 1),
                        format!("not JSON ({e}); each line must be one complete JSON object"),
                    )
                })?;
                out.push((Position::Line(i + 1), v));
            }
            out
        }
    };
    if out.is_empty() {
        return Err(RecordError::Shape(
            "the array is empty; send at least one record".into(),
        ));
    }
    for (p, v) in &out {
        if !v.is_object() {
            return Err(RecordError::at(
                *p,
                format!("is {}, not a JSON object", kind_of(v)),
            ));
        }
    }
    Ok(out)
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Deserialises one record, turning serde's message into "field `x`: ..." where serde knows
/// the path.
pub fn typed<T: for<'de> Deserialize<'de>>(position: Position, v: Value) -> Result<T, RecordError> {
    serde_path_to_error::deserialize(v).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner().to_string();
        let message = if path.is_empty() || path == "." {
            inner
        } else {
            format!("field `{path}`: {inner}")
        };
        RecordError::at(position, message)
    })
}

/// Parses an RFC 3339 timestamp of field `field` into Unix milliseconds, or says what to send.
pub fn rfc3339_ms(position: Position, field: &str, s: &str) -> Result<i64, RecordError> {
    chrono::DateTime::parse_from_rfc3339(s.trim())
        .map(|t| t.timestamp_millis())
        .map_err(|_| {
            RecordError::at(
                position,
                format!("field `{field}`: {s:?} is not an RFC 3339 timestamp; send e.g. \"2024-05-02T13:00:00Z\" or \"2024-05-02T15:00:00+02:00\""),
            )
        })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WireEvent {
    time: String,
    node: String,
    kind: String,
    detail: String,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    version: Option<String>,
}

fn required(position: Position, field: &str, v: &str, max: usize) -> Result<(), RecordError> {
    if v.trim().is_empty() {
        return Err(RecordError::at(
            position,
            format!("field `{field}` is empty; name the {field}"),
        ));
    }
    limit(position, field, v, max)
}

fn limit(position: Position, field: &str, v: &str, max: usize) -> Result<(), RecordError> {
    if v.len() > max {
        return Err(RecordError::at(
            position,
            format!(
                "field `{field}` is {} bytes, more than the {max} accepted; shorten it",
                v.len()
            ),
        ));
    }
    Ok(())
}

/// Decodes a change-events body. All or nothing: one bad record refuses the body, so a sender
/// that fixes it and re-sends gets every event stored exactly once.
pub fn decode(bytes: &[u8]) -> Result<Vec<ChangeEvent>, RecordError> {
    records(bytes)?
        .into_iter()
        .map(|(p, v)| event(p, v))
        .collect()
}

fn event(p: Position, v: Value) -> Result<ChangeEvent, RecordError> {
    let w: WireEvent = typed(p, v)?;
    let time_ms = rfc3339_ms(p, "time", &w.time)?;
    required(p, "node", &w.node, MAX_NAME_BYTES)?;
    required(p, "kind", &w.kind, MAX_NAME_BYTES)?;
    limit(p, "detail", &w.detail, MAX_DETAIL_BYTES)?;
    if w.labels.len() > MAX_LABELS {
        return Err(RecordError::at(
            p,
            format!(
                "field `labels` has {} entries, more than the {MAX_LABELS} accepted",
                w.labels.len()
            ),
        ));
    }
    for (k, v) in &w.labels {
        required(p, "labels", k, MAX_NAME_BYTES)?;
        limit(p, &format!("labels.{k}"), v, MAX_NAME_BYTES)?;
    }
    if let Some(v) = &w.version {
        limit(p, "version", v, MAX_NAME_BYTES)?;
    }
    Ok(ChangeEvent {
        time_ms,
        node: w.node.trim().to_owned(),
        kind: w.kind.trim().to_owned(),
        detail: w.detail,
        labels: w.labels,
        version: w.version.filter(|v| !v.is_empty()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEPLOY: &str = r#"{"time":"2024-05-02T13:00:00Z","node":"orders_etl","kind":"deploy","detail":"v2 rollout","labels":{"commit":"abc123"},"version":"2.0.1"}"#;

    #[test]
    fn one_object_an_array_and_ndjson_give_the_same_events() {
        let one = decode(DEPLOY.as_bytes()).unwrap();
        assert_eq!(one.len(), 1);
        assert_eq!(one[0].time_ms, 1_714_654_800_000);
        assert_eq!(one[0].labels["commit"], "abc123");
        assert_eq!(one[0].version.as_deref(), Some("2.0.1"));
        let arr = decode(format!("[{DEPLOY},{DEPLOY}]").as_bytes()).unwrap();
        let nd = decode(format!("{DEPLOY}\n\n{DEPLOY}\n").as_bytes()).unwrap();
        assert_eq!(arr, nd);
        assert_eq!(arr, vec![one[0].clone(), one[0].clone()]);
        // A pretty-printed single object is one document, not NDJSON.
        let pretty =
            serde_json::to_string_pretty(&serde_json::from_str::<Value>(DEPLOY).unwrap()).unwrap();
        assert_eq!(decode(pretty.as_bytes()).unwrap(), one);
    }

    #[test]
    fn refusals_name_the_line_or_index_and_the_field() {
        let bad_time = DEPLOY.replace("2024-05-02T13:00:00Z", "yesterday");
        let e = decode(format!("{DEPLOY}\n{bad_time}\n").as_bytes()).unwrap_err();
        assert_eq!(
            e.to_string().split(';').next().unwrap(),
            "line 2: field `time`: \"yesterday\" is not an RFC 3339 timestamp"
        );
        let no_node = r#"{"time":"2024-05-02T13:00:00Z","kind":"deploy","detail":"x"}"#;
        let e = decode(format!("[{DEPLOY},{no_node}]").as_bytes()).unwrap_err();
        assert_eq!(e.to_string(), "element [1]: missing field `node`");
        let bad_label = DEPLOY.replace("\"abc123\"", "7");
        let e = decode(bad_label.as_bytes()).unwrap_err();
        assert!(
            e.to_string().starts_with(
                "the object: field `labels.commit`: invalid type: integer `7`, expected a string"
            ),
            "{e}"
        );
        let typo = DEPLOY.replace("\"detail\"", "\"details\"");
        let e = decode(typo.as_bytes()).unwrap_err();
        assert!(e.to_string().contains("unknown field `details`"), "{e}");
        let e = decode(format!("{DEPLOY}\n{{\"time\": \n").as_bytes()).unwrap_err();
        assert!(e.to_string().starts_with("line 2: not JSON"), "{e}");
        let e = decode(b"[1]").unwrap_err();
        assert_eq!(e.to_string(), "element [0]: is a number, not a JSON object");
        assert_eq!(decode(b" \n").unwrap_err(), RecordError::Empty);
        assert!(decode(b"[]").unwrap_err().to_string().contains("empty"));
        let empty_node = DEPLOY.replace("\"orders_etl\"", "\"  \"");
        assert!(decode(empty_node.as_bytes())
            .unwrap_err()
            .to_string()
            .contains("field `node` is empty"));
        let long = DEPLOY.replace("v2 rollout", &"x".repeat(MAX_DETAIL_BYTES + 1));
        assert!(decode(long.as_bytes())
            .unwrap_err()
            .to_string()
            .contains("field `detail` is 8193 bytes"));
    }

    #[test]
    fn a_broken_document_reports_json_line_and_column() {
        let e = decode(b"{\n  \"time\": \"2024-05-02T13:00:00Z\",\n  \"node\": \n}").unwrap_err();
        assert!(e.to_string().contains("line 4 column 1"), "{e}");
    }
}
