-- Organizations (multi-tenant mode): the level above workspaces. Every workspace belongs to
-- one; existing workspaces move into the default organization, which every account belongs
-- to implicitly (its members table lists only other organizations' members), so with the
-- `multi-tenant` licence flag off everything behaves as before.
CREATE TABLE organizations (
    id         UUID PRIMARY KEY,
    slug       TEXT NOT NULL UNIQUE,
    name       TEXT NOT NULL,
    created_by UUID,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
INSERT INTO organizations (id, slug, name, created_by, created_at, updated_at)
    VALUES ('00000000-0000-0000-0000-000000000001', 'default', 'Default organization', NULL, 0, 0);

CREATE TABLE organization_members (
    organization_id UUID NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    user_id         UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role            TEXT NOT NULL CHECK (role IN ('admin', 'member')),
    added_by        UUID NOT NULL,
    added_at        BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    PRIMARY KEY (organization_id, user_id)
);
CREATE INDEX organization_members_user ON organization_members (user_id);

ALTER TABLE workspaces ADD COLUMN organization_id UUID NOT NULL
    DEFAULT '00000000-0000-0000-0000-000000000001' REFERENCES organizations (id);
CREATE INDEX workspaces_organization ON workspaces (organization_id, id);

-- The organization a sign-in session acts in (NULL: the default one); its access tokens say
-- so, and a refresh keeps it.
ALTER TABLE sessions ADD COLUMN organization_id UUID REFERENCES organizations (id);
-- A personal access token acts in the organization its creator's session was in.
ALTER TABLE personal_tokens ADD COLUMN organization_id UUID NOT NULL
    DEFAULT '00000000-0000-0000-0000-000000000001' REFERENCES organizations (id);

-- Row-level security adds the organization. A transaction acting for a person names it
-- (warden.org_id) beside its workspace; then `warden_scope_workspace()`, which every
-- workspace table's policy compares with, is the named workspace only if it lies in the named
-- organization (one primary-key lookup per statement, as an init plan), and NULL otherwise:
-- a query that forgot its organization filter sees nothing of another organization's
-- workspace. Transactions opened by a credential bound to one workspace (an MCP token, a
-- gateway key) or by the system name no organization and are bound by their workspace alone.
CREATE FUNCTION warden_scope_org() RETURNS UUID LANGUAGE sql STABLE AS
    $$ SELECT NULLIF(current_setting('warden.org_id', true), '')::uuid $$;
CREATE FUNCTION warden_scope_workspace_named() RETURNS UUID LANGUAGE sql STABLE AS
    $$ SELECT NULLIF(current_setting('warden.workspace_id', true), '')::uuid $$;
-- PL/pgSQL, not SQL: a SQL function's inner query is planned again on every statement that
-- calls it (PostgreSQL before 18 keeps no plan across statements), which halved the
-- throughput of a workspace route; PL/pgSQL keeps the lookup's plan for the connection.
CREATE OR REPLACE FUNCTION warden_scope_workspace() RETURNS UUID LANGUAGE plpgsql STABLE AS
$$
DECLARE
    org UUID := warden_scope_org();
    ws  UUID := warden_scope_workspace_named();
BEGIN
    IF org IS NULL OR ws IS NULL THEN
        RETURN ws;
    END IF;
    RETURN (SELECT w.id FROM workspaces w WHERE w.id = ws AND w.organization_id = org);
END
$$;

-- The workspaces table compares its own column (reading itself through the function above
-- would recurse).
ALTER POLICY workspaces_scope ON workspaces
    USING (((SELECT warden_scope_org()) IS NULL OR organization_id = (SELECT warden_scope_org()))
        AND (id = (SELECT warden_scope_workspace_named())
            OR id = ANY ((SELECT warden_scope_workspaces())::uuid[])
            OR (SELECT warden_scope_platform())))
    WITH CHECK (id = (SELECT warden_scope_workspace_named())
        AND ((SELECT warden_scope_org()) IS NULL
            OR organization_id = (SELECT warden_scope_org())));

-- A single sign-on provider may belong to an organization: its sign-ins act there, and a
-- person signing in through it for the first time joins it.
ALTER TABLE sso_providers ADD COLUMN organization_id UUID REFERENCES organizations (id);

-- A directory (SCIM) belongs to an organization: its tokens act there, and it sees and
-- changes only the accounts and groups it provisioned there. Existing ones are the default
-- organization's. A group's name is unique within its organization: the store keys another
-- organization's group names with the organization's id.
ALTER TABLE scim_tokens ADD COLUMN organization_id UUID NOT NULL
    DEFAULT '00000000-0000-0000-0000-000000000001' REFERENCES organizations (id);
ALTER TABLE scim_users ADD COLUMN organization_id UUID NOT NULL
    DEFAULT '00000000-0000-0000-0000-000000000001' REFERENCES organizations (id);
ALTER TABLE scim_groups ADD COLUMN organization_id UUID NOT NULL
    DEFAULT '00000000-0000-0000-0000-000000000001' REFERENCES organizations (id);
CREATE INDEX scim_users_organization ON scim_users (organization_id, created_at, user_id);
CREATE INDEX scim_groups_organization ON scim_groups (organization_id, created_at, id);
