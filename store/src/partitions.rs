//! Daily range partitions of the plain-PostgreSQL sample table: naming, creation (moving any
//! rows the DEFAULT partition already holds for that day) and retention.

use crate::error::{DbContext, StoreError};
use model::TimestampMs;
use sqlx::PgPool;

pub(crate) const MINUTE_MS: i64 = 60_000;
pub(crate) const HOUR_MS: i64 = 3_600_000;
pub(crate) const DAY_MS: i64 = 86_400_000;

/// Serialises partition DDL of concurrent writers and maintenance (per database).
const PARTITION_LOCK_KEY: i64 = 0x7077_7061_7274; // "pwpart"

/// Days since the Unix epoch of the UTC day containing `ts`.
pub(crate) fn day_of(ts: TimestampMs) -> i64 {
    ts.div_euclid(DAY_MS)
}

pub(crate) use model::civil::{civil_from_days, days_from_civil};

/// Whether a day can have its own partition: four-digit years only, so names stay
/// `<table>_pYYYYMMDD`. Samples of other days go to the DEFAULT partition.
pub(crate) fn partitionable(day: i64) -> bool {
    let (y, _, _) = civil_from_days(day);
    (1000..=9999).contains(&y)
}

pub(crate) fn partition_name(parent: &str, day: i64) -> String {
    let (y, m, d) = civil_from_days(day);
    format!("{parent}_p{y:04}{m:02}{d:02}")
}

/// The day of a partition name made by [`partition_name`], or None for other tables
/// (such as the DEFAULT partition).
pub(crate) fn parse_partition_name(parent: &str, name: &str) -> Option<i64> {
    let digits = name.strip_prefix(parent)?.strip_prefix("_p")?;
    if digits.len() != 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let y: i64 = digits[0..4].parse().ok()?;
    let m: u32 = digits[4..6].parse().ok()?;
    let d: u32 = digits[6..8].parse().ok()?;
    let day = days_from_civil(y, m, d);
    (civil_from_days(day) == (y, m, d)).then_some(day)
}

fn day_literal(day: i64) -> String {
    let (y, m, d) = civil_from_days(day);
    format!("'{y:04}-{m:02}-{d:02} 00:00:00+00'")
}

/// Days that currently have a partition of `parent`.
pub(crate) async fn existing_days<'e, E>(exec: E, parent: &str) -> Result<Vec<i64>, StoreError>
where
    E: sqlx::PgExecutor<'e>,
{
    let names: Vec<String> = sqlx::query_scalar(
        "SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid \
         WHERE i.inhparent = to_regclass($1)",
    )
    .bind(parent)
    .fetch_all(exec)
    .await
    .context("listing sample partitions")?;
    let mut days: Vec<i64> = names
        .iter()
        .filter_map(|n| parse_partition_name(parent, n))
        .collect();
    days.sort_unstable();
    Ok(days)
}

/// Creates the missing daily partitions of `parent` for `days`; returns the names created.
///
/// Rows that already sit in the DEFAULT partition for such a day are moved into the new
/// partition in the same transaction, because PostgreSQL refuses to attach a partition whose
/// range the DEFAULT partition still holds rows for.
pub(crate) async fn ensure_partitions(
    pool: &PgPool,
    parent: &str,
    days: &[i64],
) -> Result<Vec<String>, StoreError> {
    let mut wanted: Vec<i64> = days.iter().copied().filter(|&d| partitionable(d)).collect();
    wanted.sort_unstable();
    wanted.dedup();
    if wanted.is_empty() {
        return Ok(Vec::new());
    }
    let mut tx = pool.begin().await.context("starting partition creation")?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(PARTITION_LOCK_KEY)
        .execute(&mut *tx)
        .await
        .context("waiting for the partition lock")?;
    let existing = existing_days(&mut *tx, parent).await?;
    let mut created = Vec::new();
    for day in wanted {
        if existing.binary_search(&day).is_ok() {
            continue;
        }
        let name = partition_name(parent, day);
        let (lo, hi) = (day_literal(day), day_literal(day + 1));
        sqlx::query(&format!(
            "CREATE TABLE {name} (LIKE {parent} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)"
        ))
        .execute(&mut *tx)
        .await
        .context("creating a sample partition")?;
        sqlx::query(&format!(
            "WITH moved AS (DELETE FROM {parent}_default WHERE ts >= {lo} AND ts < {hi} \
             RETURNING series_id, ts, value) \
             INSERT INTO {name} (series_id, ts, value) SELECT series_id, ts, value FROM moved"
        ))
        .execute(&mut *tx)
        .await
        .context("moving rows from the DEFAULT partition into a new partition")?;
        sqlx::query(&format!(
            "ALTER TABLE {parent} ATTACH PARTITION {name} FOR VALUES FROM ({lo}) TO ({hi})"
        ))
        .execute(&mut *tx)
        .await
        .context("attaching a sample partition")?;
        created.push(name);
    }
    tx.commit().await.context("committing partition creation")?;
    Ok(created)
}

/// Drops the daily partitions of `parent` for days before `first_kept_day`; returns their
/// names.
pub(crate) async fn drop_partitions_before(
    pool: &PgPool,
    parent: &str,
    first_kept_day: i64,
) -> Result<Vec<String>, StoreError> {
    let mut tx = pool.begin().await.context("starting partition retention")?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(PARTITION_LOCK_KEY)
        .execute(&mut *tx)
        .await
        .context("waiting for the partition lock")?;
    let mut dropped = Vec::new();
    for day in existing_days(&mut *tx, parent).await? {
        if day >= first_kept_day {
            break;
        }
        let name = partition_name(parent, day);
        sqlx::query(&format!("DROP TABLE {name}"))
            .execute(&mut *tx)
            .await
            .context("dropping an expired sample partition")?;
        dropped.push(name);
    }
    tx.commit()
        .await
        .context("committing partition retention")?;
    Ok(dropped)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates_match_known_days() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
        // 2000-03-01 is day 11017; 2024-02-29 (leap day) is day 19782.
        assert_eq!(civil_from_days(11_017), (2000, 3, 1));
        assert_eq!(civil_from_days(19_782), (2024, 2, 29));
        assert_eq!(civil_from_days(19_783), (2024, 3, 1));
        for day in (-800_000..800_000).step_by(997) {
            let (y, m, d) = civil_from_days(day);
            assert_eq!(days_from_civil(y, m, d), day);
        }
    }

    #[test]
    fn partition_names_round_trip() {
        let day = day_of(1_709_164_800_000); // 2024-02-29T00:00:00Z
        assert_eq!(partition_name("samples", day), "samples_p20240229");
        assert_eq!(
            parse_partition_name("samples", "samples_p20240229"),
            Some(day)
        );
        assert_eq!(parse_partition_name("samples", "samples_default"), None);
        assert_eq!(parse_partition_name("samples", "samples_p20240230"), None);
        assert_eq!(
            parse_partition_name("samples", "bench_anchor_samples_p20240229"),
            None
        );
    }

    #[test]
    fn day_of_floors_negative_timestamps() {
        assert_eq!(day_of(-1), -1);
        assert_eq!(day_of(0), 0);
        assert_eq!(day_of(DAY_MS - 1), 0);
    }

    #[test]
    fn only_four_digit_years_get_partitions() {
        assert!(partitionable(0));
        assert!(!partitionable(days_from_civil(999, 12, 31)));
        assert!(!partitionable(days_from_civil(10_000, 1, 1)));
    }
}
