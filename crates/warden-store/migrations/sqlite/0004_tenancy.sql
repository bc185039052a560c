-- Platform roles. Built-in roles (admin, member, auditor) have their grants in code; a custom
-- role stores its permission names, space-separated.
CREATE TABLE roles (
    name        TEXT PRIMARY KEY,
    builtin     INTEGER NOT NULL,
    permissions TEXT NOT NULL,
    description TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);
INSERT INTO roles (name, builtin, permissions, description, created_at, updated_at) VALUES
    ('admin', 1, '', 'Everything, everywhere', 0, 0),
    ('member', 1, '', 'Creates workspaces and works in the ones they belong to', 0, 0),
    ('auditor', 1, '', 'Reads the audit trail and settings; changes nothing', 0, 0);

-- Every user has exactly one platform role (checked against roles by the application; SQLite
-- cannot add a referencing column with a default).
ALTER TABLE users ADD COLUMN platform_role TEXT NOT NULL DEFAULT 'member';
UPDATE users SET platform_role = 'admin' WHERE platform_admin = 1;
ALTER TABLE users DROP COLUMN platform_admin;
CREATE INDEX users_role ON users (platform_role);

-- The tenant boundary.
CREATE TABLE workspaces (
    id            BLOB PRIMARY KEY,
    name          TEXT NOT NULL,
    repository    TEXT,
    hooks         TEXT NOT NULL,
    ticket_config TEXT,
    created_by    BLOB NOT NULL,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    archived_at   INTEGER
);

CREATE TABLE workspace_members (
    workspace_id BLOB NOT NULL REFERENCES workspaces (id),
    user_id      BLOB NOT NULL REFERENCES users (id),
    role         TEXT NOT NULL CHECK (role IN ('owner', 'maintainer', 'member', 'viewer')),
    added_by     BLOB NOT NULL,
    added_at     INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    PRIMARY KEY (workspace_id, user_id)
);
CREATE INDEX workspace_members_user ON workspace_members (user_id);

-- Write-only values: environment variables, the PAT and provider keys, sealed by the keyring
-- with associated data naming (workspace, kind, name).
CREATE TABLE workspace_secrets (
    workspace_id BLOB NOT NULL REFERENCES workspaces (id),
    kind         TEXT NOT NULL CHECK (kind IN ('variable', 'pat', 'provider')),
    name         TEXT NOT NULL,
    sealed       BLOB NOT NULL,
    set_by       BLOB NOT NULL,
    set_at       INTEGER NOT NULL,
    PRIMARY KEY (workspace_id, kind, name)
);

CREATE TABLE workspace_prompts (
    workspace_id BLOB NOT NULL REFERENCES workspaces (id),
    name         TEXT NOT NULL,
    template     TEXT NOT NULL,
    updated_by   BLOB NOT NULL,
    updated_at   INTEGER NOT NULL,
    PRIMARY KEY (workspace_id, name)
);
