//! Selector matching through find_series, and the metric/label name listings.

use super::*;
use model::Selector;
use std::collections::BTreeSet;

async fn fixture() -> Store {
    let store = store().await;
    let t = now_ms();
    let keys = [
        key(
            "http_requests_total",
            &[("job", "api"), ("code", "200"), ("path", "/v1/a")],
        ),
        key(
            "http_requests_total",
            &[("job", "api"), ("code", "500"), ("path", "/v2/b")],
        ),
        key("http_requests_total", &[("job", "web"), ("code", "200")]),
        key("http_request_duration_seconds", &[("job", "api")]),
        key("up", &[("job", "api")]),
        key("up", &[("job", "web"), ("env", "prod")]),
    ];
    let series: Vec<TimeSeries> = keys
        .into_iter()
        .map(|k| super::series(k, &[(t, 1.0)]))
        .collect();
    store.write(&[batch(series)]).await.unwrap();
    store
}

async fn matched(store: &Store, selector: &str) -> BTreeSet<String> {
    store
        .find_series(&Selector::parse(selector).unwrap())
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.key.to_string())
        .collect()
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

#[tokio::test]
async fn find_series_applies_all_four_operators_like_prometheus() {
    let store = fixture().await;
    let cases: &[(&str, &[&str])] = &[
        (
            r#"http_requests_total{job="api"}"#,
            &[
                r#"http_requests_total{code="200",job="api",path="/v1/a"}"#,
                r#"http_requests_total{code="500",job="api",path="/v2/b"}"#,
            ],
        ),
        (
            r#"http_requests_total{code!="200"}"#,
            &[r#"http_requests_total{code="500",job="api",path="/v2/b"}"#],
        ),
        // Regexes are anchored: "/v" alone matches nothing.
        (r#"http_requests_total{path=~"/v"}"#, &[]),
        (
            r#"http_requests_total{path=~"/v1/.*|/v2/.*"}"#,
            &[
                r#"http_requests_total{code="200",job="api",path="/v1/a"}"#,
                r#"http_requests_total{code="500",job="api",path="/v2/b"}"#,
            ],
        ),
        // A missing label is the empty string, so !~ "/v1.*" keeps the series without `path`.
        (
            r#"http_requests_total{path!~"/v1.*"}"#,
            &[
                r#"http_requests_total{code="500",job="api",path="/v2/b"}"#,
                r#"http_requests_total{code="200",job="web"}"#,
            ],
        ),
        (r#"up{env=""}"#, &[r#"up{job="api"}"#]),
        (
            r#"{__name__=~"http_.*", job="api"}"#,
            &[
                r#"http_request_duration_seconds{job="api"}"#,
                r#"http_requests_total{code="200",job="api",path="/v1/a"}"#,
                r#"http_requests_total{code="500",job="api",path="/v2/b"}"#,
            ],
        ),
        (
            r#"{job="web"}"#,
            &[
                r#"http_requests_total{code="200",job="web"}"#,
                r#"up{env="prod",job="web"}"#,
            ],
        ),
        (r#"up{job="nope"}"#, &[]),
        ("no_such_metric", &[]),
    ];
    for (selector, expected) in cases {
        assert_eq!(
            matched(&store, selector).await,
            set(expected),
            "selector {selector}"
        );
    }
}

#[tokio::test]
async fn names_and_values_are_listed_sorted_and_distinct() {
    let store = fixture().await;
    assert_eq!(
        store.metric_names().await.unwrap(),
        vec!["http_request_duration_seconds", "http_requests_total", "up"]
    );
    assert_eq!(
        store.label_names(None).await.unwrap(),
        vec!["code", "env", "job", "path"]
    );
    assert_eq!(
        store.label_names(Some("up")).await.unwrap(),
        vec!["env", "job"]
    );
    assert_eq!(
        store.label_values("job", None).await.unwrap(),
        vec!["api", "web"]
    );
    assert_eq!(
        store
            .label_values("code", Some("http_requests_total"))
            .await
            .unwrap(),
        vec!["200", "500"]
    );
    assert_eq!(
        store
            .label_values("env", Some("http_requests_total"))
            .await
            .unwrap(),
        Vec::<String>::new()
    );
    assert_eq!(
        store.label_values("__name__", Some("up")).await.unwrap(),
        vec!["up"]
    );
    assert_eq!(store.series_count().await.unwrap(), 6);
}
