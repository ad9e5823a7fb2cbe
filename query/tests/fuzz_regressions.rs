//! Replays the fuzz target's check (`query::fuzzing`) over the PromQL corpus, hostile corner
//! cases (huge ranges and offsets, tiny subquery steps, extreme numbers) and any input fuzzing
//! found (`fuzz/artifacts/promql_eval/`), so a fixed crash stays fixed.

use query::fuzzing::{check_query, sample_storage};
use std::path::PathBuf;

#[test]
fn corpus_and_corner_cases_evaluate_without_panicking() {
    let db = sample_storage();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let corpus = std::fs::read_to_string(root.join("tests/fixtures/promql/corpus.promql")).unwrap();
    let mut n = 0;
    for line in corpus
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
    {
        check_query(line.as_bytes(), &db);
        n += 1;
    }
    assert!(n > 300, "{n} corpus lines");
    for q in [
        "req_total[100y]",
        "rate(req_total[292y])",
        "max_over_time(depth[5y:1ms])",
        "depth offset 290y",
        "depth offset -290y",
        "depth @ 9999999999999",
        "depth @ -9999999999999",
        "topk(1e300, depth)",
        "topk(-1e300, depth)",
        "quantile(NaN, depth)",
        "round(depth, 0)",
        "histogram_quantile(NaN, lat_bucket)",
        "label_replace(depth, \"x\", \"$99\", \"job\", \"(.*)\")",
        "count_values(\"v\", depth / 0)",
        "predict_linear(depth[1m], 1e308)",
        "holt_winters(depth[10m], 0.5, 0.5)",
        "sum_over_time(depth[1m:1s] offset 1y)",
        "vector(1) ^ 1e308",
        "-(-(-depth))",
        "absent_over_time(nothing[1y:1ms])",
    ] {
        check_query(q.as_bytes(), &db);
    }
    let found = root.join("fuzz/artifacts/promql_eval");
    if let Ok(dir) = std::fs::read_dir(found) {
        for e in dir.flatten() {
            check_query(&std::fs::read(e.path()).unwrap(), &db);
        }
    }
}

/// Every input of `dir` (committed findings and local fuzz artifacts) run through `check`.
fn replay(target: &str, check: &dyn Fn(&[u8])) -> usize {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut n = 0;
    for dir in [
        root.join("tests/fixtures/fuzz").join(target),
        root.join("../fuzz/artifacts").join(target),
    ] {
        if let Ok(entries) = std::fs::read_dir(dir) {
            for e in entries.flatten() {
                check(&std::fs::read(e.path()).unwrap());
                n += 1;
            }
        }
    }
    n
}

#[test]
fn selectors_and_their_corner_cases_round_trip_within_the_limits() {
    use query::fuzzing::check_selector;
    let many = |n: usize| {
        let m: Vec<String> = (0..n).map(|i| format!("l{i}=~\"v\"")).collect();
        format!("x{{{}}}", m.join(","))
    };
    for s in [
        r#"up{job="a\nb", x!~"\\d+"}"#,
        "up{a=\"\u{7f}\u{1b}\r\"}",
        r#"{__name__=~"up|down", a='b'}"#,
        r#"x{a=~".{9999}"}"#,
        "x{a=\"\0\"}",
        "x{a=`raw\\`}",
        "o1lho[44444444444444444444444444444440]",
        &many(64),
        &many(65),
    ] {
        check_selector(s.as_bytes());
    }
    replay("selectors", &check_selector);
}

#[test]
fn query_parameters_at_the_edges_evaluate_without_panicking() {
    use query::fuzzing::check_query_params;
    let db = sample_storage();
    for p in [
        "depth\n-9.2e15\n0\n1e300",
        "depth\n0\n9.2e15\n1",
        "depth\n-1e300\n1e300\n1e-300",
        "rate(req_total[5m])\n0\n600\n15s",
        "depth\n0\n600\n292y",
        "depth\nNaN\ninf\n-1",
        "depth\n9223372036854775.807\n9223372036854775.807\n1ms",
        "sum_over_time(depth[1m:1s])\n-9e15\n9e15\n1000y",
    ] {
        check_query_params(p.as_bytes(), &db);
    }
    replay("query_params", &|d| check_query_params(d, &db));
}
