//! The Explore page's state as it lives in the URL: selector, time range, aggregation, and
//! the automatic step. Pure functions, shared by the server and the browser.

use crate::timefmt::{format_utc, parse_utc};
use model::TimestampMs;
use serde::{Deserialize, Serialize};

/// The preset relative ranges offered as links, with their length.
pub const PRESETS: [(&str, i64); 6] = [
    ("5m", 5 * 60_000),
    ("15m", 15 * 60_000),
    ("1h", 3_600_000),
    ("6h", 6 * 3_600_000),
    ("24h", 24 * 3_600_000),
    ("7d", 7 * 24 * 3_600_000),
];

/// Steps the chart may use; the smallest one giving at most [`MAX_POINTS`] buckets wins.
const STEPS_MS: [i64; 21] = [
    1_000,
    2_000,
    5_000,
    10_000,
    15_000,
    30_000,
    60_000,
    120_000,
    180_000,
    300_000,
    600_000,
    900_000,
    1_800_000,
    3_600_000,
    7_200_000,
    10_800_000,
    21_600_000,
    43_200_000,
    86_400_000,
    172_800_000,
    604_800_000,
];

/// Enough points to resolve a 1100-pixel chart, few enough to ship and draw quickly.
pub const MAX_POINTS: i64 = 600;

/// A time range: relative to "now" (a preset like `1h`, or any `<n><s|m|h|d|w>`), or fixed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum TimeRange {
    Relative { label: String, span_ms: i64 },
    Absolute { from: TimestampMs, to: TimestampMs },
}

impl Default for TimeRange {
    fn default() -> Self {
        Self::Relative {
            label: "1h".into(),
            span_ms: 3_600_000,
        }
    }
}

/// Parses `1h`, `90s`, `7d`, `2w` into milliseconds.
pub fn parse_span(s: &str) -> Result<i64, String> {
    let s = s.trim();
    let bad = || format!("range {s:?} is not a duration: use e.g. 5m, 1h, 24h or 7d");
    let unit_at = s.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
    let (n, unit) = s.split_at(unit_at);
    let n: i64 = n.parse().map_err(|_| bad())?;
    let mult = match unit {
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        "w" => 7 * 86_400_000,
        _ => return Err(bad()),
    };
    if n <= 0 || n > 3650 * 86_400_000 / mult {
        return Err(format!(
            "range {s:?} must be longer than zero and at most 10 years"
        ));
    }
    Ok(n * mult)
}

impl TimeRange {
    /// From the URL parameters: `from`+`to` (milliseconds or UTC text) win over `range`.
    pub fn from_params(
        range: Option<&str>,
        from: Option<&str>,
        to: Option<&str>,
    ) -> Result<Self, String> {
        let from = from.filter(|s| !s.trim().is_empty());
        let to = to.filter(|s| !s.trim().is_empty());
        match (from, to) {
            (Some(f), Some(t)) => {
                let (from, to) = (parse_utc(f)?, parse_utc(t)?);
                if from >= to {
                    return Err(format!(
                        "the range start {} is not before its end {}: swap them",
                        format_utc(from),
                        format_utc(to)
                    ));
                }
                Ok(Self::Absolute { from, to })
            }
            (Some(_), None) => Err("a custom range needs both from and to; `to` is missing".into()),
            (None, Some(_)) => {
                Err("a custom range needs both from and to; `from` is missing".into())
            }
            (None, None) => match range.filter(|s| !s.trim().is_empty()) {
                None => Ok(Self::default()),
                Some(r) => Ok(Self::Relative {
                    label: r.trim().to_string(),
                    span_ms: parse_span(r)?,
                }),
            },
        }
    }

    /// The concrete [start, end] at `now`.
    pub fn resolve(&self, now: TimestampMs) -> (TimestampMs, TimestampMs) {
        match self {
            Self::Relative { span_ms, .. } => (now - span_ms, now),
            Self::Absolute { from, to } => (*from, *to),
        }
    }

    pub fn is_relative(&self) -> bool {
        matches!(self, Self::Relative { .. })
    }

