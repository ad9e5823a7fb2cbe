//! Golden tests of the exposition parser against real exporter bodies.
//!
//! The expected facts come from `fixtures/prometheus/README.md` (counted when the bodies were
//! captured) and from what Prometheus 2.42 itself made of the same exporters in the same run:
//! its remote_write requests in `fixtures/remote_write/`, decoded here by a small independent
//! reader (snappy block + protobuf wire format) that is first checked against the capture's
//! own `*.expected.json` summaries.

use collectors::prometheus_text::{format_from_content_type, parse, Format};
use model::{Batch, MetricType, TimeSeries};
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

const TS: i64 = 1_795_707_629_000;

fn fixture_dir(kind: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(kind)
}

fn read(name: &str) -> String {
    std::fs::read_to_string(fixture_dir("prometheus").join(name))
        .unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// The Content-Type the exporter answered with, from the captured response headers.
fn content_type(name: &str) -> String {
    read(&format!("{name}.headers.txt"))
        .lines()
        .find_map(|l| l.strip_prefix("Content-Type: ").map(str::to_owned))
        .unwrap_or_else(|| panic!("{name}.headers.txt has no Content-Type"))
}

fn parse_fixture(name: &str) -> Batch {
    let ct = content_type(name);
    let body = read(name);
    parse(&body, format_from_content_type(Some(&ct)), TS).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn family_types(b: &Batch) -> BTreeMap<&'static str, usize> {
    let mut m = BTreeMap::new();
    for md in &b.metadata {
        *m.entry(md.metric_type.as_str()).or_default() += 1;
    }
    m
}

fn find<'a>(b: &'a Batch, metric: &str, labels: &[(&str, &str)]) -> &'a TimeSeries {
    b.series
        .iter()
        .find(|s| {
            s.key.metric == metric && labels.iter().all(|(k, v)| s.key.labels.get(k) == Some(*v))
        })
        .unwrap_or_else(|| panic!("no series {metric}{labels:?}"))
}

fn value(b: &Batch, metric: &str, labels: &[(&str, &str)]) -> f64 {
    find(b, metric, labels).samples[0].value
}

fn nan_count(b: &Batch) -> usize {
    b.series
        .iter()
        .filter(|s| s.samples[0].value.is_nan())
        .count()
}

#[test]
fn every_captured_body_parses_with_its_content_type() {
    let mut seen = 0;
    for entry in std::fs::read_dir(fixture_dir("prometheus")).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        let is_body = !name.ends_with(".md")
            && !name.ends_with(".headers.txt")
            && !name.ends_with(".json")
            && !name.ends_with(".gz");
        if !is_body {
            continue;
        }
        let b = parse_fixture(&name);
        assert!(b.sample_count() > 0, "{name} gave no samples");
        // No exporter writes timestamps: every sample carries the scrape time.
        assert!(
            b.series
                .iter()
                .all(|s| s.samples.iter().all(|x| x.ts == TS)),
            "{name}"
        );
        // Every series is either typed by a declared family or untyped without one.
        let declared: BTreeSet<&str> = b.metadata.iter().map(|m| m.family.as_str()).collect();
        for s in &b.series {
            if s.metric_type != MetricType::Untyped {
                assert!(
                    declared.iter().any(|f| s.key.metric.starts_with(f)),
                    "{name}: {}",
                    s.key
                );
            }
        }
        seen += 1;
    }
    assert_eq!(seen, 6, "expected the six captured bodies");
}

#[test]
fn node_exporter_counts_match_the_capture() {
    let b = parse_fixture("node_exporter.txt");
    assert_eq!(b.metadata.len(), 283);
    assert_eq!(
        family_types(&b),
        BTreeMap::from([
            ("counter", 60),
            ("gauge", 175),
            ("summary", 1),
            ("untyped", 47),
        ])
    );
    assert_eq!(b.sample_count(), 507);
    assert_eq!(b.series.len(), 507);
    // Empty label values (`model=""` and friends) are absent labels.
    let body = read("node_exporter.txt");
    assert!(body.contains("=\"\""));
    assert!(b
        .series
        .iter()
        .all(|s| s.key.labels.iter().all(|(_, v)| !v.is_empty())));
    let uname = find(&b, "node_uname_info", &[("nodename", "vm")]);
    assert_eq!(uname.metric_type, MetricType::Gauge);
    assert_eq!(
        value(&b, "process_virtual_memory_max_bytes", &[]),
        1.8446744073709552e19
    );
}

