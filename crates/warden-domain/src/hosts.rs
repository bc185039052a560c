//! Hosts: the machines that run coding agents (session hosts) and deployments (deploy hosts).
//! Values parsed once at the edge; the approval rule and the allow-list check, pure.

use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use std::time::Duration;

use crate::identity::ThrottleRule;
use crate::tenancy::Invalid;

/// How failed host authentications from one source address are slowed down: hard, it is
/// what a guessing attacker uses. The answer to a failure never says which part was wrong.
pub const HOST_AUTH_THROTTLE_ADDRESS: ThrottleRule = ThrottleRule {
    free: 10,
    base: Duration::from_secs(1),
    max: Duration::from_secs(15 * 60),
    window: Duration::from_secs(3600),
};

/// How failures for one key id, from any address, are slowed down: gently and briefly, since
/// key ids are not secret and a stranger must not be able to keep a real host out.
pub const HOST_AUTH_THROTTLE_KEY: ThrottleRule = ThrottleRule {
    free: 20,
    base: Duration::from_secs(1),
    max: Duration::from_secs(30),
    window: Duration::from_secs(3600),
};

/// Whether the `failures`-th failure in a window gets its own audit event: the 1st, 2nd, 4th,
/// 8th… so a flood of failures costs the log a few lines, each with the running count.
pub fn audit_failure(failures: u32) -> bool {
    failures.is_power_of_two()
}

/// The client address: the socket peer, unless the peer is a trusted proxy; then the
/// right-most `X-Forwarded-For` entry that is not itself a trusted proxy. With no trusted
/// proxies configured the header is ignored, so it cannot be spoofed.
pub fn client_ip(peer: IpAddr, forwarded_for: Option<&str>, trusted: &[IpNet]) -> IpAddr {
    let peer = peer.to_canonical();
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|n| n.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    let Some(header) = forwarded_for else {
        return peer;
    };
    let mut last = peer;
    for hop in header.rsplit(',') {
        match hop.trim().parse::<IpAddr>() {
            Ok(ip) => {
                let ip = ip.to_canonical();
                if !is_trusted(&ip) {
                    return ip;
                }
                last = ip;
            }
            // A malformed hop: stop at the last address a trusted proxy vouched for.
            Err(_) => return last,
        }
    }
    last
}

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

/// An IPv4-mapped IPv6 network (`::ffff:10.0.0.0/104`) as the IPv4 network it means
/// (`10.0.0.0/8`): peers are compared in canonical form, so the mapped spelling would never
/// match. `None` for a mapped prefix shorter than 96, which spans more than the mapped range.
fn canonical_net(net: IpNet) -> Option<IpNet> {
    let IpNet::V6(v6) = net else {
        return Some(net);
    };
    match v6.addr().to_ipv4_mapped() {
        Some(v4) if v6.prefix_len() >= 96 => ipnet::Ipv4Net::new(v4, v6.prefix_len() - 96)
            .ok()
            .map(IpNet::V4),
        Some(_) => None,
        None => Some(net),
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
            let net = canonical_net(net).ok_or_else(|| {
                bad("an IPv4-mapped IPv6 CIDR (::ffff:a.b.c.d/n) needs a prefix of at least 96")
            })?;
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

    /// The networks.
    pub fn networks(&self) -> &[IpNet] {
        &self.0
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
    fn ipv4_mapped_entries_are_normalised_or_refused() {
        let list = AllowList::parse(["::ffff:192.0.2.7", "::ffff:10.1.0.0/112"]).unwrap();
        assert_eq!(list.entries(), ["192.0.2.7/32", "10.1.0.0/16"]);
        assert!(list.allows(ip("192.0.2.7")));
        assert!(list.allows(ip("::ffff:192.0.2.7")));
        assert!(list.allows(ip("10.1.200.3")));
        assert!(!list.allows(ip("10.2.0.1")));
        assert!(AllowList::parse(["::ffff:0.0.0.0/80"]).is_err());
        // A plain IPv6 network is left alone.
        assert_eq!(
            AllowList::parse(["2001:db8::/32"]).unwrap().entries(),
            ["2001:db8::/32"]
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
    fn forwarded_for_counts_only_behind_a_trusted_proxy() {
        let trusted: Vec<IpNet> = vec!["127.0.0.0/8".parse().unwrap()];
        let xff = Some("198.51.100.7, 10.0.0.9");
        // No trusted proxies: the header is ignored.
        assert_eq!(client_ip(ip("127.0.0.1"), xff, &[]), ip("127.0.0.1"));
        // A peer that is not a trusted proxy: ignored too.
        assert_eq!(
            client_ip(ip("203.0.113.5"), xff, &trusted),
            ip("203.0.113.5")
        );
        // Behind a trusted proxy: the right-most untrusted hop.
        assert_eq!(client_ip(ip("127.0.0.1"), xff, &trusted), ip("10.0.0.9"));
        assert_eq!(
            client_ip(ip("127.0.0.1"), Some("198.51.100.7, 127.0.0.2"), &trusted),
            ip("198.51.100.7")
        );
        assert_eq!(
            client_ip(ip("127.0.0.1"), Some("junk"), &trusted),
            ip("127.0.0.1")
        );
        assert_eq!(client_ip(ip("127.0.0.1"), None, &trusted), ip("127.0.0.1"));
    }

    #[test]
    fn failures_are_audited_sparsely() {
        let audited: Vec<u32> = (1..=100).filter(|n| audit_failure(*n)).collect();
        assert_eq!(audited, [1, 2, 4, 8, 16, 32, 64]);
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
