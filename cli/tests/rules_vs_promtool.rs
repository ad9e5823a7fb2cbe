//! Rules equal to promtool: every rule unit-test file of `tests/fixtures/rules/tests/` gets the same
//! verdict from `pipewatch rules test` as from Debian's `promtool test rules` (2.42), and every
//! rule file of `tests/fixtures/rules/{lint,rules}/` is valid for `pipewatch rules lint` exactly when
//! `promtool check rules` accepts it. The corpus holds passing and deliberately failing cases
//! (`for`, `keep_firing_for`, templates, recording rules, staleness, missing series, invalid
//! rule files, evaluation errors); each test file has one test group, so a file's verdict is
//! its group's verdict. Files using pipewatch's `pipewatch:` rule kinds (`tests/fixtures/rules/
//! extension/`) are refused by promtool, by design, and accepted by pipewatch.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/rules")
}

fn yml_files(dir: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(corpus().join(dir))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yml"))
        .collect();
    v.sort();
    v
}

fn promtool(args: &[&str], file: &Path) -> Output {
    Command::new("promtool")
        .args(args)
        .arg(file)
        .output()
        .expect("promtool is installed with Debian's prometheus (scripts/setup.sh --test)")
}

fn pipewatch(args: &[&str], file: &Path) -> Output {
    // Cargo builds this package's binary for its integration tests and names it here, so the
    // test never runs another checkout's build from the shared target directory.
    Command::new(env!("CARGO_BIN_EXE_pipewatch"))
        .args(args)
        .arg(file)
        .output()
        .expect("run pipewatch")
}

fn show(o: &Output) -> String {
    format!(
        "exit {:?}\n{}{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn rule_unit_tests_get_promtools_verdicts() {
    let files = yml_files("tests");
    let mut disagreements = Vec::new();
    let (mut passed, mut failed) = (0, 0);
    for f in &files {
        let theirs = promtool(&["test", "rules"], f);
        let ours = pipewatch(&["rules", "test"], f);
        if theirs.status.success() {
            passed += 1;
        } else {
            failed += 1;
        }
        if theirs.status.success() != ours.status.success() {
            disagreements.push(format!(
                "{}\n-- promtool: {}\n-- pipewatch: {}",
                f.display(),
                show(&theirs),
                show(&ours)
            ));
        }
        // The file name says what the corpus meant; a case that stopped testing what it says
        // is caught here rather than silently agreeing.
        let meant_to_pass = f.to_string_lossy().ends_with("_pass.yml");
        assert_eq!(
            theirs.status.success(),
            meant_to_pass,
            "promtool's verdict on {} is not what its name says:\n{}",
            f.display(),
            show(&theirs)
        );
    }
    assert!(
        passed >= 5 && failed >= 5,
        "the corpus needs passing and failing cases"
    );
    assert!(
        disagreements.is_empty(),
        "{} of {} files disagree:\n{}",
        disagreements.len(),
        files.len(),
        disagreements.join("\n\n")
    );
}

#[test]
fn lint_accepts_exactly_what_promtool_check_rules_accepts() {
    let mut files = yml_files("lint/valid");
    files.extend(yml_files("lint/invalid"));
    files.extend(yml_files("rules"));
    let mut disagreements = Vec::new();
    for f in &files {
        let theirs = promtool(&["check", "rules"], f);
        let ours = pipewatch(&["rules", "lint"], f);
        if theirs.status.success() != ours.status.success() {
            disagreements.push(format!(
                "{}\n-- promtool: {}\n-- pipewatch: {}",
                f.display(),
                show(&theirs),
                show(&ours)
            ));
        }
        let in_invalid = f.to_string_lossy().contains("/invalid/");
        if in_invalid {
            // Every error names where it is: line and column of the file.
            let err = String::from_utf8_lossy(&ours.stderr).into_owned();
            assert!(
                err.lines().any(|l| l.contains(".yml: ")),
                "{}: no error printed:\n{err}",
                f.display()
            );
        }
    }
    assert!(
        disagreements.is_empty(),
        "{} of {} files disagree:\n{}",
        disagreements.len(),
        files.len(),
        disagreements.join("\n\n")
    );
}

#[test]
fn pipewatch_rule_kinds_are_an_extension_promtool_refuses() {
    let f = corpus().join("extension/pipewatch_kinds.yml");
    assert!(!promtool(&["check", "rules"], &f).status.success());
    let ours = pipewatch(&["rules", "lint"], &f);
    assert!(ours.status.success(), "{}", show(&ours));
    let out = String::from_utf8_lossy(&ours.stdout);
    assert!(out.contains("SUCCESS: 5 rules found"), "{out}");
    assert!(out.contains("kind anomaly: not evaluated yet"), "{out}");
    let t = corpus().join("extension/absence_freshness_test.yml");
    let ours = pipewatch(&["rules", "test"], &t);
    assert!(ours.status.success(), "{}", show(&ours));
}
