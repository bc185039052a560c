//! Configuration: defaults, then a TOML file, then `WARDEN_*` environment variables, then
//! command-line flags. Everything is validated here, at boot; a bad value stops boot with one
//! line that names the setting and the fix. Secrets are held as `SecretString` and every way
//! of printing the configuration redacts them.

mod public_url;
mod redacted;
mod sections;
pub use public_url::PublicUrl;
pub use redacted::redact_url;
pub mod table;
mod values;
use sections::{
    build_audit, build_auth, build_automations, build_database, build_gateway_place, build_hosts,
    build_http, build_key_source, build_license, build_llm, build_log, build_smtp, build_tickets,
    build_tls,
};
use values::Values;

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use warden_crypto::MasterKey;
use warden_store::Backend;

pub use warden_core::settings::{AuthConfig, HostsConfig, LicenseConfig, SmtpConfig};

/// Name of the generated key file inside the data directory (embedded SQLite only).
pub const KEY_FILE_NAME: &str = "encryption.key";

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

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
    /// How long a request's body may take to arrive once its headers are in; then 408 and
    /// the connection is closed.
    pub body_read_timeout: Duration,
    /// Most connections open at once; more wait in the kernel's accept queue. `None`: what
    /// the open-files limit allows ([`crate::http::serve::connection_budget`]).
    pub max_connections: Option<usize>,
    /// Most connections open at once from one client address (fairness).
    pub max_connections_per_ip: usize,
}

/// Where the LLM gateway is served (`llm.path_prefix`, `llm.listen`, `llm.public_url`); its
/// other settings are [`warden_core::llm::LlmConfig`].
#[derive(Debug, Clone)]
pub struct GatewayPlace {
    /// The path its endpoints are under: empty, or `/` and segments, without a trailing `/`.
    pub path_prefix: String,
    /// A listener of its own; `None`: the main listener serves it.
    pub listen: Option<SocketAddr>,
    /// The origin sessions and clients reach it at, when it is not worked out.
    pub public_url: Option<PublicUrl>,
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
    /// Where `warden serve` exports request traces (OTLP/HTTP), when set.
    pub otlp_endpoint: Option<String>,
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
    /// Where the other nodes reach this one, when set.
    pub node_url: Option<PublicUrl>,
    /// A private CA's certificates (PEM) trusted for the other nodes' TLS, when set.
    pub node_ca_pem: Option<Vec<u8>>,
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
    /// Automations, webhooks and the work queue.
    pub automations: warden_core::settings::AutomationsConfig,
    /// The LLM gateway.
    pub llm: warden_core::llm::LlmConfig,
    /// Where the LLM gateway is served.
    pub gateway: GatewayPlace,
    /// Ticket sync.
    pub tickets: warden_core::settings::TicketsConfig,
    /// Offline licensing.
    pub license: LicenseConfig,
    /// Whether `warden serve` also runs a host in its own process, so sessions work on a
    /// single machine with nothing else installed (default on).
    pub local_host: bool,
    /// Outgoing mail.
    pub smtp: SmtpConfig,
    /// Logging.
    pub log: LogConfig,
    /// Prometheus metrics: the file holding the token that opens `/metrics` (unset: off,
    /// and `/metrics` answers 404).
    pub metrics_token_file: Option<PathBuf>,
    /// What `warden config check` shows: each setting's effective value, secrets redacted.
    shown: toml::Table,
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
        let env: BTreeMap<String, String> = env
            .into_iter()
            .filter(|(name, _)| name.starts_with("WARDEN_"))
            .collect();
        let file = file
            .map(Path::to_path_buf)
            .or_else(|| env.get("WARDEN_CONFIG").map(PathBuf::from));
        let flags = [(&table::LISTEN, "--listen", overrides.listen.clone())];
        let mut values = Values::read(file.as_deref(), &env, &flags)?;
        build(&mut values)
    }

    /// The built-in defaults, as if nothing were configured (for tools and benchmarks).
    pub fn defaults() -> Result<Self, ConfigError> {
        Self::load(None, [], &Overrides::default())
    }
}

