//! What the engine asks of storage: the series matching a set of label matchers with their
//! samples in a time range. The engine never does I/O itself; a caller that reads from a
//! database fetches what [`crate::plan::selectors`] lists first and hands the result over as a
//! [`MemoryStorage`].

use crate::error::Result;
use crate::value::{Labels, Series};
use promql_parser::label::{MatchOp, Matcher};
use std::sync::Arc;

/// A source of series for the engine.
pub trait Storage {
    /// Every series whose labels satisfy all `matchers`, with its samples in
    /// `mint <= t <= maxt` (milliseconds), in time order. Series with no sample in the range
    /// may be left out.
    fn select(&self, matchers: &[Matcher], mint: i64, maxt: i64) -> Result<Vec<Arc<Series>>>;
}

/// True when `labels` satisfy `m` (a missing label counts as the empty string, as in
/// Prometheus).
pub fn matches(m: &Matcher, labels: &Labels) -> bool {
    let v = labels.get(&m.name);
    match &m.op {
        MatchOp::Equal => v == m.value,
        MatchOp::NotEqual => v != m.value,
        // promql-parser anchors the regex (`^(?:...)$`) when it builds the matcher.
        MatchOp::Re(re) => re.is_match(v),
        MatchOp::NotRe(re) => !re.is_match(v),
    }
}

/// Series held in memory: the test loader's storage, and what a database-backed caller
/// fills from its prefetch.
#[derive(Default, Clone)]
pub struct MemoryStorage {
    series: Vec<Arc<Series>>,
}

impl MemoryStorage {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds samples to the series with these labels (creating it), keeping time order; a
    /// second sample at the same time replaces the first.
    pub fn add(&mut self, labels: Labels, points: impl IntoIterator<Item = (i64, f64)>) {
        let idx = match self.series.iter().position(|s| s.labels == labels) {
            Some(i) => i,
            None => {
                self.series.push(Arc::new(Series {
                    labels,
                    points: Vec::new(),
                }));
                self.series.len() - 1
            }
        };
        let s = Arc::make_mut(&mut self.series[idx]);
        for (t, v) in points {
            match s.points.binary_search_by_key(&t, |p| p.0) {
                Ok(i) => s.points[i].1 = v,
                Err(i) => s.points.insert(i, (t, v)),
            }
        }
    }

    /// Adds a whole series whose points are already in time order.
    pub fn push_series(&mut self, series: Series) {
        self.series.push(Arc::new(series));
    }

    pub fn series(&self) -> &[Arc<Series>] {
        &self.series
    }
}

impl Storage for MemoryStorage {
    fn select(&self, matchers: &[Matcher], mint: i64, maxt: i64) -> Result<Vec<Arc<Series>>> {
        Ok(self
            .series
            .iter()
            .filter(|s| matchers.iter().all(|m| matches(m, &s.labels)))
            .filter_map(|s| s.clipped(mint, maxt))
            .collect())
    }
}
