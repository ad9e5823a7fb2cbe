//! Raw samples for the PromQL engine: every sample of the selected series in a time range,
//! one per timestamp, in time order. PromQL needs the samples themselves (lookback, rate
//! extrapolation, staleness), not the bucketed points of [`Store::query_range`].

use crate::compaction::merged_samples;
use crate::error::{DbContext, StoreError};
use crate::pgcopy::{END_TIMESTAMP_MS, MIN_TIMESTAMP_MS};
use crate::Store;
use model::{Selector, SeriesKey, TimestampMs};

/// One series and its samples.
pub type RawSeries = (SeriesKey, Vec<(TimestampMs, f64)>);

impl Store {
    /// Samples of every series matching `sel` with `mint <= t <= maxt`, at most one per
    /// timestamp (a re-sent sample is read once), series sorted by metric and labels.
    /// Refuses with [`StoreError::InvalidQuery`] when more than `max_series` series match,
    /// naming the limit, instead of reading them all.
    pub async fn raw_samples(
        &self,
        sel: &Selector,
        mint: TimestampMs,
        maxt: TimestampMs,
        max_series: usize,
    ) -> Result<Vec<RawSeries>, StoreError> {
        let series = self.find_series(sel).await?;
        if series.len() > max_series {
            return Err(StoreError::InvalidQuery(format!(
                "the selector matches {} series, more than the {max_series} one query may read (`query.max_series_per_selector`); narrow it with more label matchers",
                series.len()
            )));
        }
        // Bound the range to what PostgreSQL can represent, so absurd query times are an
        // empty answer rather than a database error.
        let mint = mint.clamp(MIN_TIMESTAMP_MS, END_TIMESTAMP_MS - 1);
        let maxt = maxt.clamp(MIN_TIMESTAMP_MS, END_TIMESTAMP_MS - 1);
        if series.is_empty() || maxt < mint {
            return Ok(Vec::new());
        }
        let ids: Vec<i64> = series.iter().map(|s| s.id).collect();
        let mut conn = self
            .read_pool()
            .acquire()
            .await
            .context("starting a read")?;
        let mut points = merged_samples(&mut conn, Some(&ids), mint, maxt).await?;
        let mut out: Vec<RawSeries> = series
            .into_iter()
            .filter_map(|s| points.remove(&s.id).map(|p| (s.key, p)))
            .collect();
        out.sort_by(|a, b| (&a.0.metric, &a.0.labels).cmp(&(&b.0.metric, &b.0.labels)));
        Ok(out)
    }
}
