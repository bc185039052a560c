-- The LLM gateway: per-workspace policy (kill switch, quotas, filters, prices, capture),
-- upstream providers with their sealed keys, gateway keys (hashed), quota counters shared by
-- every node, one record per call, daily usage, and the quota alerts already sent.

-- The platform's kill switch: one row; absent means on.
CREATE TABLE llm_switch (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    enabled    BOOLEAN NOT NULL,
    updated_at BIGINT NOT NULL
);

-- A workspace's gateway policy. `policy` is JSON (quotas, filters, prices, capture); the
-- columns the hot path needs on their own are kept apart.
CREATE TABLE llm_policies (
    workspace_id    UUID PRIMARY KEY REFERENCES workspaces (id) ON DELETE CASCADE,
    enabled         BOOLEAN NOT NULL,
    session_gateway BOOLEAN NOT NULL,
    policy          TEXT NOT NULL,
    updated_at      BIGINT NOT NULL
);

-- Where calls go. The provider key is sealed by the keyring, bound to the upstream's id.
CREATE TABLE llm_upstreams (
    id                    UUID PRIMARY KEY,
    workspace_id          UUID NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    name                  TEXT NOT NULL,
    kind                  TEXT NOT NULL,
    base_url              TEXT NOT NULL,
    sealed_key            BYTEA,
    models                TEXT NOT NULL,
    aliases               TEXT NOT NULL,
    allow_private_network BOOLEAN NOT NULL,
    created_at            BIGINT NOT NULL,
    updated_at            BIGINT NOT NULL,
    UNIQUE (workspace_id, name)
);

-- Gateway keys (`wdn_llm_…`), stored as their SHA-256: a workspace key (no user), a user's
-- key, or the token one agent session was given (ends with the session).
CREATE TABLE llm_keys (
    id           UUID PRIMARY KEY,
    workspace_id UUID NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    user_id      UUID,
    session_id   UUID,
    name         TEXT NOT NULL,
    hash         BYTEA NOT NULL UNIQUE,
    hint         TEXT NOT NULL,
    created_by   UUID NOT NULL,
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT,
    revoked_at   BIGINT
);
CREATE INDEX llm_keys_workspace ON llm_keys (workspace_id, created_at);
CREATE INDEX llm_keys_session ON llm_keys (session_id);

-- Quota reservations per subject (`w` for the workspace, or a user id), period (`minute`,
-- `day`, `month`) and the period's start (µs). A node reserves from here before a call.
CREATE TABLE llm_counters (
    workspace_id UUID NOT NULL,
    subject      TEXT NOT NULL,
    period       TEXT NOT NULL,
    start        BIGINT NOT NULL,
    requests     BIGINT NOT NULL,
    tokens       BIGINT NOT NULL,
    cost         BIGINT NOT NULL,
    PRIMARY KEY (workspace_id, subject, period, start)
);

-- One record per call. `cost` is in millionths of a currency unit; `sealed_content` holds
-- the prompt and response when the workspace captures them (sealed, bound to this record).
CREATE TABLE llm_calls (
    id                UUID PRIMARY KEY,
    workspace_id      UUID NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    key_id            UUID NOT NULL,
    user_id           UUID,
    session_id        UUID,
    automation_run_id UUID,
    request_id        TEXT NOT NULL,
    endpoint          TEXT NOT NULL,
    model             TEXT NOT NULL,
    upstream_id       UUID,
    status            INTEGER NOT NULL,
    latency_us        BIGINT NOT NULL,
    tokens_in         BIGINT NOT NULL,
    tokens_out        BIGINT NOT NULL,
    cost              BIGINT NOT NULL,
    decisions         TEXT NOT NULL,
    sealed_content    BYTEA,
    created_at        BIGINT NOT NULL
);
CREATE INDEX llm_calls_workspace ON llm_calls (workspace_id, created_at);
CREATE INDEX llm_calls_request ON llm_calls (request_id);

-- Usage per workspace, user (the zero id for none), model and day (days since 1970).
CREATE TABLE llm_usage (
    workspace_id UUID NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    day          INTEGER NOT NULL,
    user_id      UUID NOT NULL,
    model        TEXT NOT NULL,
    requests     BIGINT NOT NULL,
    tokens_in    BIGINT NOT NULL,
    tokens_out   BIGINT NOT NULL,
    cost         BIGINT NOT NULL,
    PRIMARY KEY (workspace_id, day, user_id, model)
);