#[test]
fn gzip_body_decompresses_to_a_scrape_with_the_same_families() {
    use std::io::Read;
    let gz = std::fs::read(fixture_dir("prometheus").join("node_exporter.txt.gz")).unwrap();
    let mut text = String::new();
    flate2::read::GzDecoder::new(&gz[..])
        .read_to_string(&mut text)
        .unwrap();
    assert_eq!(text.len(), 57_718);
    let b = parse(
        &text,
        format_from_content_type(Some(&content_type("node_exporter.txt.gz"))),
        TS,
    )
    .unwrap();
    let plain = parse_fixture("node_exporter.txt");
    let names = |b: &Batch| {
        b.metadata
            .iter()
            .map(|m| (m.family.clone(), m.metric_type.as_str()))
            .collect::<BTreeSet<_>>()
    };
    assert_eq!(names(&b), names(&plain));
}

#[test]
fn postgres_exporter_counts_nan_and_empty_datname() {
    let b = parse_fixture("postgres_exporter.txt");
    assert_eq!(b.metadata.len(), 341);
    assert_eq!(
        family_types(&b),
        BTreeMap::from([
            ("counter", 41),
            ("gauge", 289),
            ("summary", 1),
            ("untyped", 10),
        ])
    );
    assert_eq!(b.sample_count(), 501);
    assert_eq!(nan_count(&b), 13);
    // 26 samples were written with datname="": they come out without a datname label.
    let body = read("postgres_exporter.txt");
    let empty_lines: Vec<&str> = body
        .lines()
        .filter(|l| l.contains("datname=\"\""))
        .collect();
    assert_eq!(empty_lines.len(), 26);
    let without: usize = b
        .series
        .iter()
        .filter(|s| s.key.labels.get("datname").is_none() && s.key.labels.get("datid").is_some())
        .count();
    assert!(without >= 26, "{without}");
    let server = find(
        &b,
        "pg_stat_archiver_last_archive_age",
        &[("server", "127.0.0.1:15433")],
    );
    assert!(server.samples[0].value.is_nan());
}

#[test]
fn prometheus_server_histograms_and_summaries() {
    let b = parse_fixture("prometheus_server.txt");
    assert_eq!(b.metadata.len(), 202);
    let types = family_types(&b);
    assert_eq!(types["histogram"], 8);
    assert_eq!(types["summary"], 10);
    let nan_quantiles = b
        .series
        .iter()
        .filter(|s| s.metric_type == MetricType::Summary && s.key.labels.get("quantile").is_some())
        .filter(|s| s.samples[0].value.is_nan())
        .count();
    assert_eq!(nan_quantiles, 26);
    // Unsorted label order on the wire does not matter.
    let q = find(
        &b,
        "prometheus_engine_query_duration_seconds",
        &[("slice", "inner_eval"), ("quantile", "0.5")],
    );
    assert_eq!(q.metric_type, MetricType::Summary);
    assert_histograms_are_cumulative(&b, 8);
}