fn build(v: &mut Values) -> Result<Config, ConfigError> {
    let data_dir = v
        .path_opt(&table::DATA_DIR)?
        .filter(|d| !d.as_os_str().is_empty())
        .ok_or_else(|| v.refuse(&table::DATA_DIR, "must not be empty"))?;
    let listen_text = v.text(&table::LISTEN)?;
    let listen: SocketAddr = listen_text.parse().map_err(|_| {
        v.refuse(
            &table::LISTEN,
            format!("'{listen_text}' is not an address like 127.0.0.1:8080 or [::1]:8080"),
        )
    })?;
    let public_url = match v.text_opt(&table::PUBLIC_URL)? {
        Some(text) => Some(PublicUrl::parse(&text)?),
        None => None,
    };
    let node_url =
        match v.text_opt(&table::NODE_URL)? {
            Some(text) => Some(PublicUrl::parse(&text).map_err(|e| {
                ConfigError::new(e.to_string().replacen("public_url", "node_url", 1))
            })?),
            None => None,
        };
    let database = build_database(v, &data_dir)?;
    let encryption_key = build_key_source(v, &data_dir, database.backend)?;
    let mut license = build_license(v)?;
    license.public_host = public_url.as_ref().map(|u| u.host().to_owned());
    Ok(Config {
        listen,
        public_url,
        node_url,
        node_ca_pem: sections::read_ca_file(v, &table::NODE_CA_FILE)?,
        encryption_key,
        http: build_http(v)?,
        tls: build_tls(v)?,
        audit: build_audit(v)?,
        auth: build_auth(v)?,
        hosts: build_hosts(v)?,
        automations: build_automations(v)?,
        llm: build_llm(v)?,
        gateway: build_gateway_place(v)?,
        tickets: build_tickets(v)?,
        license,
        local_host: v.switch(&table::LOCAL_HOST)?,
        smtp: build_smtp(v)?,
        log: build_log(v)?,
        metrics_token_file: v.path_opt(&table::METRICS_TOKEN_FILE)?,
        database,
        data_dir,
        shown: v.take_shown(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use warden_crypto::jwt::KeyKind;

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
        assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(c.data_dir, PathBuf::from("warden-data"));
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
    fn the_llm_gateway_goes_where_it_is_told_and_nowhere_odd() {
        let at = |toml: &str| {
            load_toml(
                &format!("[llm]\n{toml}\n"),
                &[("WARDEN_ENCRYPTION_KEY", KEY)],
            )
        };
        let place = at("").unwrap().gateway;
        assert_eq!((place.path_prefix.as_str(), place.listen), ("/llm", None));
        let place = at("path_prefix = \"/ai/gate-way_1\"").unwrap().gateway;
        assert_eq!(place.path_prefix, "/ai/gate-way_1");
        // Empty (at the root) only on a listener of its own.
        let place = at("path_prefix = \"\"\nlisten = \"127.0.0.1:8081\"\npublic_url = \"https://llm.example.com\"")
            .unwrap()
            .gateway;
        assert_eq!(place.path_prefix, "");
        assert_eq!(place.listen, Some("127.0.0.1:8081".parse().unwrap()));
        assert_eq!(
            place.public_url.unwrap().to_string(),
            "https://llm.example.com"
        );
        for (bad, setting) in [
            ("path_prefix = \"\"", "llm.path_prefix"),
            ("path_prefix = \"llm\"", "llm.path_prefix"),
            ("path_prefix = \"/llm/\"", "llm.path_prefix"),
            ("path_prefix = \"/a//b\"", "llm.path_prefix"),
            ("path_prefix = \"/a/../api\"", "llm.path_prefix"),
            ("path_prefix = \"/a b\"", "llm.path_prefix"),
            ("path_prefix = \"/{x}\"", "llm.path_prefix"),
            ("listen = \"somewhere\"", "llm.listen"),
            (
                "public_url = \"https://x.example.com/llm\"",
                "llm.public_url",
            ),
        ] {
            let err = at(bad).unwrap_err().to_string();
            assert!(err.contains(setting), "{bad}: {err}");
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
                "WARDEN_AUTH_SIGNING_ALGORITHM",
                "HS256",
                "auth.signing_algorithm",
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
                ("WARDEN_AUTH_SIGNING_ALGORITHM", "RS256"),
                ("WARDEN_AUTH_SIGNING_KEY_BITS", "4096"),
            ]),
            &Overrides::default(),
        )
        .unwrap();
        assert_eq!(c.auth.access_token_ttl, Duration::from_secs(300));
        assert_eq!(c.auth.signing_key, KeyKind::Rs256(4096));
        let d = Config::load(None, env(&[]), &Overrides::default()).unwrap();
        assert_eq!(d.auth.access_token_ttl, Duration::from_secs(900));
        assert_eq!(d.auth.signing_key, KeyKind::Es256);
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

    #[test]
    fn every_setting_in_the_table_is_read_and_its_default_holds() {
        let mut values = Values::read(None, &BTreeMap::new(), &[]).unwrap();
        build(&mut values).unwrap();
        assert_eq!(values.unread(), Vec::<&str>::new());
        let mut envs = std::collections::BTreeSet::new();
        for s in table::SETTINGS {
            assert!(envs.insert(s.env()), "{} twice", s.env());
            assert!(
                !table::OTHER_VARIABLES.iter().any(|(n, _)| *n == s.env()),
                "{}",
                s.key
            );
        }
    }

    #[test]
    fn the_readme_documents_every_setting_under_its_names() {
        let readme = include_str!("../../../../README.md");
        for s in table::SETTINGS {
            if s.file {
                assert!(readme.contains(&format!("`{}`", s.key)), "{}", s.key);
            }
            assert!(readme.contains(&format!("`{}`", s.env())), "{}", s.env());
        }
    }

    #[test]
    fn an_empty_variable_clears_an_optional_setting_and_is_refused_for_one_with_a_default() {
        let c = load_toml(
            "[smtp]\nurl = \"smtp://127.0.0.1:25\"\n[hosts]\nallow_list = [\"10.0.0.0/8\"]\n",
            &[("WARDEN_SMTP_URL", " "), ("WARDEN_HOSTS_ALLOW_LIST", "")],
        )
        .unwrap();
        assert!(c.smtp.url.is_none());
        assert!(c.hosts.allow_list.entries().is_empty());
        let err = Config::load(None, env(&[("WARDEN_DATA_DIR", "")]), &Overrides::default())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("data_dir") && err.contains("unset WARDEN_DATA_DIR"),
            "{err}"
        );
        let err = Config::load(
            None,
            env(&[("WARDEN_ENCRYPTION_KEY", "")]),
            &Overrides::default(),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("WARDEN_ENCRYPTION_KEY"), "{err}");
    }

    #[test]
    fn a_value_of_the_wrong_type_in_the_file_names_the_setting_and_the_line() {
        for (text, expect) in [
            (
                "[http]\nrequest_timeout_secs = \"30\"\n",
                "http.request_timeout_secs: '30' is not a whole number of seconds (configuration file",
            ),
            (
                "\n[http]\nbody_limit_bytes = -1\n",
                "http.body_limit_bytes: must not be negative",
            ),
            (
                "local_host = \"yes\"\n",
                "local_host: 'yes' is not true or false",
            ),
            (
                "[hosts]\nallow_list = \"10.0.0.0/8\"\n",
                "hosts.allow_list: '10.0.0.0/8' is not a list",
            ),
            (
                "[auth]\nsigning_key_bits = 1024\n",
                "auth.signing_key_bits: must be one of 2048, 3072, 4096, not 1024",
            ),
        ] {
            let err = load_toml(text, &[]).unwrap_err().to_string();
            assert!(err.contains(expect), "{text}: {err}");
            assert!(err.contains("line "), "{err}");
        }
        let err = load_toml("\n[http]\nbody_limit_bytes = -1\n", &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("line 3"), "{err}");
        let err = load_toml("[database]\nmax_conections = 5\n", &[])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("database.max_conections") && err.contains("database.max_connections"),
            "{err}"
        );
        let err = load_toml("encryption_key = \"x\"\n", &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown setting 'encryption_key'"), "{err}");
    }

    #[test]
    fn the_check_output_lists_effective_values_by_section() {
        let c = load_toml(
            "[http]\nbody_limit_bytes = 2048\n",
            &[
                ("WARDEN_SMTP_URL", "smtp://mailer:hunter2@127.0.0.1:25"),
                ("WARDEN_LISTEN", "127.0.0.1:9100"),
            ],
        )
        .unwrap();
        let shown: toml::Table = toml::from_str(&c.redacted_toml()).unwrap();
        assert_eq!(shown["listen"].as_str(), Some("127.0.0.1:9100"));
        assert_eq!(shown["http"]["body_limit_bytes"].as_integer(), Some(2048));
        assert_eq!(shown["http"]["request_timeout_secs"].as_integer(), Some(30));
        assert_eq!(
            shown["smtp"]["url"].as_str(),
            Some("smtp://mailer:[redacted]@127.0.0.1:25")
        );
        assert_eq!(
            shown["database"]["url"].as_str(),
            Some("sqlite://warden-data/warden.db")
        );
        assert!(!c.redacted_toml().contains("hunter2"));
    }

    #[test]
    fn smtp_in_the_clear_is_refused_to_another_machine() {
        for (url, ok) in [
            ("smtp://127.0.0.1:25", true),
            ("smtp://localhost:2525", true),
            ("smtp://[::1]:25", true),
            ("smtps://mail.example.com", true),
            ("smtp://mail.example.com:587?tls=required", true),
            ("smtp://user:pw@mail.example.com:25", false),
            ("smtp://mail.example.com:587?tls=opportunistic", false),
        ] {
            let got = Config::load(
                None,
                env(&[("WARDEN_SMTP_URL", url)]),
                &Overrides::default(),
            );
            assert_eq!(got.is_ok(), ok, "{url}: {got:?}");
            if let Err(e) = got {
                assert!(!e.to_string().contains("pw@"), "{e}");
            }
        }
    }
}
