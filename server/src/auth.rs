//! Who may use the server: the auth layer in front of every route, logging in and out, and the
//! first admin.
//!
//! For every request the layer finds the route's rule in [`policy::POLICY`] (deny by default),
//! establishes who is asking — `Authorization: Bearer <api token>`, else the `pw_session`
//! cookie (a server-side session in PostgreSQL), else anonymous with `auth.anonymous_role` —
//! and refuses with 401 (nobody; browsers asking for a page are sent to `/login`) or 403 (not
//! enough role). State-changing routes called with the session cookie must carry the session's
//! CSRF token (`X-CSRF-Token` header, or a `csrf_token` field of a plain form post); bearer
//! tokens are exempt since browsers never attach them on their own. Successful state-changing
//! calls are written to the audit log. The push receivers keep their own `[[auth.tokens]]`
//! check; a pipewatch API token with the ingest (or admin) scope is accepted there too.
//!
//! TLS: with `server.tls_cert` and `server.tls_key` the listener serves HTTPS (`run.rs`) and
//! marks such requests [`ServedOverTls`], whose session cookies get `Secure`; behind a reverse
//! proxy that terminates TLS, `auth.secure_cookies = true` does the same.

pub mod policy;

use crate::config::AuthConfig;
use crate::state::AppState;
use axum::body::Body;
use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use model::auth::{Principal, Role, TokenScope, Via};
use policy::{Access, Lookup};
use std::net::SocketAddr;
use std::time::Duration;
use store::auth::{LoginOutcome, Throttle};
use subtle::ConstantTimeEq;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "pw_session";
/// The header carrying the CSRF token.
pub const CSRF_HEADER: &str = "x-csrf-token";
/// The form field carrying the CSRF token in plain form posts.
pub const CSRF_FIELD: &str = "csrf_token";
/// A handler that wrote its own, more specific audit row sets this response header; the
/// layer then writes no generic row (and removes the header).
pub const AUDITED_HEADER: &str = "x-pipewatch-audited";
/// Largest form body read to find a CSRF field.
const MAX_FORM_BYTES: usize = 1 << 20;

/// `[auth]` as the layer uses it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthSettings {
    pub anonymous_role: Option<Role>,
    pub session_lifetime: Duration,
    pub throttle: Throttle,
    pub secure_cookies: bool,
}

impl Default for AuthSettings {
    /// Secure by default: anonymous requests may do nothing.
    fn default() -> Self {
        Self::from_config(&AuthConfig::default())
    }
}

impl AuthSettings {
    pub fn from_config(c: &AuthConfig) -> Self {
        Self {
            anonymous_role: c.anonymous_role(),
            session_lifetime: c.session_lifetime,
            throttle: Throttle {
                max_failures: c.login_max_failures,
                window: c.login_window,
                backoff: c.login_backoff,
            },
            secure_cookies: c.secure_cookies,
        }
    }

    /// Defaults with `anonymous_role` set: tests whose subject is not auth use `Some(Admin)`.
    pub fn anonymous(role: Option<Role>) -> Self {
        Self {
            anonymous_role: role,
            ..Self::default()
        }
    }
}

/// Present in a request's extensions when it came over TLS (the cookie gets `Secure`).
#[derive(Debug, Clone, Copy)]
pub struct ServedOverTls;

/// Put in a receiver request's extensions when its bearer token is a pipewatch API token
/// with the ingest or admin scope; the receiver kernel then accepts it besides
/// `[[auth.tokens]]`. Holds the token's name for logs.
#[derive(Debug, Clone)]
pub struct IngestToken(pub String);

/// A refusal in the API's error envelope.
fn refuse(status: StatusCode, error_type: &str, message: impl Into<String>) -> Response {
    let body = serde_json::json!({
        "status": "error",
        "errorType": error_type,
        "error": message.into(),
    });
    (status, axum::Json(body)).into_response()
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let h = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, rest) = h.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
}

