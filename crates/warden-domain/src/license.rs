//! Offline licences: what a licence says and whether it holds, decided without I/O.
//!
//! The signature is checked in `warden-crypto`; here are the claims, the rules that make a
//! signed licence valid on this machine at this time (tier and fingerprint, start, expiry and
//! grace, freshness of the issue date, the clock's high-water mark), `allowedDomain` matching,
//! the feature flags and the expiry-alert milestones. Times are Unix seconds.

use serde::{Deserialize, Serialize};

/// One day, in seconds.
pub const DAY: i64 = 86_400;
/// How far the clock may go back behind the latest time seen before the licence is invalid.
pub const CLOCK_TOLERANCE: i64 = DAY;
/// Days before expiry at which administrators are alerted.
pub const ALERT_MILESTONES: [u32; 4] = [30, 14, 7, 1];
/// Days before expiry from which administrators see a banner.
pub const BANNER_DAYS: i64 = 30;

/// Licence tier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Tier {
    /// One server, bound to one machine fingerprint.
    Standard,
    /// A cluster: machine-agnostic, optionally bound to a domain.
    Enterprise,
}

impl Tier {
    /// As written in a licence.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Standard => "standard",
            Self::Enterprise => "enterprise",
        }
    }

    /// From its name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "standard" => Some(Self::Standard),
            "enterprise" => Some(Self::Enterprise),
            _ => None,
        }
    }
}

macro_rules! features {
    ($($variant:ident = $name:literal, $what:literal;)+) => {
        /// A module a licence switches on.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Feature {
            $(#[doc = $what] $variant,)+
        }

        impl Feature {
            /// Every feature, in the order the licensing page lists them.
            pub const ALL: &'static [Feature] = &[$(Feature::$variant,)+];

            /// Its flag, as written in a licence.
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $name,)+ }
            }

            /// From its flag.
            pub fn parse(s: &str) -> Option<Self> {
                match s { $($name => Some(Self::$variant),)+ _ => None }
            }
        }
    };
}

features! {
    Workflows = "workflows", "Workflow automation.";
    Automations = "automations", "Scheduled automations.";
    Planner = "planner", "AI Planner.";
    RoundTable = "round-table", "Round Table.";
    Insights = "insights", "Insights.";
    TicketSync = "ticket-sync", "External ticket sync.";
    Deployments = "deployments", "Deployment agents.";
    CodeReview = "code-review", "Code review.";
    Verification = "verification", "Verification.";
    Memory = "memory", "Memory module.";
    Bots = "bots", "Bots.";
    MultipleActiveSessions = "multiple-active-sessions", "Concurrent sign-ins per user across devices.";
    SsoSaml = "sso-saml", "Single sign-on with SAML (enterprise).";
    AuditExport = "audit-export", "Audit log export (enterprise).";
    MultiTenant = "multi-tenant", "Multi-tenant mode (enterprise).";
    LlmGateway = "llm-gateway", "The LLM gateway with governance.";
}

impl Feature {
    fn bit(self) -> u32 {
        1 << (self as u32)
    }

    /// Whether only enterprise licences may carry it.
    pub fn enterprise_only(self) -> bool {
        matches!(self, Self::SsoSaml | Self::AuditExport | Self::MultiTenant)
    }
}

/// What a route needs of the licence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LicenseRule {
    /// A valid licence (API routes; other routes are never blocked).
    Required,
    /// Nothing: it is how an administrator recovers (licence status and upload, machine info,
    /// sign-in, sign-out, the current user).
    Recovery,
    /// A valid licence that grants this feature.
    Feature(Feature),
}

/// A set of features.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FeatureSet(u32);

impl FeatureSet {
    /// Every feature (an unlicensed server).
    pub fn all() -> Self {
        Feature::ALL
            .iter()
            .fold(Self::default(), |s, f| Self(s.0 | f.bit()))
    }

    /// The known features among `names`; unknown flags (from a newer operator tool) are
    /// ignored.
    pub fn from_names<'a>(names: impl IntoIterator<Item = &'a str>) -> Self {
        names
            .into_iter()
            .filter_map(Feature::parse)
            .fold(Self::default(), |s, f| Self(s.0 | f.bit()))
    }

    /// Whether `f` is in the set.
    pub fn contains(self, f: Feature) -> bool {
        self.0 & f.bit() != 0
    }

    /// The features in the set, by name.
    pub fn names(self) -> Vec<&'static str> {
        Feature::ALL
            .iter()
            .filter(|f| self.contains(**f))
            .map(|f| f.as_str())
            .collect()
    }
}

