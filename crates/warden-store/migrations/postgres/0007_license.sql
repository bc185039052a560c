-- Offline licences. Every install is kept (the status endpoint shows the history); the newest
-- is the licence in force. The token is the signed .lic file itself: each node verifies it
-- independently, at every load, with the operator public key from its own configuration.
CREATE TABLE license_installs (
    seq          BIGSERIAL PRIMARY KEY,
    license_id   TEXT NOT NULL,
    customer     TEXT NOT NULL,
    tier         TEXT NOT NULL,
    expires_at   BIGINT NOT NULL,
    token        TEXT NOT NULL,
    installed_by UUID,
    installed_at BIGINT NOT NULL
);

-- The latest time any node has seen (Unix seconds), and, once the clock was found more than
-- a day behind it, the time it must pass again before the licence holds.
CREATE TABLE license_clock (
    id             INTEGER PRIMARY KEY CHECK (id = 1),
    high_water     BIGINT NOT NULL,
    tampered_until BIGINT
);

-- Expiry alerts sent, one row per licence and milestone: whichever node inserts it sends it.
CREATE TABLE license_alerts (
    license_id TEXT NOT NULL,
    milestone  INTEGER NOT NULL,
    sent_at    BIGINT NOT NULL,
    PRIMARY KEY (license_id, milestone)
);

GRANT SELECT, INSERT ON license_installs TO warden_app;
REVOKE UPDATE, DELETE ON license_installs FROM warden_app;
