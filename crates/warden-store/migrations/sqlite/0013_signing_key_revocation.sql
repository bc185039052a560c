-- A signing key can be revoked in an emergency: the revocation log gains the kind
-- 'signing_key' (its subject is a fresh id; nodes reload their keys and drop every cached
-- verification). SQLite cannot change a CHECK constraint in place: the table is rebuilt.
CREATE TABLE revocations_new (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    kind    TEXT NOT NULL CHECK (kind IN ('session', 'user_deactivated', 'user_reactivated',
                                          'signing_key')),
    subject BLOB NOT NULL,
    at      INTEGER NOT NULL
);
INSERT INTO revocations_new (id, kind, subject, at) SELECT id, kind, subject, at FROM revocations;
DROP TABLE revocations;
ALTER TABLE revocations_new RENAME TO revocations;
