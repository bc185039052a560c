//! Who may do what: permissions, platform and workspace roles, and the pure decisions over
//! them. Storage looks up a caller's roles; everything that decides lives here, so one
//! exhaustive table test covers every role against every permission.
//!
//! Two scopes grant permissions. A *platform role* (admin, member, auditor, or a custom role
//! an administrator defines as a permission set) applies everywhere, including inside every
//! workspace. A *workspace role* (owner, maintainer, member, viewer) on a membership applies
//! inside that one workspace.

use std::fmt;

use serde::Serialize;

/// A part of Warden that permissions are grouped by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Area {
    /// Platform administration: custom roles, signing keys, platform-wide views.
    Admin,
    /// The audit trail.
    Audit,
    /// User accounts.
    Users,
    /// Sign-in sessions (platform) and agent sessions (workspace).
    Sessions,
    /// Workspaces, their members and their metadata.
    Workspaces,
    /// Hosts that run agents.
    Hosts,
    /// Workflows.
    Workflows,
    /// Tickets.
    Tickets,
    /// Bots.
    Bots,
    /// Settings: a workspace's repository, variables, hooks, prompts, keys; platform settings.
    Settings,
    /// Automations and the event sources that trigger them.
    Automations,
    /// The LLM gateway: upstreams, gateway keys, quotas, filters, call records.
    Llm,
}

impl Area {
    /// Lower-case name, as in permission names.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::Audit => "audit",
            Self::Users => "users",
            Self::Sessions => "sessions",
            Self::Workspaces => "workspaces",
            Self::Hosts => "hosts",
            Self::Workflows => "workflows",
            Self::Tickets => "tickets",
            Self::Bots => "bots",
            Self::Settings => "settings",
            Self::Automations => "automations",
            Self::Llm => "llm",
        }
    }
}

/// What a permission allows within its area.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verb {
    /// See.
    Read,
    /// Make new.
    Create,
    /// Change.
    Update,
    /// Remove (or archive).
    Delete,
    /// Let a pending host in (`hosts.approve`).
    Approve,
    /// Take a copy out (`audit.export`).
    Export,
    /// Add, change and remove a workspace's members (`workspaces.members`).
    Members,
    /// Approve a ticket for development (`tickets.approve_dev`).
    ApproveDev,
    /// Approve a ticket's work in QA (`tickets.approve_qa`).
    ApproveQa,
    /// Move a ticket straight to done, past QA (`tickets.skip_to_merge`).
    SkipToMerge,
}

impl Verb {
    /// Lower-case name, as in permission names.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Create => "create",
            Self::Update => "update",
            Self::Delete => "delete",
            Self::Approve => "approve",
            Self::Export => "export",
            Self::Members => "members",
            Self::ApproveDev => "approve_dev",
            Self::ApproveQa => "approve_qa",
            Self::SkipToMerge => "skip_to_merge",
        }
    }
}

/// One permission: an area and a verb, named `area.verb`. Only the combinations listed in
/// [`Permission::ALL`] exist; there is no public constructor.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Permission {
    area: Area,
    verb: Verb,
}

macro_rules! permissions {
    ($($konst:ident = $area:ident . $verb:ident;)*) => {
        impl Permission {
            $(
                #[doc = concat!("`", stringify!($konst), "`")]
                pub const $konst: Permission = Permission { area: Area::$area, verb: Verb::$verb };
            )*
            /// Every permission, in a fixed order (the bit order of [`PermissionSet`]).
            pub const ALL: &'static [Permission] = &[$(Self::$konst),*];
        }
    };
}

