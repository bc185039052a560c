-- Directory groups that grant workspace membership: every active member of the SCIM group
-- `group_id` is a member of `workspace_id` with `role` (the highest role when several groups
-- map to one workspace). Changes are applied acting for `configured_by`, whose right to manage
-- the workspace's members is checked each time, not only when the mapping was saved.
CREATE TABLE scim_group_workspaces (
    group_id      UUID NOT NULL REFERENCES scim_groups (id) ON DELETE CASCADE,
    workspace_id  UUID NOT NULL REFERENCES workspaces (id),
    role          TEXT NOT NULL CHECK (role IN ('owner', 'maintainer', 'member', 'viewer')),
    configured_by UUID NOT NULL,
    configured_at BIGINT NOT NULL,
    PRIMARY KEY (group_id, workspace_id)
);
CREATE INDEX scim_group_workspaces_workspace ON scim_group_workspaces (workspace_id);
-- A workspace sees its own mappings; the directory's changes find a group's mappings in every
-- workspace only on the platform-wide read path.
ALTER TABLE scim_group_workspaces ENABLE ROW LEVEL SECURITY;
ALTER TABLE scim_group_workspaces FORCE ROW LEVEL SECURITY;
CREATE POLICY scim_group_workspaces_scope ON scim_group_workspaces
    USING (workspace_id = (SELECT warden_scope_workspace()) OR (SELECT warden_scope_platform()))
    WITH CHECK (workspace_id = (SELECT warden_scope_workspace()));

-- A membership the directory granted (through a mapped group) rather than a person. The
-- directory adds, changes and removes only these; a person's change makes one theirs.
ALTER TABLE workspace_members ADD COLUMN via_directory BOOLEAN NOT NULL DEFAULT FALSE;
