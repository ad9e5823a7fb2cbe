//! Users, sessions, API tokens, login throttling and the audit log
//! (`migrations/0070_auth.sql`).
//!
//! Secrets are never stored: passwords as argon2id PHC strings (the `argon2` crate's default
//! parameters), session ids and API tokens as SHA-256 of their secret half. Both are split
//! tokens: a random *selector* finds the row by index, then the SHA-256 of the random
//! *verifier* is compared with the stored one in constant time (`subtle`), so neither the
//! index lookup nor the comparison leaks how much of a guessed secret was right. Secrets come
//! from the operating system's CSPRNG.
//!
//! Hashing a password costs tens of milliseconds of CPU on purpose; it runs on the blocking
//! pool, never on the async runtime's threads.

use crate::error::DbContext;
use crate::{sql_ms, Store, StoreError};
use argon2::password_hash::{rand_core::OsRng, PasswordHash, PasswordHasher, SaltString};
use argon2::{Argon2, PasswordVerifier};
use model::auth::{AuditEntry, Role, TokenInfo, TokenScope, UserInfo};
use rand::distributions::{Alphanumeric, DistString};
use sha2::{Digest, Sha256};
use sqlx::Row;
use std::time::Duration;
use subtle::ConstantTimeEq;

/// Prefix of every API token, so secret scanners (and people) recognise one.
pub const TOKEN_PREFIX: &str = "pwt_";
/// Shortest password `create_user` and `set_password` accept.
pub const MIN_PASSWORD_CHARS: usize = 8;

/// A user who logged in or holds a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: i64,
    pub name: String,
    pub role: Role,
    pub disabled: bool,
}

/// A live session, as the auth layer needs it for one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub selector: String,
    pub user: User,
    pub csrf_token: String,
    pub expires_at_ms: i64,
}

/// A session just created: the cookie value (shown once, stored hashed) and its CSRF token.
#[derive(Clone, PartialEq, Eq)]
pub struct NewSession {
    pub cookie_value: String,
    pub csrf_token: String,
    pub expires_at_ms: i64,
}

impl std::fmt::Debug for NewSession {
    // The cookie value is a credential: never in a log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewSession")
            .field("expires_at_ms", &self.expires_at_ms)
            .finish_non_exhaustive()
    }
}

/// An API token just created: the secret is shown once and never again.
#[derive(Clone, PartialEq, Eq)]
pub struct NewToken {
    pub info: TokenInfo,
    pub secret: String,
}

impl std::fmt::Debug for NewToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewToken")
            .field("info", &self.info)
            .finish_non_exhaustive()
    }
}

/// How many failed logins throttle, over which window, and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Throttle {
    pub max_failures: u32,
    pub window: Duration,
    pub backoff: Duration,
}

impl Default for Throttle {
    fn default() -> Self {
        Self {
            max_failures: 5,
            window: Duration::from_secs(15 * 60),
            backoff: Duration::from_secs(5 * 60),
        }
    }
}

/// What a login attempt came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoginOutcome {
    Ok(User),
    /// Unknown user, wrong password or disabled user: the caller says the same for all three.
    Refused,
    /// Too many failures for this name or address; try again after this long.
    Throttled(Duration),
}

/// A random alphanumeric string of `len` characters from the OS CSPRNG (about 5.95 bits each).
pub fn random_secret(len: usize) -> String {
    Alphanumeric.sample_string(&mut rand::rngs::OsRng, len)
}

/// SHA-256 of a secret, as stored.
pub fn sha256(secret: &str) -> Vec<u8> {
    Sha256::digest(secret.as_bytes()).to_vec()
}

fn hashes_equal(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

/// An argon2id PHC string of `password` with a fresh salt (blocking: call off the runtime).
pub fn hash_password(password: &str) -> Result<String, StoreError> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| StoreError::InvalidSample(format!("cannot hash the password: {e}")))
}

/// True when `password` matches the PHC string `hash` (blocking).
pub fn verify_password(hash: &str, password: &str) -> bool {
    PasswordHash::new(hash)
        .map(|h| {
            Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok()
        })
        .unwrap_or(false)
}

/// A hash to verify against when the user does not exist, so that an unknown name takes as
/// long to refuse as a wrong password and response times do not list the users.
fn dummy_hash() -> &'static str {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| hash_password(&random_secret(24)).unwrap_or_default())
}

