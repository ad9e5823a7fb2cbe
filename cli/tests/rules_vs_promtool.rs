//! Rules equal to promtool: every rule unit-test file of `tests/fixtures/rules/tests/` gets the same
//! verdict from `pipewatch rules test` as from Debian's `promtool test rules` (2.42), and every
//! rule file of `tests/fixtures/rules/{lint,rules}/` is valid for `pipewatch rules lint` exactly when
//! `promtool check rules` accepts it. The corpus holds passing and deliberately failing cases
//! (`for`, `keep_firing_for`, templates, recording rules, staleness, missing series, invalid
//! rule files, evaluation errors); verdicts are compared per test group, each group run from a
//! file of its own. Files using pipewatch's `pipewatch:` rule kinds (`tests/fixtures/rules/
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

/// Writes each test group of `file` into a file of its own under `dir` (rule file paths made
/// absolute), so verdicts compare per test group: promtool reports one verdict per file.
fn split_test_groups(file: &Path, dir: &Path) -> Vec<(String, PathBuf)> {
    use serde_yaml_ng::Value;
    let text = std::fs::read_to_string(file).unwrap();
    let doc: Value = serde_yaml_ng::from_str(&text).unwrap();
    let base = file.parent().unwrap();
    let stem = file.file_stem().unwrap().to_string_lossy();
    let groups = doc["tests"].as_sequence().cloned().unwrap_or_default();
    let mut out = Vec::new();
    for (i, g) in groups.into_iter().enumerate() {
        let mut one = doc.clone();
        let name = g["name"].as_str().unwrap_or("").to_string();
        one["tests"] = Value::Sequence(vec![g]);
        if let Some(files) = one["rule_files"].as_sequence_mut() {
            for f in files {
                let p = base.join(f.as_str().unwrap());
                *f = Value::String(p.to_string_lossy().into_owned());
            }
        }
        let path = dir.join(format!("{stem}-{i}.yml"));
        std::fs::write(&path, serde_yaml_ng::to_string(&one).unwrap()).unwrap();
        out.push((format!("{} group {i} {name:?}", file.display()), path));
    }
    out
}

#[test]
fn rule_unit_tests_get_promtools_verdicts() {
    let files = yml_files("tests");
    let dir = std::env::temp_dir().join(format!("pipewatch-rules-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut disagreements = Vec::new();
    let (mut passed, mut failed, mut groups) = (0, 0, 0);
    for f in &files {
        // The file name says what the corpus meant; a case that stopped testing what it says
        // is caught here rather than silently agreeing.
        let theirs = promtool(&["test", "rules"], f);
        let meant_to_pass = f.to_string_lossy().ends_with("_pass.yml");
        assert_eq!(
            theirs.status.success(),
            meant_to_pass,
            "promtool's verdict on {} is not what its name says:\n{}",
            f.display(),
            show(&theirs)
        );
        for (what, one) in split_test_groups(f, &dir) {
            groups += 1;
            let theirs = promtool(&["test", "rules"], &one);
            let ours = pipewatch(&["rules", "test"], &one);
            if theirs.status.success() {
                passed += 1;
            } else {
                failed += 1;
            }
            if what.ends_with("(pass)\"") || what.ends_with("(fail)\"") {
                assert_eq!(
                    theirs.status.success(),
                    what.ends_with("(pass)\""),
                    "promtool's verdict on {what} is not what its name says:\n{}",
                    show(&theirs)
                );
            }
            if theirs.status.success() != ours.status.success() {
                disagreements.push(format!(
                    "{what}\n-- promtool: {}\n-- pipewatch: {}",
                    show(&theirs),
                    show(&ours)
                ));
            }
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        passed >= 5 && failed >= 5,
        "the corpus needs passing and failing cases"
    );
    assert!(
        disagreements.is_empty(),
        "{} of {groups} test groups disagree:\n{}",
        disagreements.len(),
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
    assert!(
        out.contains("kind anomaly: evaluated by the server from open anomalies"),
        "{out}"
    );
    let t = corpus().join("extension/absence_freshness_test.yml");
    let ours = pipewatch(&["rules", "test"], &t);
    assert!(ours.status.success(), "{}", show(&ours));
}

#[test]
fn expressions_are_accepted_exactly_as_promtool_accepts_them() {
    // `tests/fixtures/rules/lint/expressions.tsv` records promtool's verdict per expression; both
    // tools are asked again here, each expression in a recording rule of its own file.
    let table = std::fs::read_to_string(corpus().join("lint/expressions.tsv")).unwrap();
    let dir = std::env::temp_dir().join(format!("pipewatch-exprs-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut disagreements = Vec::new();
    let lines = table
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty());
    for (i, line) in lines.enumerate() {
        let (recorded, expr) = line.split_once('\t').expect("verdict<TAB>expression");
        let f = dir.join(format!("expr{i}.yml"));
        std::fs::write(
            &f,
            format!(
                "groups:\n  - name: g\n    rules:\n      - record: x:y\n        expr: '{}'\n",
                expr.replace('\'', "''")
            ),
        )
        .unwrap();
        let theirs = promtool(&["check", "rules"], &f).status.success();
        let ours = pipewatch(&["rules", "lint"], &f).status.success();
        assert_eq!(
            theirs,
            recorded == "valid",
            "{expr}: the table records {recorded}, promtool says otherwise"
        );
        if theirs != ours {
            disagreements.push(format!(
                "{expr}: promtool valid = {theirs}, pipewatch valid = {ours}"
            ));
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    assert!(disagreements.is_empty(), "{}", disagreements.join("\n"));
}
