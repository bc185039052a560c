-- Chaining leaves the commit path. A writer's transaction puts its event here, sealed with an
-- HMAC of its content; the table has no secondary index, so a writer's commit touches as few
-- pages as possible. One chainer at a time moves committed events into audit_events in order,
-- giving each its sequence number and chain hash, and updates the head once per batch.
CREATE TABLE audit_pending (
    id             INTEGER PRIMARY KEY,
    event_id       TEXT NOT NULL,
    occurred_at_us INTEGER NOT NULL,
    actor_kind     TEXT NOT NULL,
    actor_id       TEXT,
    workspace_id   TEXT,
    action         TEXT NOT NULL,
    resource_type  TEXT NOT NULL,
    resource_id    TEXT,
    outcome        TEXT NOT NULL CHECK (outcome IN ('success', 'denied', 'failed')),
    client_ip      TEXT,
    user_agent     TEXT,
    request_id     TEXT,
    duration_ms    INTEGER NOT NULL,
    summary        TEXT NOT NULL,
    seal           BLOB NOT NULL
);

-- An event waiting to be chained leaves only by being chained: nobody updates it, and it may
-- be deleted only once the same event (same id and content) is in audit_events. A copy made
-- only to delete the original stays behind: it carries the event's own recent time, so the
-- retention rule keeps it, and verification flags it as not chained.
CREATE TRIGGER audit_pending_no_update BEFORE UPDATE ON audit_pending
BEGIN
    SELECT RAISE(ABORT, 'audit events waiting to be chained leave only by being chained');
END;
CREATE TRIGGER audit_pending_no_delete BEFORE DELETE ON audit_pending
WHEN NOT EXISTS (
    SELECT 1 FROM audit_events e WHERE e.event_id = OLD.event_id
       AND e.occurred_at_us = OLD.occurred_at_us AND e.actor_kind = OLD.actor_kind
       AND e.actor_id IS OLD.actor_id AND e.workspace_id IS OLD.workspace_id
       AND e.action = OLD.action AND e.resource_type = OLD.resource_type
       AND e.resource_id IS OLD.resource_id AND e.outcome = OLD.outcome
       AND e.client_ip IS OLD.client_ip AND e.user_agent IS OLD.user_agent
       AND e.request_id IS OLD.request_id AND e.duration_ms = OLD.duration_ms
       AND e.summary = OLD.summary)
BEGIN
    SELECT RAISE(ABORT, 'audit events waiting to be chained leave only by being chained');
END;

-- The chainer sets the head once per batch.
DROP TRIGGER audit_events_advance_head;

-- Checkpoints are never removed either: the one before the oldest remaining event vouches for
-- everything purged before it.
CREATE TRIGGER audit_checkpoints_no_delete BEFORE DELETE ON audit_checkpoints
BEGIN
    SELECT RAISE(ABORT, 'audit checkpoints are append-only');
END;
