//! The access rules' tables, written out by hand: every role against every permission.

use super::*;
use Decision::{Allow, Forbidden, NotFound};

#[test]
fn permission_names_round_trip_and_are_unique() {
    let mut seen = std::collections::HashSet::new();
    for p in Permission::ALL {
        assert!(seen.insert(p.to_string()), "{p} listed twice");
        assert_eq!(Permission::parse(&p.to_string()), Some(*p));
    }
    assert!(Permission::ALL.len() <= 63);
    assert_eq!(
        Permission::parse("hosts.approve"),
        Some(Permission::HOSTS_APPROVE)
    );
    assert_eq!(
        Permission::parse("audit.export"),
        Some(Permission::AUDIT_EXPORT)
    );
    assert_eq!(Permission::parse("hosts.export"), None);
    assert_eq!(Permission::parse(""), None);
    assert!(PermissionSet::parse(["users.read", "nope.read"]).is_err());
    assert_eq!(
        PermissionSet::from_stored(["users.read", "nope.read"]),
        PermissionSet::of(&[Permission::USERS_READ])
    );
}

#[test]
fn every_area_has_the_four_basic_verbs_except_audit() {
    for area in [
        Area::Admin,
        Area::Users,
        Area::Sessions,
        Area::Workspaces,
        Area::Hosts,
        Area::Workflows,
        Area::Tickets,
        Area::Bots,
        Area::Settings,
        Area::Automations,
    ] {
        for verb in [Verb::Read, Verb::Create, Verb::Update, Verb::Delete] {
            let name = format!("{}.{}", area.as_str(), verb.as_str());
            assert!(Permission::parse(&name).is_some(), "{name} missing");
        }
    }
}

/// The platform table: which built-in role holds which permission, written out by hand
/// so that a change to a grant shows up here.
fn platform_expected(role: BuiltinRole, p: Permission) -> bool {
    match role {
        BuiltinRole::Admin => true,
        BuiltinRole::Member => p == Permission::WORKSPACES_CREATE,
        BuiltinRole::Auditor => {
            p == Permission::AUDIT_READ
                || p == Permission::AUDIT_EXPORT
                || p == Permission::SETTINGS_READ
        }
    }
}

/// The workspace table, by hand: the least role that holds each permission in a workspace
/// (`None`: no workspace role does).
fn least_workspace_role(p: Permission) -> Option<WorkspaceRole> {
    use WorkspaceRole::*;
    match (p.area(), p.verb()) {
        (Area::Admin | Area::Audit | Area::Users, _) => None,
        (Area::Workspaces, Verb::Create) => None,
        // Workspace-bound hosts: maintainers register and manage them; only a platform
        // role approves.
        (Area::Hosts, Verb::Approve) => None,
        (Area::Hosts, Verb::Create | Verb::Update | Verb::Delete) => Some(Maintainer),
        (Area::Sessions, Verb::Create | Verb::Update) => Some(Member),
        (Area::Tickets, Verb::Create | Verb::Update) => Some(Member),
        // Approving for development or QA and skipping to merge are maintainers'.
        (Area::Tickets, Verb::ApproveDev | Verb::ApproveQa | Verb::SkipToMerge) => Some(Maintainer),
        (Area::Workspaces, Verb::Delete) => Some(Owner),
        // The LLM gateway: members make keys of their own; maintainers read records and
        // usage and configure it; only owners read captured prompts and responses.
        (Area::Llm, Verb::Create) => Some(Member),
        (Area::Llm, Verb::Read) => Some(Maintainer),
        (Area::Llm, Verb::Export) => Some(Owner),
        (_, Verb::Read) => Some(Viewer),
        (_, _) => Some(Maintainer),
    }
}

#[test]
fn every_role_against_every_permission_as_member_and_non_member() {
    let mut checked = 0;
    for p in Permission::ALL.iter().copied() {
        for role in BuiltinRole::ALL {
            let platform = role.grants();
            assert_eq!(
                decide_platform(platform, p),
                platform_expected(role, p),
                "platform {role:?} / {p}"
            );
            // Not a member of the workspace: only the platform role counts, and only an
            // administrator learns that the workspace exists.
            let expected = if platform_expected(role, p) {
                Allow
            } else if role == BuiltinRole::Admin {
                Forbidden
            } else {
                NotFound
            };
            assert_eq!(
                decide_workspace(platform, None, p),
                expected,
                "non-member with platform {role:?} / {p}"
            );
            for ws in WorkspaceRole::ALL {
                let by_membership = least_workspace_role(p).is_some_and(|least| ws >= least);
                let expected = if by_membership || platform_expected(role, p) {
                    Allow
                } else {
                    Forbidden
                };
                assert_eq!(
                    decide_workspace(platform, Some(ws), p),
                    expected,
                    "{ws:?} member with platform {role:?} / {p}"
                );
                assert_eq!(ws.grants().contains(p), by_membership, "{ws:?} grants {p}");
                checked += 1;
            }
        }
    }
    assert_eq!(checked, Permission::ALL.len() * 3 * 4);
}

