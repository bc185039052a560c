-- Platform roles. Built-in roles (admin, member, auditor) have their grants in code; a custom
-- role stores its permission names, space-separated.
CREATE TABLE roles (
    name        TEXT PRIMARY KEY,
    builtin     BOOLEAN NOT NULL,
    permissions TEXT NOT NULL,
    description TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);
INSERT INTO roles (name, builtin, permissions, description, created_at, updated_at) VALUES
    ('admin', TRUE, '', 'Everything, everywhere', 0, 0),
    ('member', TRUE, '', 'Creates workspaces and works in the ones they belong to', 0, 0),
    ('auditor', TRUE, '', 'Reads the audit trail and settings; changes nothing', 0, 0);

ALTER TABLE users ADD COLUMN platform_role TEXT NOT NULL DEFAULT 'member' REFERENCES roles (name);
UPDATE users SET platform_role = 'admin' WHERE platform_admin;
ALTER TABLE users DROP COLUMN platform_admin;
CREATE INDEX users_role ON users (platform_role);

-- The tenant boundary.
CREATE TABLE workspaces (
    id            UUID PRIMARY KEY,
    name          TEXT NOT NULL,
    repository    TEXT,
    hooks         TEXT NOT NULL,
    ticket_config TEXT,
    created_by    UUID NOT NULL,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL,
    archived_at   BIGINT
);

CREATE TABLE workspace_members (
    workspace_id UUID NOT NULL REFERENCES workspaces (id),
    user_id      UUID NOT NULL REFERENCES users (id),
    role         TEXT NOT NULL CHECK (role IN ('owner', 'maintainer', 'member', 'viewer')),
    added_by     UUID NOT NULL,
    added_at     BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL,
    PRIMARY KEY (workspace_id, user_id)
);
CREATE INDEX workspace_members_user ON workspace_members (user_id);

-- Write-only values: environment variables, the PAT and provider keys, sealed by the keyring
-- with associated data naming (workspace, kind, name).
CREATE TABLE workspace_secrets (
    workspace_id UUID NOT NULL REFERENCES workspaces (id),
    kind         TEXT NOT NULL CHECK (kind IN ('variable', 'pat', 'provider')),
    name         TEXT NOT NULL,
    sealed       BYTEA NOT NULL,
    set_by       UUID NOT NULL,
    set_at       BIGINT NOT NULL,
    PRIMARY KEY (workspace_id, kind, name)
);

CREATE TABLE workspace_prompts (
    workspace_id UUID NOT NULL REFERENCES workspaces (id),
    name         TEXT NOT NULL,
    template     TEXT NOT NULL,
    updated_by   UUID NOT NULL,
    updated_at   BIGINT NOT NULL,
    PRIMARY KEY (workspace_id, name)
);

-- Row-level security: the second wall between tenants. Each transaction names its scope with
-- transaction-local settings (set_config(..., true)); with none set, a policy sees nothing.
--   warden.workspace_id   the one workspace an authorised transaction may touch
--   warden.user_id        a caller listing their own memberships ("my workspaces")
--   warden.workspace_ids  the workspaces those memberships name, for the same listing
--   warden.platform       'on' only on the explicit, audited platform-wide read path
-- Policies compare columns with these settings only (no subqueries over other tables), so
-- they cost a few constant evaluations per statement.
CREATE FUNCTION warden_scope_workspace() RETURNS UUID LANGUAGE sql STABLE AS
    $$ SELECT NULLIF(current_setting('warden.workspace_id', true), '')::uuid $$;
CREATE FUNCTION warden_scope_workspaces() RETURNS UUID[] LANGUAGE sql STABLE AS
    $$ SELECT string_to_array(NULLIF(current_setting('warden.workspace_ids', true), ''), ',')::uuid[] $$;
CREATE FUNCTION warden_scope_user() RETURNS UUID LANGUAGE sql STABLE AS
    $$ SELECT NULLIF(current_setting('warden.user_id', true), '')::uuid $$;
CREATE FUNCTION warden_scope_platform() RETURNS BOOLEAN LANGUAGE sql STABLE AS
    $$ SELECT COALESCE(current_setting('warden.platform', true), '') = 'on' $$;

ALTER TABLE workspaces ENABLE ROW LEVEL SECURITY;
ALTER TABLE workspaces FORCE ROW LEVEL SECURITY;
CREATE POLICY workspaces_scope ON workspaces
    USING (id = (SELECT warden_scope_workspace())
        OR id = ANY ((SELECT warden_scope_workspaces())::uuid[])
        OR (SELECT warden_scope_platform()))
    WITH CHECK (id = (SELECT warden_scope_workspace()));

ALTER TABLE workspace_members ENABLE ROW LEVEL SECURITY;
ALTER TABLE workspace_members FORCE ROW LEVEL SECURITY;
CREATE POLICY workspace_members_scope ON workspace_members
    USING (workspace_id = (SELECT warden_scope_workspace())
        OR (SELECT warden_scope_platform())
        OR user_id = (SELECT warden_scope_user()))
    WITH CHECK (workspace_id = (SELECT warden_scope_workspace()));

ALTER TABLE workspace_secrets ENABLE ROW LEVEL SECURITY;
ALTER TABLE workspace_secrets FORCE ROW LEVEL SECURITY;
CREATE POLICY workspace_secrets_scope ON workspace_secrets
    USING (workspace_id = (SELECT warden_scope_workspace()))
    WITH CHECK (workspace_id = (SELECT warden_scope_workspace()));

ALTER TABLE workspace_prompts ENABLE ROW LEVEL SECURITY;
ALTER TABLE workspace_prompts FORCE ROW LEVEL SECURITY;
CREATE POLICY workspace_prompts_scope ON workspace_prompts
    USING (workspace_id = (SELECT warden_scope_workspace()))
    WITH CHECK (workspace_id = (SELECT warden_scope_workspace()));

-- The application role. Warden serves through a login role that is a member of warden_app
-- and owns nothing, so the policies above bind it; the owner only migrates. The role is
-- created here when missing (a DBA may create it beforehand instead).
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'warden_app') THEN
        CREATE ROLE warden_app NOLOGIN;
    END IF;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
    NULL; -- created concurrently by another database's migration
END
$$;
GRANT USAGE ON SCHEMA public TO warden_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO warden_app;
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO warden_app;
REVOKE INSERT, UPDATE, DELETE ON warden_schema_migrations FROM warden_app;
REVOKE UPDATE ON audit_events, audit_checkpoints FROM warden_app;
ALTER DEFAULT PRIVILEGES IN SCHEMA public
    GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO warden_app;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO warden_app;
