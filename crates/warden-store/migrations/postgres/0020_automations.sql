-- The durable work queue every background job uses. A job is claimed under a lease (owner and
-- expiry) that its runner extends while it works; a node that dies leaves its jobs to be
-- claimed again once the lease runs out. A failed attempt is retried with backoff; a job out
-- of attempts is dead, kept for administrators to see. `dedupe_key` makes enqueueing
-- idempotent: a cron instant or a webhook delivery becomes at most one job across the cluster.
CREATE TABLE jobs (
    id           UUID PRIMARY KEY,
    kind         TEXT NOT NULL,
    workspace_id UUID,
    dedupe_key   TEXT UNIQUE,
    payload      TEXT NOT NULL,
    status       TEXT NOT NULL CHECK (status IN ('queued', 'running', 'done', 'dead')),
    attempts     INTEGER NOT NULL DEFAULT 0,
    max_attempts INTEGER NOT NULL,
    run_at       BIGINT NOT NULL,
    lease_owner  TEXT,
    lease_until  BIGINT,
    last_error   TEXT,
    created_at   BIGINT NOT NULL,
    finished_at  BIGINT
);
CREATE INDEX jobs_due ON jobs (run_at) WHERE status = 'queued';
CREATE INDEX jobs_leased ON jobs (lease_until) WHERE status = 'running';
CREATE INDEX jobs_finished ON jobs (status, finished_at) WHERE status IN ('done', 'dead');

-- Automations: what starts an agent session without a person asking. Each run acts for
-- `run_as` (who created or last changed it), whose permission to start sessions is checked
-- again at every run.
CREATE TABLE automations (
    id                 UUID PRIMARY KEY,
    workspace_id       UUID NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    name               TEXT NOT NULL,
    kind               TEXT NOT NULL CHECK (kind IN ('manual', 'once', 'cron', 'loop', 'trigger')),
    run_at             BIGINT,
    cron               TEXT,
    timezone           TEXT,
    loop_interval_secs BIGINT,
    loop_max           BIGINT,
    prompt             TEXT NOT NULL,
    prompt_name        TEXT,
    provider           TEXT NOT NULL,
    command            TEXT,
    mode               TEXT NOT NULL,
    host_id            UUID,
    missed             TEXT NOT NULL CHECK (missed IN ('skip', 'run_once')),
    enabled            BOOLEAN NOT NULL,
    next_run_at        BIGINT,
    runs_started       BIGINT NOT NULL DEFAULT 0,
    run_as             UUID NOT NULL,
    created_by         UUID NOT NULL,
    created_at         BIGINT NOT NULL,
    updated_at         BIGINT NOT NULL,
    UNIQUE (workspace_id, name)
);
CREATE INDEX automations_due ON automations (next_run_at) WHERE enabled AND next_run_at IS NOT NULL;

CREATE TABLE automation_runs (
    id            UUID PRIMARY KEY,
    workspace_id  UUID NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    automation_id UUID NOT NULL REFERENCES automations (id) ON DELETE CASCADE,
    job_id        UUID NOT NULL UNIQUE,
    trigger       TEXT NOT NULL CHECK (trigger IN ('manual', 'schedule', 'loop', 'event')),
    scheduled_for BIGINT,
    event_id      UUID,
    session_id    UUID UNIQUE,
    status        TEXT NOT NULL
        CHECK (status IN ('queued', 'running', 'done', 'failed', 'skipped')),
    error         TEXT,
    created_at    BIGINT NOT NULL,
    started_at    BIGINT,
    ended_at      BIGINT
);
CREATE INDEX automation_runs_automation ON automation_runs (automation_id, created_at);
CREATE INDEX automation_runs_running ON automation_runs (workspace_id) WHERE status = 'running';

-- Row-level security: a workspace's transaction sees its own automations, runs, sources and
-- events; the background paths (scheduler, queue runner, webhook intake) set warden.jobs.

