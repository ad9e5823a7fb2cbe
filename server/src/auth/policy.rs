//! THE authorisation table: for every route the server serves (method + route pattern as
//! written in the router, and every Leptos server function), who may call it and whether it
//! changes state. The auth layer looks every request up here; a route the router serves but
//! this table does not list is refused (deny by default), so a new route cannot slip through
//! unprotected, and `tests/tests/authz.rs` fails until it is listed.
//!
//! # Adding a route: one line
//!
//! - reads (pages, GET API, server functions that only read): `read("GET", "/path")`;
//! - feedback on anomalies, silences, alert actions (ack, assign, snooze, note, resolve),
//!   rules: `write("POST", "/path", Editor)`;
//! - users, API tokens, audit log: `admin_read(...)` / `write(..., Admin)`;
//! - push receivers with their own `[[auth.tokens]]` check: `receiver("POST", "/path")`;
//! - health, readiness, static assets, the login page: `public(...)`.
//!
//! Write rules need the CSRF token when the caller authenticated with the session cookie, and
//! every successful call through a write rule is written to the audit log. Server functions
//! are POSTs: list a reading one with `read("POST", "/app-fn/<endpoint>")` (no CSRF token
//! needed: it changes nothing, and a cross-site page cannot read its answer).

use model::auth::Role;
use model::auth::Role::{Admin, Editor, Viewer};

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone, logged in or not.
    Public,
    /// A push receiver: its own bearer-token check (`[[auth.tokens]]`, or a pipewatch API token
    /// with the ingest or admin scope) applies instead of users and roles.
    Receiver,
    /// At least this role.
    Role(Role),
}

/// One row of the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    /// `GET`, `POST`, ...; `GET` rules also cover `HEAD`.
    pub method: &'static str,
    /// The route pattern exactly as the router has it (`/api/v1/label/{name}/values`).
    pub path: &'static str,
    pub access: Access,
    /// Needs the CSRF token with a session cookie, and is audited.
    pub changes_state: bool,
}

const fn public(method: &'static str, path: &'static str) -> Rule {
    Rule {
        method,
        path,
        access: Access::Public,
        changes_state: false,
    }
}

const fn receiver(method: &'static str, path: &'static str) -> Rule {
    Rule {
        method,
        path,
        access: Access::Receiver,
        changes_state: false,
    }
}

const fn read(method: &'static str, path: &'static str) -> Rule {
    Rule {
        method,
        path,
        access: Access::Role(Viewer),
        changes_state: false,
    }
}

const fn admin_read(method: &'static str, path: &'static str) -> Rule {
    Rule {
        method,
        path,
        access: Access::Role(Admin),
        changes_state: false,
    }
}

const fn write(method: &'static str, path: &'static str, role: Role) -> Rule {
    Rule {
        method,
        path,
        access: Access::Role(role),
        changes_state: true,
    }
}

/// Unknown paths get the app's 404 page; seeing it needs no more than a viewer.
pub static FALLBACK: Rule = read("GET", "<fallback>");

