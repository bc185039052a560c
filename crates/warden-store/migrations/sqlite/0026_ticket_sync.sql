-- Ticket sync: a workspace's tickets kept in step with an outside tracker (GitHub issues),
-- and comments on tickets. A synced ticket remembers the issue it mirrors, the issue's state
-- as last seen or set (`external_state`) and what its own status stood for then
-- (`synced_state`): a difference on either side is a change made there. A comment remembers the tracker's id for it, so that neither side
-- ever gets the same comment twice. `ticket_sync` holds one row per workspace whose ticket
-- source is synced: when it next runs, whom it acts for, and how the last run went.

ALTER TABLE tickets ADD COLUMN external_id TEXT;
ALTER TABLE tickets ADD COLUMN external_url TEXT;
ALTER TABLE tickets ADD COLUMN external_state TEXT;
ALTER TABLE tickets ADD COLUMN synced_state TEXT;
CREATE UNIQUE INDEX tickets_external ON tickets (workspace_id, external_id)
    WHERE external_id IS NOT NULL;

CREATE TABLE ticket_comments (
    id           BLOB PRIMARY KEY,
    workspace_id BLOB NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    ticket_id    BLOB NOT NULL REFERENCES tickets (id) ON DELETE CASCADE,
    body         TEXT NOT NULL,
    author_id    BLOB,
    author_name  TEXT NOT NULL,
    external_id  TEXT,
    created_at   INTEGER NOT NULL
);
CREATE INDEX ticket_comments_ticket ON ticket_comments (ticket_id, created_at);
CREATE UNIQUE INDEX ticket_comments_external ON ticket_comments (ticket_id, external_id)
    WHERE external_id IS NOT NULL;

CREATE TABLE ticket_sync (
    workspace_id       BLOB PRIMARY KEY REFERENCES workspaces (id) ON DELETE CASCADE,
    provider           TEXT NOT NULL,
    project            TEXT NOT NULL,
    acting_for         BLOB NOT NULL,
    next_at            INTEGER NOT NULL,
    last_started_at    INTEGER,
    last_finished_at   INTEGER,
    last_success_at    INTEGER,
    last_error         TEXT,
    cursor             TEXT,
    rate_limited_until INTEGER,
    imported           INTEGER NOT NULL DEFAULT 0,
    pushed             INTEGER NOT NULL DEFAULT 0,
    updated_at         INTEGER NOT NULL
);
CREATE INDEX ticket_sync_due ON ticket_sync (next_at);

