//! Evidence from OTLP traces and logs: the most recent failed or slow spans and warning/error
//! log records per service (migration `0005_otlp_evidence.sql`).
//!
//! The tables are bounded where rows come in: every insert trims, in the same transaction,
//! each (service, kind) it touched to the `keep` most recent rows (by arrival), so the tables
//! cannot grow with traffic even if maintenance never runs. "Kind" is the reason a span was
//! kept (`error`, `slow`) or the severity of a log record (`WARN`, `ERROR`, ...), so a burst
//! of slow spans or warnings never pushes the failures out.
//!
//! Inserts are idempotent: spans are unique per (service, trace id, span id) and log records
//! per (service, hash of the record), so an export that the sender retries (after a 503, say)
//! is stored once.

use crate::error::{DbContext, StoreError};
use crate::Store;
use serde_json::Value;
use sqlx::Row;

/// A span to keep.
#[derive(Debug, Clone, PartialEq)]
pub struct NewSpanEvidence {
    pub service: String,
    /// `error` or `slow`.
    pub reason: String,
    pub trace_id: String,
    pub span_id: String,
    pub span_name: String,
    pub span_kind: String,
    pub status_code: String,
    pub status_message: String,
    pub start_unix_nano: i64,
    pub duration_seconds: f64,
    /// The whole record.
    pub detail: Value,
}

/// A stored span, newest first in listings.
#[derive(Debug, Clone, PartialEq)]
pub struct SpanEvidenceRow {
    pub id: i64,
    pub received_at_ms: i64,
    pub evidence: NewSpanEvidence,
}

/// A log record to keep.
#[derive(Debug, Clone, PartialEq)]
pub struct NewLogEvidence {
    pub service: String,
    /// Short severity name (`WARN`, `ERROR`, ...): the bound is per service and severity.
    pub severity: String,
    pub severity_number: i32,
    pub time_unix_nano: i64,
    pub trace_id: Option<String>,
    pub span_id: Option<String>,
    pub body: String,
    /// The whole record.
    pub detail: Value,
}

/// A stored log record.
#[derive(Debug, Clone, PartialEq)]
pub struct LogEvidenceRow {
    pub id: i64,
    pub received_at_ms: i64,
    pub evidence: NewLogEvidence,
}

/// What an insert did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EvidenceInsert {
    pub inserted: u64,
    /// Rows already stored (a retried export).
    pub duplicates: u64,
    /// Older rows deleted to stay within the bound.
    pub trimmed: u64,
}

/// Which rows a listing returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvidenceQuery {
    pub service: Option<String>,
    /// `error`/`slow` for spans, a severity name for logs.
    pub kind: Option<String>,
    pub limit: i64,
    /// Only rows with an id below this (the `before` cursor of the next page).
    pub before_id: Option<i64>,
}

/// Largest `detail` a listing returns as stored; a larger one (stored before the intake
/// limits of `[limits]` existed) is replaced by a note saying its size.
pub const MAX_DETAIL_READ_BYTES: i64 = 1 << 20;

/// The `detail` column as listings select it: cut to a note over [`MAX_DETAIL_READ_BYTES`].
const DETAIL_READ: &str = "CASE WHEN octet_length(detail::text) > 1048576 \
     THEN jsonb_build_object('pipewatch.truncated', 'detail of ' || octet_length(detail::text) \
     || ' bytes not returned (over 1 MiB; stored before limits.max_evidence_bytes)') \
     ELSE detail END AS detail";

/// Most rows one listing returns.
pub const MAX_EVIDENCE_LIMIT: i64 = 1000;