async fn hash_off_runtime(password: String) -> Result<String, StoreError> {
    tokio::task::spawn_blocking(move || hash_password(&password))
        .await
        .map_err(|e| StoreError::InvalidSample(format!("password hashing task failed: {e}")))?
}

fn check_password_rules(password: &str) -> Result<(), StoreError> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(StoreError::InvalidQuery(format!(
            "the password is too short: use at least {MIN_PASSWORD_CHARS} characters"
        )));
    }
    Ok(())
}

fn check_name(what: &str, name: &str) -> Result<(), StoreError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'));
    if ok {
        Ok(())
    } else {
        Err(StoreError::InvalidQuery(format!(
            "{what} {name:?} is not allowed: use 1 to 64 letters, digits, '.', '_', '-' or '@'"
        )))
    }
}

/// A plain address (`ann@example.com`): the sender checks it fully when it mails; this keeps
/// display names, spaces and half-written addresses out of the table.
pub fn check_email(e: &str) -> Result<(), StoreError> {
    let ok = e.len() <= 254
        && !e
            .chars()
            .any(|c| c.is_whitespace() || matches!(c, '<' | '>' | ',' | '"'))
        && e.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty() && domain.contains('.') && !domain.contains('@')
        });
    if ok {
        Ok(())
    } else {
        Err(StoreError::InvalidQuery(format!(
            "{e:?} is not an e-mail address; write one like ann@example.com"
        )))
    }
}

fn parse_role(s: &str) -> Result<Role, StoreError> {
    s.parse()
        .map_err(|e: String| StoreError::Corrupt(format!("users.role: {e}")))
}

fn parse_scope(s: &str) -> Result<TokenScope, StoreError> {
    s.parse()
        .map_err(|e: String| StoreError::Corrupt(format!("api_tokens.scope: {e}")))
}

/// A unique violation (SQLSTATE 23505): the name is taken.
fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.code().as_deref() == Some("23505"))
}

impl Store {
    /// Adds a user. Refuses a taken name, a bad name and a password shorter than
    /// [`MIN_PASSWORD_CHARS`], saying which.
    pub async fn create_user(
        &self,
        name: &str,
        password: &str,
        role: Role,
    ) -> Result<UserInfo, StoreError> {
        check_name("user name", name)?;
        check_password_rules(password)?;
        let hash = hash_off_runtime(password.to_string()).await?;
        let sql = format!(
            "INSERT INTO users (name, password_hash, role) VALUES ($1, $2, $3)
             RETURNING {} AS created_ms",
            sql_ms("created_at")
        );
        let row = sqlx::query(&sql)
            .bind(name)
            .bind(&hash)
            .bind(role.as_str())
            .fetch_one(self.pool())
            .await
            .map_err(|e| {
                if is_unique_violation(&e) {
                    StoreError::InvalidQuery(format!(
                        "a user named {name:?} already exists; choose another name or change that user's password"
                    ))
                } else {
                    StoreError::Database {
                        context: "adding a user",
                        source: e,
                    }
                }
            })?;
        Ok(UserInfo {
            name: name.to_string(),
            role,
            disabled: false,
            created_at: row.get("created_ms"),
            email: None,
        })
    }

    /// How many users exist (the first admin is only made from the environment when none).
    pub async fn user_count(&self) -> Result<i64, StoreError> {
        sqlx::query_scalar("SELECT count(*) FROM users")
            .fetch_one(self.pool())
            .await
            .context("counting users")
    }

    /// Every user, by name.
    pub async fn list_users(&self) -> Result<Vec<UserInfo>, StoreError> {
        let sql = format!(
            "SELECT name, role, disabled, email, {} AS created_ms FROM users ORDER BY name",
            sql_ms("created_at")
        );
        let rows = sqlx::query(&sql)
            .fetch_all(self.pool())
            .await
            .context("listing users")?;
        rows.into_iter()
            .map(|r| {
                Ok(UserInfo {
                    name: r.get("name"),
                    role: parse_role(r.get("role"))?,
                    disabled: r.get("disabled"),
                    created_at: r.get("created_ms"),
                    email: r.get("email"),
                })
            })
            .collect()
    }

