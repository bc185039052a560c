-- A signing key can be revoked in an emergency: the revocation log gains the kind
-- 'signing_key' (its subject is a fresh id; nodes reload their keys and drop every cached
-- verification).
ALTER TABLE revocations DROP CONSTRAINT revocations_kind_check;
ALTER TABLE revocations ADD CONSTRAINT revocations_kind_check
    CHECK (kind IN ('session', 'user_deactivated', 'user_reactivated', 'signing_key'));
