//! `pipewatch nab` end to end: the binary walks the two NAB files in `fixtures/nab/data`,
//! writes a results folder with the same layout, and each results file is what NAB's scorer
//! reads. Bad input is refused with a message naming the file.

use std::path::PathBuf;
use std::process::Command;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/nab/data")
}

#[test]
fn nab_writes_one_results_file_per_data_file() {
    let out = tempfile_dir("nab-out");
    let run = Command::new(pipewatch_tests::pipewatch_bin())
        .args(["nab", "--data"])
        .arg(fixtures())
        .arg("--out")
        .arg(&out)
        .output()
        .expect("run pipewatch nab");
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    assert_eq!(
        String::from_utf8_lossy(&run.stdout).lines().next().unwrap_or(""),
        format!("2 files, 8064 rows scored into {}", out.display())
    );
    for name in [
        "artificialWithAnomaly/art_daily_jumpsup.csv",
        "realKnownCause/ec2_request_latency_system_failure.csv",
    ] {
        let data = std::fs::read_to_string(fixtures().join(name)).unwrap();
        let result = std::fs::read_to_string(out.join(name))
            .unwrap_or_else(|e| panic!("{name} not written: {e}"));
        let lines: Vec<&str> = result.lines().collect();
        assert_eq!(lines[0], "timestamp,anomaly_score");
        assert_eq!(lines.len(), data.lines().count(), "{name}");
        for (d, r) in data.lines().skip(1).zip(&lines[1..]) {
            let (ts, score) = r.split_once(',').unwrap();
            assert!(d.starts_with(&format!("{ts},")), "{name}: {r} vs {d}");
            let s: f64 = score.parse().unwrap();
            assert!((0.0..=1.0).contains(&s), "{name}: {s}");
        }
    }
    std::fs::remove_dir_all(&out).ok();
}

#[test]
fn nab_names_the_bad_file_and_line() {
    let data = tempfile_dir("nab-bad");
    std::fs::write(data.join("bad.csv"), "timestamp,value\n2014-01-01 00:00:00,oops\n").unwrap();
    let run = Command::new(pipewatch_tests::pipewatch_bin())
        .args(["nab", "--data"])
        .arg(&data)
        .arg("--out")
        .arg(data.join("out"))
        .output()
        .expect("run pipewatch nab");
    assert!(!run.status.success());
    let err = String::from_utf8_lossy(&run.stderr);
    assert!(err.contains("bad.csv") && err.contains("line 2: value `oops` is not a number"), "{err}");
    std::fs::remove_dir_all(&data).ok();
}

/// A fresh empty folder under the system temp dir, unique to this process and test.
fn tempfile_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("pipewatch-{tag}-{}", std::process::id()));
    std::fs::remove_dir_all(&d).ok();
    std::fs::create_dir_all(&d).unwrap();
    d
}
