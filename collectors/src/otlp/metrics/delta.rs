//! Delta temporality to cumulative series: the running totals of delta sums and histograms,
//! kept in memory between requests and keyed by output series, with the two-step map/commit
//! protocol that keeps a refused and retried request from counting twice.

use super::exponential::ExpHistogram;
use super::Mapper;
use model::SeriesKey;
use std::collections::HashMap;

/// Series the delta accumulator tracks before it refuses new ones.
pub const DEFAULT_MAX_DELTA_SERIES: usize = 100_000;

/// Running totals of delta streams, keyed by output series (see module docs).
#[derive(Debug)]
pub struct DeltaAccumulator {
    pub(super) entries: HashMap<SeriesKey, DeltaState>,
    pub(super) max_series: usize,
}

/// Totals computed for one request, applied with [`DeltaAccumulator::commit`].
#[derive(Debug, Default)]
pub struct DeltaUpdates(pub(super) HashMap<SeriesKey, DeltaState>);

impl DeltaUpdates {
    /// Each pending total as a line (series and state), sorted: for comparing two mappings
    /// (the map's own order differs between instances).
    pub fn describe(&self) -> Vec<String> {
        let mut lines: Vec<String> = self.0.iter().map(|(k, s)| format!("{k} {s:?}")).collect();
        lines.sort();
        lines
    }
}

#[derive(Debug, Clone, PartialEq)]
pub(super) enum DeltaState {
    Sum {
        value: f64,
        last_ns: u64,
    },
    Histogram {
        bounds: Vec<f64>,
        counts: Vec<u64>,
        count: u64,
        sum: f64,
        last_ns: u64,
    },
    Exponential {
        hist: ExpHistogram,
        last_ns: u64,
    },
}

impl DeltaState {
    fn last_ns(&self) -> u64 {
        match self {
            DeltaState::Sum { last_ns, .. }
            | DeltaState::Histogram { last_ns, .. }
            | DeltaState::Exponential { last_ns, .. } => *last_ns,
        }
    }
}

impl Default for DeltaAccumulator {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_DELTA_SERIES)
    }
}

impl DeltaAccumulator {
    pub fn new(max_series: usize) -> Self {
        Self {
            entries: HashMap::new(),
            max_series,
        }
    }

    /// Delta series tracked.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Stores the totals of an accepted request.
    pub fn commit(&mut self, updates: DeltaUpdates) {
        self.entries.extend(updates.0);
    }
}

impl Mapper<'_, '_> {
    /// The accumulator's state for `key`: this request's pending total first.
    pub(super) fn delta_state(&self, key: &SeriesKey) -> Option<&DeltaState> {
        self.out
            .pending
            .0
            .get(key)
            .or_else(|| self.acc.entries.get(key))
    }

    /// Checks a delta point against its series' state; `None` when it must be refused.
    pub(super) fn delta_ok(&mut self, metric: &str, key: &SeriesKey, time_unix_nano: u64) -> bool {
        let known = self.delta_state(key).map(DeltaState::last_ns);
        match known {
            Some(last) if time_unix_nano <= last => {
                self.out.reject(
                    1,
                    format!("metric {metric:?}: delta point at {time_unix_nano} ns is not newer than the last one added ({last} ns); it was already counted or arrived out of order"),
                );
                false
            }
            None if self.acc.entries.len() + self.out.pending.0.len() >= self.acc.max_series => {
                self.out.reject(
                    1,
                    format!("metric {metric:?}: the delta accumulator already tracks {} series; send cumulative temporality instead", self.acc.max_series),
                );
                false
            }
            _ => true,
        }
    }
}