/// Every route. Keep it grouped like the routers are.
pub const POLICY: &[Rule] = &[
    // Health and readiness: for load balancers and orchestrators, no credentials.
    public("GET", "/healthz"),
    public("GET", "/readyz"),
    // Static assets of the pages (the login page needs them too).
    public("GET", "/favicon.ico"),
    public("GET", "/favicon.svg"),
    public("GET", "/pkg/{*file}"),
    // Logging in and out (server/src/auth.rs). Logout changes state: a session needs its CSRF
    // token, so another site cannot log people out.
    public("GET", "/login"),
    public("POST", "/login"),
    Rule {
        method: "POST",
        path: "/logout",
        access: Access::Public,
        changes_state: true,
    },
    // Self-metrics: Prometheus scrapes them with a read-scope API token.
    read("GET", "/metrics"),
    // The read API (server/src/api/*). Prometheus' API takes POST for long queries: reads.
    read("GET", "/api/v1/status"),
    read("GET", "/api/v1/status/buildinfo"),
    read("GET", "/api/v1/targets"),
    read("GET", "/api/v1/series"),
    read("POST", "/api/v1/series"),
    read("GET", "/api/v1/labels"),
    read("POST", "/api/v1/labels"),
    read("GET", "/api/v1/label/{name}/values"),
    read("POST", "/api/v1/label/{name}/values"),
    read("GET", "/api/v1/metadata"),
    read("POST", "/api/v1/metadata"),
    read("GET", "/api/v1/query"),
    read("POST", "/api/v1/query"),
    read("GET", "/api/v1/query_range"),
    read("POST", "/api/v1/query_range"),
    read("GET", "/api/v1/format_query"),
    read("POST", "/api/v1/format_query"),
    read("GET", "/api/v1/dq/datasets"),
    read("GET", "/api/v1/dq/checks"),
    read("GET", "/api/v1/lineage/graph"),
    read("GET", "/api/v1/lineage/runs"),
    read("GET", "/api/v1/lineage/schema_changes"),
    read("GET", "/api/v1/events"),
    read("GET", "/api/v1/alerts"),
    // Anomalies, pipeline health and drift (server/src/api/anomalies.rs, drift.rs).
    read("GET", "/api/v1/anomalies"),
    read("GET", "/api/v1/anomalies/{id}"),
    write("POST", "/api/v1/anomalies/{id}/feedback", Editor),
    read("GET", "/api/v1/pipeline/health"),
    read("GET", "/api/v1/drift"),
    // The alert lifecycle (server/src/api/lifecycle.rs).
    read("GET", "/api/v1/lifecycle/alerts"),
    read("GET", "/api/v1/lifecycle/alerts/{id}"),
    write("POST", "/api/v1/lifecycle/alerts/{id}/acknowledge", Editor),
    write("POST", "/api/v1/lifecycle/alerts/{id}/notes", Editor),
    write(
        "POST",
        "/api/v1/lifecycle/alerts/{id}/unacknowledge",
        Editor,
    ),
    write("POST", "/api/v1/lifecycle/alerts/{id}/assign", Editor),
    write("POST", "/api/v1/lifecycle/alerts/{id}/snooze", Editor),
    write("POST", "/api/v1/lifecycle/alerts/{id}/resolve", Editor),
    read("GET", "/api/v2/silences"),
    write("POST", "/api/v2/silences", Editor),
    read("GET", "/api/v2/silence/{id}"),
    write("DELETE", "/api/v2/silence/{id}", Editor),
    read("GET", "/api/v1/rules"),
    read("GET", "/api/v1/evidence/spans"),
    read("GET", "/api/v1/evidence/logs"),
    // Push receivers (server/src/receivers.rs).
    receiver("POST", "/api/v1/write"),
    receiver("POST", "/api/v1/drift/profile"),
    receiver("POST", "/api/v1/dq/{tool}"),
    receiver("POST", "/api/v1/lineage"),
    receiver("POST", "/api/v1/events"),
    receiver("POST", "/api/v2/alerts"),
    receiver("POST", "/v1/metrics"),
    receiver("POST", "/v1/traces"),
    receiver("POST", "/v1/logs"),
    // Pages (app/src/lib.rs).
    read("GET", "/"),
    read("GET", "/anomalies"),
    read("GET", "/anomalies/{id}"),
    read("GET", "/alerts"),
    read("GET", "/alerts/{id}"),
    read("GET", "/silences"),
    read("GET", "/oncall"),
    read("GET", "/channels"),
    read("POST", "/app-fn/channels_view"),
    write("POST", "/app-fn/send_test_notification", Editor),
    read("GET", "/rules"),
    read("GET", "/drift"),
    read("GET", "/explore"),
    read("GET", "/targets"),
    read("GET", "/status"),
    read("GET", "/quality"),
    admin_read("GET", "/users"),
    admin_read("GET", "/audit"),
    // Server functions (app/src/*.rs, `#[server(prefix = "/app-fn", ...)]`).
    public("POST", "/app-fn/current_user"),
    read("POST", "/app-fn/explore_options"),
    read("POST", "/app-fn/query_chart"),
    read("POST", "/app-fn/list_targets"),
    read("POST", "/app-fn/get_status"),
    read("POST", "/app-fn/quality_view"),
    read("POST", "/app-fn/pipelines_view"),
    read("POST", "/app-fn/anomalies_view"),
    read("POST", "/app-fn/anomaly_detail"),
    read("POST", "/app-fn/drift_view"),
    write("POST", "/app-fn/anomaly_feedback", Editor),
    read("POST", "/app-fn/alerts_view"),
    read("POST", "/app-fn/alert_detail"),
    read("POST", "/app-fn/silences_view"),
    read("POST", "/app-fn/silence_preview"),
    read("POST", "/app-fn/rules_view"),
    read("POST", "/app-fn/preview_rule_group"),
    write("POST", "/app-fn/save_rule_group", Editor),
    write("POST", "/app-fn/delete_rule_group", Editor),
    write("POST", "/app-fn/alert_action", Editor),
    write("POST", "/app-fn/bulk_alert_action", Editor),
    write("POST", "/app-fn/create_silence", Editor),
    write("POST", "/app-fn/expire_silence", Editor),
    read("POST", "/app-fn/oncall_view"),
    write("POST", "/app-fn/add_override", Editor),
    write("POST", "/app-fn/delete_override", Editor),
    admin_read("POST", "/app-fn/list_users"),
    admin_read("POST", "/app-fn/list_tokens"),
    admin_read("POST", "/app-fn/audit_page"),
    write("POST", "/app-fn/add_user", Admin),
    write("POST", "/app-fn/change_user", Admin),
    write("POST", "/app-fn/set_user_email", Admin),
    write("POST", "/app-fn/create_token", Admin),
    write("POST", "/app-fn/revoke_token", Admin),
];

