-- Data keys of the keyring, each wrapped (AES-256-GCM) by the master key.
CREATE TABLE keyring_keys (
    version     INTEGER PRIMARY KEY CHECK (version > 0),
    wrapped_key BLOB NOT NULL,
    created_at  TEXT NOT NULL
);
