-- The webhook inbox: deliveries answered `200` but not processed yet. The request path
-- appends what arrived during one group commit in one multi-row insert and answers; the
-- intake worker takes them in large batches (verifies signatures, applies filters, stores
-- events, enqueues runs) and deletes them in the transaction that processed them, so what a
-- crash leaves here is processed after the restart. No foreign key: a delivery for a source
-- deleted meanwhile is processed as for an unknown source (nothing kept).
CREATE TABLE webhook_inbox (
    id           INTEGER PRIMARY KEY,
    workspace_id BLOB NOT NULL,
    source_id    BLOB NOT NULL,
    token_hash   BLOB NOT NULL,
    headers      TEXT NOT NULL,
    body         BLOB NOT NULL,
    size         INTEGER NOT NULL,
    received_at  INTEGER NOT NULL
);
-- A source's deliveries waiting (shown to its workspace's admins).
CREATE INDEX webhook_inbox_source ON webhook_inbox (source_id);
