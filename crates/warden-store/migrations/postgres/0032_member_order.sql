-- "My workspaces" pages walk a person's memberships in workspace order: with this index a page
-- reads its own rows (no sort over every membership), whatever the number of workspaces. It
-- replaces the index on user_id alone, which it covers.
CREATE INDEX workspace_members_user_workspace ON workspace_members (user_id, workspace_id);
DROP INDEX workspace_members_user;
