//! Users, sessions, API tokens, login throttling and the audit log against a real PostgreSQL.

use crate::store;
use model::auth::{Role, TokenScope};
use std::time::Duration;
use store::auth::{LoginOutcome, Throttle};

const PW: &str = "s3cret-enough";

fn throttle(backoff_ms: u64) -> Throttle {
    Throttle {
        max_failures: 5,
        window: Duration::from_secs(900),
        backoff: Duration::from_millis(backoff_ms),
    }
}

#[tokio::test]
async fn users_are_stored_with_an_argon2_hash_and_names_are_unique() {
    let s = store().await;
    assert_eq!(s.user_count().await.unwrap(), 0);
    let u = s.create_user("ada", PW, Role::Admin).await.unwrap();
    assert_eq!(
        (u.name.as_str(), u.role, u.disabled),
        ("ada", Role::Admin, false)
    );
    let hash: String = sqlx::query_scalar("SELECT password_hash FROM users WHERE name = 'ada'")
        .fetch_one(s.pool())
        .await
        .unwrap();
    assert!(
        hash.starts_with("$argon2id$") && !hash.contains(PW),
        "{hash}"
    );

    let dup = s.create_user("ada", PW, Role::Viewer).await.unwrap_err();
    assert!(dup.to_string().contains("already exists"), "{dup}");
    let short = s
        .create_user("bob", "short", Role::Viewer)
        .await
        .unwrap_err();
    assert!(short.to_string().contains("at least 8"), "{short}");
    let bad = s.create_user("a b", PW, Role::Viewer).await.unwrap_err();
    assert!(bad.to_string().contains("not allowed"), "{bad}");
    assert_eq!(s.user_count().await.unwrap(), 1);
}

#[tokio::test]
async fn login_checks_the_password_and_the_last_admin_cannot_be_removed() {
    let s = store().await;
    s.create_user("ada", PW, Role::Admin).await.unwrap();
    s.create_user("eve", PW, Role::Viewer).await.unwrap();
    let t = throttle(60_000);
    assert!(
        matches!(s.login("ada", PW, None, t).await.unwrap(), LoginOutcome::Ok(u) if u.role == Role::Admin)
    );
    assert_eq!(
        s.login("ada", "wrong-password", None, t).await.unwrap(),
        LoginOutcome::Refused
    );
    assert_eq!(
        s.login("nobody", PW, None, t).await.unwrap(),
        LoginOutcome::Refused
    );

    let err = s.set_role("ada", Role::Editor).await.unwrap_err();
    assert!(err.to_string().contains("last enabled admin"), "{err}");
    let err = s.set_disabled("ada", true).await.unwrap_err();
    assert!(err.to_string().contains("last enabled admin"), "{err}");
    s.set_role("eve", Role::Admin).await.unwrap();
    s.set_disabled("ada", true).await.unwrap();
    assert_eq!(
        s.login("ada", PW, None, t).await.unwrap(),
        LoginOutcome::Refused
    );
    s.set_disabled("ada", false).await.unwrap();
    s.set_password("ada", "another-password").await.unwrap();
    assert_eq!(
        s.login("ada", PW, None, t).await.unwrap(),
        LoginOutcome::Refused
    );
    assert!(matches!(
        s.login("ada", "another-password", None, t).await.unwrap(),
        LoginOutcome::Ok(_)
    ));
    assert!(s
        .set_role("ghost", Role::Viewer)
        .await
        .unwrap_err()
        .to_string()
        .contains("no user named"));
}

#[tokio::test]
async fn five_failures_throttle_a_name_and_an_address_until_the_backoff_passes() {
    let s = store().await;
    s.create_user("ada", PW, Role::Admin).await.unwrap();
    let t = throttle(1_500);
    for _ in 0..5 {
        assert_eq!(
            s.login("ada", "wrong-password", Some("10.0.0.1"), t)
                .await
                .unwrap(),
            LoginOutcome::Refused
        );
    }
    // Even the right password is refused while throttled, without being checked.
    let LoginOutcome::Throttled(wait) = s.login("ada", PW, Some("10.0.0.2"), t).await.unwrap()
    else {
        panic!("not throttled after 5 failures");
    };
    assert!(
        wait > Duration::ZERO && wait <= Duration::from_secs(2),
        "{wait:?}"
    );
    // The address is throttled for other names too.
    assert!(matches!(
        s.login("someone", PW, Some("10.0.0.1"), t).await.unwrap(),
        LoginOutcome::Throttled(_)
    ));
    tokio::time::sleep(Duration::from_millis(1_700)).await;
    assert!(matches!(
        s.login("ada", PW, Some("10.0.0.2"), t).await.unwrap(),
        LoginOutcome::Ok(_)
    ));
    // The success cleared the name's failures: one more failure does not throttle.
    assert_eq!(
        s.login("ada", "wrong-password", Some("10.0.0.2"), t)
            .await
            .unwrap(),
        LoginOutcome::Refused
    );
    assert!(matches!(
        s.login("ada", PW, Some("10.0.0.2"), t).await.unwrap(),
        LoginOutcome::Ok(_)
    ));
}

