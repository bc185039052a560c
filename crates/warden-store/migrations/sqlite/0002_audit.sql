-- Server-wide secrets (e.g. the audit chain key), sealed by the keyring.
CREATE TABLE server_secrets (
    name       TEXT PRIMARY KEY,
    sealed     BLOB NOT NULL,
    created_at TEXT NOT NULL
);

-- The audit trail: append-only, each event chained to the one before by an HMAC.
CREATE TABLE audit_events (
    seq            INTEGER PRIMARY KEY CHECK (seq > 0),
    event_id       TEXT NOT NULL UNIQUE,
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
    prev_hash      BLOB NOT NULL,
    hash           BLOB NOT NULL
);
CREATE INDEX audit_events_time ON audit_events (occurred_at_us);
CREATE INDEX audit_events_workspace ON audit_events (workspace_id, seq);

-- The last sequence number handed out and the newest event's hash. Writers serialise on this
-- row; the trigger below keeps the hash current in the same statement as the insert.
CREATE TABLE audit_head (
    id   INTEGER PRIMARY KEY CHECK (id = 1),
    seq  INTEGER NOT NULL,
    hash BLOB NOT NULL
);
INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, zeroblob(32));
CREATE TRIGGER audit_events_advance_head AFTER INSERT ON audit_events
BEGIN
    UPDATE audit_head SET hash = NEW.hash WHERE id = 1;
END;

CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
BEGIN
    SELECT RAISE(ABORT, 'audit events are append-only');
END;
-- Signed checkpoints: (seq, hash) pairs signed with the server's ECDSA P-256 key, so the
-- chain can be verified from a checkpoint once older events are purged.
CREATE TABLE audit_checkpoints (
    seq          INTEGER PRIMARY KEY CHECK (seq > 0),
    hash         BLOB NOT NULL,
    signed_at_us INTEGER NOT NULL,
    signature    BLOB NOT NULL
);

-- The only deletion allowed is the retention purge: events older than the 90-day minimum
-- retention and covered by a checkpoint.
CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
WHEN OLD.occurred_at_us >= (CAST(strftime('%s', 'now') AS INTEGER) - 7776000) * 1000000
  OR OLD.seq > COALESCE((SELECT MAX(seq) FROM audit_checkpoints), 0)
BEGIN
    SELECT RAISE(ABORT, 'audit events are append-only');
END;
CREATE TRIGGER audit_checkpoints_no_update BEFORE UPDATE ON audit_checkpoints
BEGIN
    SELECT RAISE(ABORT, 'audit checkpoints are append-only');
END;