/// The value of cookie `name`, if sent.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// Who is asking, or the refusal when the request presented a credential that is not valid.
async fn principal(st: &AppState, headers: &HeaderMap) -> Result<Principal, Response> {
    if let Some(secret) = bearer(headers) {
        let token = st.store.api_token(secret).await.map_err(unavailable)?;
        let Some(token) = token else {
            return Err(refuse(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "bearer token not accepted: it is unknown, revoked or mistyped; create one with `pipewatch token create <name> --scope read` or on the Users and tokens page",
            ));
        };
        let Some(role) = token.scope.role() else {
            return Err(refuse(
                StatusCode::FORBIDDEN,
                "forbidden",
                format!(
                    "API token {:?} has the ingest scope, which is for the push receivers only; use a token with the read or admin scope here",
                    token.name
                ),
            ));
        };
        return Ok(Principal {
            name: format!("token:{}", token.name),
            role: Some(role),
            via: Via::Token,
            csrf_token: None,
        });
    }
    if let Some(value) = cookie(headers, SESSION_COOKIE) {
        // A stale or unknown cookie is no error: the request is anonymous, and a page
        // sends the browser to the login page.
        if let Some(s) = st.store.session(value).await.map_err(unavailable)? {
            return Ok(Principal {
                name: s.user.name,
                role: Some(s.user.role),
                via: Via::Session,
                csrf_token: Some(s.csrf_token),
            });
        }
    }
    Ok(Principal::anonymous(st.auth.anonymous_role))
}

fn unavailable(e: store::StoreError) -> Response {
    tracing::warn!(error = %e, "auth: the database could not answer");
    let mut r = refuse(
        StatusCode::SERVICE_UNAVAILABLE,
        "unavailable",
        format!("cannot check credentials: the database could not answer: {e}"),
    );
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
    r
}

fn wants_html(req: &Request) -> bool {
    req.method() == Method::GET
        && req
            .headers()
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains("text/html"))
}

/// `/login?next=<this page>`.
fn to_login(req: &Request) -> Response {
    let here = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    let next: String = url::form_urlencoded::byte_serialize(here.as_bytes()).collect();
    (
        StatusCode::SEE_OTHER,
        [(header::LOCATION, format!("/login?next={next}"))],
    )
        .into_response()
}

