//! People and their sign-in rules: who a request acts as, what a password must be, how hard
//! repeated failures are slowed down. Pure: storage and HTTP live elsewhere.

use std::collections::HashSet;
use std::sync::OnceLock;
use std::time::Duration;

use uuid::Uuid;

use crate::access::PermissionSet;
use crate::organizations::OrgId;
use crate::tenancy::WorkspaceId;

/// Who an authenticated request acts as. What they may do is looked up per request (their
/// platform role and memberships), so a role change takes effect at once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The user.
    pub user_id: Uuid,
    /// The device session (refresh-token family) the credential belongs to; for a personal
    /// access token, the token's id (revoked through the same log).
    pub session_id: Uuid,
    /// Present when the request carries a personal access token: what it is limited to.
    pub token: Option<TokenLimits>,
    /// The organization the credential acts in: a session's current one (its access token
    /// says which), a personal access token's own. `None` for a credential bound to one
    /// workspace by what it is (a service key, an agent session's MCP token): that workspace's
    /// organization, whichever it is.
    pub organization: Option<OrgId>,
}

impl Principal {
    /// A principal signed in with a device session (no token limits).
    pub fn session(user_id: Uuid, session_id: Uuid) -> Self {
        Self {
            user_id,
            session_id,
            token: None,
            organization: Some(OrgId::DEFAULT),
        }
    }

    /// A job acting for `user_id` in a workspace it names itself (an automation's run, a
    /// bot's answer, a directory group's sync): bound by that workspace, whichever
    /// organization holds it — not by a sign-in's choice of organization.
    pub fn for_job(user_id: Uuid, session_id: Uuid) -> Self {
        Self {
            organization: None,
            ..Self::session(user_id, session_id)
        }
    }

    /// The same principal acting in `org`.
    pub fn in_org(mut self, org: OrgId) -> Self {
        self.organization = Some(org);
        self
    }

    /// Whether the request carries a personal access token rather than a signed-in session.
    pub fn is_token(&self) -> bool {
        self.token.is_some()
    }

    /// The permissions the credential allows at most (all for a session).
    pub fn ceiling(&self) -> PermissionSet {
        self.token
            .as_ref()
            .map_or_else(PermissionSet::all, |t| t.permissions)
    }
}

/// What a personal access token is limited to, on top of its owner's current grants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenLimits {
    /// At most these permissions (intersected with the owner's, on every request).
    pub permissions: PermissionSet,
    /// Only this workspace, when set (platform-wide routes are then refused).
    pub workspace: Option<WorkspaceId>,
}

/// Prefix of personal access tokens.
pub const PAT_PREFIX: &str = "wdn_pat_";
/// Most active personal access tokens per user.
pub const PAT_MAX_ACTIVE: i64 = 25;
/// Shortest lifetime of a personal access token, in days.
pub const PAT_MIN_DAYS: u32 = 7;
/// Longest lifetime of a personal access token, in days.
pub const PAT_MAX_DAYS: u32 = 365;

/// Shortest password accepted, in characters.
pub const PASSWORD_MIN_CHARS: usize = 12;
/// Longest password accepted, in characters (argon2 hashes all of it).
pub const PASSWORD_MAX_CHARS: usize = 256;

/// Why a new password is refused. Messages are safe to show: they never echo the password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordProblem {
    /// Too short.
    #[error("the password must be at least {PASSWORD_MIN_CHARS} characters long")]
    TooShort,
    /// Too long.
    #[error("the password must be at most {PASSWORD_MAX_CHARS} characters long")]
    TooLong,
    /// On the list of commonly used passwords, or a common password with digits or
    /// punctuation added.
    #[error("this password is too common; choose one that is not on lists of leaked passwords")]
    Common,
    /// Contains the account's email address or its local part.
    #[error("the password must not contain the email address")]
    ContainsEmail,
}

fn common_passwords() -> &'static HashSet<&'static str> {
    static LIST: OnceLock<HashSet<&'static str>> = OnceLock::new();
    LIST.get_or_init(|| {
        include_str!("../data/common-passwords.txt")
            .lines()
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .collect()
    })
}

