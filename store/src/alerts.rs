//! Alerts posted to the Alertmanager-compatible intake (`migrations/0007`), merged as
//! Alertmanager merges them: keyed by label-set fingerprint; a post for an alert that is still
//! active (or overlaps it) keeps the earlier `startsAt` and takes the new `endsAt`,
//! annotations and generator URL; a post after the old one resolved starts a new instance.

use crate::error::DbContext;
use crate::{sql_ts, Store, StoreError};
use serde::Serialize;
use sqlx::Row;
use std::collections::BTreeMap;

/// One alert to record. Times are Unix milliseconds, already defaulted by the caller.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertRecord {
    pub fingerprint: String,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub starts_at_ms: i64,
    pub ends_at_ms: i64,
    pub generator_url: Option<String>,
    pub received_at_ms: i64,
}

/// A stored alert, as the read API shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoredAlert {
    pub fingerprint: String,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub starts_at_ms: i64,
    pub ends_at_ms: i64,
    pub generator_url: Option<String>,
    pub updated_at_ms: i64,
    pub posts: i64,
    /// `firing` while endsAt is in the future, `resolved` after.
    pub state: String,
}

impl Store {
    /// Records posted alerts in one transaction.
    pub async fn record_alerts(&self, alerts: &[AlertRecord]) -> Result<(), StoreError> {
        let mut tx = self
            .pool()
            .begin()
            .await
            .context("beginning an alerts transaction")?;
        for a in alerts {
            // An earlier instance that ended before this one starts is over: replace it.
            sqlx::query(&format!(
                "INSERT INTO ingested_alerts \
                   (fingerprint, labels, annotations, starts_at, ends_at, generator_url, received_at, updated_at) \
                 VALUES ($1, $2, $3, {s}, {e}, $6, {r}, {r}) \
                 ON CONFLICT (fingerprint) DO UPDATE SET \
                   labels = EXCLUDED.labels, \
                   annotations = EXCLUDED.annotations, \
                   starts_at = CASE WHEN ingested_alerts.ends_at < EXCLUDED.starts_at \
                                    THEN EXCLUDED.starts_at \
                                    ELSE least(ingested_alerts.starts_at, EXCLUDED.starts_at) END, \
                   ends_at = EXCLUDED.ends_at, \
                   generator_url = coalesce(EXCLUDED.generator_url, ingested_alerts.generator_url), \
                   updated_at = EXCLUDED.updated_at, \
                   posts = ingested_alerts.posts + 1",
                s = sql_ts(4),
                e = sql_ts(5),
                r = sql_ts(7)
            ))
            .bind(&a.fingerprint)
            .bind(serde_json::to_value(&a.labels).unwrap_or_default())
            .bind(serde_json::to_value(&a.annotations).unwrap_or_default())
            .bind(a.starts_at_ms)
            .bind(a.ends_at_ms)
            .bind(&a.generator_url)
            .bind(a.received_at_ms)
            .execute(&mut *tx)
            .await
            .context("recording an alert")?;
        }
        tx.commit().await.context("committing alerts")
    }

    /// Alerts whose endsAt is after `now_ms` (or all of them), newest start first.
    pub async fn alerts(
        &self,
        now_ms: i64,
        include_resolved: bool,
    ) -> Result<Vec<StoredAlert>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT fingerprint, labels, annotations, generator_url, posts, \
                    (extract(epoch FROM starts_at) * 1000)::bigint AS s, \
                    (extract(epoch FROM ends_at) * 1000)::bigint AS e, \
                    (extract(epoch FROM updated_at) * 1000)::bigint AS u \
             FROM ingested_alerts WHERE $2 OR ends_at > {now} \
             ORDER BY starts_at DESC, fingerprint",
            now = sql_ts(1)
        ))
        .bind(now_ms)
        .bind(include_resolved)
        .fetch_all(self.read_pool())
        .await
        .context("reading alerts")?;
        Ok(rows
            .into_iter()
            .map(|r| {
                let ends_at_ms: i64 = r.get("e");
                StoredAlert {
                    fingerprint: r.get("fingerprint"),
                    labels: serde_json::from_value(r.get("labels")).unwrap_or_default(),
                    annotations: serde_json::from_value(r.get("annotations")).unwrap_or_default(),
                    starts_at_ms: r.get("s"),
                    ends_at_ms,
                    generator_url: r.get("generator_url"),
                    updated_at_ms: r.get("u"),
                    posts: r.get("posts"),
                    state: if ends_at_ms > now_ms {
                        "firing"
                    } else {
                        "resolved"
                    }
                    .to_string(),
                }
            })
            .collect())
    }
}
