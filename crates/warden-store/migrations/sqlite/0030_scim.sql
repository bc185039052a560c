-- SCIM 2.0 provisioning: a directory (Entra ID, Okta, …) creates, updates and deactivates
-- accounts and groups. It authenticates with bearer tokens of which only the SHA-256 is kept.
CREATE TABLE scim_tokens (
    id           BLOB PRIMARY KEY,
    name         TEXT NOT NULL,
    hash         BLOB NOT NULL UNIQUE,
    created_by   BLOB NOT NULL,
    created_at   INTEGER NOT NULL,
    last_used_at INTEGER,
    revoked_at   INTEGER
);

-- The accounts a directory manages, and what it said of them. `user_name_key` is the
-- userName lower-cased (SCIM compares userName without case), so the directory's lookups by
-- userName use the index. `attributes` keeps, as JSON, what SCIM says that Warden does not
-- act on (the person's name parts, their other email addresses). `version` is the ETag.
CREATE TABLE scim_users (
    user_id       BLOB PRIMARY KEY REFERENCES users (id),
    user_name     TEXT NOT NULL,
    user_name_key TEXT NOT NULL UNIQUE,
    external_id   TEXT,
    attributes    TEXT NOT NULL,
    version       INTEGER NOT NULL,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
);
CREATE INDEX scim_users_external ON scim_users (external_id);

-- The directory's groups and their members.
CREATE TABLE scim_groups (
    id               BLOB PRIMARY KEY,
    display_name     TEXT NOT NULL,
    display_name_key TEXT NOT NULL UNIQUE,
    external_id      TEXT,
    version          INTEGER NOT NULL,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL
);
CREATE TABLE scim_group_members (
    group_id BLOB NOT NULL REFERENCES scim_groups (id) ON DELETE CASCADE,
    user_id  BLOB NOT NULL REFERENCES users (id),
    PRIMARY KEY (group_id, user_id)
);
CREATE INDEX scim_group_members_user ON scim_group_members (user_id);