#[tokio::test]
async fn sessions_are_stored_hashed_expire_and_end_on_logout_or_disable() {
    let s = store().await;
    s.create_user("ada", PW, Role::Admin).await.unwrap();
    s.create_user("eve", PW, Role::Editor).await.unwrap();
    let LoginOutcome::Ok(eve) = s.login("eve", PW, None, throttle(1)).await.unwrap() else {
        panic!()
    };
    let new = s
        .create_session(&eve, Duration::from_secs(3600))
        .await
        .unwrap();
    let got = s
        .session(&new.cookie_value)
        .await
        .unwrap()
        .expect("live session");
    assert_eq!(
        (got.user.name.as_str(), got.user.role),
        ("eve", Role::Editor)
    );
    assert_eq!(got.csrf_token, new.csrf_token);
    // Only a hash of the secret half is stored.
    let (selector, verifier) = new.cookie_value.split_once('.').unwrap();
    let stored: Vec<u8> =
        sqlx::query_scalar("SELECT verifier_hash FROM sessions WHERE selector = $1")
            .bind(selector)
            .fetch_one(s.pool())
            .await
            .unwrap();
    assert_eq!(stored, store::auth::sha256(verifier));
    // A wrong verifier with the right selector is refused.
    assert!(s
        .session(&format!("{selector}.x{verifier}"))
        .await
        .unwrap()
        .is_none());
    assert!(s.session("garbage").await.unwrap().is_none());

    s.set_disabled("eve", true).await.unwrap();
    assert!(s.session(&new.cookie_value).await.unwrap().is_none());
    s.set_disabled("eve", false).await.unwrap();

    let short = s
        .create_session(&eve, Duration::from_millis(300))
        .await
        .unwrap();
    assert!(s.session(&short.cookie_value).await.unwrap().is_some());
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        s.session(&short.cookie_value).await.unwrap().is_none(),
        "expired session accepted"
    );

    let other = s
        .create_session(&eve, Duration::from_secs(60))
        .await
        .unwrap();
    let sel = other.cookie_value.split_once('.').unwrap().0.to_string();
    s.delete_session(&sel).await.unwrap();
    assert!(s.session(&other.cookie_value).await.unwrap().is_none());
}

#[tokio::test]
async fn api_tokens_are_shown_once_stored_hashed_and_revocable() {
    let s = store().await;
    let t = s
        .create_api_token("grafana", TokenScope::Read, "ada")
        .await
        .unwrap();
    assert!(t.secret.starts_with("pwt_"));
    let all: Vec<(String, Vec<u8>)> =
        sqlx::query_as("SELECT selector, verifier_hash FROM api_tokens")
            .fetch_all(s.pool())
            .await
            .unwrap();
    assert!(!all
        .iter()
        .any(|(sel, h)| t.secret.contains(&format!("{sel}_"))
            && String::from_utf8_lossy(h).contains(&t.secret)));
    let found = s
        .api_token(&t.secret)
        .await
        .unwrap()
        .expect("token accepted");
    assert_eq!(
        (found.name.as_str(), found.scope),
        ("grafana", TokenScope::Read)
    );
    let listed = s.list_api_tokens().await.unwrap();
    assert!(listed[0].last_used_at.is_some(), "use not recorded");
    // A changed last character is refused.
    let mut wrong = t.secret.clone();
    let last = wrong.pop().unwrap();
    wrong.push(if last == 'a' { 'b' } else { 'a' });
    assert!(s.api_token(&wrong).await.unwrap().is_none());
    assert!(s.api_token("not-a-token").await.unwrap().is_none());

    let dup = s
        .create_api_token("grafana", TokenScope::Admin, "ada")
        .await
        .unwrap_err();
    assert!(dup.to_string().contains("already in use"), "{dup}");
    assert_eq!(
        s.revoke_api_token(t.info.id).await.unwrap().as_deref(),
        Some("grafana")
    );
    assert!(
        s.api_token(&t.secret).await.unwrap().is_none(),
        "revoked token accepted"
    );
    assert_eq!(s.revoke_api_token(t.info.id).await.unwrap(), None);
    // The name is free again once revoked.
    s.create_api_token("grafana", TokenScope::Read, "ada")
        .await
        .unwrap();
}

#[tokio::test]
async fn the_audit_log_pages_newest_first() {
    let s = store().await;
    for i in 0..5 {
        s.audit(
            "ada",
            "user.add",
            &format!("u{i}"),
            serde_json::json!({"role": "viewer"}),
        )
        .await
        .unwrap();
    }
    let page = s.audit_log(3, None).await.unwrap();
    let targets: Vec<_> = page.iter().map(|e| e.target.as_str()).collect();
    assert_eq!(targets, ["u4", "u3", "u2"]);
    let next = s.audit_log(3, Some(page[2].id)).await.unwrap();
    let targets: Vec<_> = next.iter().map(|e| e.target.as_str()).collect();
    assert_eq!(targets, ["u1", "u0"]);
    assert_eq!(next[0].detail["role"], "viewer");
}
