//! Relabelling against Prometheus' own expectations: the golden cases in
//! `fixtures/relabel/prometheus_relabel_cases.json` restate `TestRelabel` of Prometheus'
//! `model/relabel/relabel_test.go` (see the fixture README), and the refused rules restate
//! `TestRelabelValidate` / `Config.Validate` and `TestTargetLabelLegacyValidity`.

use collectors::relabel::{relabel, Action, RelabelConfig};
use model::Labels;
use serde::Deserialize;
use std::collections::BTreeMap;

#[derive(Deserialize)]
struct Case {
    name: String,
    input: BTreeMap<String, String>,
    rules: Vec<RelabelConfig>,
    output: Option<BTreeMap<String, String>>,
}

#[derive(Deserialize)]
struct Invalid {
    rule: RelabelConfig,
    error: String,
}

fn fixture(name: &str) -> String {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/relabel")
        .join(name);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn labels(m: &BTreeMap<String, String>) -> Labels {
    Labels::from_pairs(m.clone())
}

#[test]
fn every_prometheus_relabel_case_gives_prometheus_result() {
    let cases: Vec<Case> = serde_json::from_str(&fixture("prometheus_relabel_cases.json"))
        .expect("cases parse (a rule that does not deserialise fails here)");
    assert_eq!(cases.len(), 31, "the fixture lost or gained cases");
    for case in cases {
        for (i, r) in case.rules.iter().enumerate() {
            r.validate()
                .unwrap_or_else(|e| panic!("{}: rule {i} refused: {e}", case.name));
        }
        let got = relabel(&labels(&case.input), &case.rules);
        let want = case.output.as_ref().map(labels);
        assert_eq!(got, want, "case {:?}", case.name);
    }
}

#[test]
fn rules_prometheus_refuses_are_refused_with_its_words() {
    let cases: Vec<Invalid> =
        serde_json::from_str(&fixture("invalid_rules.json")).expect("cases parse");
    for c in cases {
        let e = c
            .rule
            .validate()
            .expect_err(&format!("{:?} must be refused", c.rule))
            .to_string();
        assert!(e.contains(&c.error), "{e:?} should contain {:?}", c.error);
    }
}

#[test]
fn replace_target_label_templates_follow_prometheus_legacy_validity() {
    // TestTargetLabelLegacyValidity in Prometheus' relabel_test.go.
    for (target, valid) in [
        ("-label", false),
        ("label", true),
        ("label${1}", true),
        ("${1}label", true),
        ("${1}", true),
        ("${", false),
        ("$", false),
        ("${}", false),
        ("foo${", false),
        ("$1", true),
        ("asd$2asd", true),
        ("-foo${1}bar-", false),
        ("bar.foo${1}bar", false),
        ("_${1}_", true),
        ("foo${bar}foo", true),
    ] {
        let rule = RelabelConfig {
            target_label: target.to_string(),
            ..Default::default()
        };
        assert_eq!(rule.validate().is_ok(), valid, "target_label {target:?}");
    }
}

#[test]
fn omitted_fields_take_prometheus_defaults() {
    let r: RelabelConfig = serde_json::from_str(r#"{"target_label": "x"}"#).unwrap();
    assert_eq!(r.action, Action::Replace);
    assert_eq!(r.separator, ";");
    assert_eq!(r.regex.as_str(), "(.*)");
    assert_eq!(r.replacement, "$1");
    assert_eq!(r.modulus, 0);
    assert!(r.source_labels.is_empty());
}

#[test]
fn action_names_are_case_insensitive_and_unknown_ones_are_named() {
    let r: RelabelConfig =
        serde_json::from_str(r#"{"action": "LabelDrop", "regex": "x"}"#).unwrap();
    assert_eq!(r.action, Action::LabelDrop);
    let e = serde_json::from_str::<RelabelConfig>(r#"{"action": "delete"}"#)
        .unwrap_err()
        .to_string();
    assert!(e.contains("unknown relabel action \"delete\""), "{e}");
    assert!(
        e.contains("labeldrop"),
        "the message lists the valid actions: {e}"
    );
}

#[test]
fn a_regex_that_does_not_compile_is_refused_when_read() {
    let e = serde_json::from_str::<RelabelConfig>(r#"{"regex": "(unclosed", "target_label": "x"}"#)
        .unwrap_err()
        .to_string();
    assert!(e.contains("regex \"(unclosed\" does not compile"), "{e}");
}

#[test]
fn unknown_fields_are_refused() {
    let e = serde_json::from_str::<RelabelConfig>(r#"{"target": "x"}"#)
        .unwrap_err()
        .to_string();
    assert!(e.contains("unknown field `target`"), "{e}");
}

#[test]
fn static_replacement_without_source_labels_sets_a_label() {
    // From Prometheus' config/testdata/conf.good.yml (BenchmarkRelabel "example").
    let rules: Vec<RelabelConfig> = serde_json::from_str(
        r#"[{"source_labels": ["job", "__meta_dns_name"], "regex": "(.*)some-[regex]", "target_label": "job", "replacement": "foo-${1}"},
            {"source_labels": ["abc"], "target_label": "cde"},
            {"replacement": "static", "target_label": "abc"}]"#,
    )
    .unwrap();
    let input = Labels::from_pairs([
        ("__meta_dns_name", "example-some-x.com"),
        ("abc", "def"),
        ("job", "foo"),
    ]);
    let out = relabel(&input, &rules).unwrap();
    // "foo;example-some-x.com" does not end in "some-" + one of [regex]: job unchanged.
    assert_eq!(out.get("job"), Some("foo"));
    assert_eq!(out.get("cde"), Some("def"));
    assert_eq!(out.get("abc"), Some("static"));
}
