-- The webhook inbox: deliveries answered `200` but not processed yet. The request path
-- appends what arrived during one group commit in one multi-row insert and answers; the
-- intake worker of any node takes them in large batches (`FOR UPDATE SKIP LOCKED`, so two
-- nodes never take the same delivery), verifies signatures, applies filters, stores events,
-- enqueues runs, and deletes them in the transaction that processed them, so what a crash
-- leaves here is processed after the restart (or by another node). No foreign key: a
-- delivery for a source deleted meanwhile is processed as for an unknown source.
CREATE TABLE webhook_inbox (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    workspace_id UUID NOT NULL,
    source_id    UUID NOT NULL,
    token_hash   BYTEA NOT NULL,
    headers      TEXT NOT NULL,
    body         BYTEA NOT NULL,
    size         INTEGER NOT NULL,
    received_at  BIGINT NOT NULL
);
-- A source's deliveries waiting (shown to its workspace's admins).
CREATE INDEX webhook_inbox_source ON webhook_inbox (source_id);

ALTER TABLE webhook_inbox ENABLE ROW LEVEL SECURITY;
ALTER TABLE webhook_inbox FORCE ROW LEVEL SECURITY;
CREATE POLICY webhook_inbox_scope ON webhook_inbox
    USING (workspace_id = (SELECT warden_scope_workspace()) OR (SELECT warden_scope_jobs()))
    WITH CHECK (workspace_id = (SELECT warden_scope_workspace()) OR (SELECT warden_scope_jobs()));
