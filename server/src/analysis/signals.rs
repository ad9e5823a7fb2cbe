//! Which signals the detection job watches, chosen from what is stored: one [`SignalFamily`]
//! per metric (or pair of metrics) and signal kind, each a PromQL expression the job
//! evaluates over its history; every series of the result is one signal.
//!
//! The rules, by metric name and type (as the registry recorded it):
//! * counters `*_total` -> throughput, `rate(m[2m])`; an error-like counter (`error`, `fail`
//!   in the name) with exactly one non-error counter of the same prefix (`x_errors_total` and
//!   `x_rows_processed_total`) -> error ratio, `rate(errors[2m]) / rate(total[2m])`, instead;
//! * histograms `*_bucket` with an `le` label and a time unit in the name (`seconds`,
//!   `duration`, `latency`) -> p50/p95/p99 latency, `histogram_quantile(q, rate(m[2m]))`;
//!   histograms with a `feature` label are the drift job's;
//! * gauges named `*freshness*`, `*_age_seconds` -> freshness as is; `*_timestamp*` and
//!   `*last_success*` gauges -> freshness as `time() - m`;
//! * data-quality observed values (`dq_check_observed_value`, `dq_dataset_pass_ratio`) and
//!   dataset gauges ending in `_ratio` -> `dq_value`;
//! * gauges of items waiting (`*queue_depth*`, `*queue_size*`, `*queue_length*`, `*backlog*`,
//!   `*_lag`, `*lag_messages*`, `*lag_records*`, `*pending*`) -> backlog, as is: the signal a
//!   stall moves first (a queue grows from the first second, while the rate of the stage's
//!   counter only reaches zero once its window has passed).
//!
//! * `openlineage_job_last_success_timestamp_seconds` (one sample per successful run) ->
//!   freshness as `time() - last_over_time(m[8d])`, judged against the job's learned cadence;
//! * per-run gauges from OpenLineage (the receiver writes one sample per run):
//!   `openlineage_dataset_output_rows` (a run's `outputStatistics.rowCount`) -> volume, and
//!   `openlineage_run_duration_seconds` (START to COMPLETE/FAIL) -> run duration, both as
//!   `last_over_time(m[1d])`: the last run's value, held until the next run, so a job that
//!   runs hourly or daily still has a value at every step (a bare gauge vanishes five minutes
//!   after its sample).
//!
//! pipewatch's own `pipewatch_*` metrics and series matching `[analysis] exclude` are skipped.

use analysis::SignalKind;
use model::{MetricType, Selector, SeriesKey};
use std::collections::{BTreeMap, BTreeSet};

/// The rate window of derived signals; part of each signal's identity, so it never changes.
/// Two minutes holds two samples even of the demo's one-a-minute backfill and four of a
/// 30 s scrape, and lets a stall show within a minute or two.
pub const RATE_WINDOW: &str = "2m";

/// [`RATE_WINDOW`] in milliseconds.
pub const RATE_WINDOW_MS: i64 = 120_000;

/// Latency quantiles watched for every duration histogram.
pub const QUANTILES: [(u8, &str); 3] = [(50, "0.5"), (95, "0.95"), (99, "0.99")];

/// How a family's PromQL is built.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Template {
    Rate {
        metric: String,
    },
    Quantile {
        q: &'static str,
        bucket: String,
    },
    Ratio {
        errors: String,
        total: String,
    },
    Gauge {
        metric: String,
    },
    Age {
        metric: String,
    },
    /// A per-run gauge: the last run's value ([`PER_RUN_HOLD`]).
    LastRun {
        metric: String,
    },
    /// A per-run timestamp: the age of the last one ([`RUN_AGE_HOLD`]).
    RunAge {
        metric: String,
    },
}

/// How long a per-run value is held: a daily job's runs still join up.
pub const PER_RUN_HOLD: &str = "1d";

/// How far back the age of a per-run timestamp looks: a weekly job is still judged, and a job
/// silent for longer has lost its cadence (its signal vanishes and its anomaly closes).
pub const RUN_AGE_HOLD: &str = "8d";

/// Per-run timestamps the OpenLineage receiver writes (one sample per successful run): their
/// age is freshness, judged against the job's learned cadence.
pub const PER_RUN_TIMESTAMPS: [&str; 1] = ["openlineage_job_last_success_timestamp_seconds"];

