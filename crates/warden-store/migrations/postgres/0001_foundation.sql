-- Data keys of the keyring, each wrapped (AES-256-GCM) by the master key.
CREATE TABLE keyring_keys (
    version     BIGINT PRIMARY KEY CHECK (version > 0),
    wrapped_key BYTEA NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL
);
