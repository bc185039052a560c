//! Access rules that every HTTP route declares where it is registered.
//!
//! A route's rule is data, not code in the handler, so a test can walk every route and prove
//! that each one has a rule, and the server can refuse requests to any route that has none.

use serde::Serialize;

use crate::identity::Principal;

/// A permission a principal may hold. Platform administrators hold every platform
/// permission; workspace roles (tenancy issue) will grant the rest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Permission {
    /// Read the audit trail and its status.
    AuditRead,
    /// Export the audit trail.
    AuditExport,
    /// List and revoke any user's sessions.
    SessionsManage,
    /// Create, deactivate and reactivate users.
    UsersManage,
}

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case", tag = "rule", content = "permission")]
pub enum Access {
    /// Anyone, unauthenticated. Only the routes DESIGN.md lists may use this.
    Public,
    /// Any authenticated principal (user, host or API key).
    SignedIn,
    /// An authenticated principal holding this permission.
    Permission(Permission),
}

/// Decides whether a request may reach a route's handler.
///
/// `principal` is what authentication produced, if anything. With no rule declared for the
/// route (`None`) the answer is always no: routes fail closed.
pub fn decide(rule: Option<Access>, principal: Option<&Principal>) -> Decision {
    match (rule, principal) {
        (None, _) => Decision::Undeclared,
        (Some(Access::Public), _) => Decision::Allow,
        (Some(_), None) => Decision::Unauthenticated,
        (Some(Access::SignedIn), Some(_)) => Decision::Allow,
        (Some(Access::Permission(p)), Some(who)) if who.holds(p) => Decision::Allow,
        (Some(Access::Permission(_)), Some(_)) => Decision::Forbidden,
    }
}

/// The outcome of [`decide`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// The request may proceed to the handler.
    Allow,
    /// No principal: answer 401.
    Unauthenticated,
    /// A principal without the permission: answer 403 (404 where existence would leak).
    Forbidden,
    /// The route declared no rule: refuse, whoever asks.
    Undeclared,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(admin: bool) -> Principal {
        Principal {
            user_id: uuid::Uuid::nil(),
            session_id: uuid::Uuid::nil(),
            platform_admin: admin,
        }
    }

    #[test]
    fn a_route_without_a_rule_refuses_everyone() {
        assert_eq!(decide(None, None), Decision::Undeclared);
        assert_eq!(decide(None, Some(&user(true))), Decision::Undeclared);
    }

    #[test]
    fn permission_routes_need_a_principal_holding_the_permission() {
        let rule = Some(Access::Permission(Permission::AuditRead));
        assert_eq!(decide(rule, None), Decision::Unauthenticated);
        assert_eq!(decide(rule, Some(&user(false))), Decision::Forbidden);
        assert_eq!(decide(rule, Some(&user(true))), Decision::Allow);
    }

    #[test]
    fn public_routes_admit_anyone_and_signed_in_routes_need_a_principal() {
        assert_eq!(decide(Some(Access::Public), None), Decision::Allow);
        assert_eq!(
            decide(Some(Access::SignedIn), None),
            Decision::Unauthenticated
        );
        assert_eq!(
            decide(Some(Access::SignedIn), Some(&user(false))),
            Decision::Allow
        );
    }
}
