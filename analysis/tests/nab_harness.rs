//! The NAB harness end to end on the two NAB files copied into `tests/fixtures/nab/`: parse,
//! stream every row through the default ensemble, write the results file, and check it is what
//! NAB's scorer reads (header, one row per data row in order, timestamps echoed, scores in
//! [0, 1]), and that the run is deterministic.

use std::path::PathBuf;

fn fixture_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/nab/data")
}

const FILES: [&str; 2] = [
    "artificialWithAnomaly/art_daily_jumpsup.csv",
    "realKnownCause/ec2_request_latency_system_failure.csv",
];

#[test]
fn harness_writes_a_results_file_nab_can_score() {
    for name in FILES {
        let path = fixture_dir().join(name);
        let data = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
        let result = analysis::nab::score_file(&data).expect("fixture parses");
        let data_lines: Vec<&str> = data.lines().collect();
        let out_lines: Vec<&str> = result.lines().collect();
        assert_eq!(out_lines[0], "timestamp,anomaly_score", "{name}");
        assert_eq!(out_lines.len(), data_lines.len(), "{name}: one row per data row");
        assert_eq!(out_lines.len(), 4033, "{name}");
        let mut top = 0.0f64;
        for (d, o) in data_lines[1..].iter().zip(&out_lines[1..]) {
            let (ts, _) = d.split_once(',').unwrap();
            let (ots, score) = o.split_once(',').unwrap();
            assert_eq!(ts, ots, "{name}: rows out of order");
            let s: f64 = score.parse().unwrap_or_else(|_| panic!("{name}: score `{score}`"));
            assert!((0.0..=1.0).contains(&s), "{name}: score {s} outside [0, 1]");
            top = top.max(s);
        }
        // Both files hold clear anomalies: something must stand out.
        assert!(top > 0.5, "{name}: highest score {top}");
        assert_eq!(analysis::nab::score_file(&data).unwrap(), result, "{name}: not deterministic");
    }
}

#[test]
fn scores_depend_only_on_rows_seen_so_far() {
    // NAB's rule: no look-ahead. Scoring a prefix gives the same scores as the full file.
    let data = std::fs::read_to_string(fixture_dir().join(FILES[1])).unwrap();
    let full = analysis::nab::score_file(&data).unwrap();
    let prefix: String = data.lines().take(2001).map(|l| format!("{l}\n")).collect();
    let part = analysis::nab::score_file(&prefix).unwrap();
    let full_lines: Vec<&str> = full.lines().take(2001).collect();
    let part_lines: Vec<&str> = part.lines().collect();
    assert_eq!(full_lines, part_lines);
}
