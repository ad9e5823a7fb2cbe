//! Authorisation (issue 13, item 1): every route and server function against anonymous,
//! viewer, editor and admin, read out of the one policy table; CSRF; API tokens and their
//! scopes; session expiry and logout; login throttling over real HTTP with the real binary;
//! and no password in the logs or the audit log.

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use http_body_util::BodyExt;
use model::auth::{Role, TokenScope};
use server::auth::policy::{Access, POLICY};
use server::auth::AuthSettings;
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tower::ServiceExt;

const PASSWORD: &str = "correct-horse-battery";

/// A logged-in user: the session cookie and the CSRF token.
#[derive(Clone)]
struct Login {
    cookie: String,
    csrf: String,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Who {
    Anonymous,
    Viewer,
    Editor,
    Admin,
}

struct Reply {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: String,
}

async fn call(app: &axum::Router, req: Request<Body>) -> Reply {
    let resp = app.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    Reply {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

async fn login(app: &axum::Router, user: &str, password: &str) -> Reply {
    let body = serde_json::json!({"user": user, "password": password}).to_string();
    call(
        app,
        Request::post("/login")
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body))
            .unwrap(),
    )
    .await
}

async fn logged_in(app: &axum::Router, user: &str) -> Login {
    let r = login(app, user, PASSWORD).await;
    assert_eq!(r.status, StatusCode::OK, "login of {user}: {}", r.body);
    let set = r.headers[header::SET_COOKIE].to_str().unwrap().to_string();
    for attr in ["HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(set.contains(attr), "cookie without {attr}: {set}");
    }
    assert!(
        !set.contains("Secure"),
        "plain HTTP without secure_cookies: {set}"
    );
    let cookie = set.split(';').next().unwrap().to_string();
    assert!(cookie.starts_with("pw_session="), "{cookie}");
    let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    Login {
        cookie,
        csrf: v["data"]["csrf_token"].as_str().unwrap().to_string(),
    }
}

/// A concrete path for a route pattern.
fn concrete(pattern: &str) -> String {
    pattern
        .replace("{name}", "job")
        .replace("{tool}", "gx")
        .replace("{*file}", "pipewatch.css")
}

fn request(method: &str, path: &str, who: Option<&Login>, csrf: bool) -> Request<Body> {
    let mut b = Request::builder().method(method).uri(path);
    if let Some(l) = who {
        b = b.header(header::COOKIE, &l.cookie);
        if csrf {
            b = b.header("x-csrf-token", &l.csrf);
        }
    }
    if method == "POST" {
        b = b.header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
    }
    b.body(Body::empty()).unwrap()
}

fn is_auth_refusal(r: &Reply) -> bool {
    matches!(r.status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN)
        && (r.body.contains("\"unauthorized\"") || r.body.contains("\"forbidden\""))
}

/// A state over a fresh database with `anonymous_role = "none"`, and its users.
async fn secured() -> (server::AppState, axum::Router, Vec<(Who, Login)>) {
    let (mut st, _writers, _url) = pipewatch_tests::state(100_000).await;
    st.auth = Arc::new(AuthSettings {
        throttle: store::auth::Throttle {
            max_failures: 5,
            window: Duration::from_secs(900),
            backoff: Duration::from_secs(2),
        },
        ..AuthSettings::anonymous(None)
    });
    for (name, role) in [
        ("vera", Role::Viewer),
        ("ed", Role::Editor),
        ("ada", Role::Admin),
    ] {
        st.store.create_user(name, PASSWORD, role).await.unwrap();
    }
    let app = server::app(st.clone(), PathBuf::from("/nonexistent-site"));
    let mut users = Vec::new();
    for (who, name) in [
        (Who::Viewer, "vera"),
        (Who::Editor, "ed"),
        (Who::Admin, "ada"),
    ] {
        users.push((who, logged_in(&app, name).await));
    }
    std::mem::forget(_writers);
    (st, app, users)
}

/// Every (method, route) in the server's source: `.route("path", get(..).post(..))` in
/// server/src, read from the files so a route added anywhere is seen.
fn routes_in_source() -> BTreeSet<(String, String)> {
    let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../server/src");
    let mut files = vec![src.clone()];
    let mut out = BTreeSet::new();
    while let Some(p) = files.pop() {
        if p.is_dir() {
            files.extend(std::fs::read_dir(&p).unwrap().map(|e| e.unwrap().path()));
            continue;
        }
        if p.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let text = std::fs::read_to_string(&p).unwrap();
        // Test modules route toy handlers of their own.
        let text = text.split("#[cfg(test)]").next().unwrap();
        for chunk in text.split(".route(").skip(1) {
            let Some(path) = chunk
                .trim_start()
                .strip_prefix('"')
                .and_then(|c| c.split('"').next())
            else {
                continue; // a route built from a variable
            };
            let end = [
                ".route(",
                ".merge(",
                ".with_state(",
                ".layer(",
                ".fallback(",
                ".nest",
            ]
            .iter()
            .filter_map(|m| chunk.find(m))
            .min()
            .unwrap_or(chunk.len());
            let body = &chunk[..end];
            for (needle, method) in [
                ("get(", "GET"),
                ("post(", "POST"),
                ("put(", "PUT"),
                ("delete(", "DELETE"),
                ("patch(", "PATCH"),
            ] {
                if body.contains(needle) {
                    out.insert((method.to_string(), path.to_string()));
                }
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_and_server_function_answers_each_role_as_the_policy_table_says() {
    let (_st, app, users) = secured().await;
    let listed: BTreeSet<(String, String)> = POLICY
        .iter()
        .map(|r| (r.method.to_string(), r.path.to_string()))
        .collect();

    // 1. Every route the router serves is in the table: the API and receiver routes from the
    // source, the pages from the app's route list, the server functions from their registry.
    let mut served = routes_in_source();
    served.retain(|(_, p)| p != "/ping"); // the listener test's toy router (server/src/run.rs)
    for page in server::auth::page_routes() {
        served.insert(("GET".into(), page));
    }
    for (path, method) in server::auth::server_fn_routes() {
        served.insert((method, path));
    }
    let missing: Vec<_> = served.difference(&listed).collect();
    assert!(
        missing.is_empty(),
        "served but not in server/src/auth/policy.rs (deny by default refuses them): {missing:?}"
    );
    assert!(served.len() > 50, "too few routes found: {served:?}");

    // 2. Every rule, as each kind of caller.
    let who_login = |w: Who| users.iter().find(|(u, _)| *u == w).map(|(_, l)| l.clone());
    let mut checked = 0;
    for rule in POLICY {
        let path = concrete(rule.path);
        for who in [Who::Anonymous, Who::Viewer, Who::Editor, Who::Admin] {
            // Logging out would end the sessions the rest of the table is checked with; the
            // logout test below covers it.
            if rule.path == "/logout" && who != Who::Anonymous {
                checked += 1;
                continue;
            }
            let l = who_login(who);
            let r = call(&app, request(rule.method, &path, l.as_ref(), true)).await;
            let role = match who {
                Who::Anonymous => None,
                Who::Viewer => Some(Role::Viewer),
                Who::Editor => Some(Role::Editor),
                Who::Admin => Some(Role::Admin),
            };
            let what = format!(
                "{} {} as {who:?}: {} {}",
                rule.method,
                path,
                r.status,
                r.body.chars().take(300).collect::<String>()
            );
            match rule.access {
                Access::Public | Access::Receiver => {
                    assert!(!is_auth_refusal(&r), "refused: {what}")
                }
                Access::Role(min) => match role {
                    None => assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{what}"),
                    Some(have) if have < min => {
                        assert_eq!(r.status, StatusCode::FORBIDDEN, "{what}");
                        assert!(r.body.contains(&format!("needs the {min} role")), "{what}");
                    }
                    Some(_) => {
                        assert!(!is_auth_refusal(&r), "refused: {what}");
                        assert_ne!(r.status, StatusCode::METHOD_NOT_ALLOWED, "{what}");
                        // Pages render for whoever may see them (API reads may answer 400
                        // to a request without parameters).
                        let page = !["/api", "/pkg", "/metrics", "/favicon"]
                            .iter()
                            .any(|p| rule.path.starts_with(p));
                        if rule.method == "GET" && page {
                            assert!(r.status.is_success(), "{what}");
                        }
                    }
                },
            }
            checked += 1;
        }
    }
    assert_eq!(checked, POLICY.len() * 4);

    // 3. Browsers asking for a page without a login are sent to the login page.
    let r = call(
        &app,
        Request::get("/explore?q=up")
            .header(header::ACCEPT, "text/html")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(
        r.headers[header::LOCATION],
        "/login?next=%2Fexplore%3Fq%3Dup"
    );
    // Unknown paths: 404 page for a user, 401 for nobody.
    let admin = who_login(Who::Admin).unwrap();
    let r = call(&app, request("GET", "/no/such/page", Some(&admin), false)).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.body);
    let r = call(&app, request("GET", "/no/such/page", None, false)).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    // The admin pages render their server functions' data with the logged-in user.
    let r = call(&app, request("GET", "/users", Some(&admin), false)).await;
    assert!(
        r.body.contains("vera") && r.body.contains("ada"),
        "{}",
        r.body
    );
    assert!(r.body.contains("Log out"), "no logout button in the nav");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cookie_post_without_the_csrf_token_is_refused_and_bearer_tokens_are_exempt() {
    let (st, app, users) = secured().await;
    let admin = users
        .iter()
        .find(|(w, _)| *w == Who::Admin)
        .unwrap()
        .1
        .clone();
    let add = |csrf: Option<&str>, name: &str| {
        let mut body = format!("name={name}&password=long-enough-1&role=viewer");
        if let Some(c) = csrf {
            body.push_str(&format!("&csrf_token={c}"));
        }
        Request::post("/app-fn/add_user")
            .header(header::COOKIE, &admin.cookie)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(body))
            .unwrap()
    };
    let r = call(&app, add(None, "mallory")).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(
        r.body.contains("missing CSRF token") && r.body.contains("X-CSRF-Token"),
        "{}",
        r.body
    );
    let r = call(&app, add(Some("wrong"), "mallory")).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(r.body.contains("does not match"), "{}", r.body);
    assert!(st
        .store
        .list_users()
        .await
        .unwrap()
        .iter()
        .all(|u| u.name != "mallory"));
    // The session's token in the form field: the user is added, and audited once, specifically.
    let r = call(&app, add(Some(&admin.csrf), "bob")).await;
    assert!(r.status.is_success(), "{} {}", r.status, r.body);
    assert!(st
        .store
        .list_users()
        .await
        .unwrap()
        .iter()
        .any(|u| u.name == "bob"));
    let audit = st.store.audit_log(10, None).await.unwrap();
    assert_eq!(
        (
            audit[0].actor.as_str(),
            audit[0].action.as_str(),
            audit[0].target.as_str()
        ),
        ("ada", "user.add", "bob")
    );
    assert_ne!(audit[1].action, "POST /app-fn/add_user", "audited twice");
    // In the header, for a JSON-ish client; logout without it is refused too.
    let r = call(
        &app,
        Request::post("/logout")
            .header(header::COOKIE, &admin.cookie)
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);

    // API tokens: no CSRF; scopes decide.
    let read = st
        .store
        .create_api_token("grafana", TokenScope::Read, "ada")
        .await
        .unwrap();
    let admin_t = st
        .store
        .create_api_token("ops", TokenScope::Admin, "ada")
        .await
        .unwrap();
    let ingest = st
        .store
        .create_api_token("etl", TokenScope::Ingest, "ada")
        .await
        .unwrap();
    let bearer = |method: &str, path: &str, secret: &str, body: &str| {
        Request::builder()
            .method(method)
            .uri(path)
            .header(header::AUTHORIZATION, format!("Bearer {secret}"))
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(body.to_string()))
            .unwrap()
    };
    let r = call(&app, bearer("GET", "/api/v1/status", &read.secret, "")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = call(
        &app,
        bearer(
            "POST",
            "/app-fn/add_user",
            &read.secret,
            "name=x1&password=long-enough-1&role=viewer",
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    let r = call(
        &app,
        bearer(
            "POST",
            "/app-fn/add_user",
            &admin_t.secret,
            "name=x2&password=long-enough-1&role=viewer",
        ),
    )
    .await;
    assert!(r.status.is_success(), "{} {}", r.status, r.body);
    let r = call(&app, bearer("GET", "/api/v1/status", &ingest.secret, "")).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(r.body.contains("ingest scope"), "{}", r.body);
    st.store.revoke_api_token(read.info.id).await.unwrap();
    let r = call(&app, bearer("GET", "/api/v1/status", &read.secret, "")).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(r.body.contains("revoked"), "{}", r.body);
    // The generic audit row of a state change made with a token names the token.
    let audit = st.store.audit_log(50, None).await.unwrap();
    assert!(
        audit
            .iter()
            .any(|e| e.actor == "token:ops" && e.action == "user.add" && e.target == "x2"),
        "{audit:?}"
    );

    // Receivers: with [[auth.tokens]] configured, an ingest-scope API token is accepted too,
    // a read-scope one is not.
    let guarded = server::AppState {
        guard: Arc::new(server::guard::Guard::new(
            vec![server::config::ResolvedToken {
                name: "prom".into(),
                secret: "0123456789abcdef0123".into(),
                receivers: vec![],
            }],
            Default::default(),
        )),
        ..st.clone()
    };
    let gapp = server::app(guarded, PathBuf::from("/nonexistent-site"));
    let write = |secret: Option<&str>| {
        let mut b = Request::post("/api/v1/write")
            .header(header::CONTENT_TYPE, "application/x-protobuf")
            .header(header::CONTENT_ENCODING, "snappy");
        if let Some(s) = secret {
            b = b.header(header::AUTHORIZATION, format!("Bearer {s}"));
        }
        b.body(Body::from(vec![0u8; 0])).unwrap()
    };
    assert_eq!(
        call(&gapp, write(None)).await.status,
        StatusCode::UNAUTHORIZED
    );
    let r = call(&gapp, write(Some(&ingest.secret))).await;
    assert_ne!(
        r.status,
        StatusCode::UNAUTHORIZED,
        "ingest token refused: {}",
        r.body
    );
    let other_read = st
        .store
        .create_api_token("grafana2", TokenScope::Read, "ada")
        .await
        .unwrap();
    assert_eq!(
        call(&gapp, write(Some(&other_read.secret))).await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_expire_and_logout_ends_them() {
    let (st, app, users) = secured().await;
    st.store
        .create_user("eve", PASSWORD, Role::Viewer)
        .await
        .unwrap();
    let store::auth::LoginOutcome::Ok(user) = st
        .store
        .login("eve", PASSWORD, None, Default::default())
        .await
        .unwrap()
    else {
        panic!("login")
    };
    let short = st
        .store
        .create_session(&user, Duration::from_millis(800))
        .await
        .unwrap();
    let cookie = format!("pw_session={}", short.cookie_value);
    let get = |c: &str| {
        Request::get("/api/v1/status")
            .header(header::COOKIE, c)
            .body(Body::empty())
            .unwrap()
    };
    assert_eq!(call(&app, get(&cookie)).await.status, StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    assert_eq!(
        call(&app, get(&cookie)).await.status,
        StatusCode::UNAUTHORIZED,
        "expired session accepted"
    );

    let vera = users
        .iter()
        .find(|(w, _)| *w == Who::Viewer)
        .unwrap()
        .1
        .clone();
    let r = call(
        &app,
        Request::post("/logout")
            .header(header::COOKIE, &vera.cookie)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(format!("csrf_token={}", vera.csrf)))
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert!(r.headers[header::SET_COOKIE]
        .to_str()
        .unwrap()
        .contains("Max-Age=0"));
    assert_eq!(
        call(&app, get(&vera.cookie)).await.status,
        StatusCode::UNAUTHORIZED
    );
    let audit = st.store.audit_log(20, None).await.unwrap();
    assert!(
        audit
            .iter()
            .any(|e| e.action == "logout" && e.actor == "vera"),
        "{audit:?}"
    );
}

/// The real binary over real HTTP: the first admin from the environment, login throttling by
/// name with 429 and Retry-After, and a right password working after the back-off; no
/// password in the server's log (at debug level) or in the audit log. Then the command line
/// adds a user and creates a token that the server accepts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_wrong_passwords_throttle_with_retry_after_and_no_password_is_logged() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    let url = store::testing::fresh_database_url().await;
    let dir = std::env::temp_dir().join(format!("pipewatch-authz-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = dir.join("pipewatch.toml");
    std::fs::write(
        &cfg,
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\ndata_dir = \"{}\"\n[database]\nurl = \"{url}\"\n\
             [receivers]\notlp_grpc_listen = \"\"\n\
             [auth]\nlogin_backoff = \"3s\"\n",
            dir.display()
        ),
    )
    .unwrap();
    let log_path = dir.join("stderr.log");
    let admin_password = "first-admin-password-42";
    let mut child = Command::new(pipewatch_tests::pipewatch_bin())
        .args(["--config", cfg.to_str().unwrap(), "serve"])
        .env_remove("DATABASE_URL")
        .env("PIPEWATCH_LOG", "debug")
        .env("PIPEWATCH_ADMIN_USER", "root-admin")
        .env("PIPEWATCH_ADMIN_PASSWORD", admin_password)
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log_path).unwrap())
        .spawn()
        .expect("start pipewatch");
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert!(
        line.contains("pipewatch is up"),
        "{line}\n{}",
        std::fs::read_to_string(&log_path).unwrap_or_default()
    );
    let addr = line
        .split("http://")
        .nth(1)
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .to_string();
    let base = format!("http://{addr}");
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let login = |password: &str| {
        http.post(format!("{base}/login"))
            .form(&[
                ("user", "root-admin"),
                ("password", password),
                ("next", "/status"),
            ])
            .send()
    };

    // Anonymous is refused by default ("none").
    let r = http
        .get(format!("{base}/api/v1/status"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(
        http.get(format!("{base}/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    let wrong = "wrong-password-typed-here";
    for i in 0..5 {
        let r = login(wrong).await.unwrap();
        assert_eq!(r.status(), 303, "attempt {i}");
        assert!(r.headers()["location"]
            .to_str()
            .unwrap()
            .starts_with("/login?error=invalid"));
    }
    let r = login(admin_password).await.unwrap();
    assert_eq!(
        r.status(),
        429,
        "the 6th attempt is throttled, even with the right password"
    );
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=3).contains(&retry), "Retry-After {retry}");
    tokio::time::sleep(Duration::from_secs(retry) + Duration::from_millis(300)).await;
    let r = login(admin_password).await.unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/status");
    let cookie = r.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let r = http
        .get(format!("{base}/api/v1/status"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    // The command line on the same database: a user from stdin, a token printed once.
    let mut add = Command::new(pipewatch_tests::pipewatch_bin())
        .args([
            "--config",
            cfg.to_str().unwrap(),
            "user",
            "add",
            "cli-user",
            "--role",
            "editor",
            "--password-stdin",
        ])
        .env_remove("DATABASE_URL")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(add.stdin.as_mut().unwrap(), b"cli-user-password\n").unwrap();
    let done = add.wait_with_output().unwrap();
    assert!(
        done.status.success(),
        "{}",
        String::from_utf8_lossy(&done.stderr)
    );
    let token = Command::new(pipewatch_tests::pipewatch_bin())
        .args([
            "--config",
            cfg.to_str().unwrap(),
            "token",
            "create",
            "ci",
            "--scope",
            "read",
        ])
        .env_remove("DATABASE_URL")
        .output()
        .unwrap();
    assert!(
        token.status.success(),
        "{}",
        String::from_utf8_lossy(&token.stderr)
    );
    let secret = String::from_utf8(token.stdout).unwrap().trim().to_string();
    assert!(secret.starts_with("pwt_"), "{secret}");
    let r = http
        .get(format!("{base}/api/v1/status"))
        .bearer_auth(&secret)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let listed = Command::new(pipewatch_tests::pipewatch_bin())
        .args(["--config", cfg.to_str().unwrap(), "user", "list"])
        .env_remove("DATABASE_URL")
        .output()
        .unwrap();
    let listed = String::from_utf8_lossy(&listed.stdout);
    assert!(
        listed.contains("cli-user") && listed.contains("editor") && listed.contains("root-admin"),
        "{listed}"
    );

    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();

    let log = std::fs::read_to_string(&log_path).unwrap();
    assert!(
        log.contains("login refused"),
        "the server logged nothing about logins:\n{log}"
    );
    let store = store::Store::connect(&url, store::StoreConfig::default())
        .await
        .unwrap();
    let audit: Vec<String> = sqlx::query_scalar(
        "SELECT concat_ws(' ', actor, action, target, detail::text) FROM audit_log",
    )
    .fetch_all(store.pool())
    .await
    .unwrap();
    assert!(
        audit.iter().any(|a| a.contains("login.throttled")),
        "{audit:?}"
    );
    assert!(
        audit.iter().any(|a| a.contains("login.failed")),
        "{audit:?}"
    );
    for secret_text in [wrong, admin_password, "cli-user-password"] {
        assert!(
            !log.contains(secret_text),
            "a password is in the server log"
        );
        assert!(
            !audit.iter().any(|a| a.contains(secret_text)),
            "a password is in the audit log"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// `server.tls_cert` / `server.tls_key`: HTTPS with the configured certificate (a self-signed
/// one made by `openssl` here), and the session cookie marked `Secure` because the request
/// came over TLS. Half a configuration refuses to start naming both keys.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_is_served_with_the_configured_certificate_and_cookies_are_secure() {
    let dir = std::env::temp_dir().join(format!("pipewatch-authz-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let made = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl is installed");
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );

    let mut half = server::config::Config::default();
    half.server.tls_cert = cert.clone();
    let Err(e) = server::run::tls_acceptor(&half.server) else {
        panic!("half a TLS configuration was accepted")
    };
    let e = format!("{e:#}");
    assert!(
        e.contains("server.tls_cert") && e.contains("server.tls_key"),
        "{e}"
    );

    let url = store::testing::fresh_database_url().await;
    let store = store::Store::connect(&url, store::StoreConfig::default())
        .await
        .unwrap();
    store
        .create_user("ada", PASSWORD, Role::Admin)
        .await
        .unwrap();
    let mut cfg = server::config::Config::default();
    cfg.database.url = url;
    cfg.server.listen = "127.0.0.1:0".parse().unwrap();
    cfg.receivers.otlp_grpc_listen = String::new();
    cfg.server.tls_cert = cert;
    cfg.server.tls_key = key;
    let server = server::run::RunningServer::start(cfg, Default::default())
        .await
        .unwrap();
    let https = reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .build()
        .unwrap();
    let base = format!("https://localhost:{}", server.addr.port());
    let r = https
        .post(format!("{base}/login"))
        .json(&serde_json::json!({"user": "ada", "password": PASSWORD}))
        .send()
        .await
        .expect("HTTPS answers");
    assert_eq!(r.status(), 200);
    let set = r.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(
        set.contains("; Secure"),
        "cookie over TLS without Secure: {set}"
    );
    // Plain HTTP on the TLS port gets no answer.
    let plain = reqwest::get(format!("http://127.0.0.1:{}/healthz", server.addr.port())).await;
    assert!(plain.is_err() || !plain.unwrap().status().is_success());
    server.stop().await.unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}