-- Quota alerts sent (80% and 90% of a monthly quota), once each.
CREATE TABLE llm_alerts (
    workspace_id UUID NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    subject      TEXT NOT NULL,
    metric       TEXT NOT NULL,
    month        INTEGER NOT NULL,
    threshold    INTEGER NOT NULL,
    created_at   BIGINT NOT NULL,
    PRIMARY KEY (workspace_id, subject, metric, month, threshold)
);

-- A workspace's transaction sees its own rows; the gateway's hot path and its record writer
-- (before or across workspaces) set warden.llm.
CREATE FUNCTION warden_scope_llm() RETURNS BOOLEAN LANGUAGE sql STABLE AS
    $$ SELECT COALESCE(current_setting('warden.llm', true), '') = 'on' $$;
ALTER TABLE llm_policies ENABLE ROW LEVEL SECURITY;
ALTER TABLE llm_policies FORCE ROW LEVEL SECURITY;
CREATE POLICY llm_policies_scope ON llm_policies
    USING (workspace_id = (SELECT warden_scope_workspace()) OR (SELECT warden_scope_llm()))
    WITH CHECK (workspace_id = (SELECT warden_scope_workspace()) OR (SELECT warden_scope_llm()));
ALTER TABLE llm_upstreams ENABLE ROW LEVEL SECURITY;
ALTER TABLE llm_upstreams FORCE ROW LEVEL SECURITY;
CREATE POLICY llm_upstreams_scope ON llm_upstreams
    USING (workspace_id = (SELECT warden_scope_workspace()) OR (SELECT warden_scope_llm()))
    WITH CHECK (workspace_id = (SELECT warden_scope_workspace()) OR (SELECT warden_scope_llm()));
ALTER TABLE llm_keys ENABLE ROW LEVEL SECURITY;
ALTER TABLE llm_keys FORCE ROW LEVEL SECURITY;
CREATE POLICY llm_keys_scope ON llm_keys
    USING (workspace_id = (SELECT warden_scope_workspace()) OR (SELECT warden_scope_llm()))
    WITH CHECK (workspace_id = (SELECT warden_scope_workspace()) OR (SELECT warden_scope_llm()));
ALTER TABLE llm_counters ENABLE ROW LEVEL SECURITY;
ALTER TABLE llm_counters FORCE ROW LEVEL SECURITY;
CREATE POLICY llm_counters_scope ON llm_counters
    USING (workspace_id = (SELECT warden_scope_workspace()) OR (SELECT warden_scope_llm()))
    WITH CHECK (workspace_id = (SELECT warden_scope_workspace()) OR (SELECT warden_scope_llm()));
ALTER TABLE llm_calls ENABLE ROW LEVEL SECURITY;
ALTER TABLE llm_calls FORCE ROW LEVEL SECURITY;
CREATE POLICY llm_calls_scope ON llm_calls
    USING (workspace_id = (SELECT warden_scope_workspace()) OR (SELECT warden_scope_llm()))
    WITH CHECK (workspace_id = (SELECT warden_scope_workspace()) OR (SELECT warden_scope_llm()));
ALTER TABLE llm_usage ENABLE ROW LEVEL SECURITY;
ALTER TABLE llm_usage FORCE ROW LEVEL SECURITY;
CREATE POLICY llm_usage_scope ON llm_usage
    USING (workspace_id = (SELECT warden_scope_workspace()) OR (SELECT warden_scope_llm()))
    WITH CHECK (workspace_id = (SELECT warden_scope_workspace()) OR (SELECT warden_scope_llm()));
ALTER TABLE llm_alerts ENABLE ROW LEVEL SECURITY;
ALTER TABLE llm_alerts FORCE ROW LEVEL SECURITY;
CREATE POLICY llm_alerts_scope ON llm_alerts
    USING (workspace_id = (SELECT warden_scope_workspace()) OR (SELECT warden_scope_llm()))
    WITH CHECK (workspace_id = (SELECT warden_scope_workspace()) OR (SELECT warden_scope_llm()));
