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

-- RSA keys that sign access tokens, sealed by the keyring. The newest key whose
-- `activate_at` has passed signs (a rotated key is published before any node signs with
-- it); older ones stay published until `publish_until`, when every token they signed has
-- expired.
CREATE TABLE signing_keys (
    kid           TEXT PRIMARY KEY,
    sealed        BYTEA NOT NULL,
    public_jwk    TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    activate_at   BIGINT NOT NULL,
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

-- Refresh tokens, stored only as SHA-256. Each knows its parent (the token it replaced);
-- a parent has at most one child, so two concurrent rotations of one token cannot both
-- succeed. Inserting a child marks the parent rotated and the session used (trigger below),
-- so a rotation is one statement. A child's secret is kept sealed only for the grace window,
-- so a concurrent refresh of its parent can be given the same answer.
CREATE TABLE refresh_tokens (
    id            UUID PRIMARY KEY,
    session_id    UUID NOT NULL REFERENCES sessions (id),
    parent_id     UUID UNIQUE REFERENCES refresh_tokens (id),
    hash          BYTEA NOT NULL UNIQUE,
    created_at    BIGINT NOT NULL,
    created_ip    TEXT,
    rotated_at    BIGINT,
    successor_id  UUID,
    sealed_secret BYTEA
);
CREATE INDEX refresh_tokens_session ON refresh_tokens (session_id);
CREATE FUNCTION warden_refresh_rotated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE refresh_tokens SET rotated_at = NEW.created_at, successor_id = NEW.id
        WHERE id = NEW.parent_id;
    UPDATE sessions SET last_used_at = NEW.created_at, last_ip = COALESCE(NEW.created_ip, last_ip)
        WHERE id = NEW.session_id;
    RETURN NEW;
END $$;
CREATE TRIGGER refresh_tokens_rotated AFTER INSERT ON refresh_tokens
    FOR EACH ROW WHEN (NEW.parent_id IS NOT NULL) EXECUTE FUNCTION warden_refresh_rotated();

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