/// The auth layer; use with `axum::middleware::from_fn_with_state(state, layer)` on the whole
/// router (`Router::layer`, so that the matched route pattern is known).
pub async fn layer(State(st): State<AppState>, req: Request, next: Next) -> Response {
    let path = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_owned());
    // Static files served from `server.site_root` are a nested service under /pkg, which
    // leaves no matched path (or a private one): the same rule as the embedded bundle's.
    let pattern = match path.as_deref() {
        _ if req.uri().path().starts_with("/pkg/") => Some("/pkg/{*file}"),
        p => p,
    };
    let rule = match policy::lookup(req.method().as_str(), pattern) {
        Lookup::Rule(r) => r,
        Lookup::OtherMethods => {
            let p = pattern.unwrap_or_default();
            let allow = policy::methods_of(p).join(", ");
            let mut r = refuse(
                StatusCode::METHOD_NOT_ALLOWED,
                "bad_data",
                format!("{} is not served at {p}; use {allow}", req.method()),
            );
            if let Ok(v) = HeaderValue::from_str(&allow) {
                r.headers_mut().insert(header::ALLOW, v);
            }
            return r;
        }
        Lookup::Unlisted => {
            let p = pattern.unwrap_or_default();
            tracing::error!(method = %req.method(), route = p, "route is not in the auth policy table (server/src/auth/policy.rs): refused");
            return refuse(
                StatusCode::FORBIDDEN,
                "forbidden",
                format!(
                    "{} {p} is not in pipewatch's authorisation table, so it is refused for everyone; add it to server/src/auth/policy.rs",
                    req.method()
                ),
            );
        }
    };
    if rule.access == Access::Receiver {
        return receiver(&st, req, next).await;
    }
    // Static files and health checks: no database lookups. The login page and
    // `current_user` show who is logged in, so they do look.
    let shows_user = matches!(rule.path, "/login" | "/app-fn/current_user");
    if rule.access == Access::Public && !rule.changes_state && !shows_user {
        return next.run(req).await;
    }
    let who = match principal(&st, req.headers()).await {
        Ok(p) => p,
        // A stale token does not keep anyone from a public route.
        Err(_) if rule.access == Access::Public => Principal::anonymous(st.auth.anonymous_role),
        Err(r) => return r,
    };
    if let Access::Role(min) = rule.access {
        if !who.has(min) {
            if who.via == Via::Anonymous {
                if wants_html(&req) {
                    return to_login(&req);
                }
                let mut r = refuse(
                    StatusCode::UNAUTHORIZED,
                    "unauthorized",
                    format!(
                        "log in first (POST /login) or send `Authorization: Bearer <api token>`; {} {} needs the {min} role",
                        req.method(),
                        rule.path
                    ),
                );
                r.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"pipewatch\""),
                );
                return r;
            }
            return refuse(
                StatusCode::FORBIDDEN,
                "forbidden",
                format!(
                    "{} {} needs the {min} role; {} has {}; an admin can change roles on the Users page",
                    req.method(),
                    rule.path,
                    who.name,
                    who.role.map_or("no role", Role::as_str)
                ),
            );
        }
    }
    let mut req = req;
    if rule.changes_state && who.via == Via::Session {
        req = match check_csrf(req, who.csrf_token.as_deref().unwrap_or_default()).await {
            Ok(r) => r,
            Err(r) => return r,
        };
    }
    let audit = rule.changes_state.then(|| {
        (
            format!("{} {}", req.method(), rule.path),
            req.uri().path().to_string(),
        )
    });
    req.extensions_mut().insert(who.clone());
    let mut resp = next.run(req).await;
    let self_audited = resp.headers_mut().remove(AUDITED_HEADER).is_some();
    if let Some((action, target)) = audit {
        let ok = resp.status().is_success() || resp.status().is_redirection();
        if ok && !self_audited {
            let detail = serde_json::json!({"status": resp.status().as_u16()});
            if let Err(e) = st.store.audit(&who.name, &action, &target, detail).await {
                tracing::warn!(error = %e, %action, "could not write the audit log");
            }
        }
    }
    resp
}

/// Receivers keep their own token check; a pipewatch API token with the ingest or admin scope
/// is marked for the kernel to accept as well.
async fn receiver(st: &AppState, mut req: Request, next: Next) -> Response {
    if let Some(secret) = bearer(req.headers()).filter(|s| s.starts_with(store::auth::TOKEN_PREFIX))
    {
        match st.store.api_token(secret).await {
            Ok(Some(t)) if matches!(t.scope, TokenScope::Ingest | TokenScope::Admin) => {
                req.extensions_mut().insert(IngestToken(t.name));
            }
            Ok(_) => {}
            Err(e) => return unavailable(e),
        }
    }
    next.run(req).await
}