/// Checks a new password against the policy: length, the shipped list of common passwords
/// (also with digits and punctuation stripped from either end), and the account's email.
pub fn check_password(password: &str, email: &str) -> Result<(), PasswordProblem> {
    let chars = password.chars().count();
    if chars < PASSWORD_MIN_CHARS {
        return Err(PasswordProblem::TooShort);
    }
    if chars > PASSWORD_MAX_CHARS {
        return Err(PasswordProblem::TooLong);
    }
    let lower = password.to_lowercase();
    let list = common_passwords();
    let stem = lower.trim_matches(|c: char| c.is_ascii_digit() || c.is_ascii_punctuation());
    if list.contains(lower.as_str()) || (stem.chars().count() >= 4 && list.contains(stem)) {
        return Err(PasswordProblem::Common);
    }
    let email = email.to_lowercase();
    let local = email.split('@').next().unwrap_or_default();
    if !email.is_empty() && (lower.contains(&email) || (local.len() >= 4 && lower.contains(local)))
    {
        return Err(PasswordProblem::ContainsEmail);
    }
    Ok(())
}

/// Why an email address is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a valid email address")]
pub struct EmailProblem;

/// Normalises an email address for storage and lookup: trimmed, lower-cased, one `@` with
/// something on both sides, no spaces or control characters, at most 254 bytes.
pub fn normalize_email(raw: &str) -> Result<String, EmailProblem> {
    let email = raw.trim().to_lowercase();
    let valid = email.len() <= 254
        && email
            .split_once('@')
            .is_some_and(|(l, d)| !l.is_empty() && !d.is_empty() && !d.contains('@'))
        && !email.chars().any(|c| c.is_whitespace() || c.is_control());
    if valid { Ok(email) } else { Err(EmailProblem) }
}

/// How repeated sign-in failures are slowed down, for one throttle scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThrottleRule {
    /// Failures allowed before any delay.
    pub free: u32,
    /// Delay after the first failure beyond `free`; it doubles with each further one.
    pub base: Duration,
    /// The delay never grows beyond this, so no one is locked out for good.
    pub max: Duration,
    /// Failures older than this are forgotten.
    pub window: Duration,
}

impl ThrottleRule {
    /// How long sign-in stays closed after the `failures`-th failure in the window.
    pub fn delay_after(&self, failures: u32) -> Duration {
        if failures <= self.free {
            return Duration::ZERO;
        }
        let doublings = (failures - self.free - 1).min(20);
        self.base.saturating_mul(1 << doublings).min(self.max)
    }
}

/// The three throttle scopes. The pair (account, client address) is throttled hardest: it
/// is what a guessing attacker uses. The account alone is throttled gently and briefly, so a
/// stranger failing on purpose can slow a real user down by seconds, never lock them out.
/// The client address alone catches one address spraying many accounts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThrottlePolicy {
    /// Account and client address together.
    pub pair: ThrottleRule,
    /// Account, from any address.
    pub account: ThrottleRule,
    /// Client address, for any account.
    pub client: ThrottleRule,
}

impl Default for ThrottlePolicy {
    fn default() -> Self {
        Self {
            pair: ThrottleRule {
                free: 5,
                base: Duration::from_secs(1),
                max: Duration::from_secs(15 * 60),
                window: Duration::from_secs(24 * 3600),
            },
            account: ThrottleRule {
                free: 20,
                base: Duration::from_secs(1),
                max: Duration::from_secs(30),
                window: Duration::from_secs(3600),
            },
            client: ThrottleRule {
                free: 50,
                base: Duration::from_secs(1),
                max: Duration::from_secs(15 * 60),
                window: Duration::from_secs(3600),
            },
        }
    }
}

/// The network a sign-in came from, for "have we seen this before": the /24 of an IPv4
/// address, the /48 of an IPv6 one (an IPv4-mapped address counts as IPv4).
pub fn sign_in_network(ip: std::net::IpAddr) -> String {
    use std::net::IpAddr;
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    };
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            format!("{a}.{b}.{c}.0/24")
        }
        IpAddr::V6(v6) => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}::/48", s[0], s[1], s[2])
        }
    }
}

