//! The Notification channels page over real HTTP with logins: it lists every configured channel
//! with its type and where it delivers (a webhook by its host only: its path may hold a token);
//! an editor's "Send test" goes through the outbox and the real sender to a real local HTTP
//! receiver, after which the page counts it delivered; a viewer may look but not send, and a
//! test to a channel that does not exist is refused naming the channels there are.

use axum::routing::post;
use pipewatch_tests::{wait_until, Session};
use serde_json::Value;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const PASSWORD: &str = "correct-horse-battery";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn editors_send_a_test_through_the_outbox_and_the_page_counts_it_delivered() {
    let got: Arc<Mutex<Vec<Value>>> = Arc::default();
    let sink = got.clone();
    let hook = pipewatch_tests::serve(axum::Router::new().route(
        "/hooks/secret-token",
        post(move |body: axum::Json<Value>| {
            let sink = sink.clone();
            async move {
                sink.lock().unwrap().push(body.0);
                "ok"
            }
        }),
    ))
    .await;
    let url = store::testing::fresh_database_url().await;
    let dir = pipewatch_tests::temp_dir("pw-channels-page", "send");
    let cfg = server::config::Config::from_toml_str(&format!(
        "[server]\nlisten = \"127.0.0.1:0\"\ndata_dir = \"{d}\"\n[database]\nurl = \"{url}\"\n\
         [auth]\nanonymous_role = \"none\"\n\
         [notifications]\npoll_interval = \"200ms\"\n\
         [notifications.channels.tickets]\ntype = \"webhook\"\nurl = \"http://{hook}/hooks/secret-token\"\n\
         [notifications.channels.mail]\ntype = \"email\"\nsmtp_host = \"127.0.0.1\"\nsmtp_port = 9\ntls = \"none\"\n\
         from = \"pipewatch@example.com\"\nto = [\"oncall@example.com\"]\n",
        d = dir.display()
    ))
    .unwrap();
    let st = store::Store::connect(&url, store::StoreConfig::default())
        .await
        .unwrap();
    for (name, role) in [
        ("vera", model::auth::Role::Viewer),
        ("ed", model::auth::Role::Editor),
    ] {
        st.create_user(name, PASSWORD, role).await.unwrap();
    }
    let server = server::run::RunningServer::start(cfg, Default::default())
        .await
        .unwrap();
    let base = format!("http://{}", server.addr);
    let ed = Session::login(&base, "ed", PASSWORD).await;
    let vera = Session::login(&base, "vera", PASSWORD).await;

    let (code, html) = ed.page("/channels").await;
    assert_eq!(code, 200);
    assert!(
        html.contains("tickets") && html.contains("webhook"),
        "{html}"
    );
    assert!(
        html.contains("oncall@example.com via 127.0.0.1:9 (no TLS)"),
        "{html}"
    );
    assert!(
        !html.contains("secret-token"),
        "a webhook's path is shown: {html}"
    );
    assert!(html.contains("Send test"), "{html}");
    let (_, html) = vera.page("/channels").await;
    assert!(
        html.contains("tickets") && !html.contains("Send test"),
        "{html}"
    );

    let (code, body) = vera
        .call("send_test_notification", &[("channel", "tickets")], true)
        .await;
    assert_eq!(code, 403, "{body}");
    let (code, body) = ed
        .call("send_test_notification", &[("channel", "pager")], true)
        .await;
    assert!(
        code >= 400 && body.contains("no channel \"pager\"") && body.contains("mail, tickets"),
        "{code} {body}"
    );
    let (code, body) = ed
        .call("send_test_notification", &[("channel", "tickets")], true)
        .await;
    assert_eq!(code, 200, "{body}");

    wait_until!(
        "the test notice at the webhook",
        Duration::from_secs(20),
        !got.lock().unwrap().is_empty()
    );
    let sent = got.lock().unwrap()[0].clone();
    assert!(
        sent.to_string().contains("PipewatchTestNotification"),
        "{sent}"
    );
    assert!(sent.to_string().contains("sent by ed"), "{sent}");
    wait_until!(
        "the page counting it delivered",
        Duration::from_secs(10),
        ed.call("channels_view", &[], true)
            .await
            .1
            .contains("\"delivered\":1")
    );
    // Sending is audited with who did it.
    let audit = st.audit_log(50, None).await.unwrap();
    assert!(
        audit
            .iter()
            .any(|a| a.actor == "ed" && a.action.contains("send_test_notification")),
        "{audit:?}"
    );
    server.stop().await.unwrap();
}