/// Refuses a session request without the session's CSRF token; gives the request back (its
/// body re-assembled when a form field had to be read) when the token is right.
async fn check_csrf(req: Request, expected: &str) -> Result<Request, Response> {
    let matches = |got: &str| -> bool {
        !expected.is_empty() && bool::from(got.as_bytes().ct_eq(expected.as_bytes()))
    };
    if let Some(v) = req.headers().get(CSRF_HEADER) {
        return if v.to_str().is_ok_and(matches) {
            Ok(req)
        } else {
            Err(csrf_wrong())
        };
    }
    let is_form = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if !is_form {
        return Err(csrf_missing());
    }
    let (parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(body, MAX_FORM_BYTES)
        .await
        .map_err(|_| {
            refuse(
                StatusCode::PAYLOAD_TOO_LARGE,
                "bad_data",
                format!("form body larger than {MAX_FORM_BYTES} bytes"),
            )
        })?;
    let field = url::form_urlencoded::parse(&bytes)
        .find(|(k, _)| k == CSRF_FIELD)
        .map(|(_, v)| v.into_owned());
    match field {
        Some(v) if matches(&v) => Ok(Request::from_parts(parts, Body::from(bytes))),
        Some(_) => Err(csrf_wrong()),
        None => Err(csrf_missing()),
    }
}

fn csrf_missing() -> Response {
    refuse(
        StatusCode::FORBIDDEN,
        "forbidden",
        "missing CSRF token: a request that changes something and is authenticated by the session cookie must send the session's CSRF token in the X-CSRF-Token header (or a csrf_token form field); reload the page to get it, or use an API token instead of the cookie",
    )
}

fn csrf_wrong() -> Response {
    refuse(
        StatusCode::FORBIDDEN,
        "forbidden",
        "the CSRF token does not match this session; reload the page and try again",
    )
}

/// `Set-Cookie` for a new session, or (`value` None) for removing it.
fn session_cookie(value: Option<&str>, max_age: Duration, secure: bool) -> HeaderValue {
    let mut c = match value {
        Some(v) => format!(
            "{SESSION_COOKIE}={v}; HttpOnly; SameSite=Lax; Path=/; Max-Age={}",
            max_age.as_secs()
        ),
        None => format!("{SESSION_COOKIE}=; HttpOnly; SameSite=Lax; Path=/; Max-Age=0"),
    };
    if secure {
        c.push_str("; Secure");
    }
    HeaderValue::from_str(&c).expect("cookie values are alphanumeric")
}

/// What the login form or a JSON client posts.
#[derive(serde::Deserialize)]
struct LoginForm {
    #[serde(alias = "username")]
    user: String,
    password: String,
    #[serde(default)]
    next: String,
}

impl std::fmt::Debug for LoginForm {
    // The password never reaches a log line, even at debug level.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginForm")
            .field("user", &self.user)
            .field("next", &self.next)
            .finish_non_exhaustive()
    }
}

/// Only paths of this site: `//evil.example` or `https://...` would make the login page an
/// open redirect.
fn safe_next(next: &str) -> &str {
    if next.starts_with('/') && !next.starts_with("//") && !next.starts_with("/\\") {
        next
    } else {
        "/explore"
    }
}

/// True when the request says it came from another site (a login CSRF attempt).
fn cross_site(headers: &HeaderMap) -> bool {
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    match (
        headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()),
        host,
    ) {
        (Some("null"), _) => true,
        (Some(origin), Some(host)) => {
            let authority = origin.split("://").nth(1).unwrap_or(origin);
            !authority.eq_ignore_ascii_case(host)
        }
        _ => false,
    }
}

