-- Workspace-bound hosts: registered by a workspace's maintainers, serving that workspace only.
-- A platform host (workspace_id NULL) is registered by an administrator. Deleting a workspace
-- deletes its hosts (and so their keys). SQLite has no row-level security; the workspace
-- filter every workspace-scoped host query carries is the wall there.
ALTER TABLE hosts ADD COLUMN workspace_id BLOB REFERENCES workspaces (id) ON DELETE CASCADE;
CREATE INDEX hosts_workspace ON hosts (workspace_id) WHERE workspace_id IS NOT NULL;
