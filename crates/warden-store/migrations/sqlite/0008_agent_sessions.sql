-- Agent sessions and their output in numbered chunks. SQLite has no row-level security: every
-- query names the workspace (or, on the host path, the host).
CREATE TABLE agent_sessions (
    id           BLOB PRIMARY KEY,
    workspace_id BLOB NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    host_id      BLOB REFERENCES hosts (id) ON DELETE SET NULL,
    provider     TEXT NOT NULL,
    mode         TEXT NOT NULL CHECK (mode IN ('chat', 'develop', 'bot')),
    status       TEXT NOT NULL
        CHECK (status IN ('waiting', 'running', 'done', 'failed', 'canceled', 'lost')),
    prompt       TEXT NOT NULL,
    isolation    TEXT,
    exit_code    INTEGER,
    error        TEXT,
    created_by   BLOB NOT NULL,
    created_at   INTEGER NOT NULL,
    started_at   INTEGER,
    ended_at     INTEGER
);
CREATE INDEX agent_sessions_workspace ON agent_sessions (workspace_id, created_at);

CREATE TABLE agent_session_output (
    session_id   BLOB NOT NULL REFERENCES agent_sessions (id) ON DELETE CASCADE,
    workspace_id BLOB NOT NULL,
    seq          INTEGER NOT NULL,
    stream       TEXT NOT NULL CHECK (stream IN ('stdout', 'stderr')),
    data         TEXT NOT NULL,
    PRIMARY KEY (session_id, seq)
);
