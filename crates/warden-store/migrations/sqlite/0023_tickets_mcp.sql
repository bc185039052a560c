-- Tickets per workspace (numbered #1, #2, … within it), the sessions working on them, and
-- what an agent session says to its owner through the MCP endpoint: questions (answered by a
-- person), messages, and its plan document. MCP tokens are stored as their SHA-256.

CREATE TABLE ticket_counters (
    workspace_id BLOB PRIMARY KEY REFERENCES workspaces (id) ON DELETE CASCADE,
    last         INTEGER NOT NULL
);

CREATE TABLE tickets (
    id           BLOB PRIMARY KEY,
    workspace_id BLOB NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    number       INTEGER NOT NULL,
    title        TEXT NOT NULL,
    body         TEXT NOT NULL,
    status       TEXT NOT NULL CHECK (status IN ('backlog', 'ready_for_development',
        'in_development', 'ready_for_qa', 'done', 'rejected')),
    assignee_id  BLOB REFERENCES users (id),
    labels       TEXT NOT NULL,
    created_by   BLOB NOT NULL,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    UNIQUE (workspace_id, number)
);
CREATE INDEX tickets_status ON tickets (workspace_id, status, number);

CREATE TABLE ticket_sessions (
    ticket_id    BLOB NOT NULL REFERENCES tickets (id) ON DELETE CASCADE,
    session_id   BLOB NOT NULL REFERENCES agent_sessions (id) ON DELETE CASCADE,
    workspace_id BLOB NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    linked_at    INTEGER NOT NULL,
    PRIMARY KEY (ticket_id, session_id)
);
CREATE INDEX ticket_sessions_session ON ticket_sessions (session_id);

CREATE TABLE session_messages (
    id           BLOB PRIMARY KEY,
    workspace_id BLOB NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    session_id   BLOB NOT NULL REFERENCES agent_sessions (id) ON DELETE CASCADE,
    kind         TEXT NOT NULL CHECK (kind IN ('question', 'message')),
    body         TEXT NOT NULL,
    answer       TEXT,
    answered_by  BLOB,
    answered_at  INTEGER,
    expires_at   INTEGER,
    created_at   INTEGER NOT NULL
);
CREATE INDEX session_messages_session ON session_messages (session_id, created_at);

CREATE TABLE session_plans (
    session_id   BLOB PRIMARY KEY REFERENCES agent_sessions (id) ON DELETE CASCADE,
    workspace_id BLOB NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    content      TEXT NOT NULL,
    updated_at   INTEGER NOT NULL
);

CREATE TABLE workspace_mcp (
    workspace_id BLOB PRIMARY KEY REFERENCES workspaces (id) ON DELETE CASCADE,
    enabled      INTEGER NOT NULL,
    updated_by   BLOB NOT NULL,
    updated_at   INTEGER NOT NULL
);

CREATE TABLE mcp_tokens (
    id           BLOB PRIMARY KEY,
    workspace_id BLOB NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    session_id   BLOB NOT NULL REFERENCES agent_sessions (id) ON DELETE CASCADE,
    user_id      BLOB NOT NULL REFERENCES users (id),
    hash         BLOB NOT NULL UNIQUE,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL
);
CREATE INDEX mcp_tokens_session ON mcp_tokens (session_id);
