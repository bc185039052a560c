-- Bots: an agent that answers a channel's messages one at a time, in order, keeping the
-- conversation. Each message is answered by a bot-mode session whose prompt carries the
-- bot's instructions and the conversation so far; its output is the answer.

CREATE TABLE bots (
    id           BLOB PRIMARY KEY,
    workspace_id BLOB NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    provider     TEXT NOT NULL,
    instructions TEXT NOT NULL,
    run_as       BLOB NOT NULL,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    UNIQUE (workspace_id, name)
);

CREATE TABLE bot_messages (
    id           BLOB PRIMARY KEY,
    bot_id       BLOB NOT NULL REFERENCES bots (id) ON DELETE CASCADE,
    workspace_id BLOB NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    channel      TEXT NOT NULL,
    body         TEXT NOT NULL,
    status       TEXT NOT NULL CHECK (status IN ('queued', 'answering', 'answered', 'failed')),
    answer       TEXT,
    session_id   BLOB,
    created_by   BLOB,
    created_at   INTEGER NOT NULL,
    answered_at  INTEGER
);
CREATE INDEX bot_messages_bot ON bot_messages (bot_id, created_at);
CREATE INDEX bot_messages_session ON bot_messages (session_id);

-- An event source whose deliveries are messages to a bot.
CREATE TABLE event_source_bots (
    source_id    BLOB PRIMARY KEY REFERENCES event_sources (id) ON DELETE CASCADE,
    workspace_id BLOB NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    bot_id       BLOB NOT NULL REFERENCES bots (id) ON DELETE CASCADE,
    updated_at   INTEGER NOT NULL
);
