//! `[auth]`: who may use pipewatch. Users, sessions and API tokens (stored in the database,
//! see `server::auth`): what anonymous visitors may do, how long a session lasts and when
//! logins are throttled. And `[[auth.tokens]]`: bearer tokens of the push receivers, where
//! each secret comes from, and which receivers it may write to. Secrets never reach a log line
//! or an error message.

use super::duration;
use anyhow::{anyhow, bail, Result};
use model::auth::Role;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::Duration;

/// `[auth]`. With no `[[auth.tokens]]` every push receiver is open, which suits a server on
/// loopback; once one token is configured, requests without an accepted token get 401. Pages
/// and the read API need a login (or an API token) unless `anonymous_role` allows more.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// What a request without a session or API token may do: "none" (log in first; the
    /// default), "viewer", "editor" or "admin" (like Grafana's anonymous access).
    pub anonymous_role: String,
    /// How long a login lasts.
    #[serde(with = "duration")]
    pub session_lifetime: Duration,
    /// Failed logins for one user name (or from one address) within `login_window` that
    /// throttle further attempts.
    pub login_max_failures: u32,
    #[serde(with = "duration")]
    pub login_window: Duration,
    /// How long a throttled name or address waits (429 with Retry-After).
    #[serde(with = "duration")]
    pub login_backoff: Duration,
    /// Mark the session cookie `Secure` even on plain HTTP: set it when a reverse proxy
    /// terminates TLS in front of pipewatch (requests served over TLS by pipewatch itself
    /// always get it).
    pub secure_cookies: bool,
    pub tokens: Vec<TokenConfig>,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            anonymous_role: "none".into(),
            session_lifetime: Duration::from_secs(12 * 3600),
            login_max_failures: 5,
            login_window: Duration::from_secs(15 * 60),
            login_backoff: Duration::from_secs(5 * 60),
            secure_cookies: false,
            tokens: Vec::new(),
        }
    }
}

/// One accepted token: `[[auth.tokens]]`. The secret comes from exactly one of `token`,
/// `token_env` (an environment variable) or `token_file`; `name` is what logs and self-metrics
/// show, never the token.
#[derive(Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TokenConfig {
    pub name: String,
    #[serde(default, skip_serializing)]
    pub token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_env: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_file: Option<PathBuf>,
    /// Receivers this token may write to (`remote_write`, `otlp`, `dq`, `openlineage`,
    /// `alertmanager`); empty means all.
    #[serde(default)]
    pub receivers: Vec<String>,
}

impl std::fmt::Debug for TokenConfig {
    // Hand-written so the secret never reaches a log line or a panic message.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenConfig")
            .field("name", &self.name)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("token_env", &self.token_env)
            .field("token_file", &self.token_file)
            .field("receivers", &self.receivers)
            .finish()
    }
}

/// The receivers a token can name.
pub const RECEIVER_NAMES: &[&str] = &[
    "remote_write",
    "otlp",
    "dq",
    "openlineage",
    "alertmanager",
    "events",
    "drift_profile",
];

impl AuthConfig {
    /// `anonymous_role` as a role; `None` for "none". Validated at load.
    pub fn anonymous_role(&self) -> Option<Role> {
        self.anonymous_role.parse().ok()
    }

    pub(super) fn validate(&self) -> Result<()> {
        if self.anonymous_role != "none" && self.anonymous_role.parse::<Role>().is_err() {
            bail!(
                "key `auth.anonymous_role`: {:?} is not a role; use \"none\" (log in first), \"viewer\", \"editor\" or \"admin\"",
                self.anonymous_role
            );
        }
        if self.session_lifetime < Duration::from_secs(60) {
            bail!("key `auth.session_lifetime` must be at least 1m (e.g. \"12h\")");
        }
        if self.login_max_failures == 0 {
            bail!("key `auth.login_max_failures` must be at least 1 (5 is usual)");
        }
        if self.login_window.is_zero() || self.login_backoff.is_zero() {
            bail!("keys `auth.login_window` and `auth.login_backoff` must be longer than 0 (e.g. \"15m\" and \"5m\")");
        }
        let mut names = std::collections::BTreeSet::new();
        for (i, t) in self.tokens.iter().enumerate() {
            let key = format!("auth.tokens[{i}]");
            if t.name.trim().is_empty() {
                bail!("key `{key}.name` is empty: give every token a name (it appears in logs instead of the token)");
            }
            if !names.insert(t.name.as_str()) {
                bail!(
                    "key `{key}.name`: {:?} is used by two tokens; names must be unique",
                    t.name
                );
            }
            let sources = [
                t.token.is_some(),
                t.token_env.is_some(),
                t.token_file.is_some(),
            ];
            if sources.iter().filter(|x| **x).count() != 1 {
                bail!("key `{key}`: set exactly one of `token`, `token_env` or `token_file` (token {:?})", t.name);
            }
            for r in &t.receivers {
                if !RECEIVER_NAMES.contains(&r.as_str()) {
                    bail!("key `{key}.receivers`: unknown receiver {r:?}; use some of {RECEIVER_NAMES:?}, or leave it out for all");
                }
            }
        }
        Ok(())
    }

    /// The tokens with their secrets read from the environment or files. Errors name the key.
    pub fn resolve(&self) -> Result<Vec<ResolvedToken>> {
        self.tokens
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let key = format!("auth.tokens[{i}]");
                let secret = if let Some(s) = &t.token {
                    s.clone()
                } else if let Some(var) = &t.token_env {
                    std::env::var(var).map_err(|_| {
                        anyhow!("key `{key}.token_env`: environment variable {var} is not set (token {:?})", t.name)
                    })?
                } else if let Some(path) = &t.token_file {
                    std::fs::read_to_string(path)
                        .map_err(|e| {
                            anyhow!("key `{key}.token_file`: cannot read {}: {e} (token {:?})", path.display(), t.name)
                        })?
                        .trim()
                        .to_string()
                } else {
                    unreachable!("validate() checked one source is set")
                };
                if secret.len() < 16 || secret.chars().any(|c| c.is_whitespace() || c.is_control()) {
                    bail!("key `{key}`: token {:?} must be at least 16 characters without spaces (generate one with `openssl rand -hex 24`)", t.name);
                }
                Ok(ResolvedToken {
                    name: t.name.clone(),
                    secret,
                    receivers: t.receivers.clone(),
                })
            })
            .collect()
    }
}

/// A token ready to compare against requests.
#[derive(Clone, PartialEq, Eq)]
pub struct ResolvedToken {
    pub name: String,
    pub secret: String,
    pub receivers: Vec<String>,
}

impl std::fmt::Debug for ResolvedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "ResolvedToken({:?}, receivers {:?})",
            self.name, self.receivers
        )
    }
}
