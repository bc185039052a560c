-- Workflows: named, versioned definitions (JSON, checked by the application) per workspace,
-- and their runs, each pinned to the version it started with, step by step. The queue's
-- runners advance runs (the `warden.jobs` scope on PostgreSQL); members read them through
-- the workspace's scope.

CREATE TABLE workflows (
    id           UUID PRIMARY KEY,
    workspace_id UUID NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    version      BIGINT NOT NULL,
    definition   TEXT NOT NULL,
    on_ticket    TEXT,
    created_by   UUID NOT NULL,
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL,
    UNIQUE (workspace_id, name)
);

CREATE TABLE workflow_versions (
    workflow_id  UUID NOT NULL REFERENCES workflows (id) ON DELETE CASCADE,
    workspace_id UUID NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    version      BIGINT NOT NULL,
    definition   TEXT NOT NULL,
    created_by   UUID NOT NULL,
    created_at   BIGINT NOT NULL,
    PRIMARY KEY (workflow_id, version)
);

-- A run keeps its definition: editing or deleting the workflow changes no run.
CREATE TABLE workflow_runs (
    id           UUID PRIMARY KEY,
    workspace_id UUID NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    workflow_id  UUID NOT NULL,
    name         TEXT NOT NULL,
    version      BIGINT NOT NULL,
    definition   TEXT NOT NULL,
    status       TEXT NOT NULL
        CHECK (status IN ('running', 'waiting', 'succeeded', 'failed', 'canceled')),
    started_by   UUID NOT NULL,
    ticket_id    UUID,
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL,
    ended_at     BIGINT
);
CREATE INDEX workflow_runs_workspace ON workflow_runs (workspace_id, created_at);

CREATE TABLE workflow_steps (
    run_id       UUID NOT NULL REFERENCES workflow_runs (id) ON DELETE CASCADE,
    workspace_id UUID NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    seq          BIGINT NOT NULL,
    step_index   BIGINT NOT NULL,
    step_id      TEXT NOT NULL,
    kind         TEXT NOT NULL,
    status       TEXT NOT NULL
        CHECK (status IN ('running', 'waiting', 'succeeded', 'failed')),
    session_id   UUID,
    decided_by   UUID,
    reason       TEXT,
    started_at   BIGINT NOT NULL,
    ended_at     BIGINT,
    PRIMARY KEY (run_id, seq)
);
CREATE INDEX workflow_steps_session ON workflow_steps (session_id);

ALTER TABLE workflows ENABLE ROW LEVEL SECURITY;
ALTER TABLE workflows FORCE ROW LEVEL SECURITY;
CREATE POLICY workflows_scope ON workflows
    USING (workspace_id = (SELECT warden_scope_workspace()) OR (SELECT warden_scope_jobs()))
    WITH CHECK (workspace_id = (SELECT warden_scope_workspace()) OR (SELECT warden_scope_jobs()));
ALTER TABLE workflow_versions ENABLE ROW LEVEL SECURITY;
ALTER TABLE workflow_versions FORCE ROW LEVEL SECURITY;
CREATE POLICY workflow_versions_scope ON workflow_versions
    USING (workspace_id = (SELECT warden_scope_workspace()) OR (SELECT warden_scope_jobs()))
    WITH CHECK (workspace_id = (SELECT warden_scope_workspace()) OR (SELECT warden_scope_jobs()));
ALTER TABLE workflow_runs ENABLE ROW LEVEL SECURITY;
ALTER TABLE workflow_runs FORCE ROW LEVEL SECURITY;
CREATE POLICY workflow_runs_scope ON workflow_runs
    USING (workspace_id = (SELECT warden_scope_workspace()) OR (SELECT warden_scope_jobs()))
    WITH CHECK (workspace_id = (SELECT warden_scope_workspace()) OR (SELECT warden_scope_jobs()));
ALTER TABLE workflow_steps ENABLE ROW LEVEL SECURITY;
ALTER TABLE workflow_steps FORCE ROW LEVEL SECURITY;
CREATE POLICY workflow_steps_scope ON workflow_steps
    USING (workspace_id = (SELECT warden_scope_workspace()) OR (SELECT warden_scope_jobs()))
    WITH CHECK (workspace_id = (SELECT warden_scope_workspace()) OR (SELECT warden_scope_jobs()));

-- An automation that starts a workflow run instead of a session.
CREATE TABLE automation_workflows (
    automation_id UUID PRIMARY KEY REFERENCES automations (id) ON DELETE CASCADE,
    workspace_id  UUID NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    workflow_id   UUID NOT NULL REFERENCES workflows (id) ON DELETE CASCADE,
    updated_at    BIGINT NOT NULL
);
ALTER TABLE automation_workflows ENABLE ROW LEVEL SECURITY;
ALTER TABLE automation_workflows FORCE ROW LEVEL SECURITY;
CREATE POLICY automation_workflows_scope ON automation_workflows
    USING (workspace_id = (SELECT warden_scope_workspace()) OR (SELECT warden_scope_jobs()))
    WITH CHECK (workspace_id = (SELECT warden_scope_workspace()) OR (SELECT warden_scope_jobs()));