/// Per-run gauges the OpenLineage receiver writes, and the kind of signal each is.
pub const PER_RUN_GAUGES: [(&str, SignalKind); 2] = [
    ("openlineage_dataset_output_rows", SignalKind::Volume),
    ("openlineage_run_duration_seconds", SignalKind::RunDuration),
];

/// One metric's (or metric pair's) signals of one kind.
#[derive(Debug, Clone, PartialEq)]
pub struct SignalFamily {
    pub kind: SignalKind,
    pub template: Template,
}

impl SignalFamily {
    /// `throughput`, `latency_p95`, `error_ratio`, `freshness`, `dq_value` (the anomaly's kind).
    pub fn kind_name(&self) -> String {
        match self.kind {
            SignalKind::Throughput => "throughput".into(),
            SignalKind::LatencyQuantile(q) => format!("latency_p{q}"),
            SignalKind::ErrorRatio => "error_ratio".into(),
            SignalKind::Volume => "volume".into(),
            SignalKind::Freshness => "freshness".into(),
            SignalKind::RunDuration => "run_duration".into(),
            SignalKind::DqValue => "dq_value".into(),
            SignalKind::Backlog => "backlog".into(),
        }
    }

    /// The metric whose series the signals come from (what `exclude` selectors are matched
    /// against).
    pub fn base_metric(&self) -> &str {
        match &self.template {
            Template::Rate { metric }
            | Template::Gauge { metric }
            | Template::Age { metric }
            | Template::LastRun { metric }
            | Template::RunAge { metric } => metric,
            Template::Quantile { bucket, .. } => bucket,
            Template::Ratio { errors, .. } => errors,
        }
    }

    /// The PromQL of the family (`matchers` empty) or of one signal (`matchers` its labels,
    /// `{stage="transform"}`).
    pub fn query(&self, matchers: &str) -> String {
        let w = RATE_WINDOW;
        match &self.template {
            Template::Rate { metric } => format!("rate({metric}{matchers}[{w}])"),
            Template::Quantile { q, bucket } => {
                format!("histogram_quantile({q}, rate({bucket}{matchers}[{w}]))")
            }
            Template::Ratio { errors, total } => {
                format!("rate({errors}{matchers}[{w}]) / rate({total}{matchers}[{w}])")
            }
            Template::Gauge { metric } => format!("{metric}{matchers}"),
            Template::Age { metric } => format!("time() - {metric}{matchers}"),
            Template::LastRun { metric } => {
                format!("last_over_time({metric}{matchers}[{PER_RUN_HOLD}])")
            }
            Template::RunAge { metric } => {
                format!("time() - last_over_time({metric}{matchers}[{RUN_AGE_HOLD}])")
            }
        }
    }
}

/// `{a="x",b="y"}` for a label set (empty labels give `{}`), values escaped as PromQL strings.
pub fn matchers(labels: &BTreeMap<String, String>) -> String {
    let inner: Vec<String> = labels
        .iter()
        .map(|(k, v)| {
            let v = v
                .replace('\\', "\\\\")
                .replace('"', "\\\"")
                .replace('\n', "\\n");
            format!("{k}=\"{v}\"")
        })
        .collect();
    format!("{{{}}}", inner.join(","))
}

/// The pipeline node a signal belongs to: the most specific of its labels that name one.
pub fn node_of(labels: &BTreeMap<String, String>) -> Option<String> {
    [
        "stage",
        "dataset",
        "service_name",
        "service",
        "job_name",
        "job",
    ]
    .iter()
    .find_map(|k| labels.get(*k).filter(|v| !v.is_empty()).cloned())
}

fn is_error_like(name: &str) -> bool {
    name.contains("error") || name.contains("fail")
}

/// Gauges that count items waiting: queue depths and consumer lag (in messages or records,
/// not a lag in seconds, which is freshness's `_age_seconds` / `freshness` naming).
fn is_backlog(name: &str) -> bool {
    ([
        "queue_depth",
        "queue_size",
        "queue_length",
        "backlog",
        "pending",
    ]
    .iter()
    .any(|w| name.contains(w))
        || name.ends_with("_lag")
        || name.contains("lag_messages")
        || name.contains("lag_records"))
        && !name.contains("seconds")
}

fn is_duration(name: &str) -> bool {
    name.contains("seconds") || name.contains("duration") || name.contains("latency")
}