/// `POST /login`: a form (`user`, `password`, `next`; answered with redirects, as browsers
/// want) or JSON (`{"user": ..., "password": ...}`; answered with JSON and the CSRF token).
pub async fn login(State(st): State<AppState>, req: Request) -> Response {
    let secure = st.auth.secure_cookies || req.extensions().get::<ServedOverTls>().is_some();
    let address = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip().to_string());
    let is_json = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if cross_site(req.headers()) {
        return refuse(
            StatusCode::FORBIDDEN,
            "forbidden",
            "login refused: the request came from another site (Origin does not match Host)",
        );
    }
    let bytes = match axum::body::to_bytes(req.into_body(), 64 << 10).await {
        Ok(b) => b,
        Err(_) => {
            return refuse(
                StatusCode::PAYLOAD_TOO_LARGE,
                "bad_data",
                "login body larger than 64 KiB",
            )
        }
    };
    let form: LoginForm = match if is_json {
        serde_json::from_slice(&bytes).map_err(|e| e.to_string())
    } else {
        serde_urlencoded::from_bytes(&bytes).map_err(|e| e.to_string())
    } {
        Ok(f) => f,
        Err(e) => {
            return refuse(
                StatusCode::BAD_REQUEST,
                "bad_data",
                format!("send `user` and `password` (form fields or JSON): {e}"),
            )
        }
    };
    let next = safe_next(&form.next).to_string();
    let outcome = match st
        .store
        .login(
            &form.user,
            &form.password,
            address.as_deref(),
            st.auth.throttle,
        )
        .await
    {
        Ok(o) => o,
        Err(e) => return unavailable(e),
    };
    let detail = serde_json::json!({"address": address});
    match outcome {
        LoginOutcome::Ok(user) => {
            let session = match st
                .store
                .create_session(&user, st.auth.session_lifetime)
                .await
            {
                Ok(s) => s,
                Err(e) => return unavailable(e),
            };
            audit(&st, &user.name, "login", &user.name, detail).await;
            tracing::info!(user = %user.name, "login");
            let cookie = session_cookie(
                Some(&session.cookie_value),
                st.auth.session_lifetime,
                secure,
            );
            if is_json {
                let body = serde_json::json!({"status": "success", "data": {
                    "user": user.name, "role": user.role, "csrf_token": session.csrf_token,
                }});
                ([(header::SET_COOKIE, cookie)], axum::Json(body)).into_response()
            } else {
                (
                    StatusCode::SEE_OTHER,
                    [(header::SET_COOKIE, cookie)],
                    [(
                        header::LOCATION,
                        HeaderValue::from_str(&next)
                            .unwrap_or(HeaderValue::from_static("/explore")),
                    )],
                )
                    .into_response()
            }
        }
        LoginOutcome::Refused => {
            audit(&st, "anonymous", "login.failed", &form.user, detail).await;
            tracing::info!(user = %form.user, "login refused");
            if is_json {
                refuse(
                    StatusCode::UNAUTHORIZED,
                    "unauthorized",
                    "wrong user name or password",
                )
            } else {
                let next: String = url::form_urlencoded::byte_serialize(next.as_bytes()).collect();
                (
                    StatusCode::SEE_OTHER,
                    [(
                        header::LOCATION,
                        format!("/login?error=invalid&next={next}"),
                    )],
                )
                    .into_response()
            }
        }
        LoginOutcome::Throttled(wait) => {
            audit(&st, "anonymous", "login.throttled", &form.user, detail).await;
            let secs = wait.as_secs().max(1);
            let mut r = refuse(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_requests",
                format!(
                    "too many failed logins for this user name or from this address; try again in {secs} s"
                ),
            );
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
            r
        }
    }
}

/// `POST /logout`: ends the session (the layer checked its CSRF token) and goes to the login
/// page.
pub async fn logout(State(st): State<AppState>, req: Request) -> Response {
    let who = req.extensions().get::<Principal>().cloned();
    if let (Some(who), Some(value)) = (who, cookie(req.headers(), SESSION_COOKIE)) {
        if who.via == Via::Session {
            let selector = value.split_once('.').map_or(value, |(s, _)| s);
            if let Err(e) = st.store.delete_session(selector).await {
                return unavailable(e);
            }
            audit(&st, &who.name, "logout", &who.name, serde_json::json!({})).await;
        }
    }
    (
        StatusCode::SEE_OTHER,
        [
            (
                header::SET_COOKIE,
                session_cookie(None, Duration::ZERO, false),
            ),
            (header::LOCATION, HeaderValue::from_static("/login")),
            (
                header::HeaderName::from_static(AUDITED_HEADER),
                HeaderValue::from_static("1"),
            ),
        ],
    )
        .into_response()
}

