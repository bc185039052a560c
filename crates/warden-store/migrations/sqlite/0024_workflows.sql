-- Workflows: named, versioned definitions (JSON, checked by the application) per workspace,
-- and their runs, each pinned to the version it started with, step by step. The queue's
-- runners advance runs (the `warden.jobs` scope on PostgreSQL); members read them through
-- the workspace's scope.

CREATE TABLE workflows (
    id           BLOB PRIMARY KEY,
    workspace_id BLOB NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    version      INTEGER NOT NULL,
    definition   TEXT NOT NULL,
    on_ticket    TEXT,
    created_by   BLOB NOT NULL,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    UNIQUE (workspace_id, name)
);

CREATE TABLE workflow_versions (
    workflow_id  BLOB NOT NULL REFERENCES workflows (id) ON DELETE CASCADE,
    workspace_id BLOB NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    version      INTEGER NOT NULL,
    definition   TEXT NOT NULL,
    created_by   BLOB NOT NULL,
    created_at   INTEGER NOT NULL,
    PRIMARY KEY (workflow_id, version)
);

-- A run keeps its definition: editing or deleting the workflow changes no run.
CREATE TABLE workflow_runs (
    id           BLOB PRIMARY KEY,
    workspace_id BLOB NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    workflow_id  BLOB NOT NULL,
    name         TEXT NOT NULL,
    version      INTEGER NOT NULL,
    definition   TEXT NOT NULL,
    status       TEXT NOT NULL
        CHECK (status IN ('running', 'waiting', 'succeeded', 'failed', 'canceled')),
    started_by   BLOB NOT NULL,
    ticket_id    BLOB,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    ended_at     INTEGER
);
CREATE INDEX workflow_runs_workspace ON workflow_runs (workspace_id, created_at);

CREATE TABLE workflow_steps (
    run_id       BLOB NOT NULL REFERENCES workflow_runs (id) ON DELETE CASCADE,
    workspace_id BLOB NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    seq          INTEGER NOT NULL,
    step_index   INTEGER NOT NULL,
    step_id      TEXT NOT NULL,
    kind         TEXT NOT NULL,
    status       TEXT NOT NULL
        CHECK (status IN ('running', 'waiting', 'succeeded', 'failed')),
    session_id   BLOB,
    decided_by   BLOB,
    reason       TEXT,
    started_at   INTEGER NOT NULL,
    ended_at     INTEGER,
    PRIMARY KEY (run_id, seq)
);
CREATE INDEX workflow_steps_session ON workflow_steps (session_id);

-- An automation that starts a workflow run instead of a session.
CREATE TABLE automation_workflows (
    automation_id BLOB PRIMARY KEY REFERENCES automations (id) ON DELETE CASCADE,
    workspace_id  BLOB NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    workflow_id   BLOB NOT NULL REFERENCES workflows (id) ON DELETE CASCADE,
    updated_at    INTEGER NOT NULL
);
