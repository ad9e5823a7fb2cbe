//! Decoder for Alertmanager API v2 `POST /api/v2/alerts` bodies (`postableAlerts`), as
//! Prometheus' notifier sends them, with Alertmanager's own validation and fingerprint.
//!
//! A body is a JSON array of alerts: `labels` (required, at least one pair), `annotations`,
//! `startsAt`, `endsAt` (RFC 3339) and `generatorURL`. Checks follow Alertmanager's
//! `Alert.Validate`: a label set is required, label names must match `[a-zA-Z_][a-zA-Z0-9_]*`,
//! empty label values are dropped (Prometheus treats them as absent), and `startsAt` must not
//! be after `endsAt`. Missing times are left to the store, which, as Alertmanager does, takes
//! the receive time for `startsAt` and the resolve timeout for `endsAt`.

use serde::Deserialize;
use std::collections::BTreeMap;
use thiserror::Error;

/// Why a body was refused; the message names the alert and field.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum AlertsError {
    #[error("body is empty; send a JSON array of alerts (Alertmanager API v2 postableAlerts)")]
    EmptyBody,
    #[error("body is not a list of alerts: {path}: {message}; send a JSON array of {{\"labels\":{{...}},\"annotations\":{{...}},\"startsAt\":\"RFC 3339\",\"endsAt\":\"RFC 3339\",\"generatorURL\":\"...\"}}")]
    Json { path: String, message: String },
    #[error("alert [{index}]: {message}")]
    Invalid { index: usize, message: String },
}

/// One alert as posted.
#[derive(Debug, Clone, PartialEq)]
pub struct PostedAlert {
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub starts_at_ms: Option<i64>,
    pub ends_at_ms: Option<i64>,
    pub generator_url: Option<String>,
    /// Alertmanager's fingerprint of `labels`, as 16 hex digits.
    pub fingerprint: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Raw {
    labels: BTreeMap<String, String>,
    #[serde(default)]
    annotations: Option<BTreeMap<String, String>>,
    starts_at: Option<String>,
    ends_at: Option<String>,
    #[serde(rename = "generatorURL")]
    generator_url: Option<String>,
}

/// Decodes and validates a `POST /api/v2/alerts` body.
pub fn decode(bytes: &[u8]) -> Result<Vec<PostedAlert>, AlertsError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(AlertsError::EmptyBody);
    }
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    let raw: Vec<Raw> = serde_path_to_error::deserialize(de).map_err(|e| AlertsError::Json {
        path: match e.path().to_string() {
            p if p == "." => "body".to_string(),
            p => p,
        },
        message: e.inner().to_string(),
    })?;
    raw.into_iter()
        .enumerate()
        .map(|(index, r)| {
            let invalid = |message: String| AlertsError::Invalid { index, message };
            let labels: BTreeMap<String, String> =
                r.labels.into_iter().filter(|(_, v)| !v.is_empty()).collect();
            if labels.is_empty() {
                return Err(invalid(
                    "at least one label pair required; send labels such as {\"alertname\": \"...\"}".into(),
                ));
            }
            if let Some(bad) = labels.keys().find(|k| !valid_label_name(k)) {
                return Err(invalid(format!(
                    "invalid label name {bad:?}; label names match [a-zA-Z_][a-zA-Z0-9_]*"
                )));
            }
            let time = |field: &str, v: Option<String>| {
                v.filter(|s| !s.is_empty())
                    .map(|s| {
                        chrono::DateTime::parse_from_rfc3339(&s)
                            .map(|t| t.timestamp_millis())
                            .map_err(|_| {
                                invalid(format!(
                                    "{field} {s:?} is not an RFC 3339 date-time; send e.g. 2026-01-01T10:00:00.000Z"
                                ))
                            })
                    })
                    .transpose()
            };
            let starts_at_ms = time("startsAt", r.starts_at)?;
            let ends_at_ms = time("endsAt", r.ends_at)?;
            if let (Some(s), Some(e)) = (starts_at_ms, ends_at_ms) {
                if s > e {
                    return Err(invalid(
                        "start time must be before end time; send startsAt <= endsAt".into(),
                    ));
                }
            }
            Ok(PostedAlert {
                fingerprint: format!("{:016x}", fingerprint(&labels)),
                labels,
                annotations: r.annotations.unwrap_or_default(),
                starts_at_ms,
                ends_at_ms,
                generator_url: r.generator_url.filter(|u| !u.is_empty()),
            })
        })
        .collect()
}

fn valid_label_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Alertmanager's (Prometheus `model.LabelSet.Fingerprint`) label-set hash: FNV-1a 64 over
/// each name and value in name order, each followed by the separator byte 0xff. Using the same
/// function keeps pipewatch's alert ids equal to the ones Alertmanager shows.
pub fn fingerprint(labels: &BTreeMap<String, String>) -> u64 {
    const OFFSET: u64 = 14695981039346656037;
    const PRIME: u64 = 1099511628211;
    let mut h = OFFSET;
    let mut add = |bytes: &[u8]| {
        for b in bytes {
            h ^= u64::from(*b);
            h = h.wrapping_mul(PRIME);
        }
    };
    for (k, v) in labels {
        add(k.as_bytes());
        add(&[0xff]);
        add(v.as_bytes());
        add(&[0xff]);
    }
    h
}
