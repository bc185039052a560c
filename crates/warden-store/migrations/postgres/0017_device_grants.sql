-- Device authorization grants (RFC 8628): a terminal or a host agent asks, a signed-in person
-- approves in a browser, the device redeems once. Device code and user code are stored only
-- as hashes. `workspace_ids` (space-separated) are those an approved host may serve.
CREATE TABLE device_grants (
    id              UUID PRIMARY KEY,
    device_hash     BYTEA NOT NULL UNIQUE,
    user_code_hash  BYTEA NOT NULL,
    kind            TEXT NOT NULL,
    client_name     TEXT NOT NULL,
    host_name       TEXT,
    requested_ip    TEXT,
    user_agent      TEXT,
    created_at      BIGINT NOT NULL,
    expires_at      BIGINT NOT NULL,
    interval_secs   BIGINT NOT NULL,
    last_polled_at  BIGINT,
    status          TEXT NOT NULL,
    decided_by      UUID REFERENCES users (id),
    decided_at      BIGINT,
    workspace_ids   TEXT NOT NULL DEFAULT '',
    redeemed_at     BIGINT
);
CREATE INDEX device_grants_user_code ON device_grants (user_code_hash, expires_at);