permissions! {
    ADMIN_READ = Admin.Read;
    ADMIN_CREATE = Admin.Create;
    ADMIN_UPDATE = Admin.Update;
    ADMIN_DELETE = Admin.Delete;
    AUDIT_READ = Audit.Read;
    AUDIT_EXPORT = Audit.Export;
    USERS_READ = Users.Read;
    USERS_CREATE = Users.Create;
    USERS_UPDATE = Users.Update;
    USERS_DELETE = Users.Delete;
    SESSIONS_READ = Sessions.Read;
    SESSIONS_CREATE = Sessions.Create;
    SESSIONS_UPDATE = Sessions.Update;
    SESSIONS_DELETE = Sessions.Delete;
    WORKSPACES_READ = Workspaces.Read;
    WORKSPACES_CREATE = Workspaces.Create;
    WORKSPACES_UPDATE = Workspaces.Update;
    WORKSPACES_DELETE = Workspaces.Delete;
    WORKSPACES_MEMBERS = Workspaces.Members;
    HOSTS_READ = Hosts.Read;
    HOSTS_CREATE = Hosts.Create;
    HOSTS_UPDATE = Hosts.Update;
    HOSTS_DELETE = Hosts.Delete;
    HOSTS_APPROVE = Hosts.Approve;
    WORKFLOWS_READ = Workflows.Read;
    WORKFLOWS_CREATE = Workflows.Create;
    WORKFLOWS_UPDATE = Workflows.Update;
    WORKFLOWS_DELETE = Workflows.Delete;
    TICKETS_READ = Tickets.Read;
    TICKETS_CREATE = Tickets.Create;
    TICKETS_UPDATE = Tickets.Update;
    TICKETS_DELETE = Tickets.Delete;
    TICKETS_APPROVE_DEV = Tickets.ApproveDev;
    TICKETS_APPROVE_QA = Tickets.ApproveQa;
    TICKETS_SKIP_TO_MERGE = Tickets.SkipToMerge;
    BOTS_READ = Bots.Read;
    BOTS_CREATE = Bots.Create;
    BOTS_UPDATE = Bots.Update;
    BOTS_DELETE = Bots.Delete;
    SETTINGS_READ = Settings.Read;
    SETTINGS_CREATE = Settings.Create;
    SETTINGS_UPDATE = Settings.Update;
    SETTINGS_DELETE = Settings.Delete;
    AUTOMATIONS_READ = Automations.Read;
    AUTOMATIONS_CREATE = Automations.Create;
    AUTOMATIONS_UPDATE = Automations.Update;
    AUTOMATIONS_DELETE = Automations.Delete;
    LLM_READ = Llm.Read;
    LLM_CREATE = Llm.Create;
    LLM_UPDATE = Llm.Update;
    LLM_DELETE = Llm.Delete;
    LLM_EXPORT = Llm.Export;
}

impl Permission {
    /// The area.
    pub fn area(self) -> Area {
        self.area
    }

    /// The verb.
    pub fn verb(self) -> Verb {
        self.verb
    }

    /// Whether this permission only looks (read and export change nothing).
    pub fn is_read_only(self) -> bool {
        matches!(self.verb, Verb::Read | Verb::Export)
    }

    /// The permission named `area.verb`, if it exists.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|p| p.to_string() == name)
    }

    fn bit(self) -> u64 {
        let index = Self::ALL.iter().position(|p| *p == self).unwrap_or(63);
        1u64 << index
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.area.as_str(), self.verb.as_str())
    }
}

impl fmt::Debug for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl Serialize for Permission {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// A set of permissions.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct PermissionSet(u64);

impl PermissionSet {
    /// No permission.
    pub const EMPTY: Self = Self(0);

    /// Every permission.
    pub fn all() -> Self {
        Self::of(Permission::ALL)
    }

    /// The set of `perms`.
    pub fn of(perms: &[Permission]) -> Self {
        Self(perms.iter().fold(0, |acc, p| acc | p.bit()))
    }

    /// Parses permission names. Every name must exist.
    pub fn parse<'a>(names: impl IntoIterator<Item = &'a str>) -> Result<Self, UnknownPermission> {
        let mut set = Self::EMPTY;
        for name in names {
            let p = Permission::parse(name).ok_or_else(|| UnknownPermission(name.to_owned()))?;
            set = set.with(p);
        }
        Ok(set)
    }

