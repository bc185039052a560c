-- Passkeys (WebAuthn): a user's registered credentials. `passkey` is the credential as the
-- WebAuthn library keeps it (public key, sign counter, flags) in JSON; the credential id is
-- unique across every user. `flagged_at` marks a credential whose sign counter went
-- backwards (a possible clone): it signs nobody in until removed.
CREATE TABLE passkeys (
    id             BLOB PRIMARY KEY,
    user_id        BLOB NOT NULL REFERENCES users (id),
    credential_id  BLOB NOT NULL UNIQUE,
    name           TEXT NOT NULL,
    passkey        TEXT NOT NULL,
    created_at     INTEGER NOT NULL,
    last_used_at   INTEGER,
    flagged_at     INTEGER,
    flagged_reason TEXT
);
CREATE INDEX passkeys_user ON passkeys (user_id, created_at);

-- WebAuthn ceremonies in progress: the library's state for one registration or sign-in,
-- found by the SHA-256 of the ceremony handle given to the browser (`wpc_…`), used once and
-- for two minutes.
CREATE TABLE webauthn_ceremonies (
    hash       BLOB PRIMARY KEY,
    kind       TEXT NOT NULL,
    user_id    BLOB REFERENCES users (id),
    session_id BLOB,
    state      TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX webauthn_ceremonies_expiry ON webauthn_ceremonies (expires_at);
