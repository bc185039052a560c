-- A platform host may be restricted to some workspaces (none listed: it serves all).
CREATE TABLE host_workspaces (
    host_id      BLOB NOT NULL REFERENCES hosts (id) ON DELETE CASCADE,
    workspace_id BLOB NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    PRIMARY KEY (host_id, workspace_id)
);
