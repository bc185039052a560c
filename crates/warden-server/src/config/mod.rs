//! Configuration: defaults, then a TOML file, then `WARDEN_*` environment variables, then
//! command-line flags. Everything is validated here, at boot; a bad value stops boot with one
//! line that names the setting and the fix. Secrets are held as `SecretString` and every way
//! of printing the configuration redacts them.

mod public_url;
mod redacted;
mod sections;
pub use public_url::PublicUrl;
pub use redacted::redact_url;
use sections::{
    build_audit, build_auth, build_database, build_hosts, build_http, build_license, build_log,
    build_smtp, build_tls,
};

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use warden_crypto::MasterKey;
use warden_store::Backend;

pub use warden_core::settings::{AuthConfig, HostsConfig, LicenseConfig, SmtpConfig};

/// Default address: loopback only, so a fresh install is not exposed by accident.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// Default data directory, relative to the working directory.
pub const DEFAULT_DATA_DIR: &str = "warden-data";
/// Name of the generated key file inside the data directory (embedded SQLite only).
pub const KEY_FILE_NAME: &str = "encryption.key";

/// Every environment variable Warden reads, with the setting it sets.
pub const ENV_VARS: &[(&str, &str)] = &[
    ("WARDEN_CONFIG", "path of the TOML configuration file"),
    (
        "WARDEN_WORKSPACE",
        "the workspace of `warden session` (not a server setting)",
    ),
    ("WARDEN_DATA_DIR", "data_dir"),
    ("WARDEN_LISTEN", "listen"),
    ("WARDEN_PUBLIC_URL", "public_url"),
    ("WARDEN_DATABASE_URL", "database.url"),
    ("WARDEN_DATABASE_OWNER_URL", "database.owner_url"),
    (
        "WARDEN_DATABASE_MAX_CONNECTIONS",
        "database.max_connections",
    ),
    (
        "WARDEN_DATABASE_CONNECT_TIMEOUT_SECS",
        "database.connect_timeout_secs",
    ),
    (
        "WARDEN_ENCRYPTION_KEY",
        "the master encryption key (64 hex characters)",
    ),
    ("WARDEN_ENCRYPTION_KEY_FILE", "encryption_key_file"),
    ("WARDEN_HTTP_BODY_LIMIT_BYTES", "http.body_limit_bytes"),
    (
        "WARDEN_HTTP_REQUEST_TIMEOUT_SECS",
        "http.request_timeout_secs",
    ),
    (
        "WARDEN_HTTP_SHUTDOWN_GRACE_SECS",
        "http.shutdown_grace_secs",
    ),
    (
        "WARDEN_HTTP_HEADER_READ_TIMEOUT_SECS",
        "http.header_read_timeout_secs",
    ),
    ("WARDEN_HTTP_MAX_CONNECTIONS", "http.max_connections"),
    (
        "WARDEN_HTTP_MAX_CONNECTIONS_PER_IP",
        "http.max_connections_per_ip",
    ),
    ("WARDEN_TLS_CERT_FILE", "tls.cert_file"),
    ("WARDEN_TLS_KEY_FILE", "tls.key_file"),
    (
        "WARDEN_AUDIT_VERIFY_INTERVAL_SECS",
        "audit.verify_interval_secs",
    ),
    ("WARDEN_AUDIT_RETENTION_DAYS", "audit.retention_days"),
    (
        "WARDEN_AUTH_ACCESS_TOKEN_MINUTES",
        "auth.access_token_minutes",
    ),
    ("WARDEN_AUTH_SIGNING_KEY_BITS", "auth.signing_key_bits"),
    ("WARDEN_AUTH_REFRESH_GRACE_SECS", "auth.refresh_grace_secs"),
    (
        "WARDEN_AUTH_SESSION_LIFETIME_DAYS",
        "auth.session_lifetime_days",
    ),
    ("WARDEN_AUTH_SESSION_IDLE_DAYS", "auth.session_idle_days"),
    (
        "WARDEN_AUTH_MULTIPLE_ACTIVE_SESSIONS",
        "auth.multiple_active_sessions",
    ),
    ("WARDEN_AUTH_ISSUER", "auth.issuer"),
    (
        "WARDEN_HOSTS_TRUSTED_PROXIES",
        "hosts.trusted_proxies (comma-separated)",
    ),
    (
        "WARDEN_HOSTS_ALLOW_LIST",
        "hosts.allow_list (comma-separated)",
    ),
    ("WARDEN_HOSTS_MAX_SESSION_HOSTS", "hosts.max_session_hosts"),
    ("WARDEN_HOSTS_MAX_DEPLOY_HOSTS", "hosts.max_deploy_hosts"),
    ("WARDEN_LICENSE_PUBLIC_KEY_FILE", "license.public_key_file"),
    ("WARDEN_LICENSE_MACHINE_ID_FILE", "license.machine_id_file"),
    ("WARDEN_LICENSE_FRESHNESS_DAYS", "license.freshness_days"),
    ("WARDEN_LICENSE_ALERT_HOUR", "license.alert_hour"),
    ("WARDEN_LOCAL_HOST", "local_host"),
    ("WARDEN_SMTP_URL", "smtp.url"),
    ("WARDEN_SMTP_FROM", "smtp.from"),
    ("WARDEN_LOG_FORMAT", "log.format"),
    ("WARDEN_LOG_LEVEL", "log.level"),
];

