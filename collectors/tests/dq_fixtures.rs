//! Golden tests of the data-quality importers over real Great Expectations (1.24.1, 0.18.22),
//! dbt (1.11.16) and Soda Core (3.5.6) output in `fixtures/dq/` (see its README).
//!
//! Every file listed in `fixtures/dq/expected.json` is parsed and every check it lists is
//! asserted: name, normalised status, observed value, dataset, column, suite and run time.
//! Expected values come from `expected.json` (written from the files by the fixture's own
//! script) and, where it does not carry them (GX's data asset name), from the fixture README.

use collectors::dq::{
    self, dbt::UNMAPPED_DATASET, parse_dbt, parse_dbt_artifacts, parse_gx, parse_soda, CheckRun,
    CheckStatus, DqError, DqReport, Tool,
};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/dq")
}

fn read(rel: &str) -> Vec<u8> {
    std::fs::read(dir().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn expected() -> BTreeMap<String, Value> {
    let v: Value = serde_json::from_slice(&read("expected.json")).unwrap();
    v["files"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// Expected times are RFC 3339 in expected.json; parsed by chrono here, not by the importers'
/// own `parse_time_ms`, so a bug there cannot move the expectation along with the result.
fn ms(s: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(s)
        .unwrap_or_else(|e| panic!("bad timestamp {s}: {e}"))
        .timestamp_millis()
}

fn status(s: &str) -> CheckStatus {
    CheckStatus::parse(s).unwrap_or_else(|| panic!("unknown status {s}"))
}

fn opt_str(v: &Value) -> Option<String> {
    v.as_str().map(str::to_owned)
}

/// The GX check matching an expected entry: same expectation type and kwargs (GX does not
/// keep suite order, and kwargs tell apart two expectations of one type).
fn gx_check<'a>(report: &'a DqReport, exp: &Value) -> &'a CheckRun {
    let t = exp["expectation_type"].as_str().unwrap();
    let mut kwargs = exp["kwargs"].clone();
    kwargs.as_object_mut().unwrap().remove("column");
    let found: Vec<&CheckRun> = report
        .checks
        .iter()
        .filter(|c| c.check_type == t && c.column == opt_str(&exp["column"]))
        .filter(|c| {
            let got: Value = serde_json::from_str(c.expected.as_deref().unwrap()).unwrap();
            same_json_numbers(&got, &kwargs)
        })
        .collect();
    assert_eq!(found.len(), 1, "{t} {kwargs}: {found:#?}");
    found[0]
}

/// JSON equality with numbers compared as f64 (1.x writes `0.0` where 0.18 writes `0`).
fn same_json_numbers(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| same_json_numbers(v, w)))
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(v, w)| same_json_numbers(v, w))
        }
        _ => a == b,
    }
}

fn assert_gx_validation(file: &str, report: &DqReport, exp: &Value) {
    assert_eq!(report.tool, Tool::Gx);
    assert_eq!(
        report.tool_version.as_deref(),
        exp["tool_version"].as_str(),
        "{file}"
    );
    let checks = exp["checks"].as_array().unwrap();
    assert_eq!(report.checks.len(), checks.len(), "{file}");
    assert_eq!(
        checks.len() as u64,
        exp["statistics"]["evaluated_expectations"]
            .as_u64()
            .unwrap()
    );
    let run_time = ms(exp["run_time"].as_str().unwrap());
    for e in checks {
        let c = gx_check(report, e);
        let what = format!("{file} {}", c.check_id);
        assert_eq!(
            c.check_name,
            e["expectation_type"].as_str().unwrap(),
            "{what}"
        );
        assert_eq!(c.status, status(e["status"].as_str().unwrap()), "{what}");
        assert_eq!(c.suite, exp["suite_name"].as_str().unwrap(), "{what}");
        // The README: "a pandas data source `shop_pandas` with a dataframe asset `orders`".
        assert_eq!(c.dataset, "orders", "{what}");
        assert_eq!(c.column, opt_str(&e["column"]), "{what}");
        assert_eq!(c.run_time_ms, Some(run_time), "{what}");
        assert!(
            c.run_id.contains(exp["run_name"].as_str().unwrap()),
            "{what}"
        );
        match (&e["observed_value"], &e["unexpected_count"]) {
            (Value::Null, Value::Null) => panic!("{what}: expected entry has no value"),
            (Value::Number(n), _) => {
                assert_eq!(c.observed_value, n.as_f64(), "{what}");
            }
            (Value::String(s), _) => {
                // Timestamps stay text: the raw value is kept, no number is made up.
                assert_eq!(c.observed_value, None, "{what}");
                assert_eq!(
                    c.observed_raw.as_deref(),
                    Some(format!("{s:?}").as_str()),
                    "{what}"
                );
            }
            (_, n) => {
                assert_eq!(c.observed_value, n.as_f64(), "{what}");
                let msg = c.message.as_deref().unwrap();
                assert!(
                    msg.starts_with(&format!("{} unexpected", n.as_f64().unwrap())),
                    "{what}: {msg}"
                );
            }
        }
    }
    let passed = report
        .checks
        .iter()
        .filter(|c| c.status == CheckStatus::Pass)
        .count() as u64;
    assert_eq!(
        passed,
        exp["statistics"]["successful_expectations"]
            .as_u64()
            .unwrap(),
        "{file}"
    );
    let mut counts = BTreeMap::new();
    for c in &report.checks {
        *counts.entry(c.status.as_str().to_owned()).or_insert(0u64) += 1;
    }
    let want: BTreeMap<String, u64> = exp["status_counts"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_u64().unwrap()))
        .collect();
    assert_eq!(counts, want, "{file}");
}

