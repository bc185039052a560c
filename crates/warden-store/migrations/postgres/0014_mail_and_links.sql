-- Links Warden emails that sign a person in once: magic sign-in links and password resets.
-- Only the SHA-256 of the secret is kept. Each is looked up by (purpose, hash), and each
-- purpose has its own token prefix, so no other single-use token (a setup link, an
-- invitation, a refresh token) is ever accepted as one. A link ends when used, when it
-- expires, or when a newer link of the same purpose is issued to the same person.
CREATE TABLE email_links (
    hash       BYTEA PRIMARY KEY,
    purpose    TEXT NOT NULL CHECK (purpose IN ('magic_link', 'password_reset')),
    user_id    UUID NOT NULL REFERENCES users (id),
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    ended_at   BIGINT,
    ended_why  TEXT CHECK (ended_why IN ('used', 'superseded', 'password_changed'))
);
CREATE INDEX email_links_user ON email_links (user_id, purpose) WHERE ended_at IS NULL;

-- Mail waiting to be sent, and what became of it (the admins' mail log). The body may hold a
-- sign-in link, so it is sealed by the keyring and wiped once the message is delivered or
-- given up on. A node claims a due message by moving its next attempt past a lease, so two
-- nodes never send it at once and a node that dies mid-send leaves it to be retried.
CREATE TABLE mail_outbox (
    id              UUID PRIMARY KEY,
    kind            TEXT NOT NULL,
    recipient       TEXT NOT NULL,
    subject         TEXT NOT NULL,
    sealed_body     BYTEA,
    status          TEXT NOT NULL CHECK (status IN ('queued', 'sent', 'logged', 'failed')),
    attempts        INTEGER NOT NULL,
    next_attempt_at BIGINT NOT NULL,
    last_error      TEXT,
    created_at      BIGINT NOT NULL,
    finished_at     BIGINT
);
CREATE INDEX mail_outbox_due ON mail_outbox (next_attempt_at) WHERE status = 'queued';
CREATE INDEX mail_outbox_created ON mail_outbox (created_at);

-- Invitations: an administrator invites an address with a platform role (one they could hold
-- themselves); the invitee follows the mailed link (single use, 7 days, only the hash kept,
-- prefix `wiv_`) and chooses a password. A newer invitation to the same address revokes the
-- pending one.
CREATE TABLE invitations (
    id            UUID PRIMARY KEY,
    hash          BYTEA NOT NULL UNIQUE,
    email         TEXT NOT NULL,
    platform_role TEXT NOT NULL,
    invited_by    UUID REFERENCES users (id),
    created_at    BIGINT NOT NULL,
    expires_at    BIGINT NOT NULL,
    accepted_at   BIGINT,
    accepted_user UUID REFERENCES users (id),
    revoked_at    BIGINT
);
CREATE INDEX invitations_email ON invitations (email);
CREATE INDEX invitations_created ON invitations (created_at);

-- The sign-in policy, one row: whether password sign-in is on, and the one account that may
-- still sign in with a password while it is off (break glass).
CREATE TABLE sign_in_policy (
    id               INTEGER PRIMARY KEY CHECK (id = 1),
    password_sign_in BOOLEAN NOT NULL,
    break_glass_user UUID REFERENCES users (id),
    updated_at       BIGINT NOT NULL
);
INSERT INTO sign_in_policy (id, password_sign_in, updated_at) VALUES (1, TRUE, 0);

-- Where each account has signed in from: a network (/24 for IPv4, /48 for IPv6) and a
-- user-agent family. A sign-in from a pair never seen before, by an account that has signed
-- in before, alerts its owner.
CREATE TABLE sign_in_origins (
    user_id      UUID NOT NULL REFERENCES users (id),
    network      TEXT NOT NULL,
    agent_family TEXT NOT NULL,
    first_seen   BIGINT NOT NULL,
    last_seen    BIGINT NOT NULL,
    PRIMARY KEY (user_id, network, agent_family)
);
