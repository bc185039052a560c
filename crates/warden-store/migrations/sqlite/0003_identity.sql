-- People who sign in. Emails are stored normalised (trimmed, lower-case).
CREATE TABLE users (
    id             BLOB PRIMARY KEY,
    email          TEXT NOT NULL UNIQUE,
    password_hash  TEXT,
    platform_admin INTEGER NOT NULL,
    active         INTEGER NOT NULL,
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL
);

-- One-time links that let the first platform administrator set up an account.
CREATE TABLE setup_tokens (
    hash       BLOB PRIMARY KEY,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    used_at    INTEGER
);

-- RSA keys that sign access tokens, sealed by the keyring. The newest key whose
-- `activate_at` has passed signs (a rotated key is published before any node signs with
-- it); older ones stay published until `publish_until`, when every token they signed has
-- expired.
CREATE TABLE signing_keys (
    kid           TEXT PRIMARY KEY,
    sealed        BLOB NOT NULL,
    public_jwk    TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    activate_at   INTEGER NOT NULL,
    publish_until INTEGER
);

-- Device sessions: each is one refresh-token family.
CREATE TABLE sessions (
    id                  BLOB PRIMARY KEY,
    user_id             BLOB NOT NULL REFERENCES users (id),
    created_at          INTEGER NOT NULL,
    last_used_at        INTEGER NOT NULL,
    absolute_expires_at INTEGER NOT NULL,
    user_agent          TEXT,
    first_ip            TEXT,
    last_ip             TEXT,
    revoked_at          INTEGER,
    revoked_reason      TEXT,
    revoked_ip          TEXT
);
CREATE INDEX sessions_user ON sessions (user_id, created_at);
CREATE INDEX sessions_revoked ON sessions (revoked_at) WHERE revoked_at IS NOT NULL;

-- Refresh tokens, stored only as SHA-256. Each knows its parent (the token it replaced);
-- a parent has at most one child, so two concurrent rotations of one token cannot both
-- succeed. Inserting a child marks the parent rotated and the session used (trigger below),
-- so a rotation is one statement. A child's secret is kept sealed only for the grace window,
-- so a concurrent refresh of its parent can be given the same answer.
CREATE TABLE refresh_tokens (
    id            BLOB PRIMARY KEY,
    session_id    BLOB NOT NULL REFERENCES sessions (id),
    parent_id     BLOB UNIQUE REFERENCES refresh_tokens (id),
    hash          BLOB NOT NULL UNIQUE,
    created_at    INTEGER NOT NULL,
    created_ip    TEXT,
    rotated_at    INTEGER,
    successor_id  BLOB,
    sealed_secret BLOB
);
CREATE INDEX refresh_tokens_session ON refresh_tokens (session_id);
CREATE TRIGGER refresh_tokens_rotated AFTER INSERT ON refresh_tokens
    WHEN NEW.parent_id IS NOT NULL
BEGIN
    UPDATE refresh_tokens SET rotated_at = NEW.created_at, successor_id = NEW.id
        WHERE id = NEW.parent_id;
    UPDATE sessions SET last_used_at = NEW.created_at, last_ip = COALESCE(NEW.created_ip, last_ip)
        WHERE id = NEW.session_id;
END;

-- Failed sign-in counters per throttle scope (account, client address, or both).
CREATE TABLE sign_in_throttle (
    scope             TEXT PRIMARY KEY,
    failures          INTEGER NOT NULL,
    window_started_at INTEGER NOT NULL,
    blocked_until     INTEGER NOT NULL
);

-- Every revocation, in order, so that each node applies it to its in-memory state.
CREATE TABLE revocations (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    kind    TEXT NOT NULL CHECK (kind IN ('session', 'user_deactivated', 'user_reactivated')),
    subject BLOB NOT NULL,
    at      INTEGER NOT NULL
);

-- Live nodes and how far each has applied the revocation log; a node that revokes waits
-- until every live node has caught up before it answers.
CREATE TABLE nodes (
    id                 BLOB PRIMARY KEY,
    heartbeat_at       INTEGER NOT NULL,
    applied_revocation INTEGER NOT NULL
);
