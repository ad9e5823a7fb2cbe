//! `POST /api/v2/alerts`: the Alertmanager API v2 alert intake, so Prometheus (and anything
//! else that speaks to Alertmanager) can send the alerts of existing rule files to pipewatch.
//! Point `alerting.alertmanagers` at pipewatch with `api_version: v2`.
//!
//! Answers as Alertmanager does: 200 with an empty body once the alerts are stored; 400 with
//! the error as a JSON string (Alertmanager's shape for a failed validation, written by the
//! kernel) naming the alert and field; 413 above `receivers.max_body_bytes`; 415 without
//! `Content-Type: application/json` (what Prometheus sends); 503 with
//! `Retry-After` when the database does not take them (Prometheus retries other Alertmanagers
//! and the next evaluation resends). Alerts without `startsAt` start when received; without
//! `endsAt` they end after 5 minutes (Alertmanager's
//! `resolve_timeout` default) unless re-posted.
//!
//! `[limits]` apply before anything is stored: labels are an alert's identity, so an alert
//! with more than `limits.max_alert_labels` labels, or a label name or value over
//! `limits.max_label_name_length` / `max_label_value_length`, refuses the request with 400
//! naming the alert and the limit. Annotations are for people: the first
//! `limits.max_alert_annotations` are kept, each value cut to
//! `limits.max_alert_annotation_bytes` (ending `… (N bytes)`), and a `pipewatch_truncated`
//! annotation says how many were dropped.

use super::{Accepted, Payload, ReceiverError, ReceiverState};
use crate::config::LimitsConfig;
use axum::extract::State;
use axum::http::StatusCode;
use collectors::alerts as decoder;
use model::clip::{clip, MESSAGE_VALUE_BYTES};
use std::collections::BTreeMap;
use store::alerts::AlertRecord;

/// The annotation that says annotations were dropped.
pub const TRUNCATED_ANNOTATION: &str = "pipewatch_truncated";

/// Alertmanager's default `resolve_timeout`.
pub const RESOLVE_TIMEOUT_MS: i64 = 5 * 60 * 1000;

/// The handler of `POST /api/v2/alerts`.
pub async fn post(
    State(st): State<ReceiverState>,
    payload: Payload,
) -> Result<Accepted, ReceiverError> {
    let alerts = payload
        .decode(|raw| decoder::decode(raw).map_err(|e| ReceiverError::Malformed(e.to_string())))
        .await?;
    let limits = st.app.guard.limits();
    for (index, a) in alerts.iter().enumerate() {
        check_labels(index, &a.labels, limits)?;
    }
    let now = model::clock::now_ms();
    let records: Vec<AlertRecord> = alerts
        .into_iter()
        .map(|mut a| {
            a.annotations = cut_annotations(std::mem::take(&mut a.annotations), limits);
            let starts = a.starts_at_ms.unwrap_or(now);
            AlertRecord {
                ends_at_ms: a
                    .ends_at_ms
                    .unwrap_or_else(|| starts.max(now) + RESOLVE_TIMEOUT_MS),
                starts_at_ms: starts,
                fingerprint: a.fingerprint,
                labels: a.labels,
                annotations: a.annotations,
                generator_url: a.generator_url,
                received_at_ms: now,
            }
        })
        .collect();
    if records.iter().any(|r| {
        !store::pgcopy::timestamp_in_range(r.starts_at_ms)
            || !store::pgcopy::timestamp_in_range(r.ends_at_ms)
    }) {
        return Err(ReceiverError::malformed(
            "startsAt or endsAt is outside what PostgreSQL can store; send real RFC 3339 times",
        ));
    }
    st.app
        .store
        .record_alerts(&records)
        .await
        .map_err(|e| ReceiverError::storage("alerts", &e))?;
    Ok(Accepted::empty(StatusCode::OK))
}

