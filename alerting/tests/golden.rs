//! Golden tests over the shared rule corpus (`tests/fixtures/rules/`, also run against
//! promtool by `tests/tests/rules_vs_promtool.rs`): every lint file is valid or invalid as its
//! folder says and an invalid one prints exactly its `.errors` file; every unit-test file
//! passes or fails as its name says (`*_pass.yml` / `*_fail.yml`).
//!
//! `PIPEWATCH_BLESS=1 cargo nextest run -p alerting --test golden` rewrites the `.errors`
//! files after a deliberate change of messages; review the diff.

use alerting::unittest::{self, RuleSource};
use std::path::{Path, PathBuf};

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/rules")
}

fn yml_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yml"))
        .collect();
    v.sort();
    v
}

fn lint_output(path: &Path) -> (bool, String) {
    let parsed = alerting::parse(&std::fs::read_to_string(path).unwrap());
    let name = path.file_name().unwrap().to_string_lossy();
    let lines: Vec<String> = parsed
        .diagnostics
        .iter()
        .map(|d| format!("{name}: {d}\n"))
        .collect();
    (parsed.is_valid(), lines.concat())
}

#[test]
fn lint_verdicts_and_messages_match_the_corpus() {
    let bless = std::env::var_os("PIPEWATCH_BLESS").is_some();
    let mut failures = Vec::new();
    for (dir, want_valid) in [("lint/valid", true), ("lint/invalid", false)] {
        for f in yml_files(&corpus().join(dir)) {
            let (valid, out) = lint_output(&f);
            if valid != want_valid {
                failures.push(format!(
                    "{}: valid = {valid}, want {want_valid}:\n{out}",
                    f.display()
                ));
                continue;
            }
            if want_valid {
                continue;
            }
            let golden = f.with_extension("errors");
            if bless {
                std::fs::write(&golden, &out).unwrap();
                continue;
            }
            let want = std::fs::read_to_string(&golden).unwrap_or_else(|e| {
                panic!("{}: {e} (PIPEWATCH_BLESS=1 writes it)", golden.display())
            });
            if want != out {
                failures.push(format!("{}:\nwant:\n{want}got:\n{out}", f.display()));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

fn run_test_file(path: &Path) -> Vec<String> {
    let parsed = match unittest::parse_test_file(&std::fs::read_to_string(path).unwrap()) {
        Ok(p) => p,
        // A test file that does not read is a failed test, as in promtool.
        Err(e) => return vec![e.to_string()],
    };
    let sources: Vec<RuleSource> = parsed
        .rule_files
        .iter()
        .map(|r| {
            let p = path.parent().unwrap().join(r);
            RuleSource {
                name: r.clone(),
                text: std::fs::read_to_string(&p)
                    .unwrap_or_else(|e| panic!("{}: {e}", p.display())),
            }
        })
        .collect();
    unittest::run(&parsed, &sources)
        .into_iter()
        .flat_map(|o| o.errors)
        .collect()
}

#[test]
fn unit_test_files_pass_or_fail_as_named() {
    let mut failures = Vec::new();
    for f in yml_files(&corpus().join("tests")) {
        let errors = run_test_file(&f);
        let name = f.file_name().unwrap().to_string_lossy().into_owned();
        let want_pass = name.ends_with("_pass.yml");
        if errors.is_empty() != want_pass {
            failures.push(format!(
                "{name}: want pass = {want_pass}, errors:\n{}",
                errors.join("\n")
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn pipewatch_kinds_lint_and_evaluate() {
    let dir = corpus().join("extension");
    let (valid, out) = lint_output(&dir.join("pipewatch_kinds.yml"));
    assert!(valid, "{out}");
    let (valid, out) = lint_output(&dir.join("pipewatch_kinds_invalid.yml"));
    assert!(!valid);
    assert!(
        out.contains("pipewatch.kind: unknown kind \"vibes\""),
        "{out}"
    );
    let errors = run_test_file(&dir.join("absence_freshness_test.yml"));
    assert!(errors.is_empty(), "{}", errors.join("\n"));
}

/// A recording rule around `expr`, quoted for YAML.
pub fn rule_file_with(expr: &str) -> String {
    format!(
        "groups:\n  - name: g\n    rules:\n      - record: x:y\n        expr: '{}'\n",
        expr.replace('\'', "''")
    )
}

#[test]
fn expressions_are_accepted_as_promtool_accepts_them() {
    let table = std::fs::read_to_string(corpus().join("lint/expressions.tsv")).unwrap();
    let mut failures = Vec::new();
    for line in table
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let (verdict, expr) = line.split_once('\t').expect("verdict<TAB>expression");
        let parsed = alerting::parse(&rule_file_with(expr));
        if parsed.is_valid() != (verdict == "valid") {
            failures.push(format!(
                "{expr}: promtool says {verdict}, pipewatch {:?}",
                parsed.diagnostics
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
