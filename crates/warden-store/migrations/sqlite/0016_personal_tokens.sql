-- Personal access tokens: a user's bearer credentials for scripts. Only the SHA-256 of the
-- secret is stored (looked up by it); permissions are space-separated names, at most the
-- owner's own and intersected with them on every use; `workspace_id` binds a token to one
-- workspace. Revocation goes through the revocation log like a device session's.
CREATE TABLE personal_tokens (
    id              BLOB PRIMARY KEY,
    user_id         BLOB NOT NULL REFERENCES users (id),
    name            TEXT NOT NULL,
    hash            BLOB NOT NULL UNIQUE,
    permissions     TEXT NOT NULL,
    workspace_id    BLOB,
    created_at      INTEGER NOT NULL,
    expires_at      INTEGER NOT NULL,
    last_used_at    INTEGER,
    last_used_ip    TEXT,
    revoked_at      INTEGER,
    revoked_reason  TEXT,
    expiry_recorded BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE INDEX personal_tokens_user ON personal_tokens (user_id, created_at);

-- The addresses each token has been used from: a new one is audited once.
CREATE TABLE personal_token_addresses (
    token_id   BLOB NOT NULL REFERENCES personal_tokens (id) ON DELETE CASCADE,
    ip         TEXT NOT NULL,
    first_seen INTEGER NOT NULL,
    PRIMARY KEY (token_id, ip)
);
