//! The catalogue reads behind Prometheus' `/api/v1/labels`, `/api/v1/label/<name>/values`
//! (without `match[]`) and `/api/v1/metadata`: label names and values of the series live in a
//! time range ([`crate::read::LIVE_IN_RANGE`]), and the metric families' type, help and unit as
//! the receivers last reported them.

use crate::error::{DbContext, StoreError};
use crate::read::{clamp_range, live_in_range_sql};
use crate::Store;
use model::TimestampMs;

/// One metric family's metadata, as the last scrape, remote_write or OTLP request described it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FamilyMetadata {
    pub family: String,
    /// `counter`, `gauge`, `histogram`, `summary`, `gaugehistogram`, `info`, `stateset` or
    /// `untyped`, as stored.
    pub metric_type: String,
    pub help: String,
    pub unit: String,
}

impl Store {
    /// Label names of the series live in `range` (all series when None), sorted, with
    /// `__name__` when any series is.
    pub async fn label_names_in(
        &self,
        range: Option<(TimestampMs, TimestampMs)>,
    ) -> Result<Vec<String>, StoreError> {
        let (start, end) = clamp_range(range);
        sqlx::query_scalar(&format!(
            "WITH live AS (SELECT labels FROM series WHERE $1::bigint IS NULL OR {}) \
             SELECT k FROM (SELECT DISTINCT jsonb_object_keys(labels) AS k FROM live \
             UNION SELECT '__name__' FROM live) n ORDER BY 1",
            live_in_range_sql("series", 1, 2)
        ))
        .bind(start)
        .bind(end)
        .fetch_all(self.read_pool())
        .await
        .context("listing label names")
    }

    /// Values of `label` across the series live in `range` (all series when None), sorted;
    /// `__name__` lists metric names.
    pub async fn label_values_in(
        &self,
        label: &str,
        range: Option<(TimestampMs, TimestampMs)>,
    ) -> Result<Vec<String>, StoreError> {
        let (start, end) = clamp_range(range);
        let value = if label == "__name__" {
            "metric"
        } else {
            "labels ->> $3"
        };
        sqlx::query_scalar(&format!(
            "SELECT DISTINCT {value} AS v FROM series \
             WHERE ($3 = '__name__' OR labels ? $3) AND ($1::bigint IS NULL OR {}) ORDER BY 1",
            live_in_range_sql("series", 1, 2)
        ))
        .bind(start)
        .bind(end)
        .bind(label)
        .fetch_all(self.read_pool())
        .await
        .context("listing label values")
    }

    /// Metadata of every family (or of `family` only), sorted by family.
    pub async fn metric_metadata(
        &self,
        family: Option<&str>,
    ) -> Result<Vec<FamilyMetadata>, StoreError> {
        let rows: Vec<(String, String, String, String)> = sqlx::query_as(
            "SELECT family, metric_type, help, unit FROM metric_metadata \
             WHERE $1::text IS NULL OR family = $1 ORDER BY family",
        )
        .bind(family)
        .fetch_all(self.read_pool())
        .await
        .context("reading metric metadata")?;
        Ok(rows
            .into_iter()
            .map(|(family, metric_type, help, unit)| FamilyMetadata {
                family,
                metric_type,
                help,
                unit,
            })
            .collect())
    }
}