#[test]
fn every_gx_validation_result_matches_expected_checks() {
    let all = expected();
    let mut seen = 0;
    for (file, exp) in &all {
        if !file.starts_with("gx") || !file.contains("validation_result") {
            continue;
        }
        let exp = match exp["same_as"].as_str() {
            Some(other) => &all[other],
            None => exp,
        };
        let report = parse_gx(&read(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(report.format, "gx validation result");
        assert_gx_validation(file, &report, exp);
        // The same file through auto-detection, checked against expected.json on its own
        // (comparing it with parse_gx's report would pass when both are wrong the same way).
        let detected = dq::detect_and_parse(&read(file), None).unwrap();
        assert_eq!(detected.format, "gx validation result");
        assert_gx_validation(file, &detected, exp);
        seen += 1;
    }
    assert_eq!(seen, 8, "gx1 + gx018, two runs, direct + store copies");
}

#[test]
fn gx_checkpoint_results_hold_the_same_checks_as_their_validation_results() {
    let all = expected();
    let mut seen = 0;
    for (file, exp) in &all {
        if !file.contains("checkpoint_result") || file.ends_with(".describe.json") {
            continue;
        }
        let report = parse_gx(&read(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(report.format, "gx checkpoint result");
        assert_eq!(
            exp["run_result_keys"].as_array().unwrap().len(),
            1,
            "{file}: one validation per run"
        );
        let vr_file = file.replace("checkpoint_result", "validation_result");
        let vr_exp = &all[&vr_file];
        assert_eq!(vr_exp["run_name"], exp["run_id"]["run_name"]);
        assert_gx_validation(file, &report, vr_exp);
        let stats = &exp["validation_statistics"];
        let passed = report
            .checks
            .iter()
            .filter(|c| c.status == CheckStatus::Pass)
            .count() as u64;
        assert_eq!(passed, stats["successful_expectations"].as_u64().unwrap());
        // The checkpoint and the validation result of one run are the same check runs, so
        // importing both stores each check once.
        let vr = parse_gx(&read(&vr_file)).unwrap();
        let key = |c: &CheckRun| (c.run_id.clone(), c.check_id.clone());
        let mut a: Vec<_> = report.checks.iter().map(key).collect();
        let mut b: Vec<_> = vr.checks.iter().map(key).collect();
        a.sort();
        b.sort();
        assert_eq!(a, b, "{file}");
        seen += 1;
    }
    assert_eq!(seen, 4);
}

#[test]
fn gx_describe_output_is_refused_with_what_to_send_instead() {
    for file in [
        "gx1/checkpoint_result_01.describe.json",
        "gx1/checkpoint_result_02.describe.json",
        "gx1/validation_result_01.describe.json",
        "gx1/validation_result_02.describe.json",
    ] {
        let e = parse_gx(&read(file)).unwrap_err();
        let m = e.to_string();
        assert!(matches!(e, DqError::NotGx(_)), "{file}: {m}");
        assert!(m.contains("describe()"), "{file}: {m}");
        assert!(m.contains("run_results.values()"), "{file}: {m}");
    }
}

#[test]
fn soda_scans_match_expected_including_the_not_evaluated_check() {
    let all = expected();
    for n in ["01", "02"] {
        let file = format!("soda/scan_results_{n}.json");
        let exp = &all[&file];
        let report = parse_soda(&read(&file)).unwrap();
        assert_eq!(report.tool_version.as_deref(), exp["tool_version"].as_str());
        let run_time = ms(exp["dataTimestamp"].as_str().unwrap());
        let checks = exp["checks"].as_array().unwrap();
        let not_evaluated = exp["not_evaluated"].as_array().unwrap();
        assert_eq!(report.checks.len(), checks.len() + not_evaluated.len());
        for e in checks {
            let c = report
                .checks
                .iter()
                .find(|c| c.check_id == e["identity"].as_str().unwrap())
                .unwrap_or_else(|| panic!("{file}: no check {}", e["name"]));
            assert_eq!(c.check_name, e["name"].as_str().unwrap());
            assert_eq!(
                c.status,
                status(e["status"].as_str().unwrap()),
                "{}",
                c.check_name
            );
            assert_eq!(c.raw_status, e["outcome"].as_str().unwrap());
            assert_eq!(c.dataset, e["table"].as_str().unwrap());
            assert_eq!(c.column, opt_str(&e["column"]));
            match e["freshness"].as_str() {
                // Soda reports the age in milliseconds; it is stored in seconds and shown as
                // a duration (README: 8220000 ms = 2:17:00, 43500000 ms = 12:05:00).
                Some(_) => {
                    let secs = e["value"].as_f64().unwrap() / 1000.0;
                    assert_eq!(c.observed_value, Some(secs), "{}", c.check_name);
                    let want = match secs as i64 {
                        8220 => "2h 17m",
                        43500 => "12h 5m",
                        other => panic!("unexpected freshness age {other} s"),
                    };
                    assert_eq!(c.observed_raw.as_deref(), Some(want));
                }
                None => assert_eq!(c.observed_value, e["value"].as_f64(), "{}", c.check_name),
            }
            assert_eq!(c.suite, "config/checks.yml");
            assert_eq!(c.run_time_ms, Some(run_time));
            if let Some(f) = e["freshness"].as_str() {
                assert_eq!(c.check_type, "freshness");
                assert!(c.message.as_deref().unwrap().contains(f));
            }
        }
        for e in not_evaluated {
            let c = report
                .checks
                .iter()
                .find(|c| c.check_name == e["name"].as_str().unwrap())
                .unwrap();
            assert_eq!(c.status, status(e["status"].as_str().unwrap()));
            assert_eq!(c.dataset, checks[0]["table"].as_str().unwrap());
            assert_eq!(c.run_time_ms, Some(run_time));
            let msg = c.message.as_deref().unwrap();
            for line in exp["error_log_messages"].as_array().unwrap() {
                assert!(msg.contains(line.as_str().unwrap()), "{msg}");
            }
        }
    }
}

fn node_name(unique_id: &str) -> &str {
    unique_id.split('.').nth(2).unwrap()
}

#[test]
fn dbt_run_results_with_manifest_map_tests_to_models_and_columns() {
    let all = expected();
    let exp = &all["dbt/run_results.json"];
    let report = parse_dbt_artifacts(
        Some(&read("dbt/run_results.json")),
        Some(&read("dbt/manifest.json")),
        None,
    )
    .unwrap();
    assert_eq!(report.tool_version.as_deref(), exp["tool_version"].as_str());
    let results = exp["results"].as_array().unwrap();
    assert_eq!(report.checks.len(), results.len());
    assert_eq!(results.len() as u64, exp["results_count"].as_u64().unwrap());
    let run_time = ms(exp["generated_at"].as_str().unwrap());
    for (c, e) in report.checks.iter().zip(results) {
        let uid = e["unique_id"].as_str().unwrap();
        assert_eq!(c.check_id, uid);
        assert_eq!(c.check_name, e["name"].as_str().unwrap());
        assert_eq!(c.status, status(e["status"].as_str().unwrap()), "{uid}");
        assert_eq!(c.raw_status, e["raw_status"].as_str().unwrap(), "{uid}");
        assert_eq!(c.observed_value, e["failures"].as_f64(), "{uid}");
        assert_eq!(c.column, opt_str(&e["column_name"]), "{uid}");
        assert_eq!(c.message, opt_str(&e["message"]), "{uid}");
        assert_eq!(c.suite, "shop");
        assert_eq!(c.run_id, exp["invocation_id"].as_str().unwrap());
        assert_eq!(c.run_time_ms, Some(run_time));
        let want_dataset = match (e["resource_type"].as_str().unwrap(), &e["attached_node"]) {
            ("test", Value::String(node)) => node_name(node).to_owned(),
            // The source test depends on source.shop.shop.orders (README).
            ("test", _) if e["name"] == "source_not_null_shop_orders_order_id" => {
                "shop.orders".to_owned()
            }
            // The singular test selects from stg_orders.
            ("test", _) => "stg_orders".to_owned(),
            _ => e["name"].as_str().unwrap().to_owned(),
        };
        assert_eq!(c.dataset, want_dataset, "{uid}");
        match e["test_name"].as_str() {
            Some(t) => {
                assert_eq!(c.check_type, t);
                let x = c.expected.as_deref().unwrap();
                for k in ["severity", "warn_if", "error_if"] {
                    assert!(x.contains(e[k].as_str().unwrap()), "{uid}: {x}");
                }
            }
            None if e["resource_type"] == "test" => assert_eq!(c.check_type, "singular"),
            None => assert_eq!(c.check_type, e["resource_type"].as_str().unwrap()),
        }
    }
    let mut counts = BTreeMap::new();
    for c in &report.checks {
        *counts.entry(c.status.as_str().to_owned()).or_insert(0u64) += 1;
    }
    let want: BTreeMap<String, u64> = exp["status_counts"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_u64().unwrap()))
        .collect();
    assert_eq!(counts, want);
}

#[test]
fn dbt_run_results_alone_keep_statuses_and_say_the_manifest_is_missing() {
    let exp = &expected()["dbt/run_results.json"];
    let report = parse_dbt(&read("dbt/run_results.json")).unwrap();
    let results = exp["results"].as_array().unwrap();
    // zip stops at the shorter side: without this an empty parse would pass.
    assert_eq!(report.checks.len(), results.len());
    assert_eq!(results.len(), 18);
    for (c, e) in report.checks.iter().zip(results) {
        assert_eq!(c.check_id, e["unique_id"].as_str().unwrap());
        assert_eq!(c.status, status(e["status"].as_str().unwrap()));
        if e["resource_type"] == "test" {
            assert_eq!(c.dataset, UNMAPPED_DATASET);
        }
    }
}

#[test]
fn dbt_bundle_body_equals_separate_artifacts() {
    let bundle = format!(
        "{{\"run_results\":{},\"manifest\":{},\"sources\":{}}}",
        String::from_utf8(read("dbt/run_results.json")).unwrap(),
        String::from_utf8(read("dbt/manifest.json")).unwrap(),
        String::from_utf8(read("dbt/sources.json")).unwrap()
    );
    let a = parse_dbt(bundle.as_bytes()).unwrap();
    let b = parse_dbt_artifacts(
        Some(&read("dbt/run_results.json")),
        Some(&read("dbt/manifest.json")),
        Some(&read("dbt/sources.json")),
    )
    .unwrap();
    assert_eq!(a, b);
    // Equal to each other is not enough (both could be wrong alike): each part of the bundle
    // against expected.json, in file order.
    let all = expected();
    let want: Vec<(String, CheckStatus)> = all["dbt/run_results.json"]["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["unique_id"].as_str().unwrap().to_owned(),
                status(e["status"].as_str().unwrap()),
            )
        })
        .chain(
            all["dbt/sources.json"]["results"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| {
                    (
                        format!("freshness:{}", e["unique_id"].as_str().unwrap()),
                        status(e["status"].as_str().unwrap()),
                    )
                }),
        )
        .collect();
    let got: Vec<(String, CheckStatus)> = a
        .checks
        .iter()
        .map(|c| (c.check_id.clone(), c.status))
        .collect();
    assert_eq!(got, want);
    assert_eq!(a.checks.len(), 18 + 3);
    // Tests are mapped to their models through the bundled manifest.
    assert!(a.checks.iter().all(|c| c.dataset != UNMAPPED_DATASET));
}

#[test]
fn dbt_source_freshness_statuses_match_expected() {
    let exp = &expected()["dbt/sources.json"];
    let report = parse_dbt(&read("dbt/sources.json")).unwrap();
    let results = exp["results"].as_array().unwrap();
    assert_eq!(report.checks.len(), results.len());
    for (c, e) in report.checks.iter().zip(results) {
        let uid = e["unique_id"].as_str().unwrap();
        assert_eq!(c.check_id, format!("freshness:{uid}"));
        assert_eq!(c.check_type, "freshness");
        assert_eq!(c.status, status(e["status"].as_str().unwrap()), "{uid}");
        assert_eq!(
            c.dataset,
            format!("shop.{}", uid.rsplit('.').next().unwrap())
        );
        assert_eq!(c.observed_value, e["max_loaded_at_time_ago_in_s"].as_f64());
        assert_eq!(
            c.run_time_ms,
            Some(ms(exp["generated_at"].as_str().unwrap()))
        );
        assert_eq!(
            c.expected.as_deref(),
            Some("warn_after 1 hour, error_after 12 hour")
        );
    }
    // The one age that does not depend on the clock (README).
    let events = &report.checks[0];
    assert_eq!(events.dataset, "shop.order_events");
    // The value shown is the age as a duration, not the quoted timestamp; the timestamp the
    // age was measured from is in the message.
    let age = exp["results"][0]["max_loaded_at_time_ago_in_s"]
        .as_f64()
        .unwrap();
    assert_eq!(events.observed_value, Some(age));
    // 81053572 s in humantime's units (year 365.25 d, month 30.44 d), worked out by hand:
    // 2 y = 63115200 s, 6 mo = 15780096 s, 24 d = 2073600 s, then 84676 s = 23h 31m 16s.
    assert_eq!(
        events.observed_raw.as_deref(),
        Some("2years 6months 24days 23h 31m 16s")
    );
    assert_eq!(
        events.message.as_deref(),
        Some("max_loaded_at 2024-05-02T13:00:00+00:00")
    );
}

#[test]
fn a_manifest_alone_is_refused_with_what_to_send() {
    let e = parse_dbt(&read("dbt/manifest.json")).unwrap_err();
    assert!(matches!(e, DqError::NotDbt(_)));
    assert!(
        e.to_string()
            .contains("send it together with run_results.json"),
        "{e}"
    );
    let e = dq::detect_and_parse(&read("dbt/manifest.json"), Some("manifest.json")).unwrap_err();
    assert!(e.to_string().contains("manifest.json"), "{e}");
}

#[test]
fn wrong_tool_refusals_name_what_is_missing() {
    let soda = read("soda/scan_results_01.json");
    let e = parse_gx(&soda).unwrap_err();
    assert!(e.to_string().contains("missing `results`"), "{e}");
    assert!(e.to_string().contains("checkpoint.run()"), "{e}");
    let e = parse_soda(&read("gx1/validation_result_01.json")).unwrap_err();
    assert!(e.to_string().contains("missing `checks`"), "{e}");
    let e = parse_dbt(&soda).unwrap_err();
    assert!(e.to_string().contains("dbt_schema_version"), "{e}");
    let e = parse_gx(b"{\"results\": [{\"success\": true}], \"suite_name\": \"s\", \"meta\": {\"run_id\": {\"run_time\": \"2024-05-02T01:00:00Z\"}}}").unwrap_err();
    assert!(
        e.to_string()
            .contains("results[0] has no `expectation_config`"),
        "{e}"
    );
    let e = parse_gx(b"[1,2").unwrap_err();
    assert!(matches!(e, DqError::NotJson(_)), "{e}");
}

#[test]
fn detection_picks_the_tool_of_every_result_file() {
    for (file, _) in expected() {
        // describe() output is recognised as GX and refused (see its own test).
        if file.ends_with("manifest.json") || file.ends_with(".describe.json") {
            continue;
        }
        let report = dq::detect_and_parse(&read(&file), Some(&file))
            .unwrap_or_else(|e| panic!("{file}: {e}"));
        let want = match file.split('/').next().unwrap() {
            "gx1" | "gx018" => Tool::Gx,
            "dbt" => Tool::Dbt,
            _ => Tool::Soda,
        };
        assert_eq!(report.tool, want, "{file}");
    }
}

#[test]
fn a_gx_check_keeps_its_identity_across_runs_whose_parameters_differ() {
    // freshness_cutoff resolves to a different min_value each day (README), yet it is one
    // check with a history.
    for v in ["gx1", "gx018"] {
        let ids = |n: &str| {
            let mut ids: Vec<String> = parse_gx(&read(&format!("{v}/validation_result_{n}.json")))
                .unwrap()
                .checks
                .into_iter()
                .map(|c| c.check_id)
                .collect();
            ids.sort();
            ids
        };
        assert_eq!(ids("01"), ids("02"), "{v}");
        assert_eq!(ids("01").len(), 8, "{v}");
    }
}
