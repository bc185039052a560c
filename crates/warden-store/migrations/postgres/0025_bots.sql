-- Bots: an agent that answers a channel's messages one at a time, in order, keeping the
-- conversation. Each message is answered by a bot-mode session whose prompt carries the
-- bot's instructions and the conversation so far; its output is the answer.

CREATE TABLE bots (
    id           UUID PRIMARY KEY,
    workspace_id UUID NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    provider     TEXT NOT NULL,
    instructions TEXT NOT NULL,
    run_as       UUID NOT NULL,
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL,
    UNIQUE (workspace_id, name)
);

CREATE TABLE bot_messages (
    id           UUID PRIMARY KEY,
    bot_id       UUID NOT NULL REFERENCES bots (id) ON DELETE CASCADE,
    workspace_id UUID NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    channel      TEXT NOT NULL,
    body         TEXT NOT NULL,
    status       TEXT NOT NULL CHECK (status IN ('queued', 'answering', 'answered', 'failed')),
    answer       TEXT,
    session_id   UUID,
    created_by   UUID,
    created_at   BIGINT NOT NULL,
    answered_at  BIGINT
);
CREATE INDEX bot_messages_bot ON bot_messages (bot_id, created_at);
CREATE INDEX bot_messages_session ON bot_messages (session_id);

ALTER TABLE bots ENABLE ROW LEVEL SECURITY;
ALTER TABLE bots FORCE ROW LEVEL SECURITY;
CREATE POLICY bots_scope ON bots
    USING (workspace_id = (SELECT warden_scope_workspace()) OR (SELECT warden_scope_jobs()))
    WITH CHECK (workspace_id = (SELECT warden_scope_workspace()) OR (SELECT warden_scope_jobs()));

ALTER TABLE bot_messages ENABLE ROW LEVEL SECURITY;
ALTER TABLE bot_messages FORCE ROW LEVEL SECURITY;
CREATE POLICY bot_messages_scope ON bot_messages
    USING (workspace_id = (SELECT warden_scope_workspace()) OR (SELECT warden_scope_jobs()))
    WITH CHECK (workspace_id = (SELECT warden_scope_workspace()) OR (SELECT warden_scope_jobs()));

-- An event source whose deliveries are messages to a bot.
CREATE TABLE event_source_bots (
    source_id    UUID PRIMARY KEY REFERENCES event_sources (id) ON DELETE CASCADE,
    workspace_id UUID NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    bot_id       UUID NOT NULL REFERENCES bots (id) ON DELETE CASCADE,
    updated_at   BIGINT NOT NULL
);
ALTER TABLE event_source_bots ENABLE ROW LEVEL SECURITY;
ALTER TABLE event_source_bots FORCE ROW LEVEL SECURITY;
CREATE POLICY event_source_bots_scope ON event_source_bots
    USING (workspace_id = (SELECT warden_scope_workspace()) OR (SELECT warden_scope_jobs()))
    WITH CHECK (workspace_id = (SELECT warden_scope_workspace()) OR (SELECT warden_scope_jobs()));