    /// How the range reads in sentences: `the last 1h`, or `2025-… UTC to 2025-… UTC`.
    pub fn describe(&self) -> String {
        match self {
            Self::Relative { label, .. } => format!("the last {label}"),
            Self::Absolute { from, to } => format!("{} to {}", format_utc(*from), format_utc(*to)),
        }
    }

    /// The compact form kept in the `back` parameter: `1h` or `<from>-<to>` in milliseconds.
    pub fn to_compact(&self) -> String {
        match self {
            Self::Relative { label, .. } => label.clone(),
            Self::Absolute { from, to } => format!("{from}-{to}"),
        }
    }

    pub fn from_compact(s: &str) -> Result<Self, String> {
        match s.split_once('-') {
            Some((f, t)) => Self::from_params(None, Some(f), Some(t)),
            None => Self::from_params(Some(s), None, None),
        }
    }
}

/// The smallest step from the ladder that gives at most [`MAX_POINTS`] buckets over `span_ms`.
pub fn auto_step(span_ms: i64) -> i64 {
    STEPS_MS
        .into_iter()
        .find(|step| span_ms / step <= MAX_POINTS)
        .unwrap_or_else(|| (span_ms / MAX_POINTS).max(1))
}

/// `10s`, `3m`, `1h`, `2d`.
pub fn format_step(step_ms: i64) -> String {
    let s = step_ms / 1000;
    if step_ms % 86_400_000 == 0 {
        format!("{}d", s / 86_400)
    } else if step_ms % 3_600_000 == 0 {
        format!("{}h", s / 3600)
    } else if step_ms % 60_000 == 0 {
        format!("{}m", s / 60)
    } else if step_ms % 1000 == 0 {
        format!("{s}s")
    } else {
        format!("{step_ms}ms")
    }
}

/// Everything the Explore URL carries.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ExploreState {
    /// A PromQL expression; empty when nothing is chosen yet.
    pub q: String,
    pub range: TimeRange,
    /// The range to go back to after drag-zooming (compact form), if zoomed.
    pub back: Option<String>,
}

impl ExploreState {
    /// The page URL for this state.
    pub fn href(&self) -> String {
        let mut pairs: Vec<(&str, String)> = Vec::new();
        if !self.q.is_empty() {
            pairs.push(("q", self.q.clone()));
        }
        match &self.range {
            TimeRange::Relative { label, .. } => pairs.push(("range", label.clone())),
            TimeRange::Absolute { from, to } => {
                pairs.push(("from", from.to_string()));
                pairs.push(("to", to.to_string()));
            }
        }
        if let Some(b) = &self.back {
            pairs.push(("back", b.clone()));
        }
        let query: Vec<String> = pairs
            .into_iter()
            .map(|(k, v)| format!("{k}={}", encode_query_value(&v)))
            .collect();
        format!("/explore?{}", query.join("&"))
    }

    pub fn with_range(&self, range: TimeRange) -> Self {
        Self {
            range,
            back: None,
            ..self.clone()
        }
    }

    /// The state after zooming into [from, to]: remembers where the first zoom started.
    pub fn zoomed(&self, from: TimestampMs, to: TimestampMs) -> Self {
        Self {
            range: TimeRange::Absolute { from, to },
            back: Some(self.back.clone().unwrap_or_else(|| self.range.to_compact())),
            ..self.clone()
        }
    }

    /// The state before the first zoom, if zoomed.
    pub fn unzoomed(&self) -> Option<Self> {
        let back = self.back.as_deref()?;
        let range = TimeRange::from_compact(back).ok()?;
        Some(self.with_range(range))
    }
}

/// Percent-encodes a query value (RFC 3986 unreserved characters stay as they are).
pub fn encode_query_value(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Builds `metric{a="x",b="y"}` from the builder form's choices, escaping values.
pub fn build_selector<'a>(
    metric: &str,
    labels: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> String {
    let matchers: Vec<String> = labels
        .into_iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| format!("{k}=\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\"")))
        .collect();
    if matchers.is_empty() {
        metric.to_string()
    } else {
        format!("{metric}{{{}}}", matchers.join(","))
    }
}