#[test]
fn a_custom_platform_role_grants_exactly_its_set_everywhere() {
    let custom = PermissionSet::of(&[Permission::WORKSPACES_READ, Permission::USERS_READ]);
    assert!(decide_platform(custom, Permission::USERS_READ));
    assert!(!decide_platform(custom, Permission::USERS_UPDATE));
    assert_eq!(
        decide_workspace(custom, None, Permission::WORKSPACES_READ),
        Allow
    );
    // It may see every workspace, so a refusal is not hidden.
    assert_eq!(
        decide_workspace(custom, None, Permission::SETTINGS_UPDATE),
        Forbidden
    );
    assert_eq!(
        decide_workspace(PermissionSet::EMPTY, None, Permission::WORKSPACES_READ),
        NotFound
    );
}

#[test]
fn maintainers_cannot_touch_owners_and_the_last_owner_stays() {
    use WorkspaceRole::*;
    let roles = [
        None,
        Some(Viewer),
        Some(Member),
        Some(Maintainer),
        Some(Owner),
    ];
    for actor in roles {
        for from in roles {
            for to in roles {
                let expected = match actor {
                    Some(Owner) => true,
                    Some(Maintainer) => from != Some(Owner) && to != Some(Owner),
                    _ => false,
                };
                assert_eq!(
                    may_change_membership(actor, false, from, to),
                    expected,
                    "{actor:?}: {from:?} -> {to:?}"
                );
                assert!(may_change_membership(actor, true, from, to));
            }
        }
    }
    assert!(!keeps_an_owner(1, Some(Owner), Some(Maintainer)));
    assert!(!keeps_an_owner(1, Some(Owner), None));
    assert!(keeps_an_owner(2, Some(Owner), None));
    assert!(keeps_an_owner(1, Some(Member), None));
    assert!(keeps_an_owner(1, Some(Owner), Some(Owner)));
}

#[test]
fn a_route_without_a_rule_refuses_everyone_and_others_need_a_principal() {
    assert_eq!(gate(None, false), Gate::Undeclared);
    assert_eq!(gate(None, true), Gate::Undeclared);
    assert_eq!(gate(Some(Access::Public), false), Gate::Allow);
    assert_eq!(gate(Some(Access::SignedIn), false), Gate::Unauthenticated);
    assert_eq!(gate(Some(Access::SignedIn), true), Gate::Allow);
    let p = Permission::AUDIT_READ;
    assert_eq!(
        gate(Some(Access::Platform(p)), false),
        Gate::Unauthenticated
    );
    assert_eq!(gate(Some(Access::Platform(p)), true), Gate::Platform(p));
    assert_eq!(
        gate(Some(Access::Workspace(p)), false),
        Gate::Unauthenticated
    );
    assert_eq!(gate(Some(Access::Workspace(p)), true), Gate::Workspace(p));
    // Host routes ignore user credentials: the host gate checks the host key.
    assert_eq!(gate(Some(Access::Host), false), Gate::Host);
    assert_eq!(gate(Some(Access::Host), true), Gate::Host);
}

#[test]
fn nobody_grants_more_than_they_hold() {
    let admin = BuiltinRole::Admin.grants();
    let helpdesk = PermissionSet::of(&[Permission::USERS_READ, Permission::USERS_UPDATE]);
    assert!(may_manage(admin, helpdesk));
    assert!(may_manage(admin, admin));
    assert!(!may_manage(helpdesk, admin));
    assert!(!may_manage(helpdesk, BuiltinRole::Member.grants()));
    assert!(may_manage(helpdesk, PermissionSet::EMPTY));
    assert!(may_manage(helpdesk, helpdesk));
    assert!(!may_manage(
        BuiltinRole::Auditor.grants(),
        BuiltinRole::Member.grants()
    ));
}

#[test]
fn role_names_are_checked() {
    assert!(RoleName::parse("release-managers").is_ok());
    for bad in [
        "admin",
        "auditor",
        "a",
        "Release",
        "1abc",
        "has space",
        &"x".repeat(41),
    ] {
        assert!(RoleName::parse(bad).is_err(), "{bad}");
    }
}
