-- Service keys: how trusted internal systems (a CI system reporting a result, another
-- component) call a workspace's API with HMAC-signed requests. The secret must be read back to
-- check signatures, so it is sealed by the keyring (never hashed); a key acts for its creator
-- within the permissions it was given and in its workspace only. Rotation adds a key and
-- gives the old one an end (`expires_at`), so both sign during the overlap.
CREATE TABLE service_keys (
    id            BLOB PRIMARY KEY,
    workspace_id  BLOB NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    key_id        TEXT NOT NULL UNIQUE,
    name          TEXT NOT NULL,
    sealed_secret BLOB NOT NULL,
    permissions   TEXT NOT NULL,
    created_by    BLOB NOT NULL,
    created_at    INTEGER NOT NULL,
    expires_at    INTEGER,
    revoked_at    INTEGER
);
CREATE INDEX service_keys_workspace ON service_keys (workspace_id, created_at);

-- Nonces seen, per key, until their timestamp's window has passed: a signed request is
-- accepted once, on any node.
CREATE TABLE service_nonces (
    key_id     TEXT NOT NULL,
    nonce      TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (key_id, nonce)
);
CREATE INDEX service_nonces_expiry ON service_nonces (expires_at);