/// What a licence says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Claims {
    /// Licence id.
    pub jti: String,
    /// Customer name.
    pub customer: String,
    /// Tier.
    pub tier: Tier,
    /// Issued at.
    pub iat: i64,
    /// Valid from (default: its issue time).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
    /// Expires at.
    pub exp: i64,
    /// Days after expiry during which everything still works, with a warning.
    #[serde(default)]
    pub grace_days: u32,
    /// Most active users (absent: no limit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_limit: Option<u32>,
    /// Most session hosts connected at once (absent: no limit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_hosts: Option<u32>,
    /// Most deploy hosts connected at once (absent: no limit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deploy_hosts: Option<u32>,
    /// Feature flags.
    #[serde(default)]
    pub features: Vec<String>,
    /// The machine fingerprint (standard tier only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
    /// `*.example.internal` or an exact host name (enterprise tier only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_domain: Option<String>,
}

/// A licence whose claims do not hang together.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BadClaims(pub &'static str);

impl Claims {
    /// Checks the claims' shape: what the tier requires and forbids, sane times, a valid
    /// domain pattern, known and tier-appropriate features.
    pub fn check(&self) -> Result<(), BadClaims> {
        if self.jti.trim().is_empty() || self.jti.len() > 200 {
            return Err(BadClaims("the licence id must be 1 to 200 characters"));
        }
        if self.customer.trim().is_empty() || self.customer.len() > 200 {
            return Err(BadClaims("the customer must be 1 to 200 characters"));
        }
        if self.exp <= self.nbf.unwrap_or(self.iat) {
            return Err(BadClaims("the licence expires before it starts"));
        }
        if self.grace_days > 365 {
            return Err(BadClaims("the grace period is at most 365 days"));
        }
        match self.tier {
            Tier::Standard => {
                if self.fingerprint.as_deref().is_none_or(str::is_empty) {
                    return Err(BadClaims("a standard licence needs a machine fingerprint"));
                }
                if self.allowed_domain.is_some() {
                    return Err(BadClaims(
                        "only an enterprise licence carries allowedDomain",
                    ));
                }
            }
            Tier::Enterprise => {
                if self.fingerprint.is_some() {
                    return Err(BadClaims(
                        "an enterprise licence is machine-agnostic: it carries no fingerprint",
                    ));
                }
            }
        }
        if let Some(d) = &self.allowed_domain
            && DomainPattern::parse(d).is_none()
        {
            return Err(BadClaims(
                "allowedDomain must be a host name or '*.' followed by one",
            ));
        }
        for f in &self.features {
            match Feature::parse(f) {
                None => return Err(BadClaims("unknown feature flag")),
                Some(f) if f.enterprise_only() && self.tier != Tier::Enterprise => {
                    return Err(BadClaims("that feature is for enterprise licences only"));
                }
                Some(_) => {}
            }
        }
        Ok(())
    }

    /// The features it grants.
    pub fn feature_set(&self) -> FeatureSet {
        FeatureSet::from_names(self.features.iter().map(String::as_str))
    }

    /// When it stops working: expiry plus grace.
    pub fn ends_at(&self) -> i64 {
        self.exp
            .saturating_add(i64::from(self.grace_days).saturating_mul(DAY))
    }
}

/// Why a signed licence does not hold here and now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Problem {
    /// No licence is installed.
    NotInstalled,
    /// Past expiry and grace.
    Expired,
    /// Before its start.
    NotYetValid,
    /// Issued too long before it was installed.
    Stale,
    /// A standard licence for another machine.
    MachineIdentityChanged,
    /// The clock went back more than a day behind the latest time seen.
    ClockTampered,
    /// The stored licence no longer verifies (another operator key, or edited).
    InvalidSignature,
}

/// Where a licence stands at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    /// Valid.
    Valid,
    /// Past expiry but within the grace period, which ends at this time.
    Grace(i64),
    /// Not valid.
    Invalid(Problem),
}

