-- Groups a single sign-on provider asserts (a SAML groups attribute), as directory groups:
-- a workspace maps one (by the provider and the group's name, before anyone signed in with
-- it) with a role, and each sign-in through the provider sets the account's memberships among
-- that provider's mapped groups to those the assertion carried. Only mapped groups are kept:
-- an IdP asserting hundreds of groups stores none it is not asked about.
CREATE TABLE sso_groups (
    id          BLOB PRIMARY KEY,
    provider_id BLOB NOT NULL REFERENCES sso_providers (id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    UNIQUE (provider_id, name)
);
CREATE TABLE sso_group_members (
    group_id BLOB NOT NULL REFERENCES sso_groups (id) ON DELETE CASCADE,
    user_id  BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    PRIMARY KEY (group_id, user_id)
);
CREATE INDEX sso_group_members_user ON sso_group_members (user_id);

-- As scim_group_workspaces: members of the group are members of the workspace with `role`,
-- acting for `configured_by`, whose right to manage members is checked on every change.
CREATE TABLE sso_group_workspaces (
    group_id      BLOB NOT NULL REFERENCES sso_groups (id) ON DELETE CASCADE,
    workspace_id  BLOB NOT NULL REFERENCES workspaces (id),
    role          TEXT NOT NULL CHECK (role IN ('owner', 'maintainer', 'member', 'viewer')),
    configured_by BLOB NOT NULL,
    configured_at INTEGER NOT NULL,
    PRIMARY KEY (group_id, workspace_id)
);
CREATE INDEX sso_group_workspaces_workspace ON sso_group_workspaces (workspace_id);
