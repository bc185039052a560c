-- Device authorization grants (RFC 8628): a terminal or a host agent asks, a signed-in person
-- approves in a browser, the device redeems once. Device code and user code are stored only
-- as hashes. `workspace_ids` (space-separated) are those an approved host may serve.
CREATE TABLE device_grants (
    id              BLOB PRIMARY KEY,
    device_hash     BLOB NOT NULL UNIQUE,
    user_code_hash  BLOB NOT NULL,
    kind            TEXT NOT NULL,
    client_name     TEXT NOT NULL,
    host_name       TEXT,
    requested_ip    TEXT,
    user_agent      TEXT,
    created_at      INTEGER NOT NULL,
    expires_at      INTEGER NOT NULL,
    interval_secs   INTEGER NOT NULL,
    last_polled_at  INTEGER,
    status          TEXT NOT NULL,
    decided_by      BLOB REFERENCES users (id),
    decided_at      INTEGER,
    workspace_ids   TEXT NOT NULL DEFAULT '',
    redeemed_at     INTEGER
);
CREATE INDEX device_grants_user_code ON device_grants (user_code_hash, expires_at);
