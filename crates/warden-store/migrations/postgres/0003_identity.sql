-- People who sign in. Emails are stored normalised (trimmed, lower-case).
CREATE TABLE users (
    id             UUID PRIMARY KEY,
    email          TEXT NOT NULL UNIQUE,
    password_hash  TEXT,
    platform_admin BOOLEAN NOT NULL,
    active         BOOLEAN NOT NULL,
    created_at     BIGINT NOT NULL,
    updated_at     BIGINT NOT NULL
);

-- One-time links that let the first platform administrator set up an account.
CREATE TABLE setup_tokens (
    hash       BYTEA PRIMARY KEY,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at    BIGINT
);

-- RSA keys that sign access tokens, sealed by the keyring. The newest is used to sign;
-- older ones stay published until `publish_until`, when every token they signed has expired.
CREATE TABLE signing_keys (
    kid           TEXT PRIMARY KEY,
    sealed        BYTEA NOT NULL,
    public_jwk    TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    publish_until BIGINT
);

-- Device sessions: each is one refresh-token family.
CREATE TABLE sessions (
    id                  UUID PRIMARY KEY,
    user_id             UUID NOT NULL REFERENCES users (id),
    created_at          BIGINT NOT NULL,
    last_used_at        BIGINT NOT NULL,
    absolute_expires_at BIGINT NOT NULL,
    user_agent          TEXT,
    first_ip            TEXT,
    last_ip             TEXT,
    revoked_at          BIGINT,
    revoked_reason      TEXT,
    revoked_ip          TEXT
);
CREATE INDEX sessions_user ON sessions (user_id, created_at);
CREATE INDEX sessions_revoked ON sessions (revoked_at) WHERE revoked_at IS NOT NULL;

-- Refresh tokens, stored only as SHA-256. Each knows its parent (the token it replaced) and,
-- once rotated, its successor; the successor's secret is kept sealed for the grace window
-- only, so a concurrent refresh of the same token can be given the same answer.
CREATE TABLE refresh_tokens (
    id               UUID PRIMARY KEY,
    session_id       UUID NOT NULL REFERENCES sessions (id),
    parent_id        UUID REFERENCES refresh_tokens (id),
    hash             BYTEA NOT NULL UNIQUE,
    created_at       BIGINT NOT NULL,
    rotated_at       BIGINT,
    successor_id     UUID,
    successor_sealed BYTEA
);
CREATE INDEX refresh_tokens_session ON refresh_tokens (session_id);

-- Failed sign-in counters per throttle scope (account, client address, or both).
CREATE TABLE sign_in_throttle (
    scope             TEXT PRIMARY KEY,
    failures          INTEGER NOT NULL,
    window_started_at BIGINT NOT NULL,
    blocked_until     BIGINT NOT NULL
);

-- Every revocation, in order, so that each node applies it to its in-memory state.
CREATE TABLE revocations (
    id      BIGSERIAL PRIMARY KEY,
    kind    TEXT NOT NULL CHECK (kind IN ('session', 'user_deactivated', 'user_reactivated')),
    subject UUID NOT NULL,
    at      BIGINT NOT NULL
);

-- Live nodes and how far each has applied the revocation log; a node that revokes waits
-- until every live node has caught up before it answers.
CREATE TABLE nodes (
    id                 UUID PRIMARY KEY,
    heartbeat_at       BIGINT NOT NULL,
    applied_revocation BIGINT NOT NULL
);
