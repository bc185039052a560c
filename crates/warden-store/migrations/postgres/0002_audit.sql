-- Server-wide secrets (e.g. the audit chain key), sealed by the keyring.
CREATE TABLE server_secrets (
    name       TEXT PRIMARY KEY,
    sealed     BYTEA NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);

-- The audit trail: append-only, each event chained to the one before by an HMAC.
CREATE TABLE audit_events (
    seq            BIGINT PRIMARY KEY CHECK (seq > 0),
    event_id       TEXT NOT NULL UNIQUE,
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
    prev_hash      BYTEA NOT NULL,
    hash           BYTEA NOT NULL
);
CREATE INDEX audit_events_time ON audit_events (occurred_at_us);
CREATE INDEX audit_events_workspace ON audit_events (workspace_id, seq);

-- The last sequence number handed out and the newest event's hash. Writers serialise on this
-- row (its row lock is held until commit), which keeps the chain in commit order across
-- nodes; the trigger below keeps the hash current in the same statement as the insert.
CREATE TABLE audit_head (
    id   INTEGER PRIMARY KEY CHECK (id = 1),
    seq  BIGINT NOT NULL,
    hash BYTEA NOT NULL
);
INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, decode(repeat('00', 32), 'hex'));
CREATE FUNCTION warden_audit_advance_head() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE audit_head SET hash = NEW.hash WHERE id = 1;
    RETURN NULL;
END
$$;
CREATE TRIGGER audit_events_advance_head AFTER INSERT ON audit_events
    FOR EACH ROW EXECUTE FUNCTION warden_audit_advance_head();

-- Signed checkpoints: (seq, hash) pairs signed with the server's ECDSA P-256 key, so the
-- chain can be verified from a checkpoint once older events are purged.
CREATE TABLE audit_checkpoints (
    seq          BIGINT PRIMARY KEY CHECK (seq > 0),
    hash         BYTEA NOT NULL,
    signed_at_us BIGINT NOT NULL,
    signature    BYTEA NOT NULL
);

-- Nobody updates or truncates audit events, the application role included. The only deletion
-- allowed is the retention purge: events older than the 90-day minimum retention and covered
-- by a checkpoint.
CREATE FUNCTION warden_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' AND TG_LEVEL = 'ROW'
       AND OLD.occurred_at_us < (extract(epoch FROM now())::bigint - 7776000) * 1000000
       AND OLD.seq <= COALESCE((SELECT max(seq) FROM audit_checkpoints), 0) THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'audit events are append-only' USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE FUNCTION warden_audit_checkpoints_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit checkpoints are append-only' USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE TRIGGER audit_checkpoints_append_only BEFORE UPDATE ON audit_checkpoints
    FOR EACH ROW EXECUTE FUNCTION warden_audit_checkpoints_append_only();
CREATE TRIGGER audit_events_append_only BEFORE UPDATE OR DELETE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION warden_audit_append_only();
CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events
    FOR EACH STATEMENT EXECUTE FUNCTION warden_audit_append_only();
