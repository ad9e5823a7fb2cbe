//! What the OTLP receivers (HTTP and gRPC) do with traces and logs once a request is decoded:
//! derive the series and evidence with `collectors::otlp::{traces, logs}`, store the evidence,
//! enqueue the series.
//!
//! The counters are idempotent and carry the data's own time (span end, log record time):
//! the accumulators skip spans and records they have counted before (a bounded window of
//! identities, see `collectors::otlp::seen`), so an export sent twice counts once.
//!
//! The order makes a sender's retry safe. Evidence is stored first; its inserts are
//! idempotent (a span or record already stored is skipped), so a request that later fails is
//! stored once when retried. Then the cumulative series are prepared from the running totals
//! in [`SignalState`] (part of [`super::otlp::OtlpState`]), pushed with [`ReceiverState::push`], and the new totals committed only
//! when the queue took the batch: a 503 for a full queue leaves the totals as they were, and
//! the retried request counts once.
//!
//! Evidence is cut to `[limits]` before it is stored (attributes and events by count, values,
//! bodies and the whole record by bytes; see [`crate::config::LimitsConfig`]), every cut
//! marked as such, so one span with a million attributes is a few hundred kilobytes in the
//! table and in every answer that reads it back.
//!
//! When the database cannot take the evidence, the request gets 503 with `Retry-After`
//! (OTLP exporters retry it) and nothing is counted; requests without failed, slow or
//! warning-level items never touch the database here and are unaffected.

use super::{Receiver, ReceiverError, ReceiverState};
use collectors::otlp::logs::{self, LogCountAccumulator};
use collectors::otlp::traces::{self, SpanMetricsAccumulator};
use collectors::otlp::{ExportLogsServiceRequest, ExportTraceServiceRequest};
use std::sync::{Mutex, MutexGuard};
use store::evidence::{NewLogEvidence, NewSpanEvidence};

pub use crate::config::SignalConfig;

/// Running totals of the derived series; lost on restart, which readers see as a counter
/// reset (Prometheus' `rate()` handles that).
#[derive(Debug)]
pub struct SignalState {
    pub config: SignalConfig,
    spans: Mutex<SpanMetricsAccumulator>,
    logs: Mutex<LogCountAccumulator>,
}

impl Default for SignalState {
    fn default() -> Self {
        Self::new(SignalConfig::default())
    }
}

impl SignalState {
    pub fn new(config: SignalConfig) -> Self {
        Self {
            spans: Mutex::new(SpanMetricsAccumulator::new(
                traces::DEFAULT_DURATION_BUCKETS.to_vec(),
                config.max_series,
            )),
            logs: Mutex::new(LogCountAccumulator::new(config.max_series)),
            config,
        }
    }
}

/// What an accepted request yielded; `rejected`/`message` become the OTLP partial success.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SignalIngest {
    /// Spans or log records in the request.
    pub received: usize,
    /// Evidence rows newly stored (a retry stores none).
    pub evidence_stored: u64,
    /// Spans/records not counted because their series would pass `max_series`.
    pub rejected: i64,
    /// Why, for the sender's log; empty when nothing was rejected.
    pub message: String,
}

/// `s` cut to `max` bytes (0 = whole), marked `… (N bytes)` when cut.
fn cut(s: &str, max: usize) -> String {
    if max == 0 {
        s.to_string()
    } else {
        model::clip::clip(s, max).into_owned()
    }
}

