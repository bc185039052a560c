//! The settings use cases run with, as configuration resolved them. The server's `config`
//! module reads them from the file and the environment and checks them against its settings
//! table, which also holds every default; here they are plain values.

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
    /// How old machine info and a licence's issue date may be (days).
    pub freshness_days: u32,
    /// Hour of the day (UTC) of the daily expiry-alert run.
    pub alert_hour: u8,
    /// The host of `public_url`: what an enterprise licence's domain binding is checked
    /// against (a request's `Host` header is the client's to choose).
    pub public_host: Option<String>,
    /// Operator public keys embedded in this build (PEM; empty when none): licences are then
    /// always enforced, whatever `public_key_file` says.
    pub embedded_keys: String,
}

/// Outgoing mail. With no URL, mail that would be sent is written to the log instead.
#[derive(Debug, Clone)]
pub struct SmtpConfig {
    /// `smtp://host:port`, `smtps://…` or `smtp://…?tls=required`, possibly with credentials.
    pub url: Option<SecretString>,
    /// The sender address.
    pub from: String,
    /// PEM certificates of a private CA to trust for the SMTP server (checked at start).
    pub ca_pem: Option<Vec<u8>>,
}

/// Where hosts may connect from.
#[derive(Debug, Clone)]
pub struct HostsConfig {
    /// Proxies whose `X-Forwarded-For` is believed (none: the socket peer counts).
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
    /// Access-token lifetime.
    pub access_token_ttl: Duration,
    /// What new signing keys are (ES256, or RS256 of 2048, 3072 or 4096 bits).
    pub signing_key: warden_crypto::jwt::KeyKind,
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

/// Automations, event sources and the work queue.
#[derive(Debug, Clone)]
pub struct AutomationsConfig {
    /// The largest webhook body accepted (bytes); checked before any signature.
    pub webhook_body_limit: usize,
    /// How long a webhook body may take to arrive before the connection is cut.
    pub webhook_body_timeout: Duration,
    /// Deliveries a new event source accepts per minute (each source can set its own).
    pub webhook_rate_per_minute: i64,
    /// Deliveries a new event source holds waiting at once (each source can set its own).
    pub webhook_backlog: i64,
    /// Runs of one workspace's automations whose sessions go on at once; more wait.
    pub max_concurrent_runs: i64,
    /// How long a node holds a claimed job before another may take it (heartbeats extend it
    /// while the job runs).
    pub job_lease: Duration,
    /// Attempts before a job is dead.
    pub job_attempts: i32,
    /// Whether this node runs queued jobs (a cluster may keep some nodes for intake and the
    /// API only; every node still schedules and takes webhooks).
    pub run_jobs: bool,
}

/// Ticket sync with outside trackers.
#[derive(Debug, Clone)]
pub struct TicketsConfig {
    /// Whether a workspace's tracker may be on a private or loopback address (a tracker
    /// inside the network), over `http://` too; link-local addresses are refused regardless.
    pub allow_private_trackers: bool,
    /// How often each synced workspace reads its tracker.
    pub sync_every: Duration,
}

impl Default for TicketsConfig {
    fn default() -> Self {
        Self {
            allow_private_trackers: false,
            sync_every: Duration::from_secs(300),
        }
    }
}

impl Default for AutomationsConfig {
    fn default() -> Self {
        Self {
            webhook_body_limit: 256 * 1024,
            webhook_body_timeout: Duration::from_secs(10),
            webhook_rate_per_minute: 60,
            webhook_backlog: 100,
            max_concurrent_runs: 4,
            job_lease: Duration::from_secs(60),
            job_attempts: 5,
            run_jobs: true,
        }
    }
}
