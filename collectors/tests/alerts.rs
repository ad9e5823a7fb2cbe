//! Golden tests of the Alertmanager v2 intake decoder over requests captured from Prometheus
//! 2.42 (`fixtures/alertmanager/`, see its README); expected values from `expected.json`.

use collectors::alerts::{decode, AlertsError};
use serde_json::Value;
use std::path::{Path, PathBuf};

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/alertmanager")
}

fn rfc3339_ms(s: &str) -> i64 {
    chrono_free_parse(s)
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ` to Unix ms, by hand, so the test does not share the decoder's
/// date library.
fn chrono_free_parse(s: &str) -> i64 {
    let n = |a: usize, b: usize| s[a..b].parse::<i64>().unwrap();
    let (y, m, d) = (n(0, 4), n(5, 7), n(8, 10));
    let days = model::civil::days_from_civil(y, m as u32, d as u32);
    ((days * 24 + n(11, 13)) * 60 + n(14, 16)) * 60_000 + n(17, 19) * 1000 + n(20, 23)
}

#[test]
fn prometheus_requests_decode_to_the_alert_prometheus_sent() {
    let exp: Value =
        serde_json::from_str(&std::fs::read_to_string(dir().join("expected.json")).unwrap())
            .unwrap();
    for (file, ends) in exp["endsAt"].as_object().unwrap() {
        let alerts = decode(&std::fs::read(dir().join(file)).unwrap()).unwrap();
        assert_eq!(alerts.len(), 1, "{file}");
        let a = &alerts[0];
        assert_eq!(serde_json::to_value(&a.labels).unwrap(), exp["labels"]);
        assert_eq!(
            serde_json::to_value(&a.annotations).unwrap(),
            exp["annotations"]
        );
        assert_eq!(
            a.starts_at_ms,
            Some(rfc3339_ms(exp["startsAt"].as_str().unwrap()))
        );
        assert_eq!(a.ends_at_ms, Some(rfc3339_ms(ends.as_str().unwrap())));
        assert_eq!(a.generator_url.as_deref(), exp["generatorURL"].as_str());
        assert_eq!(a.fingerprint, exp["fingerprint"].as_str().unwrap());
    }
}

fn err(body: &str) -> String {
    decode(body.as_bytes()).unwrap_err().to_string()
}

#[test]
fn invalid_alerts_are_refused_with_alertmanagers_reasons() {
    assert_eq!(decode(b""), Err(AlertsError::EmptyBody));
    let e = err(r#"{"labels":{"a":"b"}}"#);
    assert!(e.starts_with("body is not a list of alerts"), "{e}");
    let e = err(r#"[{"labels":{"alertname":"x"}},{"annotations":{}}]"#);
    assert!(
        e.contains("[1]") && e.contains("missing field `labels`"),
        "{e}"
    );
    let e = err(r#"[{"labels":{}}]"#);
    assert!(e.contains("at least one label pair required"), "{e}");
    let e = err(r#"[{"labels":{"1bad":"x"}}]"#);
    assert!(e.contains("invalid label name"), "{e}");
    let e = err(
        r#"[{"labels":{"a":"b"},"startsAt":"2026-01-01T10:00:00Z","endsAt":"2026-01-01T09:00:00Z"}]"#,
    );
    assert!(e.contains("start time must be before end time"), "{e}");
    let e = err(r#"[{"labels":{"a":"b"},"startsAt":"now"}]"#);
    assert!(e.contains("startsAt") && e.contains("RFC 3339"), "{e}");
    let e = err(r#"[{"labels":{"a":1}}]"#);
    assert!(e.contains("[0].labels.a"), "{e}");
}

#[test]
fn missing_times_are_left_to_the_receiver_and_empty_label_values_dropped() {
    let a = decode(br#"[{"labels":{"alertname":"x","empty":""}}]"#).unwrap();
    assert_eq!(a[0].starts_at_ms, None);
    assert_eq!(a[0].ends_at_ms, None);
    assert_eq!(a[0].labels.len(), 1);
}
