-- Organizations (multi-tenant mode): the level above workspaces. Every workspace belongs to
-- one; existing workspaces move into the default organization, which every account belongs
-- to implicitly (its members table lists only other organizations' members), so with the
-- `multi-tenant` licence flag off everything behaves as before. (PostgreSQL adds the
-- organization to row-level security; SQLite relies on the filters every query carries.)
CREATE TABLE organizations (
    id         BLOB PRIMARY KEY,
    slug       TEXT NOT NULL UNIQUE,
    name       TEXT NOT NULL,
    created_by BLOB,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
INSERT INTO organizations (id, slug, name, created_by, created_at, updated_at)
    VALUES (X'00000000000000000000000000000001', 'default', 'Default organization', NULL, 0, 0);

CREATE TABLE organization_members (
    organization_id BLOB NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    user_id         BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role            TEXT NOT NULL CHECK (role IN ('admin', 'member')),
    added_by        BLOB NOT NULL,
    added_at        INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    PRIMARY KEY (organization_id, user_id)
);
CREATE INDEX organization_members_user ON organization_members (user_id);

-- SQLite adds a column with a REFERENCES clause only with a NULL default; the store writes
-- every workspace's organization itself.
ALTER TABLE workspaces ADD COLUMN organization_id BLOB NOT NULL
    DEFAULT X'00000000000000000000000000000001';
CREATE INDEX workspaces_organization ON workspaces (organization_id, id);

-- The organization a sign-in session acts in (NULL: the default one).
ALTER TABLE sessions ADD COLUMN organization_id BLOB REFERENCES organizations (id);
-- A personal access token acts in the organization its creator's session was in.
ALTER TABLE personal_tokens ADD COLUMN organization_id BLOB NOT NULL
    DEFAULT X'00000000000000000000000000000001';

-- A single sign-on provider may belong to an organization: its sign-ins act there, and a
-- person signing in through it for the first time joins it.
ALTER TABLE sso_providers ADD COLUMN organization_id BLOB REFERENCES organizations (id);

-- A directory (SCIM) belongs to an organization: its tokens act there, and it sees and
-- changes only the accounts and groups it provisioned there. Existing ones are the default
-- organization's. A group's name is unique within its organization: the store keys another
-- organization's group names with the organization's id.
ALTER TABLE scim_tokens ADD COLUMN organization_id BLOB NOT NULL
    DEFAULT X'00000000000000000000000000000001';
ALTER TABLE scim_users ADD COLUMN organization_id BLOB NOT NULL
    DEFAULT X'00000000000000000000000000000001';
ALTER TABLE scim_groups ADD COLUMN organization_id BLOB NOT NULL
    DEFAULT X'00000000000000000000000000000001';
CREATE INDEX scim_users_organization ON scim_users (organization_id, created_at, user_id);
CREATE INDEX scim_groups_organization ON scim_groups (organization_id, created_at, id);
