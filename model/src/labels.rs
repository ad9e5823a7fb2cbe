//! Label sets and series keys, with the stable hash that identifies a series in the store.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A label set kept sorted by name, without `__name__` and without empty values
/// (Prometheus treats an empty label value as a missing label).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Labels(Vec<(String, String)>);

impl Labels {
    pub fn new() -> Self {
        Self(Vec::new())
    }

    /// Builds a label set from pairs in any order; empty values are dropped and a repeated
    /// name keeps its last value.
    ///
    /// ```
    /// use model::Labels;
    ///
    /// let l = Labels::from_pairs([("job", "etl"), ("env", ""), ("az", "b"), ("job", "dbt")]);
    /// assert_eq!(l.len(), 2);
    /// assert_eq!(l.get("job"), Some("dbt"));
    /// assert_eq!(l.get("env"), None);
    /// // Sorted by name whatever the input order, so equal sets print (and hash) the same.
    /// assert_eq!(l.to_string(), r#"{az="b",job="dbt"}"#);
    /// ```
    pub fn from_pairs<I, K, V>(pairs: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        // Sorted once, not inserted one by one: a sorted insert moves the tail each time, and
        // 300,000 attributes in one OTLP point (a probe case) took minutes.
        let mut all: Vec<(String, String)> = pairs
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect();
        // Stable: of a repeated name, the last pair stays last within its run.
        all.sort_by(|a, b| a.0.cmp(&b.0));
        let mut out: Vec<(String, String)> = Vec::with_capacity(all.len());
        let mut iter = all.into_iter().peekable();
        while let Some(pair) = iter.next() {
            if iter.peek().is_some_and(|next| next.0 == pair.0) {
                continue;
            }
            if !pair.1.is_empty() {
                out.push(pair);
            }
        }
        Self(out)
    }

    /// Builds a label set from pairs a decoder has already put in order, without the copy and
    /// sort of [`Self::from_pairs`] (receivers build one label set per sample, and senders
    /// send them sorted). Pairs that are not strictly ascending by name, or that hold an
    /// empty value, go through [`Self::from_pairs`], so the result is the same either way.
    ///
    /// ```
    /// use model::Labels;
    ///
    /// let pairs = |p: &[(&str, &str)]| -> Vec<(String, String)> {
    ///     p.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    /// };
    /// let sorted = pairs(&[("az", "b"), ("job", "etl")]);
    /// assert_eq!(Labels::from_sorted(sorted.clone()), Labels::from_pairs(sorted));
    /// let unsorted = pairs(&[("job", "etl"), ("env", ""), ("az", "b"), ("job", "dbt")]);
    /// assert_eq!(Labels::from_sorted(unsorted.clone()), Labels::from_pairs(unsorted));
    /// ```
    pub fn from_sorted(pairs: Vec<(String, String)>) -> Self {
        let ordered = pairs.windows(2).all(|w| w[0].0 < w[1].0);
        if ordered && pairs.iter().all(|(_, v)| !v.is_empty()) {
            Self(pairs)
        } else {
            Self::from_pairs(pairs)
        }
    }

    /// Sets `name` to `value`; an empty value removes the label.
    pub fn insert(&mut self, name: impl Into<String>, value: impl Into<String>) {
        let name = name.into();
        let value = value.into();
        match self.0.binary_search_by(|(k, _)| k.as_str().cmp(&name)) {
            Ok(i) if value.is_empty() => {
                self.0.remove(i);
            }
            Ok(i) => self.0[i].1 = value,
            Err(_) if value.is_empty() => {}
            Err(i) => self.0.insert(i, (name, value)),
        }
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .binary_search_by(|(k, _)| k.as_str().cmp(name))
            .ok()
            .map(|i| self.0[i].1.as_str())
    }

    pub fn remove(&mut self, name: &str) -> Option<String> {
        self.0
            .binary_search_by(|(k, _)| k.as_str().cmp(name))
            .ok()
            .map(|i| self.0.remove(i).1)
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
}

impl fmt::Display for Labels {
    /// Prometheus exposition style: `{a="1",b="x\"y"}`; nothing for an empty set.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return Ok(());
        }
        f.write_str("{")?;
        for (i, (k, v)) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{k}=\"")?;
            for c in v.chars() {
                match c {
                    '\\' => f.write_str("\\\\")?,
                    '"' => f.write_str("\\\"")?,
                    '\n' => f.write_str("\\n")?,
                    c => write!(f, "{c}")?,
                }
            }
            f.write_str("\"")?;
        }
        f.write_str("}")
    }
}

/// Metric name plus label set: what identifies one time series.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct SeriesKey {
    pub metric: String,
    pub labels: Labels,
}

impl SeriesKey {
    pub fn new(metric: impl Into<String>, labels: Labels) -> Self {
        Self {
            metric: metric.into(),
            labels,
        }
    }

