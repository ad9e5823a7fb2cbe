//! The values a PromQL expression evaluates to: label sets, instant vectors, range vectors
//! (matrices), scalars and strings, with Prometheus' rules for the metric name and staleness.

use serde::Serialize;
use std::fmt;
use std::sync::Arc;

/// The label that holds the metric name.
pub const METRIC_NAME: &str = "__name__";

/// Prometheus' staleness marker: a NaN with this exact bit pattern ends a series.
pub const STALE_NAN_BITS: u64 = 0x7ff0_0000_0000_0002;

/// A valid label name (`[a-zA-Z_][a-zA-Z0-9_]*`), as Prometheus checks destination labels.
pub fn is_label_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c == '_' || c.is_ascii_alphabetic())
        && chars.all(|c| c == '_' || c.is_ascii_alphanumeric())
}

/// True for the staleness marker (and only for it; other NaNs are ordinary values).
pub fn is_stale_nan(v: f64) -> bool {
    v.to_bits() == STALE_NAN_BITS
}

/// A label set, sorted by name, without empty values (Prometheus treats an empty value as an
/// absent label).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Labels(Vec<(String, String)>);

impl Labels {
    /// Builds a label set from pairs in any order; empty values are dropped and a repeated
    /// name keeps its last value.
    pub fn new<I, K, V>(pairs: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        let mut v: Vec<(String, String)> = Vec::new();
        for (k, val) in pairs {
            let (k, val) = (k.into(), val.into());
            if let Some(slot) = v.iter_mut().find(|(n, _)| *n == k) {
                slot.1 = val;
            } else {
                v.push((k, val));
            }
        }
        v.retain(|(_, val)| !val.is_empty());
        v.sort();
        Labels(v)
    }

    pub fn empty() -> Self {
        Labels(Vec::new())
    }

    pub fn get(&self, name: &str) -> &str {
        self.0
            .binary_search_by(|(n, _)| n.as_str().cmp(name))
            .map(|i| self.0[i].1.as_str())
            .unwrap_or("")
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Sets `name` to `value`; an empty value removes the label.
    pub fn set(&mut self, name: &str, value: &str) {
        match self.0.binary_search_by(|(n, _)| n.as_str().cmp(name)) {
            Ok(i) if value.is_empty() => {
                self.0.remove(i);
            }
            Ok(i) => self.0[i].1 = value.to_string(),
            Err(_) if value.is_empty() => {}
            Err(i) => self.0.insert(i, (name.to_string(), value.to_string())),
        }
    }

    pub fn remove(&mut self, name: &str) {
        if let Ok(i) = self.0.binary_search_by(|(n, _)| n.as_str().cmp(name)) {
            self.0.remove(i);
        }
    }

    pub fn without_name(&self) -> Labels {
        let mut l = self.clone();
        l.remove(METRIC_NAME);
        l
    }

    /// Only the labels named in `names`.
    pub fn keep(&self, names: &[String]) -> Labels {
        Labels(
            self.0
                .iter()
                .filter(|(n, _)| names.iter().any(|k| k == n))
                .cloned()
                .collect(),
        )
    }

    /// All labels except those named in `names`.
    pub fn drop_names(&self, names: &[String]) -> Labels {
        Labels(
            self.0
                .iter()
                .filter(|(n, _)| !names.iter().any(|k| k == n))
                .cloned()
                .collect(),
        )
    }

    /// A key for matching on (`on = true`) or ignoring (`on = false`, which also ignores the
    /// metric name) the given labels, as Prometheus' signature functions do.
    pub fn signature(&self, on: bool, names: &[String]) -> Vec<(String, String)> {
        if on {
            self.keep(names).0
        } else {
            self.0
                .iter()
                .filter(|(n, _)| n != METRIC_NAME && !names.iter().any(|k| k == n))
                .cloned()
                .collect()
        }
    }

    pub fn into_pairs(self) -> Vec<(String, String)> {
        self.0
    }
}

impl fmt::Display for Labels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("{")?;
        for (i, (k, v)) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{k}={v:?}")?;
        }
        f.write_str("}")
    }
}

impl Serialize for Labels {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}

/// One stored series: labels and samples in time order (Unix milliseconds).
#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    pub labels: Labels,
    pub points: Vec<(i64, f64)>,
}

impl Series {
    /// Points with `mint <= t <= maxt`, staleness markers left out (Prometheus' range
    /// selectors are closed on both ends in 2.x).
    pub fn window(&self, mint: i64, maxt: i64) -> impl Iterator<Item = (i64, f64)> + '_ {
        let lo = self.points.partition_point(|p| p.0 < mint);
        let hi = self.points.partition_point(|p| p.0 <= maxt);
        self.points[lo..hi.max(lo)]
            .iter()
            .copied()
            .filter(|p| !is_stale_nan(p.1))
    }

    /// This series cut to `mint <= t <= maxt` (staleness markers kept), what a storage hands
    /// the engine for one selector's range: shared as is when nothing is cut, None when no
    /// point is in the range.
    pub fn clipped(self: &Arc<Self>, mint: i64, maxt: i64) -> Option<Arc<Series>> {
        let lo = self.points.partition_point(|p| p.0 < mint);
        let hi = self.points.partition_point(|p| p.0 <= maxt);
        if lo >= hi {
            None
        } else if lo == 0 && hi == self.points.len() {
            Some(self.clone())
        } else {
            Some(Arc::new(Series {
                labels: self.labels.clone(),
                points: self.points[lo..hi].to_vec(),
            }))
        }
    }

    /// The value an instant selector sees at `t`: the newest sample at or before `t` and no
    /// older than `t - lookback`, unless that sample is a staleness marker.
    pub fn at(&self, t: i64, lookback: i64) -> Option<(i64, f64)> {
        let hi = self.points.partition_point(|p| p.0 <= t);
        if hi == 0 {
            return None;
        }
        let (ts, v) = self.points[hi - 1];
        if ts < t - lookback || is_stale_nan(v) {
            return None;
        }
        Some((ts, v))
    }
}

/// One element of an instant vector.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    pub labels: Labels,
    /// The sample's own time where it matters (`timestamp()` of a selector); otherwise the
    /// evaluation time.
    pub t: i64,
    pub v: f64,
}

/// What an expression evaluates to at one instant.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Scalar(f64),
    String(String),
    Vector(Vec<Sample>),
    Matrix(Vec<Series>),
}

impl Value {
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Scalar(_) => "scalar",
            Value::String(_) => "string",
            Value::Vector(_) => "vector",
            Value::Matrix(_) => "matrix",
        }
    }
}

/// Formats a float the way Prometheus' HTTP API does (`strconv.FormatFloat(v, 'f', -1, 64)`,
/// with `NaN`, `+Inf`, `-Inf`).
pub fn format_value(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v == f64::INFINITY {
        "+Inf".into()
    } else if v == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        // Rust's shortest round-trip formatting equals Go's 'f', -1 for finite values (both
        // print integers without a fraction, and "-0" as "-0").
        format!("{v}")
    }
}
