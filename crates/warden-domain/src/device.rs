//! The OAuth 2.0 device authorization grant (RFC 8628) as Warden uses it: for the CLI (a user
//! signs a terminal in) and for agents (an administrator enrols a host). Pure rules: the user
//! code's alphabet and form, the polling answers, what kind of grant was asked for.

/// The characters of a user code: consonants only (no vowels, so no words; nothing that
/// reads like a digit), as RFC 8628 § 6.1 suggests.
pub const USER_CODE_ALPHABET: &[u8; 20] = b"BCDFGHJKLMNPQRSTVWXZ";
/// Characters in a user code.
pub const USER_CODE_LEN: usize = 8;
/// How long a grant stays open, in seconds.
pub const EXPIRES_IN_SECS: i64 = 600;
/// The polling interval given to the client, in seconds.
pub const INTERVAL_SECS: i64 = 5;
/// What a `slow_down` adds to the interval, in seconds.
pub const SLOW_DOWN_SECS: i64 = 5;
/// Wrong user codes accepted per minute, per browser session and per address.
pub const MAX_WRONG_CODES_PER_MINUTE: u32 = 5;
/// The grant type of the token request.
pub const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:device_code";
/// Prefix of device codes.
pub const DEVICE_CODE_PREFIX: &str = "wdc_";

/// What a device asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceKind {
    /// A terminal signing in as the approving user (`warden login --device`).
    User,
    /// A host agent enrolling; the approver chooses the workspaces it may serve.
    Host,
}

impl DeviceKind {
    /// As stored and sent.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Host => "host",
        }
    }

    /// Parses `user` or `host`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "user" => Some(Self::User),
            "host" => Some(Self::Host),
            _ => None,
        }
    }
}

/// Where a grant stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceStatus {
    /// Waiting for someone to approve or deny it.
    Pending,
    /// Approved; the device may redeem it once.
    Approved,
    /// Denied.
    Denied,
    /// Redeemed (used up).
    Redeemed,
}

impl DeviceStatus {
    /// As stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Approved => "approved",
            Self::Denied => "denied",
            Self::Redeemed => "redeemed",
        }
    }

    /// Parses a stored status (unknown ones read as redeemed: used up, fail closed).
    pub fn from_stored(s: &str) -> Self {
        match s {
            "pending" => Self::Pending,
            "approved" => Self::Approved,
            "denied" => Self::Denied,
            _ => Self::Redeemed,
        }
    }
}

/// The token endpoint's answers while a grant is not (or no longer) redeemable, as RFC 8628
/// § 3.5 names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PollError {
    /// Not decided yet.
    AuthorizationPending,
    /// Polled before the interval passed; the interval grows by 5 s.
    SlowDown,
    /// Past its 10 minutes.
    ExpiredToken,
    /// The user declined.
    AccessDenied,
    /// Unknown, already redeemed, or not a device code.
    InvalidGrant,
}

impl PollError {
    /// The `error` value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AuthorizationPending => "authorization_pending",
            Self::SlowDown => "slow_down",
            Self::ExpiredToken => "expired_token",
            Self::AccessDenied => "access_denied",
            Self::InvalidGrant => "invalid_grant",
        }
    }

    /// A sentence for people.
    pub fn description(self) -> &'static str {
        match self {
            Self::AuthorizationPending => "Waiting for the code to be approved.",
            Self::SlowDown => "Polling too fast: wait 5 seconds longer between requests.",
            Self::ExpiredToken => "The code expired; start again.",
            Self::AccessDenied => "The request was declined.",
            Self::InvalidGrant => "The device code is not valid (unknown or already used).",
        }
    }
}

/// A user code as typed (any case, with or without the dash or spaces) in its canonical
/// form `XXXXXXXX`, or `None` when it cannot be one.
pub fn normalize_user_code(typed: &str) -> Option<String> {
    let code: String = typed
        .chars()
        .filter(|c| !matches!(c, '-' | ' '))
        .map(|c| c.to_ascii_uppercase())
        .collect();
    (code.len() == USER_CODE_LEN && code.bytes().all(|b| USER_CODE_ALPHABET.contains(&b)))
        .then_some(code)
}

/// A canonical user code as shown: `XXXX-XXXX`.
pub fn display_user_code(code: &str) -> String {
    let (a, b) = code.split_at(code.len().min(4));
    format!("{a}-{b}")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn user_codes_are_read_however_they_are_typed_and_only_from_the_alphabet() {
        assert_eq!(normalize_user_code("bcdf-ghjk").unwrap(), "BCDFGHJK");
        assert_eq!(normalize_user_code(" BCDF GHJK ").unwrap(), "BCDFGHJK");
        assert_eq!(display_user_code("BCDFGHJK"), "BCDF-GHJK");
        for bad in [
            "BCDF-GHJ",
            "BCDF-GHJKL",
            "ABCD-GHJK",
            "BCD1-GHJK",
            "",
            "wdc_abc",
        ] {
            assert!(normalize_user_code(bad).is_none(), "{bad}");
        }
        assert_eq!(DeviceKind::parse("host"), Some(DeviceKind::Host));
        assert_eq!(DeviceStatus::from_stored("??"), DeviceStatus::Redeemed);
    }
}