/// Buckets of each histogram, ordered by their bound as a number, must have non-decreasing
/// counts, end in `+Inf`, and the `+Inf` bucket must equal `_count`. Comparing bounds as
/// strings would misorder `le="10"` before `le="2.5"`.
fn assert_histograms_are_cumulative(b: &Batch, min_histograms: usize) {
    let mut groups: BTreeMap<String, Vec<(f64, f64)>> = BTreeMap::new();
    for s in b
        .series
        .iter()
        .filter(|s| s.key.metric.ends_with("_bucket"))
    {
        let mut rest = s.key.labels.clone();
        let le: f64 = rest
            .remove("le")
            .expect("bucket without le")
            .parse()
            .expect("le is a number");
        groups
            .entry(format!("{}{}", s.key.metric, rest))
            .or_default()
            .push((le, s.samples[0].value));
    }
    assert!(groups.len() >= min_histograms, "{}", groups.len());
    for (key, mut buckets) in groups {
        buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
        assert_eq!(buckets.last().unwrap().0, f64::INFINITY, "{key}");
        assert!(
            buckets.windows(2).all(|w| w[0].1 <= w[1].1),
            "{key}: {buckets:?}"
        );
        let count_key = key.replacen("_bucket", "_count", 1);
        let count = b
            .series
            .iter()
            .find(|s| format!("{}{}", s.key.metric, s.key.labels) == count_key)
            .unwrap_or_else(|| panic!("no {count_key}"));
        assert_eq!(count.samples[0].value, buckets.last().unwrap().1, "{key}");
    }
}

#[test]
fn pushgateway_escapes_utf8_and_special_values() {
    let b = parse_fixture("pushgateway.txt");
    let esc = find(
        &b,
        "pipeline_rows_processed_total",
        &[("job", "pipeline_batch"), ("step", "load \"orders\"")],
    );
    assert_eq!(esc.key.labels.get("path"), Some("C:\\data\\in\\orders.csv"));
    assert_eq!(esc.key.labels.get("note"), Some("line one\nline two"));
    assert_eq!(esc.samples[0].value, 12345.0);
    let utf8 = find(
        &b,
        "pipeline_rows_processed_total",
        &[("step", "transform")],
    );
    assert_eq!(
        utf8.key.labels.get("path"),
        Some("/srv/data/café_ünïcødé_☃")
    );
    assert_eq!(
        utf8.key.labels.get("note"),
        None,
        "note=\"\" is an absent label"
    );
    let nightly = find(
        &b,
        "pipeline_rows_processed_total",
        &[("job", "etl/nightly")],
    );
    assert_eq!(
        nightly.key.labels.get("instance"),
        None,
        "instance=\"\" is an absent label"
    );

    let help = b
        .metadata
        .iter()
        .find(|m| m.family == "pipeline_rows_processed_total")
        .unwrap();
    assert_eq!(
        help.help,
        "Rows processed by a pipeline step; help with a backslash \\ and a newline \n escape."
    );
    let special = |kind| value(&b, "pipeline_special_values", &[("kind", kind)]);
    assert!(special("nan").is_nan());
    assert_eq!(special("pos_inf"), f64::INFINITY);
    assert_eq!(special("neg_inf"), f64::NEG_INFINITY);
    assert_eq!(special("tiny"), 1e-300);
    assert_eq!(special("neg_zero"), 0.0);
    assert_eq!(special("big_int"), 9_007_199_254_740_992.0);

    let untyped = b
        .metadata
        .iter()
        .find(|m| m.family == "pipeline_untyped_thing")
        .unwrap();
    assert_eq!(
        (untyped.metric_type, untyped.help.as_str()),
        (MetricType::Untyped, "")
    );
    assert_eq!(
        find(&b, "pipeline_batch_duration_seconds_sum", &[]).metric_type,
        MetricType::Histogram
    );
    assert_eq!(
        find(&b, "pipeline_record_size_bytes", &[("quantile", "0.99")]).metric_type,
        MetricType::Summary
    );
    assert_histograms_are_cumulative(&b, 1);
}

#[test]
fn python_client_text_format_has_created_gauges_and_total_counter() {
    let b = parse_fixture("python_client.txt");
    let md = |f: &str| {
        b.metadata
            .iter()
            .find(|m| m.family == f)
            .unwrap_or_else(|| panic!("{f}"))
            .metric_type
    };
    assert_eq!(md("etl_rows_written_total"), MetricType::Counter);
    assert_eq!(md("etl_rows_written_created"), MetricType::Gauge);
    assert_eq!(md("etl_batch_size_rows"), MetricType::Summary);
    assert_eq!(value(&b, "etl_batch_size_rows_count", &[]), 3.0);
    assert!(
        !b.series
            .iter()
            .any(|s| s.key.metric == "etl_batch_size_rows"),
        "summary without quantiles"
    );
    // Python writes le="1.0" where Go writes le="1": kept as written, equal as numbers.
    let one = find(&b, "etl_step_latency_seconds_bucket", &[("le", "1.0")]);
    assert_eq!(
        one.key.labels.get("le").unwrap().parse::<f64>().unwrap(),
        1.0
    );
    assert_histograms_are_cumulative(&b, 1);
}

