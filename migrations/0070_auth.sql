-- Users, sessions, API tokens, login throttling and the audit log (issue 13, item 1).
--
-- No secret is stored in the clear: passwords as argon2id PHC strings, session ids and API
-- tokens as SHA-256 of their secret part. Session cookies and API tokens are split tokens,
-- `<selector>.<verifier>` / `pwt_<selector>_<verifier>`: the selector finds the row by index,
-- the verifier's hash is then compared in constant time in the server, so lookup timing says
-- nothing about the secret.
CREATE TABLE users (
    id            bigserial   PRIMARY KEY,
    name          text        NOT NULL UNIQUE CHECK (name <> ''),
    password_hash text        NOT NULL,
    role          text        NOT NULL CHECK (role IN ('viewer', 'editor', 'admin')),
    disabled      boolean     NOT NULL DEFAULT false,
    created_at    timestamptz NOT NULL DEFAULT now()
);

-- Server-side sessions: logging out or disabling the user ends them at once, and the cookie
-- carries nothing but the session's id.
CREATE TABLE sessions (
    selector      text        PRIMARY KEY,
    verifier_hash bytea       NOT NULL,
    user_id       bigint      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    csrf_token    text        NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz NOT NULL,
    last_seen_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX sessions_user ON sessions (user_id);
CREATE INDEX sessions_expires ON sessions (expires_at);

CREATE TABLE api_tokens (
    id            bigserial   PRIMARY KEY,
    name          text        NOT NULL CHECK (name <> ''),
    selector      text        NOT NULL UNIQUE,
    verifier_hash bytea       NOT NULL,
    scope         text        NOT NULL CHECK (scope IN ('ingest', 'read', 'admin')),
    created_by    text        NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    last_used_at  timestamptz,
    revoked_at    timestamptz
);
-- A name is what people revoke by: unique among the tokens still in use.
CREATE UNIQUE INDEX api_tokens_live_name ON api_tokens (name) WHERE revoked_at IS NULL;

-- Failed logins, for throttling by user name and by client address. Rows older than the
-- throttling window are deleted by the login path itself.
CREATE TABLE login_failures (
    id        bigserial   PRIMARY KEY,
    at        timestamptz NOT NULL DEFAULT now(),
    user_name text        NOT NULL,
    address   text
);
CREATE INDEX login_failures_user ON login_failures (user_name, at);
CREATE INDEX login_failures_address ON login_failures (address, at) WHERE address IS NOT NULL;

-- Who changed what. `actor` is a user name, `token:<name>`, `anonymous` or `cli`; `detail`
-- never holds a password or a token.
CREATE TABLE audit_log (
    id     bigserial   PRIMARY KEY,
    at     timestamptz NOT NULL DEFAULT now(),
    actor  text        NOT NULL,
    action text        NOT NULL,
    target text        NOT NULL DEFAULT '',
    detail jsonb       NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX audit_log_at ON audit_log (at DESC, id DESC);