impl Store {
    /// Stores spans (a duplicate of a stored span is skipped) and trims every (service,
    /// reason) touched to its `keep` most recent rows.
    pub async fn insert_span_evidence(
        &self,
        rows: &[NewSpanEvidence],
        keep: usize,
    ) -> Result<EvidenceInsert, StoreError> {
        if rows.is_empty() {
            return Ok(EvidenceInsert::default());
        }
        let mut tx = self
            .pool()
            .begin()
            .await
            .context("starting an evidence insert")?;
        let inserted = sqlx::query(
            "INSERT INTO otlp_span_evidence (service, reason, trace_id, span_id, span_name, \
                 span_kind, status_code, status_message, start_unix_nano, duration_seconds, detail) \
             SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], \
                 $6::text[], $7::text[], $8::text[], $9::bigint[], $10::float8[], $11::jsonb[]) \
             ON CONFLICT (service, trace_id, span_id) DO NOTHING",
        )
        .bind(rows.iter().map(|r| r.service.as_str()).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.reason.as_str()).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.trace_id.as_str()).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.span_id.as_str()).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.span_name.as_str()).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.span_kind.as_str()).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.status_code.as_str()).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.status_message.as_str()).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.start_unix_nano).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.duration_seconds).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.detail.clone()).collect::<Vec<_>>())
        .execute(&mut *tx)
        .await
        .context("inserting span evidence")?
        .rows_affected();
        let (services, kinds) = groups(rows.iter().map(|r| (&r.service, &r.reason)));
        let trimmed = trim(
            &mut tx,
            "otlp_span_evidence",
            "reason",
            services,
            kinds,
            keep,
        )
        .await?;
        tx.commit().await.context("committing span evidence")?;
        Ok(EvidenceInsert {
            inserted,
            duplicates: rows.len() as u64 - inserted,
            trimmed,
        })
    }

    /// Stores log records (a duplicate of a stored record is skipped) and trims every
    /// (service, severity) touched to its `keep` most recent rows.
    pub async fn insert_log_evidence(
        &self,
        rows: &[NewLogEvidence],
        keep: usize,
    ) -> Result<EvidenceInsert, StoreError> {
        if rows.is_empty() {
            return Ok(EvidenceInsert::default());
        }
        let mut tx = self
            .pool()
            .begin()
            .await
            .context("starting an evidence insert")?;
        let inserted = sqlx::query(
            "INSERT INTO otlp_log_evidence (service, severity, severity_number, time_unix_nano, \
                 trace_id, span_id, body, detail, fingerprint) \
             SELECT * FROM unnest($1::text[], $2::text[], $3::int4[], $4::bigint[], $5::text[], \
                 $6::text[], $7::text[], $8::jsonb[], $9::bigint[]) \
             ON CONFLICT (service, fingerprint) DO NOTHING",
        )
        .bind(rows.iter().map(|r| r.service.as_str()).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.severity.as_str()).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.severity_number).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.time_unix_nano).collect::<Vec<_>>())
        .bind(
            rows.iter()
                .map(|r| r.trace_id.as_deref())
                .collect::<Vec<_>>(),
        )
        .bind(
            rows.iter()
                .map(|r| r.span_id.as_deref())
                .collect::<Vec<_>>(),
        )
        .bind(rows.iter().map(|r| r.body.as_str()).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.detail.clone()).collect::<Vec<_>>())
        .bind(rows.iter().map(log_fingerprint).collect::<Vec<_>>())
        .execute(&mut *tx)
        .await
        .context("inserting log evidence")?
        .rows_affected();
        let (services, kinds) = groups(rows.iter().map(|r| (&r.service, &r.severity)));
        let trimmed = trim(
            &mut tx,
            "otlp_log_evidence",
            "severity",
            services,
            kinds,
            keep,
        )
        .await?;
        tx.commit().await.context("committing log evidence")?;
        Ok(EvidenceInsert {
            inserted,
            duplicates: rows.len() as u64 - inserted,
            trimmed,
        })
    }

    /// The most recent spans, newest first.
    pub async fn recent_span_evidence(
        &self,
        q: &EvidenceQuery,
    ) -> Result<Vec<SpanEvidenceRow>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT id, (extract(epoch from received_at) * 1000)::bigint AS received_at_ms, \
                 service, reason, trace_id, span_id, span_name, span_kind, status_code, \
                 status_message, start_unix_nano, duration_seconds, {DETAIL_READ} \
             FROM otlp_span_evidence \
             WHERE ($1::text IS NULL OR service = $1) AND ($2::text IS NULL OR reason = $2) \
               AND ($4::bigint IS NULL OR id < $4) \
             ORDER BY id DESC LIMIT $3"
        ))
        .bind(q.service.as_deref())
        .bind(q.kind.as_deref())
        .bind(q.limit.clamp(0, MAX_EVIDENCE_LIMIT))
        .bind(q.before_id)
        .fetch_all(self.read_pool())
        .await
        .context("listing span evidence")?;
        rows.iter()
            .map(|r| {
                Ok(SpanEvidenceRow {
                    id: r.try_get("id")?,
                    received_at_ms: r.try_get("received_at_ms")?,
                    evidence: NewSpanEvidence {
                        service: r.try_get("service")?,
                        reason: r.try_get("reason")?,
                        trace_id: r.try_get("trace_id")?,
                        span_id: r.try_get("span_id")?,
                        span_name: r.try_get("span_name")?,
                        span_kind: r.try_get("span_kind")?,
                        status_code: r.try_get("status_code")?,
                        status_message: r.try_get("status_message")?,
                        start_unix_nano: r.try_get("start_unix_nano")?,
                        duration_seconds: r.try_get("duration_seconds")?,
                        detail: r.try_get("detail")?,
                    },
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .context("reading span evidence")
    }

    /// The most recent log records, newest first.
    pub async fn recent_log_evidence(
        &self,
        q: &EvidenceQuery,
    ) -> Result<Vec<LogEvidenceRow>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT id, (extract(epoch from received_at) * 1000)::bigint AS received_at_ms, \
                 service, severity, severity_number, time_unix_nano, trace_id, span_id, \
                 left(body, 1048576) AS body, {DETAIL_READ} \
             FROM otlp_log_evidence \
             WHERE ($1::text IS NULL OR service = $1) AND ($2::text IS NULL OR severity = $2) \
               AND ($4::bigint IS NULL OR id < $4) \
             ORDER BY id DESC LIMIT $3"
        ))
        .bind(q.service.as_deref())
        .bind(q.kind.as_deref())
        .bind(q.limit.clamp(0, MAX_EVIDENCE_LIMIT))
        .bind(q.before_id)
        .fetch_all(self.read_pool())
        .await
        .context("listing log evidence")?;
        rows.iter()
            .map(|r| {
                Ok(LogEvidenceRow {
                    id: r.try_get("id")?,
                    received_at_ms: r.try_get("received_at_ms")?,
                    evidence: NewLogEvidence {
                        service: r.try_get("service")?,
                        severity: r.try_get("severity")?,
                        severity_number: r.try_get("severity_number")?,
                        time_unix_nano: r.try_get("time_unix_nano")?,
                        trace_id: r.try_get("trace_id")?,
                        span_id: r.try_get("span_id")?,
                        body: r.try_get("body")?,
                        detail: r.try_get("detail")?,
                    },
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .context("reading log evidence")
    }
}

/// Distinct (service, kind) pairs, as two parallel arrays for `unnest`.
fn groups<'a>(
    pairs: impl Iterator<Item = (&'a String, &'a String)>,
) -> (Vec<&'a str>, Vec<&'a str>) {
    let mut set: Vec<(&str, &str)> = pairs.map(|(s, k)| (s.as_str(), k.as_str())).collect();
    set.sort_unstable();
    set.dedup();
    set.into_iter().unzip()
}

/// Deletes, per (service, kind) given, every row older than the `keep` newest.
async fn trim(
    tx: &mut sqlx::PgConnection,
    table: &'static str,
    kind_column: &'static str,
    services: Vec<&str>,
    kinds: Vec<&str>,
    keep: usize,
) -> Result<u64, StoreError> {
    // The cut-off is the id of the (keep+1)-th newest row; the index on
    // (service, kind, id DESC) finds it without reading the rest of the group.
    let sql = format!(
        "DELETE FROM {table} t USING ( \
             SELECT g.service, g.kind, ( \
                 SELECT id FROM {table} x WHERE x.service = g.service AND x.{kind_column} = g.kind \
                 ORDER BY id DESC OFFSET $3 LIMIT 1) AS cutoff \
             FROM unnest($1::text[], $2::text[]) AS g(service, kind)) c \
         WHERE t.service = c.service AND t.{kind_column} = c.kind AND t.id <= c.cutoff"
    );
    Ok(sqlx::query(&sql)
        .bind(services)
        .bind(kinds)
        .bind(i64::try_from(keep).unwrap_or(i64::MAX))
        .execute(tx)
        .await
        .context("trimming evidence to its bound")?
        .rows_affected())
}

/// Identity of a log record for de-duplication: everything it says, hashed.
fn log_fingerprint(r: &NewLogEvidence) -> i64 {
    let mut buf = Vec::with_capacity(256);
    for part in [
        r.severity.as_str(),
        r.trace_id.as_deref().unwrap_or(""),
        r.span_id.as_deref().unwrap_or(""),
        r.body.as_str(),
    ] {
        buf.extend_from_slice(part.as_bytes());
        buf.push(0xff);
    }
    buf.extend_from_slice(&r.time_unix_nano.to_le_bytes());
    buf.extend_from_slice(&r.severity_number.to_le_bytes());
    buf.extend_from_slice(r.detail.to_string().as_bytes());
    (xxhash_rust::xxh3::xxh3_64(&buf) & (i64::MAX as u64)) as i64
}