#[test]
fn python_client_openmetrics_families_units_exemplars_and_eof() {
    let body = read("python_client.openmetrics.txt");
    let format = format_from_content_type(Some(&content_type("python_client.openmetrics.txt")));
    assert_eq!(format, Format::OpenMetrics);
    let b = parse(&body, format, TS).unwrap();
    let md = |f: &str| {
        b.metadata
            .iter()
            .find(|m| m.family == f)
            .unwrap_or_else(|| panic!("{f}"))
    };
    assert_eq!(md("etl_rows_written").metric_type, MetricType::Counter);
    assert!(!b
        .metadata
        .iter()
        .any(|m| m.family == "etl_rows_written_total"));
    assert_eq!(
        find(&b, "etl_rows_written_total", &[("table", "orders")]).metric_type,
        MetricType::Counter
    );
    let created = find(&b, "etl_rows_written_created", &[("table", "orders")]);
    assert_eq!(
        (created.metric_type, created.samples[0].value),
        (MetricType::Counter, 1.7957076197510011e9)
    );
    assert_eq!(md("etl_freshness_lag_seconds").unit, "seconds");
    assert_eq!(md("etl_build").metric_type, MetricType::Info);
    let info = find(
        &b,
        "etl_build_info",
        &[("version", "1.4.2"), ("git_sha", "deadbeef")],
    );
    assert_eq!(
        (info.metric_type, info.samples[0].value),
        (MetricType::Info, 1.0)
    );
    let states: BTreeMap<&str, f64> = b
        .series
        .iter()
        .filter(|s| s.key.metric == "etl_job_state")
        .map(|s| {
            (
                s.key.labels.get("etl_job_state").unwrap(),
                s.samples[0].value,
            )
        })
        .collect();
    assert_eq!(
        states,
        BTreeMap::from([("failed", 0.0), ("idle", 0.0), ("running", 1.0)])
    );
    assert!(b
        .series
        .iter()
        .filter(|s| s.key.metric == "etl_job_state")
        .all(|s| s.metric_type == MetricType::StateSet));
    assert_eq!(b.sample_count(), 22);

    // The 7 exemplars (one per bucket including +Inf, one on a counter) are validated: breaking
    // any one of them makes the parse fail on that line.
    let exemplar_lines: Vec<usize> = body
        .lines()
        .enumerate()
        .filter(|(_, l)| l.contains(" # {"))
        .map(|(i, _)| i + 1)
        .collect();
    assert_eq!(exemplar_lines.len(), 7);
    for &n in &exemplar_lines {
        let broken: String = body
            .lines()
            .enumerate()
            .map(|(i, l)| {
                if i + 1 == n {
                    format!("{}x\n", l.trim_end())
                } else {
                    format!("{l}\n")
                }
            })
            .collect();
        let e = parse(&broken, Format::OpenMetrics, TS).unwrap_err();
        assert_eq!(e.line, n, "{e}");
        assert!(e.message.contains("exemplar's timestamp"), "{e}");
    }
    // The same body read as text 0.0.4 fails on the first exemplar, not silently.
    assert_eq!(
        parse(&body, Format::Text004, TS).unwrap_err().line,
        exemplar_lines[0]
    );

    let truncated = body.strip_suffix("# EOF\n").unwrap();
    let e = parse(truncated, Format::OpenMetrics, TS).unwrap_err();
    assert!(e.message.contains("missing \"# EOF\""), "{e}");
}

/// A tiny reader for Prometheus remote_write 1.0 bodies, written from the wire-format spec
/// (not from the collectors crate), so it can serve as the oracle here.
mod remote_write {
    pub struct Series {
        pub labels: Vec<(String, String)>,
        pub samples: Vec<(i64, f64)>,
    }
    pub struct Metadata {
        pub kind: u64,
        pub family: String,
        pub help: String,
    }

