-- The durable work queue every background job uses. A job is claimed under a lease (owner and
-- expiry) that its runner extends while it works; a node that dies leaves its jobs to be
-- claimed again once the lease runs out. A failed attempt is retried with backoff; a job out
-- of attempts is dead, kept for administrators to see. `dedupe_key` makes enqueueing
-- idempotent: a cron instant or a webhook delivery becomes at most one job across the cluster.
CREATE TABLE jobs (
    id           BLOB PRIMARY KEY,
    kind         TEXT NOT NULL,
    workspace_id BLOB,
    dedupe_key   TEXT UNIQUE,
    payload      TEXT NOT NULL,
    status       TEXT NOT NULL CHECK (status IN ('queued', 'running', 'done', 'dead')),
    attempts     INTEGER NOT NULL DEFAULT 0,
    max_attempts INTEGER NOT NULL,
    run_at       INTEGER NOT NULL,
    lease_owner  TEXT,
    lease_until  INTEGER,
    last_error   TEXT,
    created_at   INTEGER NOT NULL,
    finished_at  INTEGER
);
CREATE INDEX jobs_due ON jobs (run_at) WHERE status = 'queued';
CREATE INDEX jobs_leased ON jobs (lease_until) WHERE status = 'running';
CREATE INDEX jobs_finished ON jobs (status, finished_at) WHERE status IN ('done', 'dead');

-- Automations: what starts an agent session without a person asking. Each run acts for
-- `run_as` (who created or last changed it), whose permission to start sessions is checked
-- again at every run.
CREATE TABLE automations (
    id                 BLOB PRIMARY KEY,
    workspace_id       BLOB NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    name               TEXT NOT NULL,
    kind               TEXT NOT NULL CHECK (kind IN ('manual', 'once', 'cron', 'loop', 'trigger')),
    run_at             INTEGER,
    cron               TEXT,
    timezone           TEXT,
    loop_interval_secs INTEGER,
    loop_max           INTEGER,
    prompt             TEXT NOT NULL,
    prompt_name        TEXT,
    provider           TEXT NOT NULL,
    command            TEXT,
    mode               TEXT NOT NULL,
    host_id            BLOB,
    missed             TEXT NOT NULL CHECK (missed IN ('skip', 'run_once')),
    enabled            BOOLEAN NOT NULL,
    next_run_at        INTEGER,
    runs_started       INTEGER NOT NULL DEFAULT 0,
    run_as             BLOB NOT NULL,
    created_by         BLOB NOT NULL,
    created_at         INTEGER NOT NULL,
    updated_at         INTEGER NOT NULL,
    UNIQUE (workspace_id, name)
);
CREATE INDEX automations_due ON automations (next_run_at) WHERE enabled AND next_run_at IS NOT NULL;

CREATE TABLE automation_runs (
    id            BLOB PRIMARY KEY,
    workspace_id  BLOB NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    automation_id BLOB NOT NULL REFERENCES automations (id) ON DELETE CASCADE,
    job_id        BLOB NOT NULL UNIQUE,
    trigger       TEXT NOT NULL CHECK (trigger IN ('manual', 'schedule', 'loop', 'event')),
    scheduled_for INTEGER,
    event_id      BLOB,
    session_id    BLOB UNIQUE,
    status        TEXT NOT NULL
        CHECK (status IN ('queued', 'running', 'done', 'failed', 'skipped')),
    error         TEXT,
    created_at    INTEGER NOT NULL,
    started_at    INTEGER,
    ended_at      INTEGER
);
CREATE INDEX automation_runs_automation ON automation_runs (automation_id, created_at);
CREATE INDEX automation_runs_running ON automation_runs (workspace_id) WHERE status = 'running';

-- Event sources: a public webhook URL per source whose token is kept only as its SHA-256.
-- Counters say what became of deliveries; the per-minute window enforces the rate limit
-- across every node.
CREATE TABLE event_sources (
    id               BLOB PRIMARY KEY,
    workspace_id     BLOB NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    name             TEXT NOT NULL,
    kind             TEXT NOT NULL CHECK (kind IN ('generic', 'github', 'stripe', 'standard')),
    enabled          BOOLEAN NOT NULL,
    token_hash       BLOB NOT NULL UNIQUE,
    token_prefix     TEXT NOT NULL,
    sealed_secret    BLOB,
    secret_set_by    BLOB,
    secret_set_at    INTEGER,
    signature_header TEXT,
    delivery_header  TEXT,
    filter_events    TEXT,
    filter_pointer   TEXT,
    filter_value     TEXT,
    automation_id    BLOB REFERENCES automations (id) ON DELETE SET NULL,
    rate_per_minute  INTEGER NOT NULL,
    backlog          INTEGER NOT NULL,
    minute_start     INTEGER NOT NULL DEFAULT 0,
    minute_count     INTEGER NOT NULL DEFAULT 0,
    accepted         INTEGER NOT NULL DEFAULT 0,
    ignored          INTEGER NOT NULL DEFAULT 0,
    replayed         INTEGER NOT NULL DEFAULT 0,
    dropped_rate     INTEGER NOT NULL DEFAULT 0,
    dropped_backlog  INTEGER NOT NULL DEFAULT 0,
    dropped_signature INTEGER NOT NULL DEFAULT 0,
    dropped_paused   INTEGER NOT NULL DEFAULT 0,
    last_signature_alert INTEGER NOT NULL DEFAULT 0,
    created_by       BLOB NOT NULL,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    token_rotated_at INTEGER,
    UNIQUE (workspace_id, name)
);

-- Accepted deliveries, as received (the raw body, which signatures were checked over). A
-- delivery id seen twice for one source is processed once.
CREATE TABLE webhook_events (
    id           BLOB PRIMARY KEY,
    workspace_id BLOB NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    source_id    BLOB NOT NULL REFERENCES event_sources (id) ON DELETE CASCADE,
    delivery_id  TEXT,
    event_type   TEXT,
    body         BLOB NOT NULL,
    received_at  INTEGER NOT NULL,
    UNIQUE (source_id, delivery_id)
);
CREATE INDEX webhook_events_source ON webhook_events (source_id, received_at);
