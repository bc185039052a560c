-- A platform host may be restricted to some workspaces (none listed: it serves all). Platform
-- data, like hosts: no workspace scope applies (a workspace must see whether a host is
-- restricted to others to know it may not use it); it holds ids only.
CREATE TABLE host_workspaces (
    host_id      UUID NOT NULL REFERENCES hosts (id) ON DELETE CASCADE,
    workspace_id UUID NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    PRIMARY KEY (host_id, workspace_id)
);
