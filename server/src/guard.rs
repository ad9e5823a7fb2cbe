//! What every push receiver shares to protect the server: bearer tokens (`[[auth.tokens]]`)
//! and per-series limits (`[limits]`).
//!
//! Tokens are compared in constant time and never logged; a refusal names the token's *name*
//! only when the token was valid but not allowed for that receiver.
//!
//! Limits follow Mimir's behaviour rather than all-or-nothing: the series over a limit are
//! dropped, every other series of the request is queued, and the request is answered 400 with
//! the limit's config key and how many series it refused. 400 and not 429, on purpose: a
//! sender retries 429 (OTLP always, Prometheus with `retry_on_http_429`), and resending the
//! whole request would store its accepted samples twice; resending cannot make a 60-label
//! series acceptable either. The new-series brake counts series this server has not seen
//! recently per metric in fixed one-minute windows, like a cardinality-explosion circuit
//! breaker. "Seen" is the store's bounded [`store::SeriesCache`], shared with the writer (and
//! filled from the database at start-up), so churning series cost bounded memory here too; a
//! series evicted from it counts as new again when it returns. A second window counts new
//! series over all metrics (`limits.max_new_series_per_minute`), so an explosion spread over
//! many metric names is braked too. Every admitted series is fingerprinted here once, and the
//! fingerprints travel with the batch to the writer ([`store::Fingerprints`]).

use crate::config::{LimitsConfig, ResolvedToken};
use model::clip::{clip, clip_display, MESSAGE_VALUE_BYTES};
use model::{Batch, TimeSeries};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use store::SeriesCache;

/// Tokens, limits and the series this server knows.
#[derive(Debug, Default)]
pub struct Guard {
    tokens: Vec<ResolvedToken>,
    limits: LimitsConfig,
    known: Arc<SeriesCache>,
    /// metric -> (minute since epoch, new series admitted in that minute)
    windows: Mutex<HashMap<String, (i64, usize)>>,
    /// (minute since epoch, new series of all metrics admitted in that minute); locked only
    /// inside `windows`' lock.
    all_metrics: Mutex<(i64, usize)>,
}

/// Why a request was refused before it was read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthFailure {
    Missing,
    Invalid,
    NotAllowed,
}

impl AuthFailure {
    pub fn reason(self) -> &'static str {
        match self {
            Self::Missing => "missing_token",
            Self::Invalid => "invalid_token",
            Self::NotAllowed => "token_not_allowed",
        }
    }
}

/// One series refused by a limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The config key of the limit, e.g. `limits.max_labels_per_series`.
    pub limit: &'static str,
    /// What was over it, for the message.
    pub detail: String,
}

/// The outcome of [`Guard::admit`]: what may be queued and what was refused.
#[derive(Debug, Default)]
pub struct Admission {
    pub batch: Batch,
    /// The known-series cache's fingerprints of `batch.series`, for the writer.
    pub fingerprints: store::Fingerprints,
    pub refused: Vec<Refusal>,
    pub refused_samples: usize,
    /// Data points among the refused samples (see [`RefusedPoints`]), for OTLP's
    /// `rejected_data_points`.
    pub refused_points: usize,
}

/// Counts data points of refused series: one per sample, except that the series one histogram
/// or summary point becomes (`_bucket{le}` or `{quantile}`, `_sum`, `_count`) count as one
/// point however many of them were refused, and `target_info` (what an OTLP resource becomes,
/// not a point the sender sent) counts none.
#[derive(Debug, Default)]
pub struct RefusedPoints {
    flat: usize,
    composite: std::collections::HashSet<PointKey>,
}

/// One histogram or summary point: family, labels without `le`/`quantile`, timestamp.
type PointKey = (String, Vec<(String, String)>, i64);

impl RefusedPoints {
    /// Every sample of `s`.
    pub fn add(&mut self, s: &TimeSeries) {
        for x in &s.samples {
            self.add_one(s.metric_type, &s.key, x.ts);
        }
    }

