//! Users, roles and API-token scopes: one spelling for the database, the server's policy table,
//! the command line and the pages (which run in the browser too, so nothing here needs a
//! database or a hasher).

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// What a person may do. Ordered: every role may do what the roles below it may.
///
/// - viewer: read every page and read API;
/// - editor: also act on alerts (acknowledge, silence, feedback on anomalies, rules);
/// - admin: also manage users, API tokens and read the audit log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Viewer,
    Editor,
    Admin,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Viewer, Role::Editor, Role::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Viewer => "viewer",
            Self::Editor => "editor",
            Self::Admin => "admin",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "viewer" => Ok(Self::Viewer),
            "editor" => Ok(Self::Editor),
            "admin" => Ok(Self::Admin),
            other => Err(format!(
                "unknown role {other:?}; use \"viewer\", \"editor\" or \"admin\""
            )),
        }
    }
}

/// What an API token may be used for.
///
/// - ingest: the push receivers only (with or beside `[[auth.tokens]]`);
/// - read: every read route, as a viewer;
/// - admin: every route, as an admin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenScope {
    Ingest,
    Read,
    Admin,
}

impl TokenScope {
    pub const ALL: [TokenScope; 3] = [TokenScope::Ingest, TokenScope::Read, TokenScope::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ingest => "ingest",
            Self::Read => "read",
            Self::Admin => "admin",
        }
    }

    /// The role a request authenticated by this token acts with on the pages and the read API;
    /// `None` for ingest tokens, which only the receivers take.
    pub fn role(self) -> Option<Role> {
        match self {
            Self::Ingest => None,
            Self::Read => Some(Role::Viewer),
            Self::Admin => Some(Role::Admin),
        }
    }
}

impl fmt::Display for TokenScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for TokenScope {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "ingest" => Ok(Self::Ingest),
            "read" => Ok(Self::Read),
            "admin" => Ok(Self::Admin),
            other => Err(format!(
                "unknown token scope {other:?}; use \"ingest\", \"read\" or \"admin\""
            )),
        }
    }
}

/// How a request proved who it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Via {
    /// The `pw_session` cookie: state-changing requests must carry the CSRF token.
    Session,
    /// `Authorization: Bearer <api token>`: no CSRF token needed (browsers never add it).
    Token,
    /// Nobody: `auth.anonymous_role` allowed the request.
    Anonymous,
}

/// Who is making a request, as the server's auth layer established it. The server puts it in
/// the request's extensions; the pages read it to show the user and the CSRF token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Principal {
    /// The user name, the API token's name (`token:<name>`), or `anonymous`.
    pub name: String,
    /// `None`: no role at all (anonymous with `anonymous_role = "none"`).
    pub role: Option<Role>,
    pub via: Via,
    /// The session's CSRF token (sessions only).
    pub csrf_token: Option<String>,
}

impl Principal {
    pub fn anonymous(role: Option<Role>) -> Self {
        Self {
            name: "anonymous".into(),
            role,
            via: Via::Anonymous,
            csrf_token: None,
        }
    }

    /// True when this principal's role is at least `min`.
    pub fn has(&self, min: Role) -> bool {
        self.role.is_some_and(|r| r >= min)
    }
}

/// A user as the Users page lists it (never the password hash).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserInfo {
    pub name: String,
    pub role: Role,
    pub disabled: bool,
    pub created_at: i64,
    /// Where escalations to this user are mailed; `None`: nowhere (escalation steps to the
    /// user are recorded as not delivered).
    #[serde(default)]
    pub email: Option<String>,
}

/// An API token as listed (never the secret or its hash).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenInfo {
    pub id: i64,
    pub name: String,
    pub scope: TokenScope,
    pub created_by: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

/// One row of the audit log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub id: i64,
    pub at: i64,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub detail: serde_json::Value,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_are_ordered_and_scopes_map_to_roles() {
        assert!(Role::Viewer < Role::Editor && Role::Editor < Role::Admin);
        for r in Role::ALL {
            assert_eq!(r.as_str().parse::<Role>().unwrap(), r);
        }
        for s in TokenScope::ALL {
            assert_eq!(s.as_str().parse::<TokenScope>().unwrap(), s);
        }
        assert_eq!(TokenScope::Read.role(), Some(Role::Viewer));
        assert_eq!(TokenScope::Ingest.role(), None);
        assert!("root".parse::<Role>().unwrap_err().contains("viewer"));
        let p = Principal::anonymous(Some(Role::Editor));
        assert!(p.has(Role::Viewer) && p.has(Role::Editor) && !p.has(Role::Admin));
        assert!(!Principal::anonymous(None).has(Role::Viewer));
    }
}