/// The families to evaluate, from the registered series (metric, labels, type).
pub fn choose(series: &[(SeriesKey, MetricType)], exclude: &[Selector]) -> Vec<SignalFamily> {
    // Per metric: its type and label names, over the series not excluded.
    let mut metrics: BTreeMap<&str, (MetricType, BTreeSet<&str>)> = BTreeMap::new();
    for (key, ty) in series {
        if key.metric.starts_with("pipewatch_") || exclude.iter().any(|s| s.matches(key)) {
            continue;
        }
        let e = metrics
            .entry(key.metric.as_str())
            .or_insert_with(|| (*ty, BTreeSet::new()));
        e.1.extend(key.labels.iter().map(|(k, _)| k));
    }
    let mut out = Vec::new();
    let counters: Vec<&str> = metrics
        .iter()
        .filter(|(name, (ty, _))| {
            name.ends_with("_total") && matches!(ty, MetricType::Counter | MetricType::Untyped)
        })
        .map(|(name, _)| *name)
        .collect();
    for &name in &counters {
        if is_error_like(name) {
            // The prefix before the error word: `demo_stage_` of `demo_stage_errors_total`.
            let cut = name
                .find("error")
                .or_else(|| name.find("fail"))
                .unwrap_or(0);
            let prefix = &name[..cut];
            let totals: Vec<&str> = counters
                .iter()
                .copied()
                .filter(|c| {
                    !prefix.is_empty()
                        && c.starts_with(prefix)
                        && !is_error_like(c)
                        && metrics[c].1 == metrics[name].1
                })
                .collect();
            if let [total] = totals.as_slice() {
                out.push(SignalFamily {
                    kind: SignalKind::ErrorRatio,
                    template: Template::Ratio {
                        errors: name.to_string(),
                        total: total.to_string(),
                    },
                });
                continue;
            }
        }
        out.push(SignalFamily {
            kind: SignalKind::Throughput,
            template: Template::Rate {
                metric: name.to_string(),
            },
        });
    }
    for (name, (_, labels)) in &metrics {
        if let Some(base) = name.strip_suffix("_bucket") {
            if labels.contains("le") && !labels.contains("feature") && is_duration(base) {
                for (q, qs) in QUANTILES {
                    out.push(SignalFamily {
                        kind: SignalKind::LatencyQuantile(q),
                        template: Template::Quantile {
                            q: qs,
                            bucket: name.to_string(),
                        },
                    });
                }
            }
            continue;
        }
        let ty = metrics[name].0;
        if !matches!(ty, MetricType::Gauge | MetricType::Untyped) {
            continue;
        }
        let metric = name.to_string();
        if PER_RUN_TIMESTAMPS.contains(name) {
            out.push(SignalFamily {
                kind: SignalKind::Freshness,
                template: Template::RunAge { metric },
            });
        } else if let Some((_, kind)) = PER_RUN_GAUGES.iter().find(|(m, _)| m == name) {
            out.push(SignalFamily {
                kind: *kind,
                template: Template::LastRun { metric },
            });
        } else if name.contains("freshness") || name.ends_with("_age_seconds") {
            out.push(SignalFamily {
                kind: SignalKind::Freshness,
                template: Template::Gauge { metric },
            });
        } else if name.contains("_timestamp") || name.contains("last_success") {
            out.push(SignalFamily {
                kind: SignalKind::Freshness,
                template: Template::Age { metric },
            });
        } else if is_backlog(name) {
            out.push(SignalFamily {
                kind: SignalKind::Backlog,
                template: Template::Gauge { metric },
            });
        } else if *name == "dq_check_observed_value"
            || *name == "dq_dataset_pass_ratio"
            || (name.ends_with("_ratio") && labels.contains("dataset"))
        {
            out.push(SignalFamily {
                kind: SignalKind::DqValue,
                template: Template::Gauge { metric },
            });
        }
    }
    out
}

