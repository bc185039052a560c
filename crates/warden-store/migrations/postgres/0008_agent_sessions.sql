-- Agent sessions: one row per session, its output in numbered chunks (so a client resumes
-- after the last chunk it saw). Both belong to a workspace: row-level security confines them
-- to it, except on the host path (warden.hosts = 'on', where every query also names the host
-- the session runs on).
CREATE TABLE agent_sessions (
    id           UUID PRIMARY KEY,
    workspace_id UUID NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    host_id      UUID REFERENCES hosts (id) ON DELETE SET NULL,
    provider     TEXT NOT NULL,
    mode         TEXT NOT NULL CHECK (mode IN ('chat', 'develop', 'bot')),
    status       TEXT NOT NULL
        CHECK (status IN ('waiting', 'running', 'done', 'failed', 'canceled', 'lost')),
    prompt       TEXT NOT NULL,
    isolation    TEXT,
    exit_code    INTEGER,
    error        TEXT,
    created_by   UUID NOT NULL,
    created_at   BIGINT NOT NULL,
    started_at   BIGINT,
    ended_at     BIGINT
);
CREATE INDEX agent_sessions_workspace ON agent_sessions (workspace_id, created_at);

CREATE TABLE agent_session_output (
    session_id   UUID NOT NULL REFERENCES agent_sessions (id) ON DELETE CASCADE,
    workspace_id UUID NOT NULL,
    seq          BIGINT NOT NULL,
    stream       TEXT NOT NULL CHECK (stream IN ('stdout', 'stderr')),
    data         TEXT NOT NULL,
    PRIMARY KEY (session_id, seq)
);

ALTER TABLE agent_sessions ENABLE ROW LEVEL SECURITY;
ALTER TABLE agent_sessions FORCE ROW LEVEL SECURITY;
CREATE POLICY agent_sessions_scope ON agent_sessions
    USING (workspace_id = (SELECT warden_scope_workspace()) OR (SELECT warden_scope_hosts()))
    WITH CHECK (workspace_id = (SELECT warden_scope_workspace()) OR (SELECT warden_scope_hosts()));

ALTER TABLE agent_session_output ENABLE ROW LEVEL SECURITY;
ALTER TABLE agent_session_output FORCE ROW LEVEL SECURITY;
CREATE POLICY agent_session_output_scope ON agent_session_output
    USING (workspace_id = (SELECT warden_scope_workspace()) OR (SELECT warden_scope_hosts()))
    WITH CHECK (workspace_id = (SELECT warden_scope_workspace()) OR (SELECT warden_scope_hosts()));