    /// Reads stored names, skipping any this build does not know (fails closed: an unknown
    /// name grants nothing).
    pub fn from_stored<'a>(names: impl IntoIterator<Item = &'a str>) -> Self {
        names
            .into_iter()
            .filter_map(Permission::parse)
            .fold(Self::EMPTY, Self::with)
    }

    /// This set plus `p`.
    #[must_use]
    pub fn with(self, p: Permission) -> Self {
        Self(self.0 | p.bit())
    }

    /// Whether `p` is in the set.
    pub fn contains(self, p: Permission) -> bool {
        self.0 & p.bit() != 0
    }

    /// The permissions in both sets.
    #[must_use]
    pub fn intersect(self, other: Self) -> Self {
        Self(self.0 & other.0)
    }

    /// The permissions in either set.
    #[must_use]
    pub fn union(self, other: Self) -> Self {
        Self(self.0 | other.0)
    }

    /// Whether every permission of `self` is also in `other`.
    pub fn is_subset(self, other: Self) -> bool {
        self.0 & !other.0 == 0
    }

    /// The permissions in the set, in [`Permission::ALL`] order.
    pub fn iter(self) -> impl Iterator<Item = Permission> {
        Permission::ALL
            .iter()
            .copied()
            .filter(move |p| self.contains(*p))
    }

    /// The names, in [`Permission::ALL`] order.
    pub fn names(self) -> Vec<String> {
        self.iter().map(|p| p.to_string()).collect()
    }
}

impl fmt::Debug for PermissionSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

/// A permission name this build does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown permission {0:?}")]
pub struct UnknownPermission(pub String);

/// The platform roles every installation has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BuiltinRole {
    /// Everything, everywhere.
    Admin,
    /// Signs in, creates workspaces, works in the workspaces they belong to.
    Member,
    /// Reads the audit trail and settings; changes nothing.
    Auditor,
}

impl BuiltinRole {
    /// Every built-in role.
    pub const ALL: [BuiltinRole; 3] = [Self::Admin, Self::Member, Self::Auditor];

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::Member => "member",
            Self::Auditor => "auditor",
        }
    }

    /// The built-in role called `name`.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == name)
    }

    /// What the role grants, everywhere.
    pub fn grants(self) -> PermissionSet {
        use Permission as P;
        match self {
            Self::Admin => PermissionSet::all(),
            Self::Member => PermissionSet::of(&[P::WORKSPACES_CREATE]),
            Self::Auditor => PermissionSet::of(&[P::AUDIT_READ, P::AUDIT_EXPORT, P::SETTINGS_READ]),
        }
    }
}

/// A validated name for a custom platform role: 2–40 characters of `a-z`, `0-9` and `-`,
/// starting with a letter, and not the name of a built-in role.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RoleName(String);

impl RoleName {
    /// Parses a custom role name.
    pub fn parse(name: &str) -> Result<Self, &'static str> {
        let ok_chars = name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        let starts = name.bytes().next().is_some_and(|b| b.is_ascii_lowercase());
        if !(2..=40).contains(&name.len()) || !ok_chars || !starts {
            return Err(
                "a role name is 2 to 40 characters of a-z, 0-9 and '-', starting with a letter",
            );
        }
        if BuiltinRole::parse(name).is_some() {
            return Err("that name belongs to a built-in role");
        }
        Ok(Self(name.to_owned()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A member's role inside one workspace, from least to most powerful.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WorkspaceRole {
    /// Reads.
    Viewer,
    /// Reads and works: opens agent sessions, handles tickets.
    Member,
    /// Also configures the workspace and manages members other than owners.
    Maintainer,
    /// Everything in the workspace, including owners and archiving.
    Owner,
}

impl WorkspaceRole {
    /// Every workspace role.
    pub const ALL: [WorkspaceRole; 4] = [Self::Viewer, Self::Member, Self::Maintainer, Self::Owner];

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Viewer => "viewer",
            Self::Member => "member",
            Self::Maintainer => "maintainer",
            Self::Owner => "owner",
        }
    }