    enum Field<'a> {
        Varint(u64),
        Fixed64([u8; 8]),
        Bytes(&'a [u8]),
    }

    fn varint(b: &[u8], i: &mut usize) -> u64 {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = b[*i];
            *i += 1;
            v |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return v;
            }
        }
        panic!("varint too long")
    }

    fn fields(b: &[u8]) -> Vec<(u64, Field<'_>)> {
        let mut out = Vec::new();
        let mut i = 0;
        while i < b.len() {
            let key = varint(b, &mut i);
            let f = match key & 7 {
                0 => Field::Varint(varint(b, &mut i)),
                1 => {
                    let v = b[i..i + 8].try_into().unwrap();
                    i += 8;
                    Field::Fixed64(v)
                }
                2 => {
                    let n = varint(b, &mut i) as usize;
                    i += n;
                    Field::Bytes(&b[i - n..i])
                }
                5 => {
                    i += 4;
                    continue;
                }
                w => panic!("wire type {w}"),
            };
            out.push((key >> 3, f));
        }
        out
    }

    fn string(b: &[u8]) -> String {
        String::from_utf8(b.to_vec()).expect("label strings are UTF-8")
    }

    pub fn decode(snappy_body: &[u8]) -> (Vec<Series>, Vec<Metadata>) {
        let raw = snap::raw::Decoder::new()
            .decompress_vec(snappy_body)
            .expect("snappy block");
        let (mut series, mut metadata) = (Vec::new(), Vec::new());
        for (n, f) in fields(&raw) {
            let Field::Bytes(msg) = f else { continue };
            if n == 1 {
                let mut s = Series {
                    labels: Vec::new(),
                    samples: Vec::new(),
                };
                for (n, f) in fields(msg) {
                    let Field::Bytes(inner) = f else { continue };
                    match n {
                        1 => {
                            let (mut k, mut v) = (String::new(), String::new());
                            for (n, f) in fields(inner) {
                                if let Field::Bytes(b) = f {
                                    if n == 1 {
                                        k = string(b)
                                    } else if n == 2 {
                                        v = string(b)
                                    }
                                }
                            }
                            s.labels.push((k, v));
                        }
                        2 => {
                            let (mut ts, mut val) = (0i64, 0f64);
                            for (n, f) in fields(inner) {
                                match (n, f) {
                                    (1, Field::Fixed64(b)) => val = f64::from_le_bytes(b),
                                    (2, Field::Varint(v)) => ts = v as i64,
                                    _ => {}
                                }
                            }
                            s.samples.push((ts, val));
                        }
                        _ => {}
                    }
                }
                series.push(s);
            } else if n == 3 {
                let mut m = Metadata {
                    kind: 0,
                    family: String::new(),
                    help: String::new(),
                };
                for (n, f) in fields(msg) {
                    match (n, f) {
                        (1, Field::Varint(v)) => m.kind = v,
                        (2, Field::Bytes(b)) => m.family = string(b),
                        (4, Field::Bytes(b)) => m.help = string(b),
                        _ => {}
                    }
                }
                metadata.push(m);
            }
        }
        (series, metadata)
    }
}

fn remote_write_requests() -> Vec<(
    String,
    Vec<remote_write::Series>,
    Vec<remote_write::Metadata>,
)> {
    let dir = fixture_dir("remote_write");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".bin"))
        .collect();
    names.sort();
    names
        .into_iter()
        .map(|n| {
            let (s, m) = remote_write::decode(&std::fs::read(dir.join(&n)).unwrap());
            (n, s, m)
        })
        .collect()
}