/// Refuses an alert whose labels are over `[limits]`, naming the alert, the limit and its key.
fn check_labels(
    index: usize,
    labels: &BTreeMap<String, String>,
    l: &LimitsConfig,
) -> Result<(), ReceiverError> {
    let name = labels
        .get("alertname")
        .map(|n| clip(n, MESSAGE_VALUE_BYTES));
    let alert = match &name {
        Some(n) => format!("alert [{index}] ({n})"),
        None => format!("alert [{index}]"),
    };
    if l.max_alert_labels > 0 && labels.len() > l.max_alert_labels {
        return Err(ReceiverError::malformed(format!(
            "{alert} has {} labels, more than `limits.max_alert_labels` ({}); move detail into annotations or raise the limit",
            labels.len(),
            l.max_alert_labels
        )));
    }
    for (k, v) in labels {
        if l.max_label_name_length > 0 && k.len() > l.max_label_name_length {
            return Err(ReceiverError::malformed(format!(
                "{alert}: label name {:?} is longer than `limits.max_label_name_length` ({} bytes)",
                clip(k, MESSAGE_VALUE_BYTES),
                l.max_label_name_length
            )));
        }
        if l.max_label_value_length > 0 && v.len() > l.max_label_value_length {
            return Err(ReceiverError::malformed(format!(
                "{alert}: the value of label {:?} is {} bytes, more than `limits.max_label_value_length` ({}); put long text in annotations",
                clip(k, MESSAGE_VALUE_BYTES),
                v.len(),
                l.max_label_value_length
            )));
        }
    }
    Ok(())
}

/// The first `max_alert_annotations` annotations with values cut to
/// `max_alert_annotation_bytes`, plus [`TRUNCATED_ANNOTATION`] when some were dropped.
fn cut_annotations(
    annotations: BTreeMap<String, String>,
    l: &LimitsConfig,
) -> BTreeMap<String, String> {
    let total = annotations.len();
    let keep = if l.max_alert_annotations == 0 {
        total
    } else {
        l.max_alert_annotations
    };
    let mut out: BTreeMap<String, String> = annotations
        .into_iter()
        .take(keep)
        .map(|(k, v)| {
            let k = clip(&k, MESSAGE_VALUE_BYTES).into_owned();
            let v = if l.max_alert_annotation_bytes == 0 {
                v
            } else {
                clip(&v, l.max_alert_annotation_bytes).into_owned()
            };
            (k, v)
        })
        .collect();
    if total > keep {
        out.insert(
            TRUNCATED_ANNOTATION.into(),
            format!(
                "{} of {total} annotations dropped (limits.max_alert_annotations)",
                total - keep
            ),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn annotations_are_cut_and_marked_and_big_label_sets_refused() {
        let l = LimitsConfig {
            max_alert_labels: 3,
            max_alert_annotations: 2,
            max_alert_annotation_bytes: 8,
            ..Default::default()
        };
        let ann: BTreeMap<String, String> = [("a", "short"), ("b", "0123456789abc"), ("c", "x")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let out = cut_annotations(ann, &l);
        assert_eq!(out["a"], "short");
        assert_eq!(out["b"], "01234567… (13 bytes)");
        assert!(!out.contains_key("c"));
        assert_eq!(
            out[TRUNCATED_ANNOTATION],
            "1 of 3 annotations dropped (limits.max_alert_annotations)"
        );
        let labels: BTreeMap<String, String> = (0..4)
            .map(|i| (format!("l{i}"), "v".to_string()))
            .chain([("alertname".to_string(), "Big".to_string())])
            .collect();
        let e = check_labels(2, &labels, &l).unwrap_err().to_string();
        assert!(
            e.contains("alert [2] (Big) has 5 labels, more than `limits.max_alert_labels` (3)"),
            "{e}"
        );
        let long: BTreeMap<String, String> = [("alertname".to_string(), "v".repeat(5000))].into();
        let e = check_labels(0, &long, &LimitsConfig::default())
            .unwrap_err()
            .to_string();
        assert!(e.contains("`limits.max_label_value_length` (4096)"), "{e}");
        assert!(e.len() < 600, "{e}");
    }
}
