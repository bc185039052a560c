//! Organizations: the level above workspaces in multi-tenant mode. Every workspace belongs to
//! exactly one; a signed-in session acts in one at a time (its token says which), and a
//! workspace of any other organization is, for that session, a workspace that does not exist.
//! With the `multi-tenant` licence flag off there is only the default organization, which
//! every account belongs to, and everything behaves as it did before organizations existed.

use std::fmt;

use serde::Serialize;
use uuid::Uuid;

use crate::access::Permission;
use crate::tenancy::Invalid;

/// The platform permission that manages organizations: creating them is `admin.create`; with
/// this one a person adds and removes any organization's members, switches into any
/// organization and reaches its workspaces as their platform role allows elsewhere.
pub const ORG_MANAGER: Permission = Permission::ADMIN_UPDATE;

/// An organization's id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct OrgId(Uuid);

impl OrgId {
    /// The default organization: the installation's own, holding every workspace made before
    /// organizations existed (migration 0035) and every account.
    pub const DEFAULT: OrgId = OrgId(Uuid::from_u128(1));

    /// A new, time-ordered id.
    pub fn generate() -> Self {
        Self(Uuid::now_v7())
    }

    /// Parses the textual form.
    pub fn parse(text: &str) -> Option<Self> {
        Uuid::try_parse(text).ok().map(Self)
    }

    /// Wraps a stored id.
    pub fn from_uuid(id: Uuid) -> Self {
        Self(id)
    }

    /// The id.
    pub fn uuid(self) -> Uuid {
        self.0
    }

    /// Whether this is the default organization.
    pub fn is_default(self) -> bool {
        self == Self::DEFAULT
    }
}

impl fmt::Display for OrgId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// An organization's short name, used in URLs and on the command line: 2–40 characters of
/// lower-case ASCII letters, digits and single hyphens, starting with a letter.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct OrgSlug(String);

impl OrgSlug {
    /// Parses a slug.
    pub fn parse(text: &str) -> Result<Self, Invalid> {
        let bad = |reason| Invalid {
            field: "slug",
            reason,
        };
        if !(2..=40).contains(&text.len()) {
            return Err(bad("must be 2 to 40 characters"));
        }
        if !text.starts_with(|c: char| c.is_ascii_lowercase()) {
            return Err(bad("must start with a lower-case letter"));
        }
        if !text
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        {
            return Err(bad("may hold only lower-case letters, digits and hyphens"));
        }
        if text.ends_with('-') || text.contains("--") {
            return Err(bad("may not end with a hyphen or hold two in a row"));
        }
        Ok(Self(text.to_owned()))
    }

    /// The slug.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An organization's display name: 1–100 characters, no control characters, trimmed.
pub fn parse_name(text: &str) -> Result<String, Invalid> {
    let t = text.trim();
    if t.is_empty() || t.chars().count() > 100 {
        return Err(Invalid {
            field: "name",
            reason: "must be 1 to 100 characters",
        });
    }
    if t.chars().any(char::is_control) {
        return Err(Invalid {
            field: "name",
            reason: "may not contain control characters",
        });
    }
    Ok(t.to_owned())
}

/// What a member may do in an organization.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OrgRole {
    /// Manages the organization: its members' roles and removal, its workspace list.
    Admin,
    /// Works in the organization's workspaces they are members of.
    Member,
}

impl OrgRole {
    /// Parses `admin` or `member`.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "admin" => Some(Self::Admin),
            "member" => Some(Self::Member),
            _ => None,
        }
    }

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::Member => "member",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs() {
        for ok in ["acme", "a1", "acme-corp", "x-1-y"] {
            assert!(OrgSlug::parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "a",
            "Acme",
            "1acme",
            "acme-",
            "ac--me",
            "acme corp",
            "acmé",
            "-acme",
        ] {
            assert!(OrgSlug::parse(bad).is_err(), "{bad}");
        }
        assert!(OrgSlug::parse(&"a".repeat(41)).is_err());
    }

    #[test]
    fn names_and_roles() {
        assert_eq!(parse_name("  Acme  ").unwrap(), "Acme");
        assert!(parse_name("").is_err());
        assert!(parse_name("a\u{7}b").is_err());
        assert!(parse_name(&"x".repeat(101)).is_err());
        assert_eq!(OrgRole::parse("admin"), Some(OrgRole::Admin));
        assert_eq!(OrgRole::parse("owner"), None);
        assert!(OrgId::DEFAULT.is_default());
        assert_eq!(
            OrgId::DEFAULT.to_string(),
            "00000000-0000-0000-0000-000000000001"
        );
    }
}
