-- Service keys: how trusted internal systems (a CI system reporting a result, another
-- component) call a workspace's API with HMAC-signed requests. The secret must be read back to
-- check signatures, so it is sealed by the keyring (never hashed); a key acts for its creator
-- within the permissions it was given and in its workspace only. Rotation adds a key and
-- gives the old one an end (`expires_at`), so both sign during the overlap.
CREATE TABLE service_keys (
    id            UUID PRIMARY KEY,
    workspace_id  UUID NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    key_id        TEXT NOT NULL UNIQUE,
    name          TEXT NOT NULL,
    sealed_secret BYTEA NOT NULL,
    permissions   TEXT NOT NULL,
    created_by    UUID NOT NULL,
    created_at    BIGINT NOT NULL,
    expires_at    BIGINT,
    revoked_at    BIGINT
);
CREATE INDEX service_keys_workspace ON service_keys (workspace_id, created_at);

-- Nonces seen, per key, until their timestamp's window has passed: a signed request is
-- accepted once, on any node.
CREATE TABLE service_nonces (
    key_id     TEXT NOT NULL,
    nonce      TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (key_id, nonce)
);
CREATE INDEX service_nonces_expiry ON service_nonces (expires_at);

-- A workspace's transaction sees its own keys; signature checks (before any workspace is
-- known) read by key id under warden.service_auth.
CREATE FUNCTION warden_scope_service_auth() RETURNS BOOLEAN LANGUAGE sql STABLE AS
    $$ SELECT COALESCE(current_setting('warden.service_auth', true), '') = 'on' $$;
ALTER TABLE service_keys ENABLE ROW LEVEL SECURITY;
ALTER TABLE service_keys FORCE ROW LEVEL SECURITY;
CREATE POLICY service_keys_scope ON service_keys
    USING (workspace_id = (SELECT warden_scope_workspace()) OR (SELECT warden_scope_service_auth()))
    WITH CHECK (workspace_id = (SELECT warden_scope_workspace()));