/// What the metric picker draws for `selector` (a selector of `metric`), by Prometheus' naming
/// conventions, as Grafana's query builder does: a counter (`_total`, `_count`, `_sum`) as its
/// per-second `rate`, a classic histogram's `_bucket` series as p50/p95/p99 over all its other
/// labels, anything else (gauges) as stored. `step_ms` widens the rate window on long ranges so
/// every window holds samples (Grafana's `$__rate_interval`: at least 4 scrapes, here 5m).
pub fn default_query(metric: &str, selector: &str, step_ms: i64) -> String {
    let window = format_step((2 * step_ms).max(300_000));
    if metric.ends_with("_bucket") {
        let quantiles: Vec<String> = ["0.5", "0.95", "0.99"]
            .iter()
            .map(|q| {
                format!(
                    "label_replace(histogram_quantile({q}, sum by (le) (rate({selector}[{window}]))), \"quantile\", \"{q}\", \"\", \"\")"
                )
            })
            .collect();
        quantiles.join(" or ")
    } else if ["_total", "_count", "_sum"]
        .iter()
        .any(|suffix| metric.ends_with(suffix))
    {
        format!("rate({selector}[{window}])")
    } else {
        selector.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_step_gives_between_300_and_600_points_for_every_preset() {
        for (label, span) in PRESETS {
            let step = auto_step(span);
            let points = span / step;
            assert!(
                (280..=MAX_POINTS).contains(&points),
                "{label}: step {step} gives {points} points"
            );
        }
        assert_eq!(format_step(auto_step(3_600_000)), "10s");
    }

    #[test]
    fn custom_range_wins_over_preset_and_is_checked() {
        let r = TimeRange::from_params(Some("1h"), Some("1000"), Some("2000")).unwrap();
        assert_eq!(
            r,
            TimeRange::Absolute {
                from: 1000,
                to: 2000
            }
        );
        assert!(TimeRange::from_params(None, Some("2000"), Some("1000"))
            .unwrap_err()
            .contains("swap"));
        assert!(TimeRange::from_params(None, Some("2000"), None)
            .unwrap_err()
            .contains("`to` is missing"));
        assert!(TimeRange::from_params(Some("fortnight"), None, None)
            .unwrap_err()
            .contains("5m, 1h"));
        assert_eq!(
            TimeRange::from_params(Some("90s"), None, None)
                .unwrap()
                .resolve(100_000),
            (10_000, 100_000)
        );
    }

    #[test]
    fn zoom_remembers_the_original_range_across_repeated_zooms() {
        let s = ExploreState {
            q: "m".into(),
            ..Default::default()
        };
        let z1 = s.zoomed(10, 20);
        let z2 = z1.zoomed(12, 18);
        assert_eq!(z2.back.as_deref(), Some("1h"));
        assert_eq!(z2.unzoomed().unwrap(), s);
        assert_eq!(z2.href(), "/explore?q=m&from=12&to=18&back=1h");
    }

    #[test]
    fn the_picker_draws_counters_as_rates_histograms_as_quantiles_and_gauges_as_stored() {
        assert_eq!(
            default_query("rows_total", r#"rows_total{job="a"}"#, 10_000),
            r#"rate(rows_total{job="a"}[5m])"#
        );
        // A week at 20-minute steps: the window spans two steps.
        assert_eq!(
            default_query("x_count", "x_count", 1_200_000),
            "rate(x_count[40m])"
        );
        let h = default_query("lat_bucket", r#"lat_bucket{stage="t"}"#, 10_000);
        assert_eq!(h.matches("histogram_quantile(").count(), 3, "{h}");
        assert!(h.starts_with(r#"label_replace(histogram_quantile(0.5, sum by (le) (rate(lat_bucket{stage="t"}[5m]))), "quantile", "0.5", "", "") or "#), "{h}");
        assert_eq!(
            default_query("queue_depth", "queue_depth", 10_000),
            "queue_depth"
        );
    }

    #[test]
    fn href_percent_encodes_selectors() {
        let s = ExploreState {
            q: build_selector("up", [("job", "a\"b"), ("x", "")]),
            ..Default::default()
        };
        assert_eq!(s.q, r#"up{job="a\"b"}"#);
        assert_eq!(s.href(), "/explore?q=up%7Bjob%3D%22a%5C%22b%22%7D&range=1h");
        let parsed = model::Selector::parse(&s.q).unwrap();
        assert_eq!(parsed.matchers[0].value, "a\"b");
    }
}
