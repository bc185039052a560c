//! Access rules that every HTTP route declares where it is registered.
//!
//! A route's rule is data, not code in the handler, so a test can walk every route and prove
//! that each one has a rule, and the server can refuse requests to any route that has none.

use serde::Serialize;

/// A permission a principal may hold. Roles (access-control issue) grant them; until roles
/// exist no principal holds any, so every route that needs one refuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Permission {
    /// Read the audit trail and its status.
    AuditRead,
    /// Export the audit trail.
    AuditExport,
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
/// `principal_present` says whether authentication produced a principal. With no rule declared
/// for the route (`None`) the answer is always no: routes fail closed.
pub fn decide(rule: Option<Access>, principal_present: bool) -> Decision {
    match rule {
        None => Decision::Undeclared,
        Some(Access::Public) => Decision::Allow,
        Some(_) if !principal_present => Decision::Unauthenticated,
        Some(Access::SignedIn) => Decision::Allow,
        // No role grants permissions yet.
        Some(Access::Permission(Permission::AuditRead | Permission::AuditExport)) => {
            Decision::Forbidden
        }
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

    #[test]
    fn a_route_without_a_rule_refuses_everyone() {
        assert_eq!(decide(None, false), Decision::Undeclared);
        assert_eq!(decide(None, true), Decision::Undeclared);
    }

    #[test]
    fn permission_routes_need_a_principal_holding_the_permission() {
        let rule = Some(Access::Permission(Permission::AuditRead));
        assert_eq!(decide(rule, false), Decision::Unauthenticated);
        assert_eq!(decide(rule, true), Decision::Forbidden);
    }

    #[test]
    fn public_routes_admit_anyone_and_signed_in_routes_need_a_principal() {
        assert_eq!(decide(Some(Access::Public), false), Decision::Allow);
        assert_eq!(
            decide(Some(Access::SignedIn), false),
            Decision::Unauthenticated
        );
        assert_eq!(decide(Some(Access::SignedIn), true), Decision::Allow);
    }
}