    /// Sets (or with `None` removes) the address escalations to `name` are mailed to.
    pub async fn set_email(&self, name: &str, email: Option<&str>) -> Result<(), StoreError> {
        let email = email.map(str::trim).filter(|e| !e.is_empty());
        if let Some(e) = email {
            check_email(e)?;
        }
        let done = sqlx::query("UPDATE users SET email = $2 WHERE name = $1")
            .bind(name)
            .bind(email)
            .execute(self.pool())
            .await
            .context("setting a user's e-mail address")?;
        if done.rows_affected() == 0 {
            return Err(Self::no_such_user(name));
        }
        Ok(())
    }

    fn no_such_user(name: &str) -> StoreError {
        StoreError::InvalidQuery(format!(
            "there is no user named {name:?}; `pipewatch user list` shows the users"
        ))
    }

    /// Sets a new password and ends the user's sessions (whoever had them must log in again).
    pub async fn set_password(&self, name: &str, password: &str) -> Result<(), StoreError> {
        check_password_rules(password)?;
        let hash = hash_off_runtime(password.to_string()).await?;
        let mut tx = self
            .pool()
            .begin()
            .await
            .context("starting a password change")?;
        let id: Option<i64> =
            sqlx::query_scalar("UPDATE users SET password_hash = $2 WHERE name = $1 RETURNING id")
                .bind(name)
                .bind(&hash)
                .fetch_optional(&mut *tx)
                .await
                .context("changing a password")?;
        let id = id.ok_or_else(|| Self::no_such_user(name))?;
        sqlx::query("DELETE FROM sessions WHERE user_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await
            .context("ending the sessions of a user")?;
        tx.commit().await.context("committing a password change")?;
        Ok(())
    }

    /// Changes a user's role. Refuses to demote the last enabled admin (nobody could manage
    /// users any more).
    pub async fn set_role(&self, name: &str, role: Role) -> Result<(), StoreError> {
        self.change_user(name, Some(role), None).await
    }

    /// Disables (ending every session at once) or enables a user. Refuses to disable the
    /// last enabled admin.
    pub async fn set_disabled(&self, name: &str, disabled: bool) -> Result<(), StoreError> {
        self.change_user(name, None, Some(disabled)).await
    }

    async fn change_user(
        &self,
        name: &str,
        role: Option<Role>,
        disabled: Option<bool>,
    ) -> Result<(), StoreError> {
        let mut tx = self
            .pool()
            .begin()
            .await
            .context("starting a user change")?;
        // Serialises concurrent admin changes so two of them cannot each remove "the other"
        // last admin.
        sqlx::query("LOCK TABLE users IN SHARE ROW EXCLUSIVE MODE")
            .execute(&mut *tx)
            .await
            .context("locking users")?;
        let row = sqlx::query(
            "UPDATE users SET role = coalesce($2, role), disabled = coalesce($3, disabled)
             WHERE name = $1 RETURNING id, disabled",
        )
        .bind(name)
        .bind(role.map(Role::as_str))
        .bind(disabled)
        .fetch_optional(&mut *tx)
        .await
        .context("changing a user")?
        .ok_or_else(|| Self::no_such_user(name))?;
        let admins: i64 =
            sqlx::query_scalar("SELECT count(*) FROM users WHERE role = 'admin' AND NOT disabled")
                .fetch_one(&mut *tx)
                .await
                .context("counting admins")?;
        if admins == 0 {
            return Err(StoreError::InvalidQuery(format!(
                "{name:?} is the last enabled admin: make another user admin first"
            )));
        }
        if row.get::<bool, _>("disabled") {
            sqlx::query("DELETE FROM sessions WHERE user_id = $1")
                .bind(row.get::<i64, _>("id"))
                .execute(&mut *tx)
                .await
                .context("ending the sessions of a disabled user")?;
        }
        tx.commit().await.context("committing a user change")?;
        Ok(())
    }

    /// Checks a login: throttled first (without looking at the password), then the password.
    /// A failure is recorded for the name and for `address`; a success clears the name's
    /// failures.
    pub async fn login(
        &self,
        name: &str,
        password: &str,
        address: Option<&str>,
        throttle: Throttle,
    ) -> Result<LoginOutcome, StoreError> {
        if let Some(wait) = self.login_throttled(name, address, throttle).await? {
            return Ok(LoginOutcome::Throttled(wait));
        }
        let row = sqlx::query(
            "SELECT id, name, role, disabled, password_hash FROM users WHERE name = $1",
        )
        .bind(name)
        .fetch_optional(self.pool())
        .await
        .context("looking up a user")?;
        let hash = row
            .as_ref()
            .map(|r| r.get::<String, _>("password_hash"))
            .unwrap_or_else(|| dummy_hash().to_string());
        let password = password.to_string();
        let matches = tokio::task::spawn_blocking(move || verify_password(&hash, &password))
            .await
            .unwrap_or(false);
        let user = match row {
            Some(r) if matches && !r.get::<bool, _>("disabled") => Some(User {
                id: r.get("id"),
                name: r.get("name"),
                role: parse_role(r.get("role"))?,
                disabled: false,
            }),
            _ => None,
        };
        match user {
            Some(u) => {
                sqlx::query("DELETE FROM login_failures WHERE user_name = $1")
                    .bind(name)
                    .execute(self.pool())
                    .await
                    .context("clearing login failures")?;
                Ok(LoginOutcome::Ok(u))
            }
            None => {
                sqlx::query("INSERT INTO login_failures (user_name, address) VALUES ($1, $2)")
                    .bind(name)
                    .bind(address)
                    .execute(self.pool())
                    .await
                    .context("recording a login failure")?;
                Ok(LoginOutcome::Refused)
            }
        }
    }

    /// `Some(wait)` when `name` or `address` has `max_failures` failures within `window` and
    /// the latest is less than `backoff` ago. Old rows are pruned on the way.
    async fn login_throttled(
        &self,
        name: &str,
        address: Option<&str>,
        t: Throttle,
    ) -> Result<Option<Duration>, StoreError> {
        sqlx::query("DELETE FROM login_failures WHERE at < now() - make_interval(secs => $1)")
            .bind(t.window.as_secs_f64())
            .execute(self.pool())
            .await
            .context("pruning login failures")?;
        // Seconds left of the back-off, per key (name, then address), when over the limit.
        let row = sqlx::query(
            "WITH k AS (
                 SELECT count(*) AS n, max(at) AS last FROM login_failures WHERE user_name = $1
                 UNION ALL
                 SELECT count(*), max(at) FROM login_failures
                 WHERE $2::text IS NOT NULL AND address = $2)
             SELECT max(extract(epoch FROM (last + make_interval(secs => $4) - now())))::float8
             FROM k WHERE n >= $3",
        )
        .bind(name)
        .bind(address)
        .bind(i64::from(t.max_failures))
        .bind(t.backoff.as_secs_f64())
        .fetch_one(self.pool())
        .await
        .context("checking login throttling")?;
        let left: Option<f64> = row.get(0);
        Ok(left
            .filter(|s| *s > 0.0)
            .map(|s| Duration::from_secs_f64(s.ceil())))
    }

