-- Tickets per workspace (numbered #1, #2, … within it), the sessions working on them, and
-- what an agent session says to its owner through the MCP endpoint: questions (answered by a
-- person), messages, and its plan document. MCP tokens are stored as their SHA-256.

CREATE TABLE ticket_counters (
    workspace_id UUID PRIMARY KEY REFERENCES workspaces (id) ON DELETE CASCADE,
    last         BIGINT NOT NULL
);

CREATE TABLE tickets (
    id           UUID PRIMARY KEY,
    workspace_id UUID NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    number       BIGINT NOT NULL,
    title        TEXT NOT NULL,
    body         TEXT NOT NULL,
    status       TEXT NOT NULL CHECK (status IN ('backlog', 'ready_for_development',
        'in_development', 'ready_for_qa', 'done', 'rejected')),
    assignee_id  UUID REFERENCES users (id),
    labels       TEXT NOT NULL,
    created_by   UUID NOT NULL,
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL,
    UNIQUE (workspace_id, number)
);
CREATE INDEX tickets_status ON tickets (workspace_id, status, number);

CREATE TABLE ticket_sessions (
    ticket_id    UUID NOT NULL REFERENCES tickets (id) ON DELETE CASCADE,
    session_id   UUID NOT NULL REFERENCES agent_sessions (id) ON DELETE CASCADE,
    workspace_id UUID NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    linked_at    BIGINT NOT NULL,
    PRIMARY KEY (ticket_id, session_id)
);
CREATE INDEX ticket_sessions_session ON ticket_sessions (session_id);

CREATE TABLE session_messages (
    id           UUID PRIMARY KEY,
    workspace_id UUID NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    session_id   UUID NOT NULL REFERENCES agent_sessions (id) ON DELETE CASCADE,
    kind         TEXT NOT NULL CHECK (kind IN ('question', 'message')),
    body         TEXT NOT NULL,
    answer       TEXT,
    answered_by  UUID,
    answered_at  BIGINT,
    expires_at   BIGINT,
    created_at   BIGINT NOT NULL
);
CREATE INDEX session_messages_session ON session_messages (session_id, created_at);

CREATE TABLE session_plans (
    session_id   UUID PRIMARY KEY REFERENCES agent_sessions (id) ON DELETE CASCADE,
    workspace_id UUID NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    content      TEXT NOT NULL,
    updated_at   BIGINT NOT NULL
);

CREATE TABLE workspace_mcp (
    workspace_id UUID PRIMARY KEY REFERENCES workspaces (id) ON DELETE CASCADE,
    enabled      BOOLEAN NOT NULL,
    updated_by   UUID NOT NULL,
    updated_at   BIGINT NOT NULL
);

CREATE TABLE mcp_tokens (
    id           UUID PRIMARY KEY,
    workspace_id UUID NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    session_id   UUID NOT NULL REFERENCES agent_sessions (id) ON DELETE CASCADE,
    user_id      UUID NOT NULL REFERENCES users (id),
    hash         BYTEA NOT NULL UNIQUE,
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL
);
CREATE INDEX mcp_tokens_session ON mcp_tokens (session_id);

-- Row-level security: every row is its workspace's. The MCP endpoint finds a token by its
-- hash before it knows the workspace, under the `warden.mcp` scope (tokens only).
CREATE FUNCTION warden_scope_mcp() RETURNS BOOLEAN LANGUAGE sql STABLE AS
    $$ SELECT COALESCE(current_setting('warden.mcp', true), '') = 'on' $$;
ALTER TABLE ticket_counters ENABLE ROW LEVEL SECURITY;
ALTER TABLE ticket_counters FORCE ROW LEVEL SECURITY;
CREATE POLICY ticket_counters_scope ON ticket_counters
    USING (workspace_id = (SELECT warden_scope_workspace()))
    WITH CHECK (workspace_id = (SELECT warden_scope_workspace()));
ALTER TABLE tickets ENABLE ROW LEVEL SECURITY;
ALTER TABLE tickets FORCE ROW LEVEL SECURITY;
CREATE POLICY tickets_scope ON tickets
    USING (workspace_id = (SELECT warden_scope_workspace()))
    WITH CHECK (workspace_id = (SELECT warden_scope_workspace()));
ALTER TABLE ticket_sessions ENABLE ROW LEVEL SECURITY;
ALTER TABLE ticket_sessions FORCE ROW LEVEL SECURITY;
CREATE POLICY ticket_sessions_scope ON ticket_sessions
    USING (workspace_id = (SELECT warden_scope_workspace()))
    WITH CHECK (workspace_id = (SELECT warden_scope_workspace()));
ALTER TABLE session_messages ENABLE ROW LEVEL SECURITY;
ALTER TABLE session_messages FORCE ROW LEVEL SECURITY;
CREATE POLICY session_messages_scope ON session_messages
    USING (workspace_id = (SELECT warden_scope_workspace()))
    WITH CHECK (workspace_id = (SELECT warden_scope_workspace()));
ALTER TABLE session_plans ENABLE ROW LEVEL SECURITY;
ALTER TABLE session_plans FORCE ROW LEVEL SECURITY;
CREATE POLICY session_plans_scope ON session_plans
    USING (workspace_id = (SELECT warden_scope_workspace()))
    WITH CHECK (workspace_id = (SELECT warden_scope_workspace()));
ALTER TABLE workspace_mcp ENABLE ROW LEVEL SECURITY;
ALTER TABLE workspace_mcp FORCE ROW LEVEL SECURITY;
CREATE POLICY workspace_mcp_scope ON workspace_mcp
    USING (workspace_id = (SELECT warden_scope_workspace()))
    WITH CHECK (workspace_id = (SELECT warden_scope_workspace()));
ALTER TABLE mcp_tokens ENABLE ROW LEVEL SECURITY;
ALTER TABLE mcp_tokens FORCE ROW LEVEL SECURITY;
CREATE POLICY mcp_tokens_scope ON mcp_tokens
    USING (workspace_id = (SELECT warden_scope_workspace()) OR (SELECT warden_scope_mcp()))
    WITH CHECK (workspace_id = (SELECT warden_scope_workspace()));