/// What the rules compare a licence with.
#[derive(Debug, Clone, Copy)]
pub struct Here<'a> {
    /// Now.
    pub now: i64,
    /// This machine's fingerprint.
    pub fingerprint: &'a str,
    /// When the licence was installed.
    pub installed_at: i64,
    /// Freshness window, seconds.
    pub freshness: i64,
    /// Whether the clock is currently judged tampered with (see [`ClockWatch`]).
    pub clock_tampered: bool,
}

/// Five minutes of skew allowed between operator and server clocks on the issue date.
const ISSUE_SKEW: i64 = 300;

/// Whether a licence (whose signature verified) holds, and if not, why.
pub fn standing(c: &Claims, here: &Here<'_>) -> Standing {
    if here.clock_tampered {
        return Standing::Invalid(Problem::ClockTampered);
    }
    if c.tier == Tier::Standard && c.fingerprint.as_deref() != Some(here.fingerprint) {
        return Standing::Invalid(Problem::MachineIdentityChanged);
    }
    if c.iat > here.installed_at + ISSUE_SKEW {
        return Standing::Invalid(Problem::NotYetValid);
    }
    if here.installed_at - c.iat > here.freshness {
        return Standing::Invalid(Problem::Stale);
    }
    if here.now < c.nbf.unwrap_or(c.iat) - ISSUE_SKEW {
        return Standing::Invalid(Problem::NotYetValid);
    }
    if here.now >= c.ends_at() {
        return Standing::Invalid(Problem::Expired);
    }
    if here.now >= c.exp {
        return Standing::Grace(c.ends_at());
    }
    Standing::Valid
}

/// The clock's high-water mark: the latest time seen, and the time until which the licence is
/// invalid because the clock was moved back more than [`CLOCK_TOLERANCE`] behind it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ClockWatch {
    /// Latest time seen.
    pub high_water: i64,
    /// Tampering detected: invalid until the clock reaches this time again.
    pub tampered_until: Option<i64>,
}

impl ClockWatch {
    /// The watch after seeing `now`.
    pub fn observe(self, now: i64) -> Self {
        if let Some(until) = self.tampered_until {
            return if now >= until {
                Self {
                    high_water: now.max(self.high_water),
                    tampered_until: None,
                }
            } else {
                self
            };
        }
        if now < self.high_water - CLOCK_TOLERANCE {
            return Self {
                high_water: self.high_water,
                tampered_until: Some(self.high_water),
            };
        }
        Self {
            high_water: now.max(self.high_water),
            tampered_until: None,
        }
    }

    /// Whether the licence is invalid for it at `now`.
    pub fn tampered_at(&self, now: i64) -> bool {
        self.tampered_until.is_some_and(|t| now < t) || now < self.high_water - CLOCK_TOLERANCE
    }
}

/// An `allowedDomain`: an exact host name, or `*.` and a domain, which matches exactly one
/// more label (`*.acme.internal` matches `api.acme.internal`, not `api.v2.acme.internal` nor
/// `acme.internal`). Case-insensitive; a request's port is ignored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainPattern {
    wildcard: bool,
    domain: String,
}

fn valid_label(l: &str) -> bool {
    !l.is_empty()
        && l.len() <= 63
        && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !l.starts_with('-')
        && !l.ends_with('-')
}

impl DomainPattern {
    /// Parses a pattern; `None` if it is not one.
    pub fn parse(s: &str) -> Option<Self> {
        let s = s.trim().to_ascii_lowercase();
        let (wildcard, domain) = match s.strip_prefix("*.") {
            Some(d) => (true, d.to_owned()),
            None => (false, s),
        };
        if domain.len() > 253 || !domain.split('.').all(valid_label) {
            return None;
        }
        Some(Self { wildcard, domain })
    }

    /// Whether a request's `Host` header value matches.
    pub fn matches(&self, host_header: &str) -> bool {
        let host = strip_port(host_header.trim());
        let host = host.strip_suffix('.').unwrap_or(host);
        if self.wildcard {
            let Some(label) = host
                .len()
                .checked_sub(self.domain.len() + 1)
                .and_then(|cut| {
                    let (label, rest) = host.split_at(cut);
                    (rest.len() == self.domain.len() + 1
                        && rest.as_bytes()[0] == b'.'
                        && rest[1..].eq_ignore_ascii_case(&self.domain))
                    .then_some(label)
                })
            else {
                return false;
            };
            valid_label(label)
        } else {
            host.eq_ignore_ascii_case(&self.domain)
        }
    }
}

