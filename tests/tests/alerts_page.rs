//! The Alerts pages over real HTTP with logins: editors tick several alerts on `/alerts` and
//! acknowledge, silence (one silence per group) or resolve them in one post, each alert's
//! timeline getting its own event; viewers get no checkboxes and are refused; the detail page
//! charts the rule's expression around the firing time with the firing span marked.

use serde_json::Value;
use std::path::PathBuf;
use std::time::Duration;

const PASSWORD: &str = "correct-horse-battery";
const M: i64 = 60_000;

fn temp_dir(name: &str) -> PathBuf {
    pipewatch_tests::temp_dir("pw-alerts-page", name)
}

use pipewatch_tests::{wait_until, Session};

/// The timeline of alert `id` as (kind, by, detail), oldest first.
async fn timeline(s: &Session, id: i64) -> Vec<(String, String, String)> {
    let v = s.get(&format!("/api/v1/lifecycle/alerts/{id}")).await;
    v["data"]["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["kind"].as_str().unwrap().to_string(),
                e["by"].as_str().unwrap().to_string(),
                e["detail"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn editors_act_on_ticked_alerts_at_once_and_the_detail_page_charts_the_rule() {
    let url = store::testing::fresh_database_url().await;
    let dir = temp_dir("bulk");
    std::fs::write(
        dir.join("rules.yml"),
        "groups:\n- name: etl\n  rules:\n  - alert: HighLag\n    expr: pw_lag_seconds > 10\n",
    )
    .unwrap();
    let mut cfg = server::config::Config::from_toml_str(&format!(
        "[server]\nlisten = \"127.0.0.1:0\"\ndata_dir = \"{d}\"\n[database]\nurl = \"{url}\"\n\
         [auth]\nanonymous_role = \"none\"\n\
         [alerting]\nevaluation_interval = \"1s\"\ngroup_by = [\"alertname\"]\n",
        d = dir.display()
    ))
    .unwrap();
    cfg.alerting.rule_files = vec![dir.join("rules.yml").display().to_string()];
    cfg.check_references().unwrap();
    let st = store::Store::connect(&url, store::StoreConfig::default())
        .await
        .unwrap();
    for (name, role) in [
        ("vera", model::auth::Role::Viewer),
        ("ed", model::auth::Role::Editor),
    ] {
        st.create_user(name, PASSWORD, role).await.unwrap();
    }
    // Twenty minutes of lag every 15 s: two jobs high for the last five minutes.
    let now = model::clock::now_ms();
    let series = ["orders", "billing", "quiet"]
        .iter()
        .map(|job| model::TimeSeries {
            key: model::SeriesKey::new(
                "pw_lag_seconds",
                model::Labels::from_pairs([("job", *job)]),
            ),
            metric_type: model::MetricType::Gauge,
            samples: (0..=80)
                .map(|i| {
                    let ts = now - 20 * M + i * 15_000;
                    let high = *job != "quiet" && ts >= now - 5 * M;
                    model::Sample {
                        ts,
                        value: if high { 50.0 } else { 1.0 },
                    }
                })
                .collect(),
        })
        .collect();
    st.write(&[model::Batch {
        series,
        metadata: Vec::new(),
    }])
    .await
    .unwrap();
    let server = server::run::RunningServer::start(cfg, Default::default())
        .await
        .unwrap();
    let base = format!("http://{}", server.addr);
    let ed = login(&base, "ed").await;
    let vera = login(&base, "vera").await;
    let firing = || async {
        let v = ed
            .get("/api/v1/lifecycle/alerts?rule=HighLag&state=firing")
            .await;
        v["data"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .map(|a| a["id"].as_i64().unwrap())
            .collect::<Vec<i64>>()
    };
    wait_until!(
        "two HighLag alerts firing",
        Duration::from_secs(20),
        firing().await.len() == 2
    );
    let ids = firing().await;
    let (a, b) = (ids[0].to_string(), ids[1].to_string());

    // Editors get checkboxes; viewers get none and are refused.
    let (code, html) = ed.page("/alerts").await;
    assert_eq!(code, 200);
    assert!(
        html.contains("name=\"ids[]\""),
        "no checkboxes for an editor"
    );
    assert!(html.contains("Apply to ticked"));
    let (_, html) = vera.page("/alerts").await;
    assert!(!html.contains("name=\"ids[]\""), "checkboxes for a viewer");
    let (code, body) = vera
        .call(
            "bulk_alert_action",
            &[("ids[]", &a), ("action", "acknowledge")],
            true,
        )
        .await;
    assert_eq!(code, 403, "{body}");
    let (code, body) = ed
        .call("bulk_alert_action", &[("action", "acknowledge")], true)
        .await;
    assert!(
        code >= 400 && body.contains("no alert is selected"),
        "{code} {body}"
    );

    // Acknowledge both in one post: each timeline has its own acknowledgement by ed.
    let (code, body) = ed
        .call(
            "bulk_alert_action",
            &[
                ("ids[]", &a),
                ("ids[]", &b),
                ("action", "acknowledge"),
                ("comment", "on it"),
            ],
            true,
        )
        .await;
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("done for 2 of 2"), "{body}");
    for id in &ids {
        let t = timeline(&ed, *id).await;
        assert!(
            t.iter()
                .any(|(k, by, d)| k == "acknowledged" && by == "ed" && d == "on it"),
            "{t:?}"
        );
    }

    // Silence: both are in one group, so one silence; each alert gets a note naming it.
    let (code, body) = ed
        .call(
            "bulk_alert_action",
            &[
                ("ids[]", &a),
                ("ids[]", &b),
                ("action", "silence"),
                ("duration", "1h"),
                ("comment", "known incident"),
            ],
            true,
        )
        .await;
    assert_eq!(code, 200, "{body}");
    let silences = ed.get("/api/v2/silences").await;
    let active: Vec<&Value> = silences
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["status"]["state"] == "active")
        .collect();
    assert_eq!(active.len(), 1, "{silences:#}");
    let sid = active[0]["id"].as_str().unwrap();
    for id in &ids {
        let t = timeline(&ed, *id).await;
        assert!(
            t.iter().any(|(k, by, d)| k == "note"
                && by == "ed"
                && d.contains(sid)
                && d.contains("alertname=\"HighLag\"")),
            "{t:?}"
        );
    }

    // The detail page charts the rule's expression (its left side), the firing span marked.
    let (code, html) = ed.page(&format!("/alerts/{a}")).await;
    assert_eq!(code, 200);
    assert!(html.contains("alert-chart"), "no chart");
    assert!(
        html.contains("pw_lag_seconds (the rule fires while it is &gt; 10)")
            || html.contains("pw_lag_seconds (the rule fires while it is > 10)"),
        "{}",
        &html[html.find("alert-chart-note").unwrap_or(0)..][..300.min(html.len())]
    );
    assert!(html.contains("<svg"), "no svg");

    // Resolve both by hand in one post: each gets its own resolve by ed.
    let (code, body) = ed
        .call(
            "bulk_alert_action",
            &[
                ("ids[]", &a),
                ("ids[]", &b),
                ("action", "resolve"),
                ("comment", "fixed"),
            ],
            true,
        )
        .await;
    assert_eq!(code, 200, "{body}");
    for id in ids {
        wait_until!(
            "the resolve by hand on the timeline",
            Duration::from_secs(20),
            timeline(&ed, id)
                .await
                .iter()
                .any(|(k, by, d)| k == "transition"
                    && by == "ed"
                    && d.contains("resolved by hand"))
        );
    }
    server.stop().await.unwrap();
}

async fn login(base: &str, user: &str) -> Session {
    Session::login(base, user, PASSWORD).await
}