-- Event sources: a public webhook URL per source whose token is kept only as its SHA-256.
-- Counters say what became of deliveries; the per-minute window enforces the rate limit
-- across every node.
CREATE TABLE event_sources (
    id               UUID PRIMARY KEY,
    workspace_id     UUID NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    name             TEXT NOT NULL,
    kind             TEXT NOT NULL CHECK (kind IN ('generic', 'github', 'stripe', 'standard')),
    enabled          BOOLEAN NOT NULL,
    token_hash       BYTEA NOT NULL UNIQUE,
    token_prefix     TEXT NOT NULL,
    sealed_secret    BYTEA,
    secret_set_by    UUID,
    secret_set_at    BIGINT,
    signature_header TEXT,
    delivery_header  TEXT,
    filter_events    TEXT,
    filter_pointer   TEXT,
    filter_value     TEXT,
    automation_id    UUID REFERENCES automations (id) ON DELETE SET NULL,
    rate_per_minute  BIGINT NOT NULL,
    backlog          BIGINT NOT NULL,
    minute_start     BIGINT NOT NULL DEFAULT 0,
    minute_count     BIGINT NOT NULL DEFAULT 0,
    accepted         BIGINT NOT NULL DEFAULT 0,
    ignored          BIGINT NOT NULL DEFAULT 0,
    replayed         BIGINT NOT NULL DEFAULT 0,
    dropped_rate     BIGINT NOT NULL DEFAULT 0,
    dropped_backlog  BIGINT NOT NULL DEFAULT 0,
    dropped_signature BIGINT NOT NULL DEFAULT 0,
    dropped_paused   BIGINT NOT NULL DEFAULT 0,
    last_signature_alert BIGINT NOT NULL DEFAULT 0,
    created_by       UUID NOT NULL,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL,
    token_rotated_at BIGINT,
    UNIQUE (workspace_id, name)
);

-- Accepted deliveries, as received (the raw body, which signatures were checked over). A
-- delivery id seen twice for one source is processed once.
CREATE TABLE webhook_events (
    id           UUID PRIMARY KEY,
    workspace_id UUID NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    source_id    UUID NOT NULL REFERENCES event_sources (id) ON DELETE CASCADE,
    delivery_id  TEXT,
    event_type   TEXT,
    body         BYTEA NOT NULL,
    received_at  BIGINT NOT NULL,
    UNIQUE (source_id, delivery_id)
);
CREATE INDEX webhook_events_source ON webhook_events (source_id, received_at);

CREATE FUNCTION warden_scope_jobs() RETURNS BOOLEAN LANGUAGE sql STABLE AS
    $$ SELECT COALESCE(current_setting('warden.jobs', true), '') = 'on' $$;

ALTER TABLE automations ENABLE ROW LEVEL SECURITY;
ALTER TABLE automations FORCE ROW LEVEL SECURITY;
CREATE POLICY automations_scope ON automations
    USING (workspace_id = (SELECT warden_scope_workspace()) OR (SELECT warden_scope_jobs()))
    WITH CHECK (workspace_id = (SELECT warden_scope_workspace()) OR (SELECT warden_scope_jobs()));

ALTER TABLE automation_runs ENABLE ROW LEVEL SECURITY;
ALTER TABLE automation_runs FORCE ROW LEVEL SECURITY;
CREATE POLICY automation_runs_scope ON automation_runs
    USING (workspace_id = (SELECT warden_scope_workspace()) OR (SELECT warden_scope_jobs()))
    WITH CHECK (workspace_id = (SELECT warden_scope_workspace()) OR (SELECT warden_scope_jobs()));

ALTER TABLE event_sources ENABLE ROW LEVEL SECURITY;
ALTER TABLE event_sources FORCE ROW LEVEL SECURITY;
CREATE POLICY event_sources_scope ON event_sources
    USING (workspace_id = (SELECT warden_scope_workspace()) OR (SELECT warden_scope_jobs()))
    WITH CHECK (workspace_id = (SELECT warden_scope_workspace()) OR (SELECT warden_scope_jobs()));

ALTER TABLE webhook_events ENABLE ROW LEVEL SECURITY;
ALTER TABLE webhook_events FORCE ROW LEVEL SECURITY;
CREATE POLICY webhook_events_scope ON webhook_events
    USING (workspace_id = (SELECT warden_scope_workspace()) OR (SELECT warden_scope_jobs()))
    WITH CHECK (workspace_id = (SELECT warden_scope_workspace()) OR (SELECT warden_scope_jobs()));