#[test]
fn oracle_reader_agrees_with_the_capture_summaries() {
    let requests = remote_write_requests();
    assert_eq!(requests.len(), 6);
    for (name, series, metadata) in &requests {
        let expected: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(
                fixture_dir("remote_write").join(name.replace(".bin", ".expected.json")),
            )
            .unwrap(),
        )
        .unwrap();
        assert_eq!(
            series.len() as u64,
            expected["timeseries_count"].as_u64().unwrap(),
            "{name}"
        );
        assert_eq!(
            metadata.len() as u64,
            expected["metadata_count"].as_u64().unwrap(),
            "{name}"
        );
        let samples: Vec<f64> = series
            .iter()
            .flat_map(|s| s.samples.iter().map(|x| x.1))
            .collect();
        assert_eq!(
            samples.len() as u64,
            expected["samples_count"].as_u64().unwrap(),
            "{name}"
        );
        let nan = samples.iter().filter(|v| v.is_nan()).count();
        assert_eq!(
            nan as u64,
            expected["nan_sample_count"].as_u64().unwrap(),
            "{name}"
        );
        let mut per_name: BTreeMap<String, u64> = BTreeMap::new();
        for s in series {
            let n = s
                .labels
                .iter()
                .find(|(k, _)| k == "__name__")
                .unwrap()
                .1
                .clone();
            *per_name.entry(n).or_default() += 1;
        }
        let want: BTreeMap<String, u64> = expected["series_per_metric_name"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.as_u64().unwrap()))
            .collect();
        assert_eq!(per_name, want, "{name}");
    }
}

/// Metric name and label pairs (sorted by name) of one series.
type SeriesId = (String, Vec<(String, String)>);
type SeriesSet = BTreeSet<SeriesId>;

/// What Prometheus stored for one scrape of one target: name and labels of every sample with
/// that scrape's timestamp, minus the labels listed in `drop`.
fn prometheus_scrape(
    jobs: &[&str],
    ts: i64,
    drop: &[&str],
) -> (SeriesSet, BTreeMap<SeriesId, f64>) {
    let mut set = SeriesSet::new();
    let mut values = BTreeMap::new();
    for (_, series, _) in remote_write_requests() {
        for s in series {
            let job = s
                .labels
                .iter()
                .find(|(k, _)| k == "job")
                .map(|(_, v)| v.as_str())
                .unwrap_or("");
            let Some(&(t, v)) = s.samples.first() else {
                continue;
            };
            if t != ts || !jobs.contains(&job) {
                continue;
            }
            let name = s
                .labels
                .iter()
                .find(|(k, _)| k == "__name__")
                .unwrap()
                .1
                .clone();
            let labels: Vec<(String, String)> = s
                .labels
                .into_iter()
                .filter(|(k, _)| k != "__name__" && !drop.contains(&k.as_str()))
                .collect();
            set.insert((name.clone(), labels.clone()));
            values.insert((name, labels), v);
        }
    }
    (set, values)
}

const SYNTHETIC: [&str; 5] = [
    "up",
    "scrape_duration_seconds",
    "scrape_samples_scraped",
    "scrape_samples_post_metric_relabeling",
    "scrape_series_added",
];

fn ours(b: &Batch, drop: &[&str]) -> SeriesSet {
    let mut set: SeriesSet = b
        .series
        .iter()
        .map(|s| {
            let labels = s
                .key
                .labels
                .iter()
                .filter(|(k, _)| !drop.contains(k))
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            (s.key.metric.clone(), labels)
        })
        .collect();
    for n in SYNTHETIC {
        set.insert((n.to_string(), Vec::new()));
    }
    set
}

fn assert_same_series(name: &str, ours: &SeriesSet, prometheus: &SeriesSet) {
    let missing: Vec<_> = prometheus.difference(ours).collect();
    let extra: Vec<_> = ours.difference(prometheus).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "{name}: Prometheus has but we lack {missing:?}; we have but Prometheus lacks {extra:?}"
    );
}

#[test]
fn node_exporter_series_equal_what_prometheus_stored() {
    let drop = ["job", "instance", "fixture"];
    let (prom, _) = prometheus_scrape(&["node"], 1_795_707_629_273, &drop);
    assert_eq!(prom.len(), 512);
    assert_same_series(
        "node",
        &ours(&parse_fixture("node_exporter.txt"), &drop),
        &prom,
    );
}

