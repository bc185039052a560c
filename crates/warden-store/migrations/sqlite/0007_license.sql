-- Offline licences. Every install is kept (the status endpoint shows the history); the newest
-- is the licence in force. The token is the signed .lic file itself, verified at every load.
CREATE TABLE license_installs (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    license_id   TEXT NOT NULL,
    customer     TEXT NOT NULL,
    tier         TEXT NOT NULL,
    expires_at   INTEGER NOT NULL,
    token        TEXT NOT NULL,
    installed_by BLOB,
    installed_at INTEGER NOT NULL
);

-- The latest time seen (Unix seconds) and, after the clock went back more than a day behind
-- it, the time it must pass again before the licence holds.
CREATE TABLE license_clock (
    id             INTEGER PRIMARY KEY CHECK (id = 1),
    high_water     INTEGER NOT NULL,
    tampered_until INTEGER
);

-- Expiry alerts sent, one row per licence and milestone.
CREATE TABLE license_alerts (
    license_id TEXT NOT NULL,
    milestone  INTEGER NOT NULL,
    sent_at    INTEGER NOT NULL,
    PRIMARY KEY (license_id, milestone)
);