/// Histograms the drift job compares: `*_bucket` series with `le` and `feature` labels.
pub fn drift_histograms(series: &[(SeriesKey, MetricType)], exclude: &[Selector]) -> Vec<String> {
    let mut out = BTreeSet::new();
    for (key, _) in series {
        if key.metric.ends_with("_bucket")
            && key.labels.get("le").is_some()
            && key.labels.get("feature").is_some()
            && !key.metric.starts_with("pipewatch_")
            && !exclude.iter().any(|s| s.matches(key))
        {
            out.insert(key.metric.clone());
        }
    }
    out.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use model::Labels;

    fn s(metric: &str, labels: &[(&str, &str)], ty: MetricType) -> (SeriesKey, MetricType) {
        (
            SeriesKey::new(metric, Labels::from_pairs(labels.iter().copied())),
            ty,
        )
    }

    fn demo_like() -> Vec<(SeriesKey, MetricType)> {
        use MetricType::*;
        vec![
            s(
                "demo_stage_rows_processed_total",
                &[("stage", "transform")],
                Counter,
            ),
            s(
                "demo_stage_errors_total",
                &[("stage", "transform")],
                Counter,
            ),
            s(
                "demo_stage_latency_seconds_bucket",
                &[("stage", "transform"), ("le", "0.1")],
                Histogram,
            ),
            s(
                "demo_feature_value_bucket",
                &[("stage", "transform"), ("feature", "basket"), ("le", "60")],
                Histogram,
            ),
            s(
                "demo_dataset_freshness_seconds",
                &[("dataset", "raw")],
                Gauge,
            ),
            s(
                "demo_dataset_null_ratio",
                &[("dataset", "raw"), ("column", "id")],
                Gauge,
            ),
            s("demo_stage_queue_depth", &[("stage", "transform")], Gauge),
            s("demo_export_last_success_timestamp_seconds", &[], Gauge),
            s(
                "openlineage_dataset_output_rows",
                &[
                    ("namespace", "demo"),
                    ("dataset", "clean_orders"),
                    ("job", "transform"),
                ],
                Gauge,
            ),
            s(
                "openlineage_run_duration_seconds",
                &[
                    ("namespace", "demo"),
                    ("job", "transform"),
                    ("state", "COMPLETE"),
                ],
                Gauge,
            ),
            s("pipewatch_ingest_samples_written_total", &[], Counter),
            s("batch_rows_total", &[("job", "batch")], Counter),
        ]
    }

    #[test]
    fn signals_are_chosen_by_kind_from_names_and_types() {
        let exclude = [Selector::parse("{job=\"batch\"}").unwrap()];
        let fams = choose(&demo_like(), &exclude);
        let queries: Vec<(String, String)> =
            fams.iter().map(|f| (f.kind_name(), f.query(""))).collect();
        let q = |k: &str, e: &str| (k.to_string(), e.to_string());
        assert_eq!(
            queries,
            vec![
                q(
                    "error_ratio",
                    "rate(demo_stage_errors_total[2m]) / rate(demo_stage_rows_processed_total[2m])"
                ),
                q("throughput", "rate(demo_stage_rows_processed_total[2m])"),
                q("freshness", "demo_dataset_freshness_seconds"),
                q("dq_value", "demo_dataset_null_ratio"),
                q(
                    "freshness",
                    "time() - demo_export_last_success_timestamp_seconds"
                ),
                q(
                    "latency_p50",
                    "histogram_quantile(0.5, rate(demo_stage_latency_seconds_bucket[2m]))"
                ),
                q(
                    "latency_p95",
                    "histogram_quantile(0.95, rate(demo_stage_latency_seconds_bucket[2m]))"
                ),
                q(
                    "latency_p99",
                    "histogram_quantile(0.99, rate(demo_stage_latency_seconds_bucket[2m]))"
                ),
                q("backlog", "demo_stage_queue_depth"),
                q(
                    "volume",
                    "last_over_time(openlineage_dataset_output_rows[1d])"
                ),
                q(
                    "run_duration",
                    "last_over_time(openlineage_run_duration_seconds[1d])"
                ),
            ]
        );
        assert_eq!(
            drift_histograms(&demo_like(), &exclude),
            vec!["demo_feature_value_bucket".to_string()]
        );
    }

    #[test]
    fn the_rate_window_in_ms_is_the_rate_window() {
        assert_eq!(
            humantime::parse_duration(RATE_WINDOW).unwrap().as_millis() as i64,
            RATE_WINDOW_MS
        );
    }

    #[test]
    fn signal_identity_quotes_label_values_and_names_the_node() {
        let labels = BTreeMap::from([
            ("stage".to_string(), "trans\"form".to_string()),
            ("job".to_string(), "demo".to_string()),
        ]);
        assert_eq!(matchers(&labels), "{job=\"demo\",stage=\"trans\\\"form\"}");
        assert_eq!(node_of(&labels).as_deref(), Some("trans\"form"));
        assert!(query::parse(&format!("rate(x{}[2m])", matchers(&labels))).is_ok());
    }
}