/// The family of a user agent: the browser (Edge, Opera, Firefox, Chrome, Safari) or, for
/// anything else, its first product name (`curl`, `python-requests`, `warden`), lower-cased
/// and at most 40 characters; `unknown` when there is none.
pub fn agent_family(user_agent: Option<&str>) -> String {
    let ua = user_agent.unwrap_or_default();
    for (marker, family) in [
        ("Edg/", "Edge"),
        ("OPR/", "Opera"),
        ("Firefox/", "Firefox"),
        ("Chrome/", "Chrome"),
        ("Chromium/", "Chrome"),
        ("Safari/", "Safari"),
    ] {
        if ua.contains(marker) {
            return family.to_owned();
        }
    }
    let product: String = ua
        .split(['/', ' '])
        .next()
        .unwrap_or_default()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        .take(40)
        .collect::<String>()
        .to_ascii_lowercase();
    if product.is_empty() {
        "unknown".to_owned()
    } else {
        product
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_common_and_email_passwords_are_refused() {
        assert_eq!(
            check_password("short", "a@b.c"),
            Err(PasswordProblem::TooShort)
        );
        assert_eq!(
            check_password("qwerty123456", "a@b.c"),
            Err(PasswordProblem::Common)
        );
        assert_eq!(
            check_password("Password2024!!", "a@b.c"),
            Err(PasswordProblem::Common)
        );
        assert_eq!(
            check_password("alice.smith-is-me", "Alice.Smith@example.com"),
            Err(PasswordProblem::ContainsEmail)
        );
        assert_eq!(
            check_password(&"x".repeat(257), "a@b.c"),
            Err(PasswordProblem::TooLong)
        );
        assert_eq!(check_password("violet tractor 93 lagoon", "a@b.c"), Ok(()));
    }

    #[test]
    fn emails_are_normalised_and_nonsense_refused() {
        assert_eq!(
            normalize_email("  Alice@Example.COM ").as_deref(),
            Ok("alice@example.com")
        );
        for bad in [
            "",
            "alice",
            "@example.com",
            "alice@",
            "a@b@c",
            "a b@c.d",
            "a\u{0}@b.c",
        ] {
            assert_eq!(normalize_email(bad), Err(EmailProblem), "{bad:?}");
        }
    }

    #[test]
    fn throttle_delays_grow_and_stay_bounded() {
        let rule = ThrottlePolicy::default().pair;
        assert_eq!(rule.delay_after(5), Duration::ZERO);
        assert_eq!(rule.delay_after(6), Duration::from_secs(1));
        assert_eq!(rule.delay_after(7), Duration::from_secs(2));
        assert_eq!(rule.delay_after(9), Duration::from_secs(8));
        assert_eq!(rule.delay_after(1_000), Duration::from_secs(900));
        let account = ThrottlePolicy::default().account;
        assert_eq!(account.delay_after(u32::MAX), Duration::from_secs(30));
    }

    #[test]
    fn sign_ins_are_grouped_by_network_and_agent_family() {
        let ip = |s: &str| s.parse::<std::net::IpAddr>().unwrap();
        assert_eq!(sign_in_network(ip("203.0.113.77")), "203.0.113.0/24");
        assert_eq!(sign_in_network(ip("::ffff:203.0.113.9")), "203.0.113.0/24");
        assert_eq!(
            sign_in_network(ip("2001:db8:abcd:12::1")),
            "2001:db8:abcd::/48"
        );
        let chrome = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) \
                      Chrome/131.0.0.0 Safari/537.36";
        assert_eq!(agent_family(Some(chrome)), "Chrome");
        assert_eq!(
            agent_family(Some(&format!("{chrome} Edg/131.0.0.0"))),
            "Edge"
        );
        assert_eq!(
            agent_family(Some(
                "Mozilla/5.0 (X11; rv:133.0) Gecko/20100101 Firefox/133.0"
            )),
            "Firefox"
        );
        assert_eq!(agent_family(Some("curl/8.5.0")), "curl");
        assert_eq!(agent_family(Some("<script>/1")), "script");
        assert_eq!(agent_family(None), "unknown");
    }
}