    /// One sample of the series `key` at `ts`.
    pub fn add_one(&mut self, metric_type: model::MetricType, key: &model::SeriesKey, ts: i64) {
        use model::MetricType::*;
        if key.metric == "target_info" {
            return;
        }
        if !matches!(metric_type, Histogram | GaugeHistogram | Summary) {
            self.flat += 1;
            return;
        }
        let m = key.metric.as_str();
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|suffix| m.strip_suffix(suffix))
            .unwrap_or(m);
        let labels: Vec<(String, String)> = key
            .labels
            .iter()
            .filter(|(k, _)| *k != "le" && *k != "quantile")
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        self.composite.insert((family.to_string(), labels, ts));
    }

    pub fn total(&self) -> usize {
        self.flat + self.composite.len()
    }
}

impl Admission {
    /// The message for the sender: how many series each limit refused, with the first example.
    pub fn message(&self, receiver: &str) -> Option<String> {
        let first = self.refused.first()?;
        let mut counts: Vec<(&str, usize)> = Vec::new();
        for r in &self.refused {
            match counts.iter_mut().find(|(l, _)| *l == r.limit) {
                Some((_, n)) => *n += 1,
                None => counts.push((r.limit, 1)),
            }
        }
        let by_limit = counts
            .iter()
            .map(|(l, n)| format!("{n} by `{l}`"))
            .collect::<Vec<_>>()
            .join(", ");
        Some(format!(
            "{} series ({} samples) refused by {receiver} limits ({by_limit}); the other {} series were stored. First: {}. Reduce the labels at the source or raise the limit in [limits]",
            self.refused.len(),
            self.refused_samples,
            self.batch.series.len(),
            first.detail
        ))
    }
}

impl Guard {
    pub fn new(tokens: Vec<ResolvedToken>, limits: LimitsConfig) -> Self {
        Self {
            tokens,
            limits,
            known: Arc::default(),
            windows: Mutex::default(),
            all_metrics: Mutex::default(),
        }
    }

    /// Uses `known` (the store's series cache) as the set of series this server has seen.
    pub fn with_known_series(mut self, known: Arc<SeriesCache>) -> Self {
        self.known = known;
        self
    }

    /// The `[limits]` this guard applies; receivers read the evidence and alert limits here.
    pub fn limits(&self) -> &LimitsConfig {
        &self.limits
    }

    /// True when at least one token is configured, so receivers require one.
    pub fn auth_required(&self) -> bool {
        !self.tokens.is_empty()
    }

    /// Checks an `Authorization` header value for `receiver`. `Ok(None)` when no tokens are
    /// configured; `Ok(Some(name))` names the accepted token.
    pub fn authorize(
        &self,
        receiver: &str,
        authorization: Option<&str>,
    ) -> Result<Option<&str>, AuthFailure> {
        if self.tokens.is_empty() {
            return Ok(None);
        }
        let presented = authorization
            .and_then(|h| {
                let (scheme, rest) = h.trim().split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
            })
            .ok_or(AuthFailure::Missing)?;
        // Compare against every token so the time taken does not say which one matched.
        let mut matched = None;
        for t in &self.tokens {
            if constant_time_eq(t.secret.as_bytes(), presented.as_bytes()) && matched.is_none() {
                matched = Some(t);
            }
        }
        let t = matched.ok_or(AuthFailure::Invalid)?;
        if t.receivers.is_empty() || t.receivers.iter().any(|r| r == receiver) {
            Ok(Some(&t.name))
        } else {
            Err(AuthFailure::NotAllowed)
        }
    }