async fn audit(st: &AppState, actor: &str, action: &str, target: &str, detail: serde_json::Value) {
    if let Err(e) = st.store.audit(actor, action, target, detail).await {
        tracing::warn!(error = %e, action, "could not write the audit log");
    }
}

/// The login and logout routes (the login page itself is a Leptos page at `GET /login`).
pub fn router(state: AppState) -> axum::Router {
    axum::Router::new()
        .route("/login", axum::routing::post(login))
        .route("/logout", axum::routing::post(logout))
        .with_state(state)
}

/// Every page route of the web app, as the router registers them (for the policy test).
pub fn page_routes() -> Vec<String> {
    leptos_axum::generate_route_list(app::App)
        .into_iter()
        .map(|r| r.path().to_string())
        .collect()
}

/// Every server function, (path, method), as the router registers them (for the policy test).
pub fn server_fn_routes() -> Vec<(String, String)> {
    leptos::server_fn::axum::server_fn_paths()
        .map(|(path, method)| (path.to_string(), method.to_string()))
        .collect()
}

/// On a first start with no users, makes the admin named by `PIPEWATCH_ADMIN_USER` with the
/// password in `PIPEWATCH_ADMIN_PASSWORD`. Does nothing once any user exists; says so when the
/// variables are set but unused, and warns when nobody could log in.
pub async fn bootstrap_admin(store: &store::Store, settings: &AuthSettings) -> anyhow::Result<()> {
    let users = store.user_count().await?;
    let name = std::env::var("PIPEWATCH_ADMIN_USER")
        .ok()
        .filter(|v| !v.is_empty());
    let password = std::env::var("PIPEWATCH_ADMIN_PASSWORD").ok();
    match (users, name, password) {
        (0, Some(name), Some(password)) => {
            store
                .create_user(&name, &password, Role::Admin)
                .await
                .map_err(|e| anyhow::anyhow!("PIPEWATCH_ADMIN_USER / PIPEWATCH_ADMIN_PASSWORD: {e}"))?;
            store
                .audit("env", "user.add", &name, serde_json::json!({"role": "admin"}))
                .await?;
            tracing::info!(user = %name, "created the first admin from PIPEWATCH_ADMIN_USER");
        }
        (0, Some(_), None) => anyhow::bail!(
            "PIPEWATCH_ADMIN_USER is set but PIPEWATCH_ADMIN_PASSWORD is not: set both to create the first admin"
        ),
        (0, None, _) if settings.anonymous_role.is_none() => tracing::warn!(
            "no users yet and auth.anonymous_role = \"none\": nobody can log in; create an admin with `pipewatch user add <name> --role admin` or set PIPEWATCH_ADMIN_USER and PIPEWATCH_ADMIN_PASSWORD"
        ),
        (n, Some(_), _) if n > 0 => tracing::info!(
            "users exist: PIPEWATCH_ADMIN_USER / PIPEWATCH_ADMIN_PASSWORD are ignored"
        ),
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_stays_on_this_site_and_cookies_are_parsed() {
        assert_eq!(safe_next("/explore?q=up"), "/explore?q=up");
        assert_eq!(safe_next("//evil.example/x"), "/explore");
        assert_eq!(safe_next("https://evil.example"), "/explore");
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; pw_session=abc.def"),
        );
        assert_eq!(cookie(&h, SESSION_COOKIE), Some("abc.def"));
        assert_eq!(cookie(&h, "b"), None);
        let c = session_cookie(Some("x.y"), Duration::from_secs(60), true);
        let c = c.to_str().unwrap();
        assert!(
            c.contains("HttpOnly")
                && c.contains("SameSite=Lax")
                && c.contains("Secure")
                && c.contains("Path=/"),
            "{c}"
        );
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static("pw.local:9090"));
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://pw.local:9090"),
        );
        assert!(!cross_site(&h));
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("https://evil.example"),
        );
        assert!(cross_site(&h));
    }
}