    /// Starts a session for `user` lasting `lifetime`.
    pub async fn create_session(
        &self,
        user: &User,
        lifetime: Duration,
    ) -> Result<NewSession, StoreError> {
        let selector = random_secret(24);
        let verifier = random_secret(32);
        let csrf = random_secret(32);
        let sql = format!(
            "INSERT INTO sessions (selector, verifier_hash, user_id, csrf_token, expires_at)
             VALUES ($1, $2, $3, $4, now() + make_interval(secs => $5))
             RETURNING {} AS expires_ms",
            sql_ms("expires_at")
        );
        let row = sqlx::query(&sql)
            .bind(&selector)
            .bind(sha256(&verifier))
            .bind(user.id)
            .bind(&csrf)
            .bind(lifetime.as_secs_f64())
            .fetch_one(self.pool())
            .await
            .context("creating a session")?;
        // Expired sessions of anyone are dropped here, so the table does not grow forever.
        sqlx::query("DELETE FROM sessions WHERE expires_at < now()")
            .execute(self.pool())
            .await
            .context("dropping expired sessions")?;
        Ok(NewSession {
            cookie_value: format!("{selector}.{verifier}"),
            csrf_token: csrf,
            expires_at_ms: row.get("expires_ms"),
        })
    }

    /// The live session a cookie value names: not expired, its user not disabled. Records
    /// when it was last seen (at most once a minute per session).
    pub async fn session(&self, cookie_value: &str) -> Result<Option<Session>, StoreError> {
        let Some((selector, verifier)) = cookie_value.split_once('.') else {
            return Ok(None);
        };
        let sql = format!(
            "SELECT s.verifier_hash, s.csrf_token, {} AS expires_ms,
                    u.id, u.name, u.role, u.disabled
             FROM sessions s JOIN users u ON u.id = s.user_id
             WHERE s.selector = $1 AND s.expires_at > now() AND NOT u.disabled",
            sql_ms("s.expires_at")
        );
        let Some(r) = sqlx::query(&sql)
            .bind(selector)
            .fetch_optional(self.pool())
            .await
            .context("looking up a session")?
        else {
            return Ok(None);
        };
        if !hashes_equal(&r.get::<Vec<u8>, _>("verifier_hash"), &sha256(verifier)) {
            return Ok(None);
        }
        sqlx::query(
            "UPDATE sessions SET last_seen_at = now()
             WHERE selector = $1 AND last_seen_at < now() - interval '1 minute'",
        )
        .bind(selector)
        .execute(self.pool())
        .await
        .context("recording session use")?;
        Ok(Some(Session {
            selector: selector.to_string(),
            user: User {
                id: r.get("id"),
                name: r.get("name"),
                role: parse_role(r.get("role"))?,
                disabled: r.get("disabled"),
            },
            csrf_token: r.get("csrf_token"),
            expires_at_ms: r.get("expires_ms"),
        }))
    }

