-- The LLM gateway: per-workspace policy (kill switch, quotas, filters, prices, capture),
-- upstream providers with their sealed keys, gateway keys (hashed), quota counters shared by
-- every node, one record per call, daily usage, and the quota alerts already sent.

-- The platform's kill switch: one row; absent means on.
CREATE TABLE llm_switch (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    enabled    INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);

-- A workspace's gateway policy. `policy` is JSON (quotas, filters, prices, capture); the
-- columns the hot path needs on their own are kept apart.
CREATE TABLE llm_policies (
    workspace_id    BLOB PRIMARY KEY REFERENCES workspaces (id) ON DELETE CASCADE,
    enabled         INTEGER NOT NULL,
    session_gateway INTEGER NOT NULL,
    policy          TEXT NOT NULL,
    updated_at      INTEGER NOT NULL
);

-- Where calls go. The provider key is sealed by the keyring, bound to the upstream's id.
CREATE TABLE llm_upstreams (
    id                    BLOB PRIMARY KEY,
    workspace_id          BLOB NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    name                  TEXT NOT NULL,
    kind                  TEXT NOT NULL,
    base_url              TEXT NOT NULL,
    sealed_key            BLOB,
    models                TEXT NOT NULL,
    aliases               TEXT NOT NULL,
    allow_private_network INTEGER NOT NULL,
    created_at            INTEGER NOT NULL,
    updated_at            INTEGER NOT NULL,
    UNIQUE (workspace_id, name)
);

-- Gateway keys (`wdn_llm_…`), stored as their SHA-256: a workspace key (no user), a user's
-- key, or the token one agent session was given (ends with the session).
CREATE TABLE llm_keys (
    id           BLOB PRIMARY KEY,
    workspace_id BLOB NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    user_id      BLOB,
    session_id   BLOB,
    name         TEXT NOT NULL,
    hash         BLOB NOT NULL UNIQUE,
    hint         TEXT NOT NULL,
    created_by   BLOB NOT NULL,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER,
    revoked_at   INTEGER
);
CREATE INDEX llm_keys_workspace ON llm_keys (workspace_id, created_at);
CREATE INDEX llm_keys_session ON llm_keys (session_id);

-- Quota reservations per subject (`w` for the workspace, or a user id), period (`minute`,
-- `day`, `month`) and the period's start (µs). A node reserves from here before a call.
CREATE TABLE llm_counters (
    workspace_id BLOB NOT NULL,
    subject      TEXT NOT NULL,
    period       TEXT NOT NULL,
    start        INTEGER NOT NULL,
    requests     INTEGER NOT NULL,
    tokens       INTEGER NOT NULL,
    cost         INTEGER NOT NULL,
    PRIMARY KEY (workspace_id, subject, period, start)
);

-- One record per call. `cost` is in millionths of a currency unit; `sealed_content` holds
-- the prompt and response when the workspace captures them (sealed, bound to this record).
CREATE TABLE llm_calls (
    id                BLOB PRIMARY KEY,
    workspace_id      BLOB NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    key_id            BLOB NOT NULL,
    user_id           BLOB,
    session_id        BLOB,
    automation_run_id BLOB,
    request_id        TEXT NOT NULL,
    endpoint          TEXT NOT NULL,
    model             TEXT NOT NULL,
    upstream_id       BLOB,
    status            INTEGER NOT NULL,
    latency_us        INTEGER NOT NULL,
    tokens_in         INTEGER NOT NULL,
    tokens_out        INTEGER NOT NULL,
    cost              INTEGER NOT NULL,
    decisions         TEXT NOT NULL,
    sealed_content    BLOB,
    created_at        INTEGER NOT NULL
);
CREATE INDEX llm_calls_workspace ON llm_calls (workspace_id, created_at);
CREATE INDEX llm_calls_request ON llm_calls (request_id);

-- Usage per workspace, user (the zero id for none), model and day (days since 1970).
CREATE TABLE llm_usage (
    workspace_id BLOB NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    day          INTEGER NOT NULL,
    user_id      BLOB NOT NULL,
    model        TEXT NOT NULL,
    requests     INTEGER NOT NULL,
    tokens_in    INTEGER NOT NULL,
    tokens_out   INTEGER NOT NULL,
    cost         INTEGER NOT NULL,
    PRIMARY KEY (workspace_id, day, user_id, model)
);

-- Quota alerts sent (80% and 90% of a monthly quota), once each.
CREATE TABLE llm_alerts (
    workspace_id BLOB NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    subject      TEXT NOT NULL,
    metric       TEXT NOT NULL,
    month        INTEGER NOT NULL,
    threshold    INTEGER NOT NULL,
    created_at   INTEGER NOT NULL,
    PRIMARY KEY (workspace_id, subject, metric, month, threshold)
);
