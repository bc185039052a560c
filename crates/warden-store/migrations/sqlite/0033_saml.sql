-- SAML 2.0 identity providers. A provider is a row of sso_providers (slug, display name,
-- domains, just-in-time accounts, linking) whose protocol is 'saml'; its issuer is the IdP's
-- entity id. Here: the IdP's metadata as uploaded or fetched (signing certificates, the
-- single sign-on URL), which element it must sign (assertion, response or either), whether
-- IdP-initiated sign-in is accepted, and the attributes that carry email, name and groups
-- ('' for the usual names).
ALTER TABLE sso_providers ADD COLUMN protocol TEXT NOT NULL DEFAULT 'oidc'
    CHECK (protocol IN ('oidc', 'saml'));
CREATE TABLE saml_providers (
    provider_id      BLOB PRIMARY KEY REFERENCES sso_providers (id) ON DELETE CASCADE,
    idp_metadata     TEXT NOT NULL,
    metadata_url     TEXT,
    sso_url          TEXT NOT NULL,
    signed           TEXT NOT NULL CHECK (signed IN ('assertion', 'response', 'either')),
    idp_initiated    BOOLEAN NOT NULL DEFAULT 0,
    email_attribute  TEXT NOT NULL DEFAULT '',
    name_attribute   TEXT NOT NULL DEFAULT '',
    groups_attribute TEXT NOT NULL DEFAULT ''
);

-- Assertions already used, by (IdP entity id, assertion id), kept until they could no longer
-- be accepted anyway: a replayed response is refused on every node.
CREATE TABLE saml_assertions (
    issuer       TEXT NOT NULL,
    assertion_id TEXT NOT NULL,
    expires_at   INTEGER NOT NULL,
    PRIMARY KEY (issuer, assertion_id)
);
CREATE INDEX saml_assertions_expiry ON saml_assertions (expires_at);