    /// Ends a session (logout).
    pub async fn delete_session(&self, selector: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM sessions WHERE selector = $1")
            .bind(selector)
            .execute(self.pool())
            .await
            .context("ending a session")?;
        Ok(())
    }

    /// Creates an API token; its secret is in the answer and nowhere else.
    pub async fn create_api_token(
        &self,
        name: &str,
        scope: TokenScope,
        created_by: &str,
    ) -> Result<NewToken, StoreError> {
        check_name("token name", name)?;
        // The selector is alphanumeric, so `_` separates it from the verifier unambiguously.
        let selector = random_secret(12);
        let verifier = random_secret(32);
        let sql = format!(
            "INSERT INTO api_tokens (name, selector, verifier_hash, scope, created_by)
             VALUES ($1, $2, $3, $4, $5) RETURNING id, {} AS created_ms",
            sql_ms("created_at")
        );
        let row = sqlx::query(&sql)
            .bind(name)
            .bind(&selector)
            .bind(sha256(&verifier))
            .bind(scope.as_str())
            .bind(created_by)
            .fetch_one(self.pool())
            .await
            .map_err(|e| {
                if is_unique_violation(&e) {
                    StoreError::InvalidQuery(format!(
                        "a token named {name:?} is already in use; choose another name or revoke that one first"
                    ))
                } else {
                    StoreError::Database {
                        context: "creating an API token",
                        source: e,
                    }
                }
            })?;
        Ok(NewToken {
            info: TokenInfo {
                id: row.get("id"),
                name: name.to_string(),
                scope,
                created_by: created_by.to_string(),
                created_at: row.get("created_ms"),
                last_used_at: None,
                revoked_at: None,
            },
            secret: format!("{TOKEN_PREFIX}{selector}_{verifier}"),
        })
    }

