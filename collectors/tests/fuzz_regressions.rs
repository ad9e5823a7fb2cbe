//! Replays inputs through the checks the fuzz targets run (`collectors::fuzzing`): every input
//! fuzzing ever found (tests/fixtures/fuzz/<target>/), and the real captured fixtures the
//! fuzzers start from, so the checks themselves are exercised on well-formed data too.

use std::path::{Path, PathBuf};

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn files_under(dir: &Path, keep: &dyn Fn(&Path) -> bool, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            files_under(&p, keep, out);
        } else if keep(&p) {
            out.push(p);
        }
    }
}

/// Which fixture file names a target is seeded with.
type Keep = fn(&str) -> bool;

/// The fixture files each target's fuzzer is seeded with (scripts/fuzz.sh).
fn seeds(target: &str) -> Vec<PathBuf> {
    let (dir, keep): (&str, Keep) = match target {
        "prometheus_text" => ("prometheus", |n| {
            n.ends_with(".txt") && !n.contains("headers")
        }),
        "remote_write" => ("remote_write", |n| n.ends_with(".bin")),
        "otlp_protobuf" => ("otlp", |n| n.ends_with(".pb")),
        "otlp_json" => ("otlp", |n| {
            n.ends_with(".json") && !n.ends_with(".expected.json") && !n.ends_with(".headers.json")
        }),
        "dq" => ("dq", |n| n.ends_with(".json") && n != "expected.json"),
        "openlineage" => ("openlineage", |n| n.ends_with(".json")),
        "alerts" => ("alertmanager", |n| n.ends_with(".json")),
        other => {
            panic!("no seeds known for fuzz target {other}; add it here and in scripts/fuzz.sh")
        }
    };
    let mut out = Vec::new();
    let by_name = |p: &Path| keep(&p.file_name().unwrap().to_string_lossy());
    files_under(&fixtures().join(dir), &by_name, &mut out);
    out
}

#[test]
fn every_fuzz_target_has_seed_fixtures_and_replays_them_and_its_finds() {
    for (target, check) in collectors::fuzzing::TARGETS {
        let seeds = seeds(target);
        assert!(!seeds.is_empty(), "{target}: no seed fixtures found");
        let mut finds = Vec::new();
        files_under(&fixtures().join("fuzz").join(target), &|_| true, &mut finds);
        for p in seeds.iter().chain(&finds) {
            let bytes = std::fs::read(p).unwrap();
            let outcome = std::panic::catch_unwind(|| check(&bytes));
            assert!(outcome.is_ok(), "{target} panicked on {}", p.display());
        }
    }
}