#[test]
fn postgres_exporter_series_equal_what_prometheus_stored() {
    let drop = ["job", "instance", "fixture"];
    let (prom, _) = prometheus_scrape(&["postgres"], 1_795_707_627_827, &drop);
    assert_eq!(prom.len(), 506);
    assert_same_series(
        "postgres",
        &ours(&parse_fixture("postgres_exporter.txt"), &drop),
        &prom,
    );
}

#[test]
fn python_client_openmetrics_series_and_values_equal_what_prometheus_stored() {
    let drop = ["job", "instance", "fixture"];
    let (prom, prom_values) = prometheus_scrape(&["python_client"], 1_795_707_629_412, &drop);
    assert_eq!(prom.len(), 27);
    let b = parse_fixture("python_client.openmetrics.txt");
    assert_same_series("python_client", &ours(&b, &drop), &prom);
    // The exporter serves fixed values, so Prometheus' values must match ours bit for bit.
    for s in &b.series {
        let labels: Vec<(String, String)> = s
            .key
            .labels
            .iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect();
        let theirs = prom_values[&(s.key.metric.clone(), labels)];
        assert_eq!(theirs.to_bits(), s.samples[0].value.to_bits(), "{}", s.key);
    }
}

#[test]
fn pushgateway_series_equal_what_prometheus_stored_with_honor_labels() {
    let (prom, prom_values) = prometheus_scrape(
        &["pushgateway", "pipeline_batch", "etl/nightly", "stale_demo"],
        1_795_707_629_510,
        &["fixture"],
    );
    let b = parse_fixture("pushgateway.txt");
    // honor_labels: pushed job/instance are kept; only series without them get the target's.
    let mut mine = SeriesSet::new();
    for s in &b.series {
        let mut l = s.key.labels.clone();
        if l.get("job").is_none() {
            l.insert("job", "pushgateway");
            l.insert("instance", "127.0.0.1:19091");
        }
        mine.insert((
            s.key.metric.clone(),
            l.iter().map(|(k, v)| (k.into(), v.into())).collect(),
        ));
    }
    for n in SYNTHETIC {
        let l = vec![
            ("instance".to_string(), "127.0.0.1:19091".to_string()),
            ("job".to_string(), "pushgateway".to_string()),
        ];
        mine.insert((n.to_string(), l));
    }
    assert_same_series("pushgateway", &mine, &prom);
    let key = |kind: &str| {
        let l = [
            ("instance", "worker-1"),
            ("job", "pipeline_batch"),
            ("kind", kind),
        ];
        (
            "pipeline_special_values".to_string(),
            l.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<Vec<_>>(),
        )
    };
    for kind in ["big_int", "neg_inf", "pos_inf", "tiny", "neg_zero"] {
        let ours = value(&b, "pipeline_special_values", &[("kind", kind)]);
        assert_eq!(prom_values[&key(kind)].to_bits(), ours.to_bits(), "{kind}");
    }
}

#[test]
fn family_types_and_help_equal_prometheus_metadata() {
    let requests = remote_write_requests();
    let (_, _, metadata) = requests
        .iter()
        .find(|(n, _, _)| n.contains("metadata"))
        .unwrap();
    let theirs: BTreeMap<&str, (MetricType, &str)> = metadata
        .iter()
        .map(|m| {
            let t = match m.kind {
                0 => MetricType::Untyped,
                1 => MetricType::Counter,
                2 => MetricType::Gauge,
                3 => MetricType::Histogram,
                4 => MetricType::GaugeHistogram,
                5 => MetricType::Summary,
                6 => MetricType::Info,
                7 => MetricType::StateSet,
                k => panic!("metric type {k}"),
            };
            (m.family.as_str(), (t, m.help.as_str()))
        })
        .collect();
    let mut compared = 0;
    for name in [
        "node_exporter.txt",
        "postgres_exporter.txt",
        "prometheus_server.txt",
        "pushgateway.txt",
    ] {
        for md in parse_fixture(name).metadata {
            if let Some(&(t, help)) = theirs.get(md.family.as_str()) {
                assert_eq!(
                    (md.metric_type, md.help.as_str()),
                    (t, help),
                    "{name}: {}",
                    md.family
                );
                compared += 1;
            }
        }
    }
    assert!(compared >= 500, "only {compared} families compared");
}