    /// Splits `batch` into what the limits admit and what they refuse. `now_ms` picks the
    /// new-series windows.
    pub fn admit(&self, batch: Batch, now_ms: i64) -> Admission {
        let l = &self.limits;
        let minute = now_ms.div_euclid(60_000);
        let mut batch_out = Batch {
            series: Vec::with_capacity(batch.series.len()),
            metadata: batch.metadata,
        };
        let mut fingerprints = Vec::with_capacity(batch.series.len());
        let mut refused = Vec::new();
        let mut refused_samples = 0;
        let mut points = RefusedPoints::default();
        let braking = l.max_new_series_per_metric_per_minute > 0 || l.max_new_series_per_minute > 0;
        let fps: Vec<u128> = batch
            .series
            .iter()
            .map(|s| self.known.fingerprint(&s.key))
            .collect();
        // Known series (nearly all of a steady sender's) need neither the brakes' windows nor
        // a lock per series: one lock per cache shard for the whole request.
        let known = if braking {
            self.known.known_among(&fps)
        } else {
            Vec::new()
        };
        // The brakes' windows, locked at the first series not known before this request.
        let mut brakes = None;
        for (s, (fp, was_known)) in batch.series.into_iter().zip(
            fps.into_iter()
                .zip(known.into_iter().chain(std::iter::repeat(true))),
        ) {
            if let Some(r) = self.shape_refusal(&s) {
                refused_samples += s.samples.len();
                points.add(&s);
                refused.push(r);
                continue;
            }
            // Asked again: an earlier series of this request may have been the same one.
            if braking && !was_known && !self.known.is_known_fp(fp) {
                let (windows, all) = brakes.get_or_insert_with(|| {
                    let mut all = self.all_metrics.lock().expect("guard lock");
                    if all.0 != minute {
                        *all = (minute, 0);
                    }
                    (self.windows.lock().expect("guard lock"), all)
                });
                match self.new_series_refusal(windows, all, &s, minute) {
                    Some(r) => {
                        refused_samples += s.samples.len();
                        points.add(&s);
                        refused.push(r);
                        continue;
                    }
                    None => self.known.note_admitted_fp(fp),
                }
            }
            fingerprints.push(fp);
            batch_out.series.push(s);
        }
        if let Some((mut windows, _)) = brakes {
            if windows.len() > 100_000 {
                // Metrics that stopped gaining series keep no window.
                windows.retain(|_, w| w.0 == minute);
            }
        }
        Admission {
            batch: batch_out,
            fingerprints: self.known.tag(fingerprints),
            refused,
            refused_samples,
            refused_points: points.total(),
        }
    }

    /// Counts a new series in its metric's window and the all-metrics window, or says which
    /// brake refuses it (then neither window counts it).
    fn new_series_refusal(
        &self,
        windows: &mut HashMap<String, (i64, usize)>,
        all: &mut (i64, usize),
        s: &TimeSeries,
        minute: i64,
    ) -> Option<Refusal> {
        let l = &self.limits;
        if l.max_new_series_per_minute > 0 && all.1 >= l.max_new_series_per_minute {
            return Some(Refusal {
                limit: "limits.max_new_series_per_minute",
                detail: format!(
                    "{} new series were admitted this minute over all metrics (limit {}); refused {}",
                    all.1,
                    l.max_new_series_per_minute,
                    clip_display(&s.key, MESSAGE_VALUE_BYTES)
                ),
            });
        }
        if l.max_new_series_per_metric_per_minute > 0 {
            // Only new series pay for the metric name's copy; known ones never get here.
            let w = windows.entry(s.key.metric.clone()).or_insert((minute, 0));
            if w.0 != minute {
                *w = (minute, 0);
            }
            if w.1 >= l.max_new_series_per_metric_per_minute {
                return Some(Refusal {
                    limit: "limits.max_new_series_per_metric_per_minute",
                    detail: format!(
                        "metric {} already gained {} new series this minute (limit {}); refused {}",
                        clip(&s.key.metric, MESSAGE_VALUE_BYTES),
                        w.1,
                        l.max_new_series_per_metric_per_minute,
                        clip_display(&s.key, MESSAGE_VALUE_BYTES)
                    ),
                });
            }
            w.1 += 1;
        }
        all.1 += 1;
        None
    }

    /// The first shape limit `s` is over. Messages show names and values cut to 200 bytes
    /// (`… (N bytes)`): the series being refused is the one a message must not copy whole.
    fn shape_refusal(&self, s: &TimeSeries) -> Option<Refusal> {
        self.shape_refusal_of(&s.key.metric, s.key.labels.len(), s.key.labels.iter())
    }

    /// Whether the per-series limits (labels per series, name and value lengths) take a
    /// series given by its parts, for receivers that hold known series by id without building
    /// their keys ([`Self::admit`] checks the others).
    pub fn shape_allows(&self, metric: &str, labels: &[(&str, &str)]) -> bool {
        self.shape_refusal_of(metric, labels.len(), labels.iter().copied())
            .is_none()
    }

