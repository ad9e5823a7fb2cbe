//! Service discovery decoding and target building against Prometheus' own fixtures and
//! expectations (see `fixtures/sd/README.md`: the files come from Prometheus'
//! `discovery/file/fixtures` and `discovery/http/fixtures`, the expected groups from
//! `discovery/file/file_test.go` and `discovery/http/http_test.go`; target building follows
//! `scrape/target.go` `PopulateLabels`).

use collectors::relabel::RelabelConfig;
use collectors::sd::{
    decode_file_sd, decode_target_groups_json, discovered_labels, resolve_target, JobDefaults,
    SdError, TargetError, TargetGroup,
};
use model::Labels;
use std::time::Duration;

fn fixture(name: &str) -> Vec<u8> {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/sd")
        .join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn group(targets: &[&str], labels: &[(&str, &str)]) -> TargetGroup {
    TargetGroup {
        targets: targets.iter().map(|t| t.to_string()).collect(),
        labels: labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    }
}

#[test]
fn prometheus_file_sd_fixtures_decode_to_the_groups_its_tests_expect() {
    let valid = vec![
        group(&["localhost:9090", "example.org:443"], &[("foo", "bar")]),
        group(&["my.domain"], &[]),
    ];
    for name in ["valid.json", "valid.yml", "valid3.yml"] {
        assert_eq!(
            decode_file_sd(name, &fixture(name)).unwrap(),
            valid,
            "{name}"
        );
    }
    assert_eq!(
        decode_file_sd("valid2.yml", &fixture("valid2.yml")).unwrap(),
        vec![
            group(&["my.domain"], &[]),
            group(&["localhost:9090"], &[("foo", "bar"), ("fred", "baz")]),
            group(&["example.org:443"], &[("scheme", "https")]),
        ]
    );
}

#[test]
fn a_null_target_group_is_refused_in_json_and_yaml() {
    for name in ["invalid_nil.json", "invalid_nil.yml"] {
        let e = decode_file_sd(name, &fixture(name)).unwrap_err();
        assert_eq!(e, SdError::NullGroup(1), "{name}");
    }
}

#[test]
fn prometheus_http_sd_fixture_decodes() {
    let groups = decode_target_groups_json(&fixture("http_sd.good.json")).unwrap();
    assert_eq!(
        groups,
        vec![group(&["127.0.0.1:9090"], &[("__meta_datacenter", "bru1")])]
    );
}

#[test]
fn malformed_documents_are_refused_with_the_expected_shape_named() {
    let e = decode_target_groups_json(b"{\"targets\": []}").unwrap_err();
    assert!(matches!(e, SdError::Json(_)), "{e}");
    assert!(
        e.to_string().contains("not a JSON list of target groups"),
        "{e}"
    );
    // Prometheus decodes groups with DisallowUnknownFields.
    let e = decode_target_groups_json(br#"[{"targets": ["a:1"], "lables": {}}]"#).unwrap_err();
    assert!(e.to_string().contains("unknown field `lables`"), "{e}");
    let e = decode_target_groups_json(br#"[{"targets": [1]}]"#).unwrap_err();
    assert!(matches!(e, SdError::Json(_)), "{e}");
    let e = decode_target_groups_json(br#"[{"targets": ["a:1"], "labels": {"bad-name": "x"}}]"#)
        .unwrap_err();
    assert_eq!(
        e,
        SdError::BadLabelName {
            group: 0,
            name: "bad-name".into()
        }
    );
    let e = decode_file_sd("targets.txt", b"[]").unwrap_err();
    assert!(matches!(e, SdError::UnknownExtension(_)), "{e}");
    assert!(decode_file_sd("t.yaml", b"- targets: [").is_err());
    // An empty list and Go's `null` are both no targets.
    assert_eq!(decode_target_groups_json(b"[]").unwrap(), vec![]);
    assert_eq!(decode_target_groups_json(b"null").unwrap(), vec![]);
}

fn job() -> JobDefaults {
    JobDefaults {
        job_name: "node".into(),
        scheme: "http".into(),
        metrics_path: "/metrics".into(),
        interval: Duration::from_secs(15),
        timeout: Duration::from_secs(10),
    }
}

fn rules(json: &str) -> Vec<RelabelConfig> {
    let r: Vec<RelabelConfig> = serde_json::from_str(json).unwrap();
    for x in &r {
        x.validate().unwrap();
    }
    r
}

#[test]
fn discovered_labels_carry_address_group_labels_and_job_defaults() {
    let d = discovered_labels(
        &job(),
        "10.0.0.1:9100",
        &Labels::from_pairs([("env", "prod"), ("__metrics_path__", "/custom")]),
    );
    assert_eq!(
        d,
        Labels::from_pairs([
            ("__address__", "10.0.0.1:9100"),
            ("__metrics_path__", "/custom"),
            ("__scheme__", "http"),
            ("__scrape_interval__", "15s"),
            ("__scrape_timeout__", "10s"),
            ("env", "prod"),
            ("job", "node"),
        ])
    );
}

#[test]
fn a_target_without_rules_keeps_its_labels_and_gets_instance_from_the_address() {
    let d = discovered_labels(
        &job(),
        "10.0.0.1:9100",
        &Labels::from_pairs([("env", "prod"), ("__meta_filepath", "/x.json")]),
    );
    let t = resolve_target("node", &d, &[]).unwrap().unwrap();
    assert_eq!(t.url, "http://10.0.0.1:9100/metrics");
    assert_eq!(t.interval, Duration::from_secs(15));
    assert_eq!(t.timeout, Duration::from_secs(10));
    // `__` labels (meta, scheme, path, interval) are gone after relabelling.
    assert_eq!(
        t.labels,
        Labels::from_pairs([
            ("env", "prod"),
            ("instance", "10.0.0.1:9100"),
            ("job", "node")
        ])
    );
}

#[test]
fn relabelling_can_move_scheme_path_params_interval_and_instance() {
    let d = discovered_labels(
        &job(),
        "db-1.internal:9187",
        &Labels::from_pairs([("__meta_datacenter", "bru1"), ("__meta_path", "/probe")]),
    );
    let r = rules(
        r#"[
        {"source_labels": ["__meta_path"], "target_label": "__metrics_path__"},
        {"target_label": "__scheme__", "replacement": "https"},
        {"source_labels": ["__address__"], "target_label": "__param_target"},
        {"target_label": "__scrape_interval__", "replacement": "1m"},
        {"source_labels": ["__address__"], "regex": "([^.]+)\\..*", "target_label": "instance"},
        {"regex": "__meta_(datacenter)", "action": "labelmap"}
    ]"#,
    );
    let t = resolve_target("node", &d, &r).unwrap().unwrap();
    assert_eq!(
        t.url,
        "https://db-1.internal:9187/probe?target=db-1.internal%3A9187"
    );
    assert_eq!(t.interval, Duration::from_secs(60));
    assert_eq!(
        t.labels,
        Labels::from_pairs([
            ("datacenter", "bru1"),
            ("instance", "db-1"),
            ("job", "node")
        ])
    );
}

#[test]
fn keep_and_drop_rules_drop_targets() {
    let keep = rules(r#"[{"source_labels": ["env"], "regex": "prod", "action": "keep"}]"#);
    let prod = discovered_labels(&job(), "a:1", &Labels::from_pairs([("env", "prod")]));
    let dev = discovered_labels(&job(), "b:1", &Labels::from_pairs([("env", "dev")]));
    assert!(resolve_target("node", &prod, &keep).unwrap().is_some());
    assert_eq!(resolve_target("node", &dev, &keep).unwrap(), None);
}

#[test]
fn targets_relabelling_breaks_are_refused_with_the_reason() {
    let d = discovered_labels(&job(), "a:1", &Labels::new());
    let cases: [(&str, TargetError); 4] = [
        (
            r#"[{"regex": "__address__", "action": "labeldrop"}]"#,
            TargetError::NoAddress,
        ),
        (
            r#"[{"target_label": "__address__", "replacement": "a:1/x"}]"#,
            TargetError::BadAddress("a:1/x".into()),
        ),
        (
            r#"[{"target_label": "__scheme__", "replacement": "ftp"}]"#,
            TargetError::BadScheme("ftp".into()),
        ),
        (
            r#"[{"target_label": "__scrape_timeout__", "replacement": "1m"}]"#,
            TargetError::TimeoutOverInterval {
                timeout: "1m".into(),
                interval: "15s".into(),
            },
        ),
    ];
    for (r, want) in cases {
        assert_eq!(resolve_target("node", &d, &rules(r)), Err(want), "{r}");
    }
}
