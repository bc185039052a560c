-- Chaining leaves the commit path. A writer's transaction puts its event here, sealed with an
-- HMAC of its content, and commits without waiting for any other writer. One chainer at a
-- time (serialised on the audit_head row) moves committed events into audit_events in order,
-- giving each its sequence number and chain hash, and updates the head once per batch.
CREATE TABLE audit_pending (
    id             BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id       TEXT NOT NULL,
    occurred_at_us BIGINT NOT NULL,
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
    duration_ms    BIGINT NOT NULL,
    summary        TEXT NOT NULL,
    seal           BYTEA NOT NULL
);

-- An event waiting to be chained leaves only by being chained: nobody updates it, and it may
-- be deleted only once the same event (same id and content) is in audit_events. A copy made
-- only to delete the original stays behind: it carries the event's own recent time, so the
-- retention rule keeps it, and verification flags it as not chained.
CREATE FUNCTION warden_audit_pending_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' AND TG_LEVEL = 'ROW' AND EXISTS (
        SELECT 1 FROM audit_events e WHERE e.event_id = OLD.event_id
           AND e.occurred_at_us = OLD.occurred_at_us AND e.actor_kind = OLD.actor_kind
           AND e.actor_id IS NOT DISTINCT FROM OLD.actor_id
           AND e.workspace_id IS NOT DISTINCT FROM OLD.workspace_id
           AND e.action = OLD.action AND e.resource_type = OLD.resource_type
           AND e.resource_id IS NOT DISTINCT FROM OLD.resource_id
           AND e.outcome = OLD.outcome
           AND e.client_ip IS NOT DISTINCT FROM OLD.client_ip
           AND e.user_agent IS NOT DISTINCT FROM OLD.user_agent
           AND e.request_id IS NOT DISTINCT FROM OLD.request_id
           AND e.duration_ms = OLD.duration_ms AND e.summary = OLD.summary) THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'audit events waiting to be chained leave only by being chained'
        USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE TRIGGER audit_pending_guard BEFORE UPDATE OR DELETE ON audit_pending
    FOR EACH ROW EXECUTE FUNCTION warden_audit_pending_guard();
CREATE TRIGGER audit_pending_no_truncate BEFORE TRUNCATE ON audit_pending
    FOR EACH STATEMENT EXECUTE FUNCTION warden_audit_pending_guard();
REVOKE UPDATE, TRUNCATE ON audit_pending FROM warden_app;

-- The chainer sets the head once per batch.
DROP TRIGGER audit_events_advance_head ON audit_events;
DROP FUNCTION warden_audit_advance_head();

-- Checkpoints are never removed either: the one before the oldest remaining event vouches for
-- everything purged before it.
CREATE TRIGGER audit_checkpoints_no_delete BEFORE DELETE ON audit_checkpoints
    FOR EACH ROW EXECUTE FUNCTION warden_audit_checkpoints_append_only();
CREATE TRIGGER audit_checkpoints_no_truncate BEFORE TRUNCATE ON audit_checkpoints
    FOR EACH STATEMENT EXECUTE FUNCTION warden_audit_checkpoints_append_only();
REVOKE DELETE, TRUNCATE ON audit_checkpoints FROM warden_app;