/// The shortest audit retention Warden accepts, in days. The database enforces it too.
pub const MIN_AUDIT_RETENTION_DAYS: u64 = 90;

const KEY_HINT: &str = "generate one with `openssl rand -hex 32`";

/// A configuration problem: one line naming the setting and the fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(String);

impl ConfigError {
    fn new(msg: impl Into<String>) -> Self {
        Self(msg.into())
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    data_dir: Option<PathBuf>,
    listen: Option<String>,
    public_url: Option<String>,
    local_host: Option<bool>,
    encryption_key_file: Option<PathBuf>,
    #[serde(default)]
    database: FileDatabase,
    #[serde(default)]
    http: FileHttp,
    #[serde(default)]
    tls: FileTls,
    #[serde(default)]
    audit: FileAudit,
    #[serde(default)]
    auth: FileAuth,
    #[serde(default)]
    hosts: FileHosts,
    #[serde(default)]
    license: FileLicense,
    #[serde(default)]
    smtp: FileSmtp,
    #[serde(default)]
    log: FileLog,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileLicense {
    public_key_file: Option<PathBuf>,
    machine_id_file: Option<PathBuf>,
    freshness_days: Option<u32>,
    alert_hour: Option<u8>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSmtp {
    url: Option<String>,
    from: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileHosts {
    trusted_proxies: Option<Vec<String>>,
    allow_list: Option<Vec<String>>,
    max_session_hosts: Option<u32>,
    max_deploy_hosts: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileAuth {
    access_token_minutes: Option<u64>,
    signing_key_bits: Option<u32>,
    refresh_grace_secs: Option<u64>,
    session_lifetime_days: Option<u64>,
    session_idle_days: Option<u64>,
    multiple_active_sessions: Option<bool>,
    issuer: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileAudit {
    verify_interval_secs: Option<u64>,
    retention_days: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileDatabase {
    url: Option<String>,
    owner_url: Option<String>,
    max_connections: Option<u32>,
    connect_timeout_secs: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileHttp {
    body_limit_bytes: Option<usize>,
    request_timeout_secs: Option<u64>,
    shutdown_grace_secs: Option<u64>,
    header_read_timeout_secs: Option<u64>,
    max_connections: Option<usize>,
    max_connections_per_ip: Option<usize>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileTls {
    cert_file: Option<PathBuf>,
    key_file: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileLog {
    format: Option<String>,
    level: Option<String>,
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines (the default).
    Text,
    /// One JSON object per line.
    Json,
}

/// Where the master encryption key comes from.
#[derive(Clone)]
pub enum KeySource {
    /// `WARDEN_ENCRYPTION_KEY`, already checked to be 64 hex characters.
    Env(SecretString),
    /// A file holding 64 hex characters (`encryption_key_file`).
    File(PathBuf),
    /// Embedded default: `<data_dir>/encryption.key`, generated on first start.
    DataDir(PathBuf),
}

impl fmt::Debug for KeySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe())
    }
}

impl KeySource {
    fn describe(&self) -> String {
        match self {
            Self::Env(_) => "[redacted] (from WARDEN_ENCRYPTION_KEY)".to_owned(),
            Self::File(p) => format!("[redacted] (from file {})", p.display()),
            Self::DataDir(p) => format!("[redacted] (generated file {})", p.display()),
        }
    }
}

/// Database settings.
#[derive(Clone)]
pub struct DatabaseConfig {
    /// `sqlite://…` or `postgres://…`; may hold a password, so it is secret.
    pub url: SecretString,
    /// PostgreSQL only: a role that owns Warden's tables, used to migrate them. Warden serves
    /// through `url`, a role that owns nothing, so that row-level security binds it.
    pub owner_url: Option<SecretString>,
    /// Which backend the URL names.
    pub backend: Backend,
    /// Pool size.
    pub max_connections: u32,
    /// How long to wait for the database at boot and per connection.
    pub connect_timeout: Duration,
}

impl fmt::Debug for DatabaseConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DatabaseConfig")
            .field("url", &redact_url(self.url.expose_secret()))
            .field(
                "owner_url",
                &self
                    .owner_url
                    .as_ref()
                    .map(|u| redact_url(u.expose_secret())),
            )
            .field("max_connections", &self.max_connections)
            .finish()
    }
}

/// HTTP limits.
#[derive(Debug, Clone)]
pub struct HttpConfig {
    /// Largest accepted request body.
    pub body_limit_bytes: usize,
    /// Longest a request may take before it is answered 408.
    pub request_timeout: Duration,
    /// How long in-flight requests may run on after a shutdown signal.
    pub shutdown_grace: Duration,
    /// How long a client has to send a request's headers, counted from the connection's
    /// start or from the end of its previous response (so it also ends idle keep-alive
    /// connections); also bounds the TLS handshake.
    pub header_read_timeout: Duration,
    /// Most connections open at once; more wait in the kernel's accept queue.
    pub max_connections: usize,
    /// Most connections open at once from one client address (fairness).
    pub max_connections_per_ip: usize,
}

/// TLS certificate and key files (PEM).
#[derive(Debug, Clone)]
pub struct TlsConfig {
    /// Certificate chain, leaf first.
    pub cert_file: PathBuf,
    /// Private key.
    pub key_file: PathBuf,
}

/// Audit trail settings.
#[derive(Debug, Clone)]
pub struct AuditConfig {
    /// How often each node verifies the newly written part of the chain.
    pub verify_interval: Duration,
    /// How long events are kept (at least 90 days).
    pub retention: Duration,
}

/// Logging settings.
#[derive(Debug, Clone)]
pub struct LogConfig {
    /// Text or JSON.
    pub format: LogFormat,
    /// A `tracing` filter such as `info` or `warden_server=debug,info`.
    pub level: String,
}

/// The effective, validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where Warden keeps its files (SQLite database, generated key).
    pub data_dir: PathBuf,
    /// Address to listen on.
    pub listen: SocketAddr,
    /// The address people and agents reach Warden at (behind a proxy, not `listen`), when
    /// set: what a licence's domain binding is checked against, never a request's `Host`.
    pub public_url: Option<PublicUrl>,
    /// Database settings.
    pub database: DatabaseConfig,
    /// Where the master encryption key comes from.
    pub encryption_key: KeySource,
    /// HTTP limits.
    pub http: HttpConfig,
    /// TLS, when Warden terminates it itself.
    pub tls: Option<TlsConfig>,
    /// Audit trail.
    pub audit: AuditConfig,
    /// Sign-in and tokens.
    pub auth: AuthConfig,
    /// Host connections.
    pub hosts: HostsConfig,
    /// Offline licensing.
    pub license: LicenseConfig,
    /// Whether `warden serve` also runs a host in its own process, so sessions work on a
    /// single machine with nothing else installed (default on).
    pub local_host: bool,
    /// Outgoing mail.
    pub smtp: SmtpConfig,
    /// Logging.
    pub log: LogConfig,
}

/// Values given on the command line; they win over everything else.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// `--listen`.
    pub listen: Option<String>,
}

impl Config {
    /// Loads the configuration from an optional TOML file, the given environment (name,
    /// value pairs; only `WARDEN_*` names are read) and command-line overrides.
    pub fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
        overrides: &Overrides,
    ) -> Result<Self, ConfigError> {
        let env = read_env(env)?;
        let file = file
            .map(Path::to_path_buf)
            .or_else(|| env.get("WARDEN_CONFIG").map(PathBuf::from));
        let raw = match &file {
            Some(path) => parse_file(path)?,
            None => FileConfig::default(),
        };
        build(raw, &env, overrides)
    }
}

fn read_env(
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<BTreeMap<String, String>, ConfigError> {
    let mut out = BTreeMap::new();
    for (name, value) in env {
        if !name.starts_with("WARDEN_") {
            continue;
        }
        if !ENV_VARS.iter().any(|(known, _)| *known == name) {
            return Err(ConfigError::new(format!(
                "unknown environment variable {name}; Warden reads only: {}",
                ENV_VARS
                    .iter()
                    .map(|(n, _)| *n)
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        out.insert(name, value);
    }
    Ok(out)
}

fn parse_file(path: &Path) -> Result<FileConfig, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        ConfigError::new(format!(
            "cannot read configuration file {}: {e}",
            path.display()
        ))
    })?;
    toml::from_str(&text).map_err(|e| {
        let what = e.message().replace('\n', " ");
        let at = e
            .span()
            .map(|s| {
                let line = text[..s.start.min(text.len())].matches('\n').count() + 1;
                format!(" (line {line})")
            })
            .unwrap_or_default();
        ConfigError::new(format!("configuration file {}{at}: {what}", path.display()))
    })
}

fn env_or<T>(
    env: &BTreeMap<String, String>,
    name: &str,
    file: Option<T>,
    parse: impl Fn(&str) -> Option<T>,
    expect: &str,
) -> Result<Option<T>, ConfigError> {
    match env.get(name) {
        Some(v) => parse(v.trim())
            .map(Some)
            .ok_or_else(|| ConfigError::new(format!("{name}: '{}' is not {expect}", v.trim()))),
        None => Ok(file),
    }
}

fn build(
    raw: FileConfig,
    env: &BTreeMap<String, String>,
    overrides: &Overrides,
) -> Result<Config, ConfigError> {
    let data_dir = env
        .get("WARDEN_DATA_DIR")
        .map(PathBuf::from)
        .or(raw.data_dir)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR));
    if data_dir.as_os_str().is_empty() {
        return Err(ConfigError::new("data_dir: must not be empty"));
    }

    let (listen_text, listen_from) = match (&overrides.listen, env.get("WARDEN_LISTEN"), raw.listen)
    {
        (Some(v), _, _) => (v.clone(), "--listen"),
        (None, Some(v), _) => (v.clone(), "WARDEN_LISTEN"),
        (None, None, Some(v)) => (v, "listen"),
        (None, None, None) => (DEFAULT_LISTEN.to_owned(), "listen"),
    };
    let listen: SocketAddr = listen_text.trim().parse().map_err(|_| {
        ConfigError::new(format!(
            "{listen_from}: '{}' is not an address like 127.0.0.1:8080 or [::1]:8080",
            listen_text.trim()
        ))
    })?;

    let public_url = env
        .get("WARDEN_PUBLIC_URL")
        .cloned()
        .or(raw.public_url)
        .map(|v| PublicUrl::parse(&v))
        .transpose()?;

    let database = build_database(raw.database, env, &data_dir)?;
    let encryption_key = key_source(env, raw.encryption_key_file, &data_dir, database.backend)?;

    let http = build_http(raw.http, env)?;

    let tls = build_tls(raw.tls, env)?;

    let audit = build_audit(raw.audit, env)?;

    let auth = build_auth(raw.auth, env)?;
    let hosts = build_hosts(raw.hosts, env)?;
    let mut license = build_license(raw.license, env)?;
    license.public_host = public_url.as_ref().map(|u| u.host().to_owned());
    let local_host = env_or(
        env,
        "WARDEN_LOCAL_HOST",
        raw.local_host,
        |v| match v {
            "true" | "1" | "on" => Some(true),
            "false" | "0" | "off" => Some(false),
            _ => None,
        },
        "true or false",
    )?
    .unwrap_or(true);
    let smtp = build_smtp(raw.smtp, env)?;

    let log = build_log(raw.log, env)?;

    Ok(Config {
        data_dir,
        listen,
        public_url,
        database,
        encryption_key,
        http,
        tls,
        audit,
        auth,
        hosts,
        license,
        local_host,
        smtp,
        log,
    })
}

fn secs(value: Option<u64>, default: u64, name: &str) -> Result<Duration, ConfigError> {
    let v = value.unwrap_or(default);
    if v == 0 || v > 3600 {
        return Err(ConfigError::new(format!(
            "{name}: must be between 1 and 3600 seconds"
        )));
    }
    Ok(Duration::from_secs(v))
}

fn key_source(
    env: &BTreeMap<String, String>,
    file_setting: Option<PathBuf>,
    data_dir: &Path,
    backend: Backend,
) -> Result<KeySource, ConfigError> {
    if let Some(value) = env.get("WARDEN_ENCRYPTION_KEY") {
        if env.contains_key("WARDEN_ENCRYPTION_KEY_FILE") {
            return Err(ConfigError::new(
                "WARDEN_ENCRYPTION_KEY and WARDEN_ENCRYPTION_KEY_FILE are both set; keep one",
            ));
        }
        MasterKey::from_hex(value)
            .map_err(|e| ConfigError::new(format!("WARDEN_ENCRYPTION_KEY {e}; {KEY_HINT}")))?;
        return Ok(KeySource::Env(SecretString::from(value.trim().to_owned())));
    }
    if let Some(path) = env
        .get("WARDEN_ENCRYPTION_KEY_FILE")
        .map(PathBuf::from)
        .or(file_setting)
    {
        return Ok(KeySource::File(path));
    }
    match backend {
        Backend::Sqlite => Ok(KeySource::DataDir(data_dir.join(KEY_FILE_NAME))),
        Backend::Postgres => Err(ConfigError::new(format!(
            "WARDEN_ENCRYPTION_KEY is not set: with PostgreSQL the master key must come from \
             your secret store (WARDEN_ENCRYPTION_KEY or WARDEN_ENCRYPTION_KEY_FILE); {KEY_HINT}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn load_toml(text: &str, vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let dir = tempfile_dir();
        let path = dir.join("warden.toml");
        std::fs::write(&path, text).unwrap();
        Config::load(Some(&path), env(vars), &Overrides::default())
    }

    fn tempfile_dir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!("warden-config-{}", uuid::Uuid::now_v7()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn no_configuration_at_all_gives_the_embedded_default() {
        let c = Config::load(None, env(&[]), &Overrides::default()).unwrap();
        assert_eq!(c.listen.to_string(), DEFAULT_LISTEN);
        assert_eq!(c.data_dir, PathBuf::from(DEFAULT_DATA_DIR));
        assert_eq!(c.database.backend, Backend::Sqlite);
        assert_eq!(
            c.database.url.expose_secret(),
            "sqlite://warden-data/warden.db"
        );
        assert!(
            matches!(c.encryption_key, KeySource::DataDir(ref p) if p.ends_with(KEY_FILE_NAME))
        );
        assert_eq!(c.log.format, LogFormat::Text);
        assert!(c.tls.is_none());
    }

    #[test]
    fn environment_overrides_the_file_and_flags_override_both() {
        let dir = tempfile_dir();
        let path = dir.join("warden.toml");
        std::fs::write(
            &path,
            "listen = \"127.0.0.1:9000\"\n[log]\nformat = \"json\"\n",
        )
        .unwrap();
        let c = Config::load(
            Some(&path),
            env(&[("WARDEN_LISTEN", "127.0.0.1:9001"), ("PATH", "/bin")]),
            &Overrides::default(),
        )
        .unwrap();
        assert_eq!(c.listen.port(), 9001);
        assert_eq!(c.log.format, LogFormat::Json);
        let c = Config::load(
            Some(&path),
            env(&[("WARDEN_LISTEN", "127.0.0.1:9001")]),
            &Overrides {
                listen: Some("127.0.0.1:9002".into()),
            },
        )
        .unwrap();
        assert_eq!(c.listen.port(), 9002);
    }

    #[test]
    fn unknown_keys_are_rejected_with_their_name() {
        let err = load_toml("listne = \"x\"\n", &[]).unwrap_err().to_string();
        assert!(err.contains("listne") && err.contains("line 1"), "{err}");
        let err = load_toml("[database]\nurll = \"x\"\n", &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("urll"), "{err}");
        let err = Config::load(None, env(&[("WARDEN_LISTNE", "x")]), &Overrides::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("WARDEN_LISTNE"), "{err}");
    }

    #[test]
    fn malformed_toml_names_the_file_and_line() {
        let err = load_toml("listen = \n[http\n", &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("warden.toml") && err.contains("line"), "{err}");
        assert!(!err.contains('\n'));
    }

    #[test]
    fn a_bad_encryption_key_names_the_variable_and_the_fix_but_not_the_value() {
        for bad in ["abc", &"z".repeat(64), &KEY[..63]] {
            let err = Config::load(
                None,
                env(&[("WARDEN_ENCRYPTION_KEY", bad)]),
                &Overrides::default(),
            )
            .unwrap_err()
            .to_string();
            assert!(err.contains("WARDEN_ENCRYPTION_KEY"), "{err}");
            assert!(err.contains("openssl rand -hex 32"), "{err}");
            assert!(!err.contains(bad), "{err}");
        }
    }

    #[test]
    fn postgres_without_a_key_is_refused() {
        let err = Config::load(
            None,
            env(&[("WARDEN_DATABASE_URL", "postgres://u:p@127.0.0.1/db")]),
            &Overrides::default(),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("WARDEN_ENCRYPTION_KEY is not set"), "{err}");
    }

    #[test]
    fn config_check_output_redacts_every_secret() {
        let c = Config::load(
            None,
            env(&[
                (
                    "WARDEN_DATABASE_URL",
                    "postgres://warden:s3cretpw@127.0.0.1:5432/w?password=other",
                ),
                ("WARDEN_ENCRYPTION_KEY", KEY),
            ]),
            &Overrides::default(),
        )
        .unwrap();
        let shown = c.redacted_toml();
        for secret in ["s3cretpw", "other", KEY] {
            assert!(!shown.contains(secret), "{shown}");
            assert!(!format!("{c:?}").contains(secret));
        }
        assert!(
            shown.contains("postgres://warden:[redacted]@127.0.0.1:5432/w"),
            "{shown}"
        );
        assert!(shown.contains("WARDEN_ENCRYPTION_KEY"), "{shown}");
    }

    #[test]
    fn urls_without_passwords_are_left_alone() {
        assert_eq!(
            redact_url("sqlite://warden-data/warden.db"),
            "sqlite://warden-data/warden.db"
        );
        assert_eq!(redact_url("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(
            redact_url("postgres://u:p@w@h/db"),
            "postgres://u:[redacted]@h/db"
        );
    }

    #[test]
    fn other_bad_values_name_their_setting() {
        type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a str);
        let cases: &[Case] = &[
            ("", &[("WARDEN_LISTEN", "nowhere")], "WARDEN_LISTEN"),
            ("", &[("WARDEN_DATABASE_URL", "mysql://x")], "database.url"),
            ("[tls]\ncert_file = \"c.pem\"\n", &[], "tls"),
            ("[log]\nformat = \"xml\"\n", &[], "log.format"),
            (
                "[http]\nrequest_timeout_secs = 0\n",
                &[],
                "http.request_timeout_secs",
            ),
            (
                "",
                &[("WARDEN_HTTP_BODY_LIMIT_BYTES", "lots")],
                "WARDEN_HTTP_BODY_LIMIT_BYTES",
            ),
        ];
        for (toml, vars, name) in cases {
            let err = load_toml(toml, vars).unwrap_err().to_string();
            assert!(err.contains(name), "{name}: {err}");
        }
    }

    #[test]
    fn auth_settings_are_bounded() {
        for (name, value, expect) in [
            (
                "WARDEN_AUTH_ACCESS_TOKEN_MINUTES",
                "4",
                "auth.access_token_minutes",
            ),
            (
                "WARDEN_AUTH_ACCESS_TOKEN_MINUTES",
                "61",
                "auth.access_token_minutes",
            ),
            (
                "WARDEN_AUTH_SIGNING_KEY_BITS",
                "1024",
                "auth.signing_key_bits",
            ),
            (
                "WARDEN_AUTH_REFRESH_GRACE_SECS",
                "61",
                "auth.refresh_grace_secs",
            ),
            (
                "WARDEN_AUTH_MULTIPLE_ACTIVE_SESSIONS",
                "maybe",
                "WARDEN_AUTH_MULTIPLE_ACTIVE_SESSIONS",
            ),
        ] {
            let err = Config::load(None, env(&[(name, value)]), &Overrides::default()).unwrap_err();
            assert!(err.to_string().contains(expect), "{name}={value}: {err}");
        }
        let c = Config::load(
            None,
            env(&[
                ("WARDEN_AUTH_ACCESS_TOKEN_MINUTES", "5"),
                ("WARDEN_AUTH_SIGNING_KEY_BITS", "4096"),
            ]),
            &Overrides::default(),
        )
        .unwrap();
        assert_eq!(c.auth.access_token_ttl, Duration::from_secs(300));
        assert_eq!(c.auth.signing_key_bits, 4096);
        let d = Config::load(None, env(&[]), &Overrides::default()).unwrap();
        assert_eq!(d.auth.access_token_ttl, Duration::from_secs(900));
        assert_eq!(d.auth.signing_key_bits, 3072);
        assert_eq!(d.auth.refresh_grace, Duration::from_secs(2));
        assert!(d.auth.multiple_active_sessions);
        assert!(d.redacted_toml().contains("access_token_minutes = 15"));
    }

    #[test]
    fn public_url_takes_an_origin_and_refuses_anything_else() {
        let u = PublicUrl::parse("https://Warden.Example.com:8443/").unwrap();
        assert_eq!(u.host(), "warden.example.com");
        assert_eq!(u.to_string(), "https://warden.example.com:8443");
        assert_eq!(
            PublicUrl::parse("http://127.0.0.1:8080").unwrap().host(),
            "127.0.0.1"
        );
        for bad in [
            "warden.example.com",
            "ftp://warden.example.com",
            "https://",
            "https://user:pw@warden.example.com",
            "https://warden.example.com/console",
            "https://warden.example.com/?x=1",
        ] {
            let err = PublicUrl::parse(bad).unwrap_err().to_string();
            assert!(err.starts_with("public_url:"), "{bad}: {err}");
        }
        let c = Config::load(
            None,
            env(&[("WARDEN_PUBLIC_URL", "https://warden.example.com")]),
            &Overrides::default(),
        )
        .unwrap();
        assert_eq!(c.license.public_host.as_deref(), Some("warden.example.com"));
        assert!(
            c.redacted_toml()
                .contains("public_url = \"https://warden.example.com\"")
        );
    }
}