    /// Stable 63-bit identity of the series: xxh3 over the metric name and the sorted label
    /// pairs, each part terminated by a 0xff byte (which cannot occur in UTF-8), so
    /// `a="bc"` and `ab="c"` never collide by concatenation. The top bit is cleared so the id
    /// fits PostgreSQL's signed `bigint` as a non-negative number.
    ///
    /// This value is persisted: changing the function orphans stored series.
    ///
    /// ```
    /// use model::{Labels, SeriesKey};
    ///
    /// let a = SeriesKey::new("up", Labels::from_pairs([("a", "bc")]));
    /// let b = SeriesKey::new("up", Labels::from_pairs([("ab", "c")]));
    /// assert_ne!(a.stable_id(), b.stable_id());
    /// assert!(a.stable_id() >= 0);
    /// // Label order does not change the identity.
    /// let c = SeriesKey::new("up", Labels::from_pairs([("x", "1"), ("y", "2")]));
    /// let d = SeriesKey::new("up", Labels::from_pairs([("y", "2"), ("x", "1")]));
    /// assert_eq!(c.stable_id(), d.stable_id());
    /// ```
    pub fn stable_id(&self) -> i64 {
        self.with_encoding(|buf| (xxhash_rust::xxh3::xxh3_64(buf) & (i64::MAX as u64)) as i64)
    }

    /// Calls `f` with the key's canonical bytes: the metric name, then each label name and
    /// value in order, every part followed by `0xff` (a byte UTF-8 never contains, so
    /// different keys never encode alike). Built on the stack for keys up to 512 bytes: the
    /// hashes of a key (its stable id, the series cache's fingerprint, the OTLP mapper's
    /// index) hash this in one call, which profiles showed much cheaper than streaming the
    /// parts into a hasher.
    pub fn with_encoding<R>(&self, f: impl FnOnce(&[u8]) -> R) -> R {
        with_key_encoding(
            &self.metric,
            self.labels.0.iter().map(|(k, v)| (k.as_str(), v.as_str())),
            f,
        )
    }
}

/// [`SeriesKey::with_encoding`] for a key not built yet: `labels` sorted by name, without
/// empty values or `__name__`, as [`Labels`] holds them. Receivers that read label sets
/// straight from a request body hash these bytes to recognise a known series without
/// allocating its key; equal to the built key's encoding by construction (the same code).
pub fn with_key_encoding<'a, R, I>(metric: &str, labels: I, f: impl FnOnce(&[u8]) -> R) -> R
where
    I: Iterator<Item = (&'a str, &'a str)> + Clone,
{
    let len = metric.len()
        + 1
        + labels
            .clone()
            .map(|(k, v)| k.len() + v.len() + 2)
            .sum::<usize>();
    let mut stack = [0u8; 512];
    let mut heap = Vec::new();
    let buf: &mut [u8] = if len <= stack.len() {
        &mut stack[..len]
    } else {
        heap.resize(len, 0);
        &mut heap
    };
    let mut at = 0;
    let mut put = |bytes: &[u8]| {
        buf[at..at + bytes.len()].copy_from_slice(bytes);
        at += bytes.len();
    };
    put(metric.as_bytes());
    put(&[0xff]);
    for (k, v) in labels {
        put(k.as_bytes());
        put(&[0xff]);
        put(v.as_bytes());
        put(&[0xff]);
    }
    f(buf)
}

impl fmt::Display for SeriesKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.metric, self.labels)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_sorted_and_drop_empty_values() {
        let l = Labels::from_pairs([("b", "2"), ("a", "1"), ("c", "")]);
        assert_eq!(l.iter().collect::<Vec<_>>(), vec![("a", "1"), ("b", "2")]);
    }

    #[test]
    fn from_pairs_equals_inserting_one_by_one() {
        // Repeated names, empty values that remove and later values that re-add, any order.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..200 {
            let mut pairs = Vec::new();
            let mut one_by_one = Labels::new();
            for _ in 0..(x % 40) {
                x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                let k = format!("k{}", (x >> 33) % 12);
                let v = if (x >> 20).is_multiple_of(4) {
                    String::new()
                } else {
                    format!("v{}", (x >> 40) % 5)
                };
                one_by_one.insert(k.clone(), v.clone());
                pairs.push((k, v));
            }
            assert_eq!(Labels::from_pairs(pairs.clone()), one_by_one, "{pairs:?}");
        }
    }

    #[test]
    fn stable_id_does_not_depend_on_label_order() {
        let a = SeriesKey::new("m", Labels::from_pairs([("x", "1"), ("y", "2")]));
        let b = SeriesKey::new("m", Labels::from_pairs([("y", "2"), ("x", "1")]));
        assert_eq!(a.stable_id(), b.stable_id());
        assert!(a.stable_id() >= 0);
    }

    #[test]
    fn stable_id_separates_concatenation_lookalikes() {
        let a = SeriesKey::new("m", Labels::from_pairs([("a", "bc")]));
        let b = SeriesKey::new("m", Labels::from_pairs([("ab", "c")]));
        assert_ne!(a.stable_id(), b.stable_id());
    }

    #[test]
    fn display_escapes_like_the_exposition_format() {
        let l = Labels::from_pairs([("p", "C:\\x \"q\"\nz")]);
        assert_eq!(l.to_string(), r#"{p="C:\\x \"q\"\nz"}"#);
    }
}