    fn shape_refusal_of<'a>(
        &self,
        metric_name: &str,
        n: usize,
        labels: impl Iterator<Item = (&'a str, &'a str)>,
    ) -> Option<Refusal> {
        let l = &self.limits;
        let metric = clip(metric_name, MESSAGE_VALUE_BYTES);
        if l.max_labels_per_series > 0 && n > l.max_labels_per_series {
            return Some(Refusal {
                limit: "limits.max_labels_per_series",
                detail: format!(
                    "series of metric {metric} has {n} labels (limit {})",
                    l.max_labels_per_series
                ),
            });
        }
        if l.max_label_name_length > 0 && metric_name.len() > l.max_label_name_length {
            return Some(Refusal {
                limit: "limits.max_label_name_length",
                detail: format!(
                    "metric name of {} bytes starting {:?} (limit {})",
                    metric_name.len(),
                    prefix(metric_name),
                    l.max_label_name_length
                ),
            });
        }
        for (name, value) in labels {
            if l.max_label_name_length > 0 && name.len() > l.max_label_name_length {
                return Some(Refusal {
                    limit: "limits.max_label_name_length",
                    detail: format!(
                        "metric {metric}: label name of {} bytes starting {:?} (limit {})",
                        name.len(),
                        prefix(name),
                        l.max_label_name_length
                    ),
                });
            }
            if l.max_label_value_length > 0 && value.len() > l.max_label_value_length {
                return Some(Refusal {
                    limit: "limits.max_label_value_length",
                    detail: format!(
                        "metric {metric}: label {} has a value of {} bytes (limit {})",
                        clip(name, MESSAGE_VALUE_BYTES),
                        value.len(),
                        l.max_label_value_length
                    ),
                });
            }
        }
        None
    }
}

