//! Rule groups made on the Rules page, over real HTTP against a running server with logins:
//! the editor role and the CSRF token are required; the same linter refuses bad text naming
//! the line; a group cannot take a rule file group's name; the preview replays the last 24 h
//! of a stored series with known excursions; a saved group is evaluated by the engine (its
//! alert fires), an edit that no longer holds resolves it, a delete removes the group; each
//! change, and expiring a silence from the page, leaves its own audit row.

use serde_json::Value;
use std::path::PathBuf;
use std::time::Duration;

const PASSWORD: &str = "correct-horse-battery";
const M: i64 = 60_000;

fn temp_dir(name: &str) -> PathBuf {
    pipewatch_tests::temp_dir("pw-rules-page", name)
}

use pipewatch_tests::{wait_until, Session};

/// The rule groups `/api/v1/rules` lists: (file, name).
async fn groups(s: &Session) -> Vec<(String, String)> {
    let v = s.get("/api/v1/rules").await;
    v["data"]["groups"]
        .as_array()
        .unwrap_or(&Vec::new())
        .iter()
        .map(|g| {
            (
                g["file"].as_str().unwrap_or_default().to_string(),
                g["name"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

/// The states of rule `rule`'s alerts.
async fn alert_states(s: &Session, rule: &str) -> Vec<String> {
    let v = s
        .get(&format!("/api/v1/lifecycle/alerts?rule={rule}"))
        .await;
    v["data"]
        .as_array()
        .unwrap_or(&Vec::new())
        .iter()
        .map(|a| a["state"].as_str().unwrap_or_default().to_string())
        .collect()
}

fn group(threshold: &str) -> String {
    format!(
        "groups:\n- name: mine\n  rules:\n  - alert: QueueDeep\n    expr: pw_queue_depth > {threshold}\n    labels: {{severity: warning}}\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn editors_save_preview_edit_and_delete_rule_groups_that_the_engine_evaluates() {
    let url = store::testing::fresh_database_url().await;
    let dir = temp_dir("edit");
    std::fs::write(
        dir.join("rules.yml"),
        "groups:\n- name: etl\n  rules:\n  - alert: Up\n    expr: vector(1) == 0\n",
    )
    .unwrap();
    let mut cfg = server::config::Config::from_toml_str(&format!(
        "[server]\nlisten = \"127.0.0.1:0\"\ndata_dir = \"{d}\"\n[database]\nurl = \"{url}\"\n\
         [auth]\nanonymous_role = \"none\"\n\
         [alerting]\nevaluation_interval = \"1s\"\n",
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
    // Three hours of a queue depth every 15 s: 50 from 2 h to 1 h ago and in the last
    // 10 minutes, 1 otherwise.
    let now = model::clock::now_ms();
    let (from, high1, low1, high2) = (now - 180 * M, now - 120 * M, now - 60 * M, now - 10 * M);
    let samples = (0..)
        .map(|i| from + i * 15_000)
        .take_while(|t| *t <= now)
        .map(|ts| model::Sample {
            ts,
            value: if (high1..low1).contains(&ts) || ts >= high2 {
                50.0
            } else {
                1.0
            },
        })
        .collect();
    st.write(&[model::Batch {
        series: vec![model::TimeSeries {
            key: model::SeriesKey::new(
                "pw_queue_depth",
                model::Labels::from_pairs([("job", "etl")]),
            ),
            metric_type: model::MetricType::Gauge,
            samples,
        }],
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
    wait_until!(
        "the file group in rule_status",
        Duration::from_secs(20),
        groups(&ed).await.iter().any(|(_, n)| n == "etl")
    );

    // Viewers may not save; editors need the CSRF token.
    let text = group("10");
    let (code, body) = vera.call("save_rule_group", &[("text", &text)], true).await;
    assert_eq!(code, 403, "{body}");
    let (code, body) = ed.call("save_rule_group", &[("text", &text)], false).await;
    assert_eq!(code, 403, "{body}");
    assert!(body.to_lowercase().contains("csrf"), "{body}");

    // The linter's errors, with their line; a file group's name is refused.
    let bad = "groups:\n- name: mine\n  rules:\n  - alert: QueueDeep\n    expr: pw_queue_depth >\n";
    let (code, body) = ed.call("save_rule_group", &[("text", bad)], true).await;
    assert!(code >= 400, "{code} {body}");
    assert!(body.contains("line 5:"), "{body}");
    let taken = text.replace("name: mine", "name: etl");
    let (code, body) = ed.call("save_rule_group", &[("text", &taken)], true).await;
    assert!(code >= 400, "{code} {body}");
    assert!(
        body.contains("a rule file already has a group named") && body.contains("etl"),
        "{body}"
    );

    // The preview: the excursion 2 h to 1 h ago fired and resolved, the current one fires.
    let (code, body) = vera
        .call("preview_rule_group", &[("text", &text)], true)
        .await;
    assert_eq!(code, 200, "{body}");
    let p: Value = serde_json::from_str(&body).unwrap();
    let eps = p["episodes"].as_array().unwrap();
    assert_eq!(eps.len(), 2, "{p:#}");
    let fired = eps[0]["fired_at_ms"].as_i64().unwrap();
    let resolved = eps[0]["resolved_at_ms"].as_i64().unwrap();
    assert!((high1..high1 + M).contains(&fired), "{p:#}");
    assert!((low1..low1 + M).contains(&resolved), "{p:#}");
    assert!(eps[1]["fired_at_ms"].as_i64().unwrap() >= high2, "{p:#}");
    assert!(eps[1]["resolved_at_ms"].is_null(), "{p:#}");
    assert_eq!(p["step_ms"], M);

    // Saved, the engine evaluates it: the current excursion fires.
    let (code, body) = ed.call("save_rule_group", &[("text", &text)], true).await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(body.trim(), "\"mine\"");
    let (code, body) = ed.call("save_rule_group", &[("text", &text)], true).await;
    assert!(code >= 400 && body.contains("already"), "{code} {body}");
    wait_until!(
        "the page-made rule's alert firing",
        Duration::from_secs(20),
        alert_states(&ed, "QueueDeep").await == ["firing"]
    );
    assert!(groups(&ed)
        .await
        .contains(&("(made on the Rules page)".to_string(), "mine".to_string())));

    // The page: editors get the editor and Edit/Delete on the page-made group; file groups
    // say they are read-only; viewers get neither.
    let (code, html) = ed.page("/rules").await;
    assert_eq!(code, 200);
    assert!(html.contains("rule-editor"), "no editor for an editor");
    assert!(html.contains("edit-rule-group"), "no Edit button");
    assert!(
        html.contains("made on this page"),
        "page-made group not marked"
    );
    assert!(
        html.contains("read-only here: edit the file"),
        "file group not marked"
    );
    let (_, html) = vera.page("/rules").await;
    assert!(!html.contains("rule-editor") && !html.contains("edit-rule-group"));
    assert!(html.contains("QueueDeep"));

    // An edit that no longer holds resolves it.
    let (code, body) = ed
        .call(
            "save_rule_group",
            &[("original", "mine"), ("text", &group("1000"))],
            true,
        )
        .await;
    assert_eq!(code, 200, "{body}");
    wait_until!(
        "the alert resolved after the edit",
        Duration::from_secs(20),
        alert_states(&ed, "QueueDeep").await == ["resolved"]
    );

    // Deleted, the group goes; a firing alert of a deleted group resolves too.
    let (code, body) = ed
        .call(
            "save_rule_group",
            &[("original", "mine"), ("text", &group("10"))],
            true,
        )
        .await;
    assert_eq!(code, 200, "{body}");
    wait_until!(
        "firing again",
        Duration::from_secs(20),
        alert_states(&ed, "QueueDeep").await == ["firing"]
    );
    let (code, body) = ed
        .call("delete_rule_group", &[("name", "mine")], true)
        .await;
    assert_eq!(code, 200, "{body}");
    wait_until!(
        "the deleted group gone and its alert resolved",
        Duration::from_secs(20),
        !groups(&ed).await.iter().any(|(_, n)| n == "mine")
            && alert_states(&ed, "QueueDeep").await == ["resolved"]
    );
    let (code, body) = ed
        .call("delete_rule_group", &[("name", "mine")], true)
        .await;
    assert!(
        code >= 400 && body.contains("there is no group"),
        "{code} {body}"
    );

    // A silence made and expired from the page: each with its own audit row.
    let (code, body) = ed
        .call(
            "create_silence",
            &[
                ("matchers", "alertname=\"QueueDeep\""),
                ("duration", "1h"),
                ("comment", "testing"),
            ],
            true,
        )
        .await;
    assert_eq!(code, 200, "{body}");
    let silence: String = serde_json::from_str(&body).unwrap();
    let (code, body) = ed.call("expire_silence", &[("id", &silence)], true).await;
    assert_eq!(code, 200, "{body}");

    let audit = st.audit_log(100, None).await.unwrap();
    let rows: Vec<(String, String, String)> = audit
        .iter()
        .rev()
        .map(|a| (a.actor.clone(), a.action.clone(), a.target.clone()))
        .collect();
    let want = [
        ("ed", "rules.create", "mine"),
        ("ed", "rules.update", "mine"),
        ("ed", "rules.update", "mine"),
        ("ed", "rules.delete", "mine"),
        ("ed", "silence.create", silence.as_str()),
        ("ed", "silence.expire", silence.as_str()),
    ];
    let got: Vec<(&str, &str, &str)> = rows
        .iter()
        .filter(|(_, a, _)| a.starts_with("rules.") || a.starts_with("silence."))
        .map(|(u, a, t)| (u.as_str(), a.as_str(), t.as_str()))
        .collect();
    assert_eq!(got, want, "{rows:#?}");
    let create = audit.iter().find(|a| a.action == "rules.create").unwrap();
    assert_eq!(create.detail["text"], text);
    server.stop().await.unwrap();
}

async fn login(base: &str, user: &str) -> Session {
    Session::login(base, user, PASSWORD).await
}