    /// The role called `name`.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == name)
    }

    /// What the role grants inside its workspace.
    pub fn grants(self) -> PermissionSet {
        use Permission as P;
        const VIEWER: &[Permission] = &[
            P::WORKSPACES_READ,
            P::SESSIONS_READ,
            P::HOSTS_READ,
            P::WORKFLOWS_READ,
            P::TICKETS_READ,
            P::BOTS_READ,
            P::SETTINGS_READ,
            P::AUTOMATIONS_READ,
        ];
        const MEMBER: &[Permission] = &[
            P::SESSIONS_CREATE,
            P::SESSIONS_UPDATE,
            P::TICKETS_CREATE,
            P::TICKETS_UPDATE,
            P::LLM_CREATE,
        ];
        const MAINTAINER: &[Permission] = &[
            P::WORKSPACES_UPDATE,
            P::WORKSPACES_MEMBERS,
            P::HOSTS_CREATE,
            P::HOSTS_UPDATE,
            P::HOSTS_DELETE,
            P::SESSIONS_DELETE,
            P::TICKETS_DELETE,
            P::TICKETS_APPROVE_DEV,
            P::TICKETS_APPROVE_QA,
            P::TICKETS_SKIP_TO_MERGE,
            P::WORKFLOWS_CREATE,
            P::WORKFLOWS_UPDATE,
            P::WORKFLOWS_DELETE,
            P::BOTS_CREATE,
            P::BOTS_UPDATE,
            P::BOTS_DELETE,
            P::AUTOMATIONS_CREATE,
            P::AUTOMATIONS_UPDATE,
            P::AUTOMATIONS_DELETE,
            P::SETTINGS_CREATE,
            P::SETTINGS_UPDATE,
            P::SETTINGS_DELETE,
            P::LLM_READ,
            P::LLM_UPDATE,
            P::LLM_DELETE,
        ];
        // Reading captured prompts and responses is its own permission, held by owners only.
        const OWNER: &[Permission] = &[P::WORKSPACES_DELETE, P::LLM_EXPORT];
        let tiers: &[&[Permission]] = match self {
            Self::Viewer => &[VIEWER],
            Self::Member => &[VIEWER, MEMBER],
            Self::Maintainer => &[VIEWER, MEMBER, MAINTAINER],
            Self::Owner => &[VIEWER, MEMBER, MAINTAINER, OWNER],
        };
        tiers
            .iter()
            .flat_map(|t| t.iter().copied())
            .fold(PermissionSet::EMPTY, PermissionSet::with)
    }
}

/// Who may call a route. Declared where the route is registered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case", tag = "rule", content = "permission")]
pub enum Access {
    /// Anyone, unauthenticated. Only the routes DESIGN.md lists may use this.
    Public,
    /// Any authenticated principal.
    SignedIn,
    /// A principal whose platform role grants this permission.
    Platform(Permission),
    /// A principal holding this permission in the workspace the path names (by membership or
    /// platform role). The route's path has a `{workspace_id}` segment.
    Workspace(Permission),
    /// A host, authenticated by its API key (not a user).
    Host,
    /// A caller of the LLM gateway, authenticated by a gateway key (`wdn_llm_…`) that the
    /// gateway itself checks: the guard lets the request through to it.
    LlmKey,
    /// An agent session, authenticated by its MCP token (`wdn_mcp_…`) that the MCP endpoint
    /// itself checks: the guard lets the request through to it.
    McpToken,
    /// A directory provisioning accounts over SCIM, authenticated by a SCIM token
    /// (`wdn_scim_…`) that the SCIM endpoint itself checks: the guard lets the request through
    /// to it.
    ScimToken,
}