/// What the table says about one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup {
    Rule(&'static Rule),
    /// The path is listed, but not for this method: the methods it is listed for.
    OtherMethods,
    /// The router serves this route, the table does not list it: refuse.
    Unlisted,
}

/// The rule for `method` on the route pattern `path` (`None`: the router's fallback).
pub fn lookup(method: &str, path: Option<&str>) -> Lookup {
    let Some(path) = path else {
        return Lookup::Rule(&FALLBACK);
    };
    let method = if method == "HEAD" { "GET" } else { method };
    let mut listed = false;
    for rule in POLICY {
        if rule.path == path {
            if rule.method == method {
                return Lookup::Rule(rule);
            }
            listed = true;
        }
    }
    if listed {
        Lookup::OtherMethods
    } else {
        Lookup::Unlisted
    }
}

/// The methods the table lists for `path`, for a 405's `Allow` header.
pub fn methods_of(path: &str) -> Vec<&'static str> {
    POLICY
        .iter()
        .filter(|r| r.path == path)
        .map(|r| r.method)
        .collect()
}

/// True when `role` may call `method path` by the table (server functions run during page
/// rendering ask this, since no request of their own passes the auth layer then).
pub fn allows(method: &str, path: &str, role: Option<Role>) -> bool {
    match lookup(method, Some(path)) {
        Lookup::Rule(r) => match r.access {
            Access::Public => true,
            Access::Receiver => false,
            Access::Role(min) => role.is_some_and(|have| have >= min),
        },
        Lookup::OtherMethods | Lookup::Unlisted => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use model::auth::Role::Editor;

    #[test]
    fn every_rule_is_listed_once_and_lookups_deny_what_is_not_listed() {
        let mut seen = std::collections::HashSet::new();
        for r in POLICY {
            assert!(seen.insert((r.method, r.path)), "listed twice: {r:?}");
            assert!(r.path.starts_with('/'), "{r:?}");
        }
        assert!(
            matches!(lookup("HEAD", Some("/explore")), Lookup::Rule(r) if r.path == "/explore")
        );
        assert_eq!(lookup("DELETE", Some("/explore")), Lookup::OtherMethods);
        assert_eq!(lookup("GET", Some("/api/v1/new_thing")), Lookup::Unlisted);
        assert!(allows("POST", "/app-fn/add_user", Some(Admin)));
        assert!(!allows("POST", "/app-fn/add_user", Some(Editor)));
        assert!(!allows("POST", "/app-fn/not_listed", Some(Admin)));
        assert!(allows("GET", "/healthz", None));
        assert!(!allows("GET", "/explore", None));
    }
}