fn prefix(s: &str) -> &str {
    let mut end = s.len().min(40);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Byte comparison whose time does not depend on where the inputs differ.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use model::{Labels, Sample, SeriesKey};

    fn series(metric: &str, labels: &[(&str, &str)]) -> TimeSeries {
        TimeSeries {
            key: SeriesKey::new(metric, Labels::from_pairs(labels.iter().copied())),
            metric_type: Default::default(),
            samples: vec![Sample { ts: 1, value: 1.0 }, Sample { ts: 2, value: 2.0 }],
        }
    }

    fn token(name: &str, secret: &str, receivers: &[&str]) -> ResolvedToken {
        ResolvedToken {
            name: name.into(),
            secret: secret.into(),
            receivers: receivers.iter().map(|r| r.to_string()).collect(),
        }
    }

    #[test]
    fn no_tokens_means_open_and_tokens_are_checked_per_receiver() {
        assert_eq!(Guard::default().authorize("otlp", None), Ok(None));
        let g = Guard::new(
            vec![
                token("prom", "prom-secret-0123456789", &["remote_write"]),
                token("all", "all-secret-0123456789", &[]),
            ],
            LimitsConfig::default(),
        );
        assert_eq!(g.authorize("otlp", None), Err(AuthFailure::Missing));
        assert_eq!(
            g.authorize("otlp", Some("Basic abc")),
            Err(AuthFailure::Missing)
        );
        assert_eq!(
            g.authorize("otlp", Some("Bearer wrong-secret-0123456")),
            Err(AuthFailure::Invalid)
        );
        assert_eq!(
            g.authorize("remote_write", Some("Bearer prom-secret-0123456789")),
            Ok(Some("prom"))
        );
        assert_eq!(
            g.authorize("otlp", Some("bearer prom-secret-0123456789")),
            Err(AuthFailure::NotAllowed)
        );
        assert_eq!(
            g.authorize("otlp", Some("Bearer all-secret-0123456789")),
            Ok(Some("all"))
        );
    }

    #[test]
    fn series_over_shape_limits_are_refused_and_the_rest_kept() {
        let g = Guard::new(
            vec![],
            LimitsConfig {
                max_labels_per_series: 2,
                max_label_name_length: 8,
                max_label_value_length: 5,
                max_new_series_per_metric_per_minute: 0,
                max_new_series_per_minute: 0,
                ..Default::default()
            },
        );
        let batch = Batch {
            series: vec![
                series("ok", &[("a", "1"), ("b", "2")]),
                series("too_many", &[("a", "1"), ("b", "2"), ("c", "3")]),
                series("long_name", &[("abcdefghi", "1")]),
                series("long_val", &[("a", "123456")]),
                series("metric_name_too_long", &[]),
            ],
            metadata: vec![],
        };
        let a = g.admit(batch, 0);
        assert_eq!(a.batch.series.len(), 1);
        assert_eq!(a.batch.series[0].key.metric, "ok");
        let limits: Vec<_> = a.refused.iter().map(|r| r.limit).collect();
        assert_eq!(
            limits,
            [
                "limits.max_labels_per_series",
                "limits.max_label_name_length",
                "limits.max_label_value_length",
                "limits.max_label_name_length"
            ]
        );
        assert_eq!(a.refused_samples, 8);
        let msg = a.message("otlp").unwrap();
        assert!(msg.contains("4 series (8 samples) refused"), "{msg}");
        assert!(msg.contains("2 by `limits.max_label_name_length`"), "{msg}");
        assert!(msg.contains("the other 1 series were stored"), "{msg}");
    }

    #[test]
    fn a_refused_series_with_a_huge_label_set_gets_a_short_message() {
        let g = Guard::new(
            vec![],
            LimitsConfig {
                max_labels_per_series: 0,
                max_new_series_per_metric_per_minute: 1,
                ..Default::default()
            },
        );
        let huge = |i: usize| TimeSeries {
            key: model::SeriesKey::new(
                "m".repeat(1000),
                // 20,000 labels are ~200 KB, far over the message budget; the 300,000 of the
                // probe that found this took minutes in a debug build on a loaded machine.
                Labels::from_pairs((0..20_000).map(|j| (format!("l{j}"), format!("{i}")))),
            ),
            metric_type: Default::default(),
            samples: vec![Sample { ts: 1, value: 1.0 }],
        };
        // The second series of the metric is over the new-series brake: its whole label set
        // (about 240 KB) must not reach the message.
        let a = g.admit(
            Batch {
                series: vec![huge(0), huge(1)],
                metadata: vec![],
            },
            0,
        );
        let msg = a.message("remote_write").unwrap();
        assert!(msg.len() < 1000, "{} bytes: {}", msg.len(), &msg[..300]);
        assert!(msg.contains("… (1000 bytes)"), "{msg}");
        assert!(msg.contains(" bytes)"), "{msg}");
    }

    #[test]
    fn new_series_per_metric_are_braked_per_minute_and_known_series_pass() {
        let g = Guard::new(
            vec![],
            LimitsConfig {
                max_new_series_per_metric_per_minute: 2,
                ..Default::default()
            },
        );
        let known = series("m", &[("i", "0")]);
        g.known.note_admitted(&known.key);
        let batch = |range: std::ops::Range<i32>| Batch {
            series: range
                .map(|i| series("m", &[("i", &i.to_string())]))
                .chain([series("other", &[])])
                .collect(),
            metadata: vec![],
        };
        // i=0 is known; 1 and 2 are new and admitted; 3 is over the brake; `other` has its own.
        let a = g.admit(batch(0..4), 60_000);
        assert_eq!(a.batch.series.len(), 4);
        assert_eq!(a.refused.len(), 1);
        assert!(a.refused[0].detail.contains("i=\"3\""), "{:?}", a.refused);
        // Same minute: admitted series are known now; 3 is still refused.
        let a = g.admit(batch(0..4), 119_999);
        assert_eq!((a.batch.series.len(), a.refused.len()), (4, 1));
        // Next minute: room again.
        let a = g.admit(batch(0..4), 120_000);
        assert_eq!((a.batch.series.len(), a.refused.len()), (5, 0));
    }

    #[test]
    fn known_series_are_bounded_by_the_shared_cache() {
        let cache = Arc::new(SeriesCache::new(100));
        let g = Guard::new(
            vec![],
            LimitsConfig {
                max_new_series_per_metric_per_minute: 1_000_000,
                ..Default::default()
            },
        )
        .with_known_series(cache.clone());
        for round in 0..50 {
            let batch = Batch {
                series: (0..1000)
                    .map(|i| series("churn", &[("pod", &format!("{round}-{i}"))]))
                    .collect(),
                metadata: vec![],
            };
            assert_eq!(g.admit(batch, 0).batch.series.len(), 1000);
        }
        assert_eq!(cache.len(), 100, "50,000 churned series, 100 remembered");
        // The most recent ones are known to the writer's cache and the guard alike.
        assert!(cache.is_known(&series("churn", &[("pod", "49-999")]).key));
        assert!(!cache.is_known(&series("churn", &[("pod", "0-0")]).key));
    }

    #[test]
    fn new_series_over_all_metrics_are_braked_where_the_per_metric_brake_is_not() {
        // Issue 9 #12: 50 metrics x 10 new series each passed a per-metric limit of 10.
        let g = Guard::new(
            vec![],
            LimitsConfig {
                max_new_series_per_metric_per_minute: 10,
                max_new_series_per_minute: 100,
                ..Default::default()
            },
        );
        let batch = Batch {
            series: (0..50)
                .flat_map(|m| (0..10).map(move |i| (m, i)))
                .map(|(m, i)| series(&format!("m{m}"), &[("i", &i.to_string())]))
                .collect(),
            metadata: vec![],
        };
        let a = g.admit(batch, 60_000);
        assert_eq!(a.batch.series.len(), 100);
        assert_eq!(
            a.fingerprints.len(),
            100,
            "one fingerprint per admitted series"
        );
        assert_eq!((a.refused.len(), a.refused_samples), (400, 800));
        assert!(a
            .refused
            .iter()
            .all(|r| r.limit == "limits.max_new_series_per_minute"));
        let msg = a.message("remote_write").unwrap();
        assert!(
            msg.contains("400 by `limits.max_new_series_per_minute`"),
            "{msg}"
        );
        // Admitted series stay known; the next minute has room again.
        let again = |now| {
            g.admit(
                Batch {
                    series: (0..50)
                        .map(|m| series(&format!("m{m}"), &[("i", "0")]))
                        .chain((0..50).map(|m| series(&format!("m{m}"), &[("i", "9")])))
                        .collect(),
                    metadata: vec![],
                },
                now,
            )
        };
        let a = again(61_000);
        // m0..m9 were admitted in full: their i=0 and i=9 are known; the other 40 metrics'
        // series are still new and the window is spent.
        assert_eq!((a.batch.series.len(), a.refused.len()), (20, 80));
        let a = again(120_000);
        assert_eq!((a.batch.series.len(), a.refused.len()), (100, 0));
    }

    #[test]
    fn refused_points_count_a_histogram_point_once() {
        let hist = |metric: &str, labels: &[(&str, &str)], ts: &[i64]| TimeSeries {
            key: SeriesKey::new(metric, Labels::from_pairs(labels.iter().copied())),
            metric_type: model::MetricType::Histogram,
            samples: ts.iter().map(|&ts| Sample { ts, value: 1.0 }).collect(),
        };
        let mut p = RefusedPoints::default();
        // One histogram point at t=1 (two buckets, sum, count) and one at t=2 (count only).
        p.add(&hist("lat_bucket", &[("le", "1"), ("job", "a")], &[1]));
        p.add(&hist("lat_bucket", &[("le", "+Inf"), ("job", "a")], &[1]));
        p.add(&hist("lat_sum", &[("job", "a")], &[1]));
        p.add(&hist("lat_count", &[("job", "a")], &[1, 2]));
        // Another series of the same family is another point.
        p.add(&hist("lat_count", &[("job", "b")], &[1]));
        assert_eq!(p.total(), 3);
        // A gauge counts each sample; OTLP's resource series is no point of the sender's.
        p.add(&series("g", &[]));
        p.add(&series("target_info", &[("job", "a")]));
        assert_eq!(p.total(), 5);
    }
}