/// The first step, before any database lookup: does the request need a principal at all, and
/// is the route declared? With no rule (`None`) the answer is always no: routes fail closed.
pub fn gate(rule: Option<Access>, signed_in: bool) -> Gate {
    match (rule, signed_in) {
        (None, _) => Gate::Undeclared,
        (Some(Access::Public), _) => Gate::Allow,
        (Some(Access::Host), _) => Gate::Host,
        (Some(Access::LlmKey | Access::McpToken | Access::ScimToken), _) => Gate::Allow,
        (Some(_), false) => Gate::Unauthenticated,
        (Some(Access::SignedIn), true) => Gate::Allow,
        (Some(Access::Platform(p)), true) => Gate::Platform(p),
        (Some(Access::Workspace(p)), true) => Gate::Workspace(p),
    }
}

/// The outcome of [`gate`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    /// The request may proceed to the handler.
    Allow,
    /// No principal: answer 401.
    Unauthenticated,
    /// Proceed if the caller's platform role grants this ([`decide_platform`]).
    Platform(Permission),
    /// Proceed if the caller holds this in the path's workspace ([`decide_workspace`]).
    Workspace(Permission),
    /// Proceed if the request carries a valid host key (checked by the host gate).
    Host,
    /// The route declared no rule: refuse, whoever asks.
    Undeclared,
}

/// Whether a platform role's grants include `permission`.
pub fn decide_platform(platform: PermissionSet, permission: Permission) -> bool {
    platform.contains(permission)
}

/// The outcome of [`decide_workspace`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Proceed.
    Allow,
    /// The caller may see the workspace but not do this: 403.
    Forbidden,
    /// The caller may not know the workspace exists: 404, exactly as for a missing one.
    NotFound,
}

/// Whether a caller with platform grants `platform` and membership `membership` (if any) in a
/// workspace may use `permission` there. A non-member who cannot see every workspace learns
/// nothing, not even that the workspace exists.
pub fn decide_workspace(
    platform: PermissionSet,
    membership: Option<WorkspaceRole>,
    permission: Permission,
) -> Decision {
    let granted = platform.contains(permission)
        || membership.is_some_and(|role| role.grants().contains(permission));
    if granted {
        Decision::Allow
    } else if membership.is_some() || platform.contains(Permission::WORKSPACES_READ) {
        Decision::Forbidden
    } else {
        Decision::NotFound
    }
}

/// Whether an actor (with workspace role `actor`, or a platform grant of
/// `workspaces.members` when `platform_wide`) may move a member from role `from` to role `to`
/// (`None` = not a member). Only owners, and platform-wide member managers, touch the owner
/// role; maintainers manage everyone else.
pub fn may_change_membership(
    actor: Option<WorkspaceRole>,
    platform_wide: bool,
    from: Option<WorkspaceRole>,
    to: Option<WorkspaceRole>,
) -> bool {
    if platform_wide || actor == Some(WorkspaceRole::Owner) {
        return true;
    }
    actor.is_some_and(|a| a.grants().contains(Permission::WORKSPACES_MEMBERS))
        && from != Some(WorkspaceRole::Owner)
        && to != Some(WorkspaceRole::Owner)
}

/// Whether an actor with platform grants `actor` may act on an account (or define or assign
/// a role) whose grants are `target`: only if the actor already holds all of them, so no
/// one can raise anyone, themselves included, above their own grants.
pub fn may_manage(actor: PermissionSet, target: PermissionSet) -> bool {
    target.is_subset(actor)
}

/// Whether a membership change leaves the workspace with at least one owner, given how many
/// owners it has now.
pub fn keeps_an_owner(owners: i64, from: Option<WorkspaceRole>, to: Option<WorkspaceRole>) -> bool {
    let losing = from == Some(WorkspaceRole::Owner) && to != Some(WorkspaceRole::Owner);
    !losing || owners > 1
}

#[cfg(test)]
mod tests;
