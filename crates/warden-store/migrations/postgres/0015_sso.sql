-- OpenID Connect providers administrators configure. The client secret is sealed by the
-- keyring and never read back through the API. Scopes and allowed email domains are
-- space-separated (no domains: any).
CREATE TABLE sso_providers (
    id                    UUID PRIMARY KEY,
    slug                  TEXT NOT NULL UNIQUE,
    display_name          TEXT NOT NULL,
    issuer                TEXT NOT NULL,
    client_id             TEXT NOT NULL,
    sealed_secret         BYTEA,
    scopes                TEXT NOT NULL,
    allowed_domains       TEXT NOT NULL,
    jit                   BOOLEAN NOT NULL,
    default_role          TEXT NOT NULL,
    link_by_email         BOOLEAN NOT NULL,
    allow_private_network BOOLEAN NOT NULL,
    created_at            BIGINT NOT NULL,
    updated_at            BIGINT NOT NULL
);

-- Accounts as providers know them: by (issuer, subject), never by email.
CREATE TABLE sso_identities (
    issuer       TEXT NOT NULL,
    subject      TEXT NOT NULL,
    user_id      UUID NOT NULL REFERENCES users (id),
    provider_id  UUID NOT NULL REFERENCES sso_providers (id) ON DELETE CASCADE,
    created_at   BIGINT NOT NULL,
    last_used_at BIGINT NOT NULL,
    PRIMARY KEY (issuer, subject)
);
CREATE INDEX sso_identities_user ON sso_identities (user_id);

-- Sign-ins under way: the `state` (its hash), the browser they are bound to (the hash of a
-- short-lived cookie's value), the nonce and PKCE verifier (sealed), where to go after, and
-- the invitation being accepted with it, if any (its hash). Single use, 10 minutes.
CREATE TABLE sso_logins (
    state_hash   BYTEA PRIMARY KEY,
    provider_id  UUID NOT NULL REFERENCES sso_providers (id) ON DELETE CASCADE,
    binding_hash BYTEA NOT NULL,
    sealed       BYTEA NOT NULL,
    redirect_to  TEXT NOT NULL,
    invitation_hash BYTEA,
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    used_at      BIGINT
);