    /// The live (not revoked) token a bearer secret names, recording its use (at most once a
    /// minute). `None` for anything else, including strings that are not pipewatch tokens.
    pub async fn api_token(&self, secret: &str) -> Result<Option<TokenInfo>, StoreError> {
        let Some((selector, verifier)) = secret
            .strip_prefix(TOKEN_PREFIX)
            .and_then(|rest| rest.split_once('_'))
        else {
            return Ok(None);
        };
        let sql = format!(
            "SELECT id, name, verifier_hash, scope, created_by, {} AS created_ms,
                    {} AS used_ms
             FROM api_tokens WHERE selector = $1 AND revoked_at IS NULL",
            sql_ms("created_at"),
            sql_ms("last_used_at")
        );
        let Some(r) = sqlx::query(&sql)
            .bind(selector)
            .fetch_optional(self.pool())
            .await
            .context("looking up an API token")?
        else {
            return Ok(None);
        };
        if !hashes_equal(&r.get::<Vec<u8>, _>("verifier_hash"), &sha256(verifier)) {
            return Ok(None);
        }
        let id: i64 = r.get("id");
        sqlx::query(
            "UPDATE api_tokens SET last_used_at = now()
             WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < now() - interval '1 minute')",
        )
        .bind(id)
        .execute(self.pool())
        .await
        .context("recording API token use")?;
        Ok(Some(TokenInfo {
            id,
            name: r.get("name"),
            scope: parse_scope(r.get("scope"))?,
            created_by: r.get("created_by"),
            created_at: r.get("created_ms"),
            last_used_at: r.get("used_ms"),
            revoked_at: None,
        }))
    }

    /// Every API token, newest first, revoked ones included (marked).
    pub async fn list_api_tokens(&self) -> Result<Vec<TokenInfo>, StoreError> {
        let sql = format!(
            "SELECT id, name, scope, created_by, {} AS created_ms, {} AS used_ms,
                    {} AS revoked_ms
             FROM api_tokens ORDER BY id DESC",
            sql_ms("created_at"),
            sql_ms("last_used_at"),
            sql_ms("revoked_at")
        );
        let rows = sqlx::query(&sql)
            .fetch_all(self.pool())
            .await
            .context("listing API tokens")?;
        rows.into_iter()
            .map(|r| {
                Ok(TokenInfo {
                    id: r.get("id"),
                    name: r.get("name"),
                    scope: parse_scope(r.get("scope"))?,
                    created_by: r.get("created_by"),
                    created_at: r.get("created_ms"),
                    last_used_at: r.get("used_ms"),
                    revoked_at: r.get("revoked_ms"),
                })
            })
            .collect()
    }

    /// Revokes a live token by id; false when there is none (unknown or already revoked).
    pub async fn revoke_api_token(&self, id: i64) -> Result<Option<String>, StoreError> {
        sqlx::query_scalar(
            "UPDATE api_tokens SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL
             RETURNING name",
        )
        .bind(id)
        .fetch_optional(self.pool())
        .await
        .context("revoking an API token")
    }

    /// Appends to the audit log. `detail` must hold no secret.
    pub async fn audit(
        &self,
        actor: &str,
        action: &str,
        target: &str,
        detail: serde_json::Value,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO audit_log (actor, action, target, detail) VALUES ($1, $2, $3, $4)",
        )
        .bind(actor)
        .bind(action)
        .bind(target)
        .bind(detail)
        .execute(self.pool())
        .await
        .context("writing the audit log")?;
        Ok(())
    }

    /// The newest `limit` audit rows with an id below `before` (all when `None`), newest first.
    pub async fn audit_log(
        &self,
        limit: u32,
        before: Option<i64>,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        let sql = format!(
            "SELECT id, {} AS at_ms, actor, action, target, detail FROM audit_log
             WHERE $2::bigint IS NULL OR id < $2 ORDER BY id DESC LIMIT $1",
            sql_ms("at")
        );
        let rows = sqlx::query(&sql)
            .bind(i64::from(limit))
            .bind(before)
            .fetch_all(self.read_pool())
            .await
            .context("reading the audit log")?;
        Ok(rows
            .into_iter()
            .map(|r| AuditEntry {
                id: r.get("id"),
                at: r.get("at_ms"),
                actor: r.get("actor"),
                action: r.get("action"),
                target: r.get("target"),
                detail: r.get("detail"),
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_hash_is_argon2id_and_verifies_only_the_right_password() {
        let h = hash_password("correct horse").unwrap();
        assert!(h.starts_with("$argon2id$"), "{h}");
        assert!(!h.contains("correct horse"));
        assert!(verify_password(&h, "correct horse"));
        assert!(!verify_password(&h, "correct hors"));
        assert!(!verify_password("not a hash", "correct horse"));
        // Fresh salt each time.
        assert_ne!(h, hash_password("correct horse").unwrap());
    }

    #[test]
    fn secrets_are_random_and_alphanumeric() {
        let a = random_secret(32);
        assert_eq!(a.len(), 32);
        assert!(a.chars().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(a, random_secret(32));
    }
}
