//! `[[auth.tokens]]`: bearer tokens of the push receivers, where each secret comes from, and
//! which receivers it may write to. Secrets never reach a log line or an error message.

use anyhow::{anyhow, bail, Result};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Bearer tokens of the push receivers. With no tokens every receiver is open, which suits a
/// server on loopback; once one token is configured, requests without an accepted token get 401.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    pub tokens: Vec<TokenConfig>,
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
];

impl AuthConfig {
    pub(super) fn validate(&self) -> Result<()> {
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
