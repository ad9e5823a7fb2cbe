//! Change events (`migrations/0010_change_events.sql`): recording them idempotently and
//! listing them for `GET /api/v1/events` and the Explore chart markers.
//!
//! An event is identified by its whole content (a 128-bit hash of time, node, kind, detail,
//! labels and version), so a sender that re-sends after a timeout stores nothing twice, while
//! two different changes to one node at the same second are both kept.

use crate::error::DbContext;
use crate::{sql_ms, sql_ts, Store, StoreError};
use model::{ChangeEvent, ChangeEventQuery};
use sqlx::Row;
use std::collections::BTreeMap;

/// Most events one `list_change_events` call returns, whatever the caller asks for.
pub const MAX_EVENTS_PAGE: u32 = 1000;

/// The key that makes re-sent events duplicates: hex of xxh3-128 over an unambiguous
/// serialisation of every field (JSON of a tuple; labels are a sorted map).
pub fn content_key(e: &ChangeEvent) -> String {
    let canonical = serde_json::json!([e.time_ms, e.node, e.kind, e.detail, e.labels, e.version]);
    format!(
        "{:032x}",
        xxhash_rust::xxh3::xxh3_128(canonical.to_string().as_bytes())
    )
}

impl Store {
    /// Records events in one transaction; returns how many were new (the rest were already
    /// stored).
    pub async fn record_change_events(&self, events: &[ChangeEvent]) -> Result<usize, StoreError> {
        let mut tx = self
            .pool()
            .begin()
            .await
            .context("starting a change-event transaction")?;
        let mut inserted = 0;
        let sql = format!(
            "INSERT INTO change_events (time, node, kind, detail, labels, version, content_key)
             VALUES ({}, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (content_key) DO NOTHING",
            sql_ts(1)
        );
        for e in events {
            let labels = serde_json::to_value(&e.labels).unwrap_or_default();
            let done = sqlx::query(&sql)
                .bind(e.time_ms)
                .bind(&e.node)
                .bind(&e.kind)
                .bind(&e.detail)
                .bind(labels)
                .bind(&e.version)
                .bind(content_key(e))
                .execute(&mut *tx)
                .await
                .context("recording a change event")?;
            inserted += done.rows_affected() as usize;
        }
        tx.commit().await.context("committing change events")?;
        Ok(inserted)
    }

    /// Events matching `q`, newest first, at most `q.limit` (capped at [`MAX_EVENTS_PAGE`]).
    pub async fn list_change_events(
        &self,
        q: &ChangeEventQuery,
    ) -> Result<Vec<ChangeEvent>, StoreError> {
        let sql = format!(
            "SELECT {} AS time_ms, node, kind, detail, labels, version
             FROM change_events
             WHERE ($1::text IS NULL OR node = $1)
               AND ($2::text IS NULL OR kind = $2)
               AND ($3::bigint IS NULL OR time >= to_timestamp($3::float8 / 1000))
               AND ($4::bigint IS NULL OR time <= to_timestamp($4::float8 / 1000))
             ORDER BY time DESC, id DESC
             LIMIT $5",
            sql_ms("time")
        );
        let rows = sqlx::query(&sql)
            .bind(&q.node)
            .bind(&q.kind)
            .bind(q.start_ms)
            .bind(q.end_ms)
            .bind(i64::from(q.limit.clamp(1, MAX_EVENTS_PAGE)))
            .fetch_all(self.read_pool())
            .await
            .context("listing change events")?;
        rows.into_iter()
            .map(|r| {
                let labels: serde_json::Value = r.get("labels");
                let labels: BTreeMap<String, String> = serde_json::from_value(labels)
                    .map_err(|e| StoreError::Corrupt(format!("change_events.labels: {e}")))?;
                Ok(ChangeEvent {
                    time_ms: r.get("time_ms"),
                    node: r.get("node"),
                    kind: r.get("kind"),
                    detail: r.get("detail"),
                    labels,
                    version: r.get("version"),
                })
            })
            .collect()
    }
}