fn strip_port(host: &str) -> &str {
    if host.starts_with('[') {
        // An IPv6 literal never matches a domain pattern; keep it whole.
        return host;
    }
    match host.rsplit_once(':') {
        Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => host,
    }
}

/// The expiry-alert milestone due at `now`, if any: the nearest of 30, 14, 7 and 1 days that
/// the days left have reached. A run that missed a milestone never sends it late: after the
/// 14-day mark is passed unsent, the next run at 6 days left sends the 7-day alert only.
pub fn due_milestone(exp: i64, now: i64) -> Option<u32> {
    if now >= exp {
        return None;
    }
    let left = (exp - now + DAY - 1) / DAY;
    ALERT_MILESTONES
        .iter()
        .rev()
        .copied()
        .find(|m| left <= i64::from(*m))
}

/// Whole days left before expiry (0 once expired).
pub fn days_left(exp: i64, now: i64) -> i64 {
    if now >= exp {
        0
    } else {
        (exp - now + DAY - 1) / DAY
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000;

    fn claims(tier: Tier) -> Claims {
        Claims {
            jti: "lic-1".into(),
            customer: "Acme".into(),
            tier,
            iat: NOW - DAY,
            nbf: None,
            exp: NOW + 90 * DAY,
            grace_days: 0,
            user_limit: Some(10),
            session_hosts: Some(2),
            deploy_hosts: Some(1),
            features: vec!["workflows".into()],
            fingerprint: (tier == Tier::Standard).then(|| "fp".into()),
            allowed_domain: None,
        }
    }

    fn here(now: i64) -> Here<'static> {
        Here {
            now,
            fingerprint: "fp",
            installed_at: NOW,
            freshness: 7 * DAY,
            clock_tampered: false,
        }
    }

    #[test]
    fn a_licence_holds_only_on_its_machine_within_its_dates() {
        let c = claims(Tier::Standard);
        assert_eq!(standing(&c, &here(NOW)), Standing::Valid);
        let other = Here {
            fingerprint: "other",
            ..here(NOW)
        };
        assert_eq!(
            standing(&c, &other),
            Standing::Invalid(Problem::MachineIdentityChanged)
        );
        // Enterprise ignores the machine.
        assert_eq!(standing(&claims(Tier::Enterprise), &other), Standing::Valid);
        assert_eq!(
            standing(&c, &here(c.exp)),
            Standing::Invalid(Problem::Expired)
        );
        let graced = Claims {
            grace_days: 3,
            ..c.clone()
        };
        assert_eq!(
            standing(&graced, &here(c.exp + DAY)),
            Standing::Grace(c.exp + 3 * DAY)
        );
        assert_eq!(
            standing(&graced, &here(c.exp + 3 * DAY)),
            Standing::Invalid(Problem::Expired)
        );
        let later = Claims {
            nbf: Some(NOW + DAY),
            ..c.clone()
        };
        assert_eq!(
            standing(&later, &here(NOW)),
            Standing::Invalid(Problem::NotYetValid)
        );
        let stale = Claims {
            iat: NOW - 8 * DAY,
            ..c.clone()
        };
        assert_eq!(
            standing(&stale, &here(NOW)),
            Standing::Invalid(Problem::Stale)
        );
        let future = Claims {
            iat: NOW + DAY,
            ..c.clone()
        };
        assert_eq!(
            standing(&future, &here(NOW)),
            Standing::Invalid(Problem::NotYetValid)
        );
        let tampered = Here {
            clock_tampered: true,
            ..here(NOW)
        };
        assert_eq!(
            standing(&c, &tampered),
            Standing::Invalid(Problem::ClockTampered)
        );
    }

    #[test]
    fn claims_must_fit_their_tier() {
        assert!(claims(Tier::Standard).check().is_ok());
        assert!(claims(Tier::Enterprise).check().is_ok());
        let mut c = claims(Tier::Enterprise);
        c.fingerprint = Some("fp".into());
        assert!(c.check().is_err(), "enterprise with a fingerprint");
        let mut c = claims(Tier::Standard);
        c.fingerprint = None;
        assert!(c.check().is_err(), "standard without one");
        let mut c = claims(Tier::Standard);
        c.allowed_domain = Some("*.acme.internal".into());
        assert!(c.check().is_err(), "standard with a domain");
        let mut c = claims(Tier::Enterprise);
        c.allowed_domain = Some("*.*.acme".into());
        assert!(c.check().is_err());
        c.allowed_domain = Some("*.acme.internal".into());
        assert!(c.check().is_ok());
        let mut c = claims(Tier::Standard);
        c.features = vec!["audit-export".into()];
        assert!(c.check().is_err(), "enterprise-only feature on standard");
        c.features = vec!["teleport".into()];
        assert!(c.check().is_err(), "unknown feature");
        let mut c = claims(Tier::Standard);
        c.exp = c.iat;
        assert!(c.check().is_err());
    }

    #[test]
    fn the_domain_wildcard_matches_exactly_one_label() {
        let p = DomainPattern::parse("*.acme.internal").unwrap();
        for (host, ok) in [
            ("api.acme.internal", true),
            ("API.Acme.Internal", true),
            ("api.acme.internal:8443", true),
            ("api.acme.internal.", true),
            ("api.v2.acme.internal", false),
            ("acme.internal", false),
            (".acme.internal", false),
            ("apiacme.internal", false),
            ("api.acme.internal.evil", false),
            ("api.evil-acme.internal", false),
            ("evil.com", false),
            ("[::1]:8080", false),
            ("", false),
        ] {
            assert_eq!(p.matches(host), ok, "{host}");
        }
        let exact = DomainPattern::parse("Warden.Acme.Internal").unwrap();
        assert!(exact.matches("warden.acme.internal:443"));
        assert!(!exact.matches("x.warden.acme.internal"));
        for bad in ["", "*", "*.", "a..b", "*.a.*", "a b", "-a.b"] {
            assert!(DomainPattern::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn the_clock_may_go_back_half_a_day_not_two() {
        let w = ClockWatch::default().observe(NOW);
        let back12h = w.observe(NOW - DAY / 2);
        assert!(!back12h.tampered_at(NOW - DAY / 2));
        assert_eq!(back12h.high_water, NOW);
        let back2d = w.observe(NOW - 2 * DAY);
        assert!(back2d.tampered_at(NOW - 2 * DAY));
        // Still invalid half a day behind, though within the tolerance: until it passes NOW.
        let creeping = back2d.observe(NOW - DAY / 2);
        assert!(creeping.tampered_at(NOW - DAY / 2));
        let healed = creeping.observe(NOW + 1);
        assert!(!healed.tampered_at(NOW + 1));
        assert_eq!(healed.tampered_until, None);
    }

    #[test]
    fn alerts_fall_on_the_nearest_milestone_reached() {
        let exp = NOW + 100 * DAY;
        let at = |days_left: i64| exp - days_left * DAY;
        assert_eq!(due_milestone(exp, at(31)), None);
        assert_eq!(due_milestone(exp, at(30)), Some(30));
        assert_eq!(due_milestone(exp, at(15)), Some(30));
        assert_eq!(due_milestone(exp, at(14)), Some(14));
        assert_eq!(due_milestone(exp, at(13)), Some(14));
        assert_eq!(due_milestone(exp, at(6)), Some(7));
        assert_eq!(due_milestone(exp, at(1)), Some(1));
        assert_eq!(due_milestone(exp, exp - 60), Some(1));
        assert_eq!(due_milestone(exp, exp), None);
        assert_eq!(days_left(exp, at(13) + 1), 13);
    }

    #[test]
    fn features_parse_by_flag_and_unknown_ones_are_ignored() {
        assert_eq!(Feature::ALL.len(), 16);
        for f in Feature::ALL {
            assert_eq!(Feature::parse(f.as_str()), Some(*f));
        }
        let s = FeatureSet::from_names(["bots", "teleport", "audit-export"]);
        assert!(s.contains(Feature::Bots) && s.contains(Feature::AuditExport));
        assert!(!s.contains(Feature::Workflows));
        assert_eq!(s.names(), ["bots", "audit-export"]);
        assert_eq!(FeatureSet::all().names().len(), 16);
    }
}