/// A span's or record's JSON detail cut to the evidence limits.
fn clipped(mut detail: serde_json::Value, budget: &model::clip::JsonBudget) -> serde_json::Value {
    model::clip::clip_json(&mut detail, budget);
    detail
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn evidence_unavailable(e: store::StoreError) -> ReceiverError {
    tracing::warn!(error = %e, "storing OTLP evidence failed");
    ReceiverError::Storage(format!(
        "the database could not store the request's evidence: {e}; retry later"
    ))
}

/// Pushes a prepared batch and tells whether the queue took (the admitted part of) it, so
/// the caller knows whether to commit the running totals.
fn push_then(
    st: &ReceiverState,
    batch: model::Batch,
    commit: impl FnOnce(),
) -> Result<(), ReceiverError> {
    if batch.is_empty() {
        commit();
        return Ok(());
    }
    match st.push(Receiver::Otlp, batch) {
        Ok(()) => {
            commit();
            Ok(())
        }
        // Refused by a series limit: the admitted series are queued, the sender will not
        // retry a 400, so the totals move on.
        Err(e @ ReceiverError::OverLimit(_)) => {
            commit();
            Err(e)
        }
        Err(e) => Err(e),
    }
}

/// Derives span series and evidence from one request, stores the evidence and enqueues the
/// series.
pub async fn ingest_traces(
    st: &ReceiverState,
    req: &ExportTraceServiceRequest,
) -> Result<SignalIngest, ReceiverError> {
    let sig = &st.otlp.signals;
    let derived = traces::derive_traces(req, &sig.config.spans);
    let limits = st.app.guard.limits();
    let (value, budget) = (limits.max_evidence_value_bytes, limits.evidence_budget());
    let rows: Vec<NewSpanEvidence> = derived
        .evidence
        .iter()
        .map(|e| NewSpanEvidence {
            service: cut(&e.service_name, value),
            reason: e.reason.as_str().to_string(),
            trace_id: cut(&e.trace_id, value),
            span_id: cut(&e.span_id, value),
            span_name: cut(&e.name, value),
            span_kind: cut(&e.kind, value),
            status_code: cut(&e.status_code, value),
            status_message: cut(&e.status_message, value),
            start_unix_nano: i64::try_from(e.start_time_unix_nano).unwrap_or(i64::MAX),
            duration_seconds: e.duration_seconds(),
            detail: clipped(e.to_json(), &budget),
        })
        .collect();
    let stored = st
        .app
        .store
        .insert_span_evidence(&rows, sig.config.evidence_per_service_and_kind)
        .await
        .map_err(evidence_unavailable)?;
    if derived.evidence_dropped > 0 {
        tracing::debug!(
            dropped = derived.evidence_dropped,
            "failed/slow spans beyond the per-request evidence cap"
        );
    }
    let mut acc = lock(&sig.spans);
    let (batch, pending) = acc.prepare(&derived.observations, model::clock::now_ms());
    let refused = pending.refused_observations;
    push_then(st, batch, || acc.commit(pending))?;
    let over_limit = (refused > 0).then(|| format!(
        "{refused} span(s) not counted: more than {} (service, span name, kind, status) series; reduce span-name cardinality (use route templates, not ids)",
        sig.config.max_series
    ));
    Ok(SignalIngest {
        received: derived.observations.len() + derived.refused,
        evidence_stored: stored.inserted,
        rejected: (refused + derived.refused) as i64,
        message: [derived.refusal_message(), over_limit]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join("; "),
    })
}

/// Derives log counts and evidence from one request, stores the evidence and enqueues the
/// counts.
pub async fn ingest_logs(
    st: &ReceiverState,
    req: &ExportLogsServiceRequest,
) -> Result<SignalIngest, ReceiverError> {
    let sig = &st.otlp.signals;
    let derived = logs::derive_logs(req, &sig.config.logs);
    let limits = st.app.guard.limits();
    let (value, budget) = (limits.max_evidence_value_bytes, limits.evidence_budget());
    let body_budget = model::clip::JsonBudget {
        max_string_bytes: limits.max_log_body_bytes,
        ..budget
    };
    let rows: Vec<NewLogEvidence> = derived
        .evidence
        .iter()
        .map(|e| {
            let mut detail = e.to_json();
            // The body has its own (larger) limit; the rest of the record the evidence ones.
            let body = detail
                .as_object_mut()
                .and_then(|o| o.remove("body"))
                .map(|b| clipped(b, &body_budget));
            let mut detail = clipped(detail, &budget);
            if let (Some(o), Some(b)) = (detail.as_object_mut(), body) {
                o.insert("body".into(), b);
            }
            NewLogEvidence {
                service: cut(&e.service_name, value),
                severity: e.severity.to_string(),
                severity_number: e.severity_number,
                time_unix_nano: i64::try_from(e.time_unix_nano).unwrap_or(i64::MAX),
                trace_id: e.trace_id.as_deref().map(|t| cut(t, value)),
                span_id: e.span_id.as_deref().map(|t| cut(t, value)),
                body: cut(&e.body, limits.max_log_body_bytes),
                detail,
            }
        })
        .collect();
    let stored = st
        .app
        .store
        .insert_log_evidence(&rows, sig.config.evidence_per_service_and_kind)
        .await
        .map_err(evidence_unavailable)?;
    let mut acc = lock(&sig.logs);
    let (batch, pending) = acc.prepare(&derived.records, model::clock::now_ms());
    let refused = pending.refused_records;
    push_then(st, batch, || acc.commit(pending))?;
    let over_limit = (refused > 0).then(|| {
        format!(
            "{refused} log record(s) not counted: more than {} (service, severity) series",
            sig.config.max_series
        )
    });
    Ok(SignalIngest {
        received: derived.records.len() + derived.refused,
        evidence_stored: stored.inserted,
        rejected: refused as i64 + derived.refused as i64,
        message: [derived.refusal_message(), over_limit]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join("; "),
    })
}
