-- Machines that run agents and deployments. A host authenticates with whk_<key_id>_<secret>:
-- key_id finds the row, the secret is kept only as PBKDF2-HMAC-SHA256 (100,000 iterations,
-- 16-byte salt, 32-byte hash). During a rotation's grace period the previous key still works
-- until previous_key_until. Deleting a host deletes its keys: it can never come back with them.
CREATE TABLE hosts (
    id                 UUID PRIMARY KEY,
    name               TEXT NOT NULL,
    kind               TEXT NOT NULL CHECK (kind IN ('session', 'deploy')),
    status             TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'rejected')),
    allow_list         TEXT NOT NULL,
    key_id             TEXT NOT NULL UNIQUE,
    key_salt           BYTEA NOT NULL,
    key_hash           BYTEA NOT NULL,
    previous_key_id    TEXT UNIQUE,
    previous_key_salt  BYTEA,
    previous_key_hash  BYTEA,
    previous_key_until BIGINT,
    hostname           TEXT,
    os                 TEXT,
    agent_version      TEXT,
    last_ip            TEXT,
    connected_node     TEXT,
    last_seen_at       BIGINT,
    created_by         UUID NOT NULL,
    created_at         BIGINT NOT NULL,
    decided_by         UUID,
    decided_at         BIGINT,
    updated_at         BIGINT NOT NULL
);
