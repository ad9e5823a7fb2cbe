//! TimescaleDB mode: the policies that replace the plain mode's maintenance job.
//!
//! UNTESTED: TimescaleDB cannot be installed on the development and CI machines, so this
//! module (and the TimescaleDB branch of migration 0002) has never run. It is kept small and
//! uses only documented TimescaleDB 2.x calls. Policies depend on `StoreConfig`, so they are
//! (re)applied at connect rather than in a migration.

use crate::error::{DbContext, StoreError};
use crate::StoreConfig;
use sqlx::PgPool;
use tracing::info;

pub(crate) async fn apply_policies(pool: &PgPool, cfg: &StoreConfig) -> Result<(), StoreError> {
    let lag_secs = cfg.rollup_lag.as_secs().max(1);
    let statements = [
        "SELECT add_compression_policy('samples', INTERVAL '1 day', if_not_exists => true)".to_string(),
        format!(
            "SELECT add_continuous_aggregate_policy('samples_1m', start_offset => INTERVAL '1 day', \
             end_offset => INTERVAL '{lag_secs} seconds', schedule_interval => INTERVAL '1 minute', if_not_exists => true)"
        ),
        "SELECT add_continuous_aggregate_policy('samples_1h', start_offset => INTERVAL '3 days', \
         end_offset => INTERVAL '1 hour', schedule_interval => INTERVAL '30 minutes', if_not_exists => true)"
            .to_string(),
        // Replace rather than keep: retention_days may have changed since the last start.
        "SELECT remove_retention_policy('samples', if_exists => true)".to_string(),
        format!(
            "SELECT add_retention_policy('samples', INTERVAL '{} days')",
            cfg.retention_days
        ),
    ];
    for sql in statements {
        sqlx::query(&sql)
            .execute(pool)
            .await
            .context("applying TimescaleDB policies")?;
    }
    info!(
        retention_days = cfg.retention_days,
        "TimescaleDB policies applied"
    );
    Ok(())
}
