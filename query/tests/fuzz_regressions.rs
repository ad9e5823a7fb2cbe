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
