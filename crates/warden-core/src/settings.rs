//! The settings use cases run with, as configuration resolved them. The server's `config`
//! module reads them from the file and the environment and checks them; here they are plain
//! values.

use std::path::PathBuf;
use std::time::Duration;

use secrecy::SecretString;

/// Operator public keys embedded at build time (`WARDEN_OPERATOR_KEYS_FILE`, see build.rs).
pub const EMBEDDED_OPERATOR_KEYS: &str =
    include_str!(concat!(env!("OUT_DIR"), "/operator_keys.pem"));

/// Offline licensing.
#[derive(Debug, Clone)]
pub struct LicenseConfig {
    /// The operator's public key (PEM). None: Warden runs unlicensed, every feature on.
    pub public_key_file: Option<PathBuf>,
    /// Where the operating system keeps its machine identity (default `/etc/machine-id`, then
    /// `/var/lib/dbus/machine-id`).
    pub machine_id_file: Option<PathBuf>,
    /// How old machine info and a licence's issue date may be (days, default 7).
    pub freshness_days: u32,
    /// Hour of the day (UTC) of the daily expiry-alert run (default 9).
    pub alert_hour: u8,
    /// The host of `public_url`: what an enterprise licence's domain binding is checked
    /// against (a request's `Host` header is the client's to choose).
    pub public_host: Option<String>,
    /// Operator public keys embedded in this build (PEM; empty when none): licences are then
    /// always enforced, whatever `public_key_file` says.
    pub embedded_keys: String,
}

impl Default for LicenseConfig {
    fn default() -> Self {
        Self {
            public_key_file: None,
            machine_id_file: None,
            freshness_days: warden_domain::license::DEFAULT_FRESHNESS_DAYS,
            alert_hour: 9,
            public_host: None,
            embedded_keys: EMBEDDED_OPERATOR_KEYS.to_owned(),
        }
    }
}

/// Outgoing mail. With no URL, mail that would be sent is written to the log instead.
#[derive(Debug, Clone, Default)]
pub struct SmtpConfig {
    /// `smtp://host:port`, `smtps://…` or `smtp://…?tls=required`, possibly with credentials.
    pub url: Option<SecretString>,
    /// The sender address.
    pub from: String,
}

/// Where hosts may connect from.
#[derive(Debug, Clone, Default)]
pub struct HostsConfig {
    /// Proxies whose `X-Forwarded-For` is believed (none by default: the socket peer counts).
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Networks every host must connect from, on top of its own list (empty: anywhere).
    pub allow_list: warden_domain::hosts::AllowList,
    /// How many session hosts may be connected at once (none: no limit). The licensing
    /// issue will feed this from the licence.
    pub max_session_hosts: Option<u32>,
    /// How many deploy hosts may be connected at once (none: no limit).
    pub max_deploy_hosts: Option<u32>,
}

/// Sign-in and token settings.
#[derive(Debug, Clone)]
pub struct AuthConfig {
    /// Access-token lifetime (5 to 60 minutes; 15 by default).
    pub access_token_ttl: Duration,
    /// RSA key size for new signing keys (2048, 3072 or 4096).
    pub signing_key_bits: u32,
    /// How long a rotated refresh token still yields the same successor (concurrent
    /// refreshes from one client), instead of counting as reuse.
    pub refresh_grace: Duration,
    /// Absolute lifetime of a device session.
    pub session_lifetime: Duration,
    /// A device session unused this long ends.
    pub session_idle: Duration,
    /// When off, a new sign-in ends the user's other sessions.
    pub multiple_active_sessions: bool,
    /// The `iss` of access tokens.
    pub issuer: String,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            access_token_ttl: Duration::from_secs(15 * 60),
            // 2048-bit RSA is ~112-bit security; 3072 is ~128. Keys of other sizes already
            // stored keep verifying until they retire.
            signing_key_bits: 3072,
            // Long enough for one client's racing refreshes, short enough to leave a thief
            // no time (and a replay from another client ends the family anyway).
            refresh_grace: Duration::from_secs(2),
            session_lifetime: Duration::from_secs(30 * 86_400),
            session_idle: Duration::from_secs(7 * 86_400),
            multiple_active_sessions: true,
            issuer: "warden".to_owned(),
        }
    }
}
