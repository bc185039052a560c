//! Hosts: the machines that run coding agents (session hosts) and deployments (deploy hosts).
//! Values parsed once at the edge; the approval rule and the allow-list check, pure.

use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::tenancy::Invalid;

/// What a host runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HostKind {
    /// Runs agent sessions.
    Session,
    /// Runs deployments.
    Deploy,
}

impl HostKind {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Session => "session",
            Self::Deploy => "deploy",
        }
    }

    /// The kind called `name`.
    pub fn parse(name: &str) -> Option<Self> {
        [Self::Session, Self::Deploy]
            .into_iter()
            .find(|k| k.as_str() == name)
    }
}

/// Where a host stands with the administrators.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HostStatus {
    /// Registered; waiting for an administrator. Gets no work.
    Pending,
    /// Approved: may receive work.
    Approved,
    /// Refused by an administrator. Gets no work.
    Rejected,
}

impl HostStatus {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Approved => "approved",
            Self::Rejected => "rejected",
        }
    }

    /// The status called `name`.
    pub fn parse(name: &str) -> Option<Self> {
        [Self::Pending, Self::Approved, Self::Rejected]
            .into_iter()
            .find(|s| s.as_str() == name)
    }

    /// Whether a host in this status may be given work.
    pub fn may_work(self) -> bool {
        self == Self::Approved
    }
}

/// A host's display name: 1–100 characters after trimming, no control characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostName(String);

impl HostName {
    /// Parses a name.
    pub fn parse(text: &str) -> Result<Self, Invalid> {
        let t = text.trim();
        if t.is_empty() || t.chars().count() > 100 || t.chars().any(char::is_control) {
            return Err(Invalid {
                field: "name",
                reason: "must be 1 to 100 characters without control characters",
            });
        }
        Ok(Self(t.to_owned()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The most entries an allow-list may have.
pub const ALLOW_LIST_MAX: usize = 100;

/// Networks a host may connect from (IPv4 and IPv6 CIDRs; a bare address is a /32 or /128).
/// Empty means anywhere.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowList(Vec<IpNet>);

impl AllowList {
    /// Parses CIDRs or addresses. Host bits set below the prefix are refused as a likely typo
    /// (`10.0.0.1/8`).
    pub fn parse<'a>(entries: impl IntoIterator<Item = &'a str>) -> Result<Self, Invalid> {
        let bad = |reason| Invalid {
            field: "allow_list",
            reason,
        };
        let mut nets = Vec::new();
        for entry in entries {
            let e = entry.trim();
            let net = match e.parse::<IpNet>() {
                Ok(net) if net.trunc() == net => net,
                Ok(_) => return Err(bad("a CIDR has host bits set below its prefix")),
                Err(_) => match e.parse::<IpAddr>() {
                    Ok(ip) => IpNet::from(ip),
                    Err(_) => return Err(bad("each entry is an IPv4 or IPv6 address or CIDR")),
                },
            };
            if !nets.contains(&net) {
                nets.push(net);
            }
        }
        if nets.len() > ALLOW_LIST_MAX {
            return Err(bad("at most 100 entries"));
        }
        Ok(Self(nets))
    }

    /// Reads a stored list (space-separated), skipping nothing: a stored entry that no longer
    /// parses makes the list allow nothing (fails closed).
    pub fn from_stored(text: &str) -> Self {
        match Self::parse(text.split_whitespace()) {
            Ok(list) => list,
            // The unspecified address only, which no peer has.
            Err(_) => Self(vec![IpNet::from(IpAddr::from([0u8, 0, 0, 0]))]),
        }
    }

    /// Whether the list is empty (anywhere allowed).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether `ip` may connect. IPv4-mapped IPv6 addresses are compared as IPv4.
    pub fn allows(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.0.is_empty() || self.0.iter().any(|net| net.contains(&ip))
    }

    /// The entries, as text.
    pub fn entries(&self) -> Vec<String> {
        self.0.iter().map(ToString::to_string).collect()
    }

    /// The stored form (space-separated).
    pub fn to_stored(&self) -> String {
        self.entries().join(" ")
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn allow_lists_match_v4_v6_and_mapped_addresses() {
        let list = AllowList::parse(["10.1.0.0/16", "2001:db8::/32", "192.0.2.7"]).unwrap();
        assert!(list.allows(ip("10.1.2.3")));
        assert!(!list.allows(ip("10.2.0.1")));
        assert!(list.allows(ip("192.0.2.7")));
        assert!(!list.allows(ip("192.0.2.8")));
        assert!(list.allows(ip("2001:db8::1")));
        assert!(!list.allows(ip("2001:db9::1")));
        assert!(list.allows(ip("::ffff:10.1.9.9")));
        assert!(AllowList::default().allows(ip("203.0.113.1")));
        assert_eq!(
            AllowList::from_stored(&list.to_stored()),
            list,
            "round trip"
        );
    }

    #[test]
    fn bad_allow_lists_are_refused_and_a_corrupt_stored_one_allows_nothing() {
        for bad in [
            vec!["10.0.0.1/8"],
            vec!["10.0.0.0/33"],
            vec!["example.com"],
            vec![""],
        ] {
            assert!(AllowList::parse(bad.iter().copied()).is_err(), "{bad:?}");
        }
        let many: Vec<String> = (0..101).map(|i| format!("10.0.{i}.0/24")).collect();
        assert!(AllowList::parse(many.iter().map(String::as_str)).is_err());
        let corrupt = AllowList::from_stored("10.0.0.0/8 nonsense");
        assert!(!corrupt.allows(ip("10.1.1.1")));
        assert!(!corrupt.allows(ip("127.0.0.1")));
    }

    #[test]
    fn only_approved_hosts_work() {
        assert!(HostStatus::Approved.may_work());
        assert!(!HostStatus::Pending.may_work());
        assert!(!HostStatus::Rejected.may_work());
        assert_eq!(HostKind::parse("deploy"), Some(HostKind::Deploy));
        assert_eq!(HostKind::parse("build"), None);
        assert!(HostName::parse("  ").is_err());
    }
}
