-- Master-key rotation. While one runs, the new data key is also stored sealed by the data key
-- that was current before it, and every older data key sealed by the new one (`chained_key`),
-- so a node that holds either master key, or is already running, loads every version. Ending
-- the rotation deletes the older versions and every chained copy: the old master key then
-- opens nothing.
ALTER TABLE keyring_keys ADD COLUMN chained_key BYTEA;

-- The rotation under way (at most one): the data key version every value is moved to, and
-- the re-encryption's progress as its last pass counted it.
CREATE TABLE keyring_rotation (
    id             INTEGER PRIMARY KEY CHECK (id = 1),
    target_version BIGINT NOT NULL,
    started_at     BIGINT NOT NULL,
    remaining      BIGINT NOT NULL,
    reencrypted    BIGINT NOT NULL,
    updated_at     BIGINT NOT NULL
);
