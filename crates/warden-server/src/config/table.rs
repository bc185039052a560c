//! Every setting Warden reads, declared once: its key in the TOML file, what it accepts and
//! its default. The environment variable that overrides it is derived from the key
//! (`http.body_limit_bytes` → `WARDEN_HTTP_BODY_LIMIT_BYTES`). Reading the file and the
//! environment, refusing unknown names, checking types and ranges, and `warden config check`
//! all follow this table (`values.rs`); the builders in `sections.rs` only turn checked values
//! into typed configuration. A test holds the README's settings tables to it.

/// One setting.
#[derive(Debug)]
pub struct Setting {
    /// Where it lives in the TOML file: `name` or `section.name`.
    pub key: &'static str,
    /// What values it accepts.
    pub kind: Kind,
    /// What applies when nothing sets it.
    pub default: Fallback,
    /// Whether the file may set it (the master key may come from the environment only).
    pub file: bool,
}

/// What a setting accepts. In the environment every kind is text (a list is comma-separated).
#[derive(Debug)]
pub enum Kind {
    /// A whole number from `min` to `max`, counted in `unit`.
    Whole {
        /// Smallest accepted.
        min: u64,
        /// Largest accepted.
        max: u64,
        /// What it counts (`seconds`, `bytes`, …), for messages.
        unit: &'static str,
    },
    /// One of a few whole numbers.
    WholeOf(&'static [u64]),
    /// `true` or `false` (also `1`/`0`, `on`/`off`, `yes`/`no` in the environment).
    Switch,
    /// One of a few words.
    Word(&'static [&'static str]),
    /// Text, checked by its builder (an address, a URL, a filter).
    Text,
    /// A file or directory.
    Path,
    /// A list of text entries.
    List,
    /// A URL that may carry a password: shown with the password masked.
    SecretUrl,
    /// A secret never shown at all.
    Secret,
}

/// What applies when nothing sets a setting.
#[derive(Debug)]
pub enum Fallback {
    /// This value, written as it would be in the environment.
    Value(&'static str),
    /// A value its builder works out from other settings (described here for people).
    Derived(&'static str),
    /// Nothing: the setting is optional.
    Optional,
}

impl Setting {
    /// The environment variable that sets it.
    pub fn env(&self) -> String {
        format!("WARDEN_{}", self.key.to_ascii_uppercase().replace('.', "_"))
    }
}

macro_rules! settings {
    ($($(#[$doc:meta])* $name:ident = $key:literal, $kind:expr, $default:expr $(, $place:ident)?;)*) => {
        $($(#[$doc])* pub const $name: Setting = Setting {
            key: $key,
            kind: $kind,
            default: $default,
            file: settings!(@file $($place)?),
        };)*
        /// Every setting, in the order `warden config check` and the README list them.
        pub const SETTINGS: &[&Setting] = &[$(&$name),*];
    };
    (@file) => { true };
    (@file env_only) => { false };
}

const SECONDS: Kind = Kind::Whole {
    min: 1,
    max: 3600,
    unit: "seconds",
};

settings! {
    /// Warden's files: the SQLite database and, on the embedded default, the generated key.
    DATA_DIR = "data_dir", Kind::Path, Fallback::Value("warden-data");
    /// Address to listen on (also `--listen`).
    LISTEN = "listen", Kind::Text, Fallback::Value("127.0.0.1:8080");
    /// The origin people and agents reach Warden at.
    PUBLIC_URL = "public_url", Kind::Text, Fallback::Optional;
    /// Where the other nodes reach this one (node-to-node calls).
    NODE_URL = "node_url", Kind::Text,
        Fallback::Derived("the listen address, unless it is 0.0.0.0 or ::");
    /// PEM certificates of a private CA the other nodes' certificates are checked against (on
    /// top of the system's roots), for nodes serving TLS with an internal certificate.
    NODE_CA_FILE = "node_ca_file", Kind::Path, Fallback::Optional;
    /// Whether `warden serve` also runs a host in its own process.
    LOCAL_HOST = "local_host", Kind::Switch, Fallback::Value("true");
    /// The master encryption key, 64 hex characters: from the environment only.
    ENCRYPTION_KEY = "encryption_key", Kind::Secret,
        Fallback::Derived("generated in <data_dir>/encryption.key (SQLite only)"), env_only;
    /// A file holding the master key.
    ENCRYPTION_KEY_FILE = "encryption_key_file", Kind::Path, Fallback::Optional;

    /// `sqlite://PATH` or `postgres://USER:PASSWORD@HOST:PORT/DB`.
    DATABASE_URL = "database.url", Kind::SecretUrl, Fallback::Derived("sqlite://<data_dir>/warden.db");
    /// PostgreSQL only: the role that owns Warden's tables, used to migrate them.
    DATABASE_OWNER_URL = "database.owner_url", Kind::SecretUrl, Fallback::Optional;
    /// Connection pool size.
    DATABASE_MAX_CONNECTIONS = "database.max_connections",
        Kind::Whole { min: 1, max: 1000, unit: "connections" }, Fallback::Value("10");
    /// How long to wait for the database.
    DATABASE_CONNECT_TIMEOUT = "database.connect_timeout_secs", SECONDS, Fallback::Value("5");

    /// Largest request body; larger ones get 413.
    HTTP_BODY_LIMIT = "http.body_limit_bytes",
        Kind::Whole { min: 1, max: 1 << 40, unit: "bytes" }, Fallback::Value("1048576");
    /// Longest a request may run; then 408.
    HTTP_REQUEST_TIMEOUT = "http.request_timeout_secs", SECONDS, Fallback::Value("30");
    /// How long in-flight requests may finish after a shutdown signal.
    HTTP_SHUTDOWN_GRACE = "http.shutdown_grace_secs", SECONDS, Fallback::Value("10");
    /// How long a client has to send a request's headers.
    HTTP_HEADER_READ_TIMEOUT = "http.header_read_timeout_secs", SECONDS, Fallback::Value("20");
    /// How long a request's body may take to arrive once its headers are in.
    HTTP_BODY_READ_TIMEOUT = "http.body_read_timeout_secs", SECONDS, Fallback::Value("20");
    /// Connections open at once (unset: what the open-files limit allows, less a reserve).
    HTTP_MAX_CONNECTIONS = "http.max_connections",
        Kind::Whole { min: 1, max: 1_000_000, unit: "connections" }, Fallback::Optional;
    /// Connections open at once from one client address (at most `http.max_connections`).
    HTTP_MAX_CONNECTIONS_PER_IP = "http.max_connections_per_ip",
        Kind::Whole { min: 1, max: 1_000_000, unit: "connections" }, Fallback::Value("1000");

    /// PEM certificate chain, leaf first (set with `tls.key_file`, or neither).
    TLS_CERT_FILE = "tls.cert_file", Kind::Path, Fallback::Optional;
    /// PEM private key.
    TLS_KEY_FILE = "tls.key_file", Kind::Path, Fallback::Optional;

    /// How often each node verifies the newly written part of the audit chain.
    AUDIT_VERIFY_INTERVAL = "audit.verify_interval_secs", SECONDS, Fallback::Value("60");
    /// How long audit events are kept; fewer than 90 days would discard history too early.
    AUDIT_RETENTION_DAYS = "audit.retention_days",
        Kind::Whole { min: 90, max: 36_500, unit: "days" }, Fallback::Value("90");

    /// Access-token lifetime.
    AUTH_ACCESS_TOKEN_MINUTES = "auth.access_token_minutes",
        Kind::Whole { min: 5, max: 60, unit: "minutes" }, Fallback::Value("15");
    /// What new signing keys are: ES256 (P-256, ~128-bit security, a signature costs tens of
    /// microseconds) or RS256 (RSA, for verifiers that know nothing else). Keys of the other
    /// kind already stored keep verifying until they retire.
    AUTH_SIGNING_ALGORITHM = "auth.signing_algorithm", Kind::Word(&["ES256", "RS256"]),
        Fallback::Value("ES256");
    /// RSA size of new RS256 signing keys: 2048-bit is ~112-bit security, 3072 ~128. Keys of
    /// another size already stored keep verifying until they retire.
    AUTH_SIGNING_KEY_BITS = "auth.signing_key_bits", Kind::WholeOf(&[2048, 3072, 4096]),
        Fallback::Value("3072");
    /// How soon a rotated refresh token may come back from the same client and get the same
    /// successor: long enough for racing refreshes, too short to help a thief.
    AUTH_REFRESH_GRACE = "auth.refresh_grace_secs",
        Kind::Whole { min: 0, max: 60, unit: "seconds" }, Fallback::Value("2");
    /// Absolute lifetime of a device session.
    AUTH_SESSION_LIFETIME_DAYS = "auth.session_lifetime_days",
        Kind::Whole { min: 1, max: 365, unit: "days" }, Fallback::Value("30");
    /// A device session unused this long ends.
    AUTH_SESSION_IDLE_DAYS = "auth.session_idle_days",
        Kind::Whole { min: 1, max: 365, unit: "days" }, Fallback::Value("7");
    /// When off, a sign-in ends the user's other sessions.
    AUTH_MULTIPLE_ACTIVE_SESSIONS = "auth.multiple_active_sessions", Kind::Switch,
        Fallback::Value("true");
    /// The `iss` of access tokens.
    AUTH_ISSUER = "auth.issuer", Kind::Text, Fallback::Value("warden");

    /// Proxies whose `X-Forwarded-For` is believed for host connections.
    HOSTS_TRUSTED_PROXIES = "hosts.trusted_proxies", Kind::List, Fallback::Optional;
    /// Networks every host must connect from, on top of its own list.
    HOSTS_ALLOW_LIST = "hosts.allow_list", Kind::List, Fallback::Optional;
    /// How many session hosts may be connected at once (unset: no limit).
    HOSTS_MAX_SESSION_HOSTS = "hosts.max_session_hosts",
        Kind::Whole { min: 0, max: u32::MAX as u64, unit: "hosts" }, Fallback::Optional;
    /// How many deploy hosts may be connected at once (unset: no limit).
    HOSTS_MAX_DEPLOY_HOSTS = "hosts.max_deploy_hosts",
        Kind::Whole { min: 0, max: u32::MAX as u64, unit: "hosts" }, Fallback::Optional;

    /// The largest webhook body accepted; larger ones get 413 before any signature work.
    AUTOMATIONS_WEBHOOK_BODY_LIMIT = "automations.webhook_body_limit_bytes",
        Kind::Whole { min: 1024, max: 16 << 20, unit: "bytes" }, Fallback::Value("262144");
    /// How long a webhook body may take to arrive.
    AUTOMATIONS_WEBHOOK_BODY_TIMEOUT = "automations.webhook_body_timeout_secs",
        Kind::Whole { min: 1, max: 120, unit: "seconds" }, Fallback::Value("10");
    /// Deliveries a new event source accepts per minute (each source may set its own).
    AUTOMATIONS_WEBHOOK_RATE = "automations.webhook_rate_per_minute",
        Kind::Whole { min: 1, max: 100_000, unit: "deliveries" }, Fallback::Value("60");
    /// Deliveries a new event source holds waiting at once, per node.
    AUTOMATIONS_WEBHOOK_BACKLOG = "automations.webhook_backlog",
        Kind::Whole { min: 1, max: 100_000, unit: "deliveries" }, Fallback::Value("100");
    /// Automation runs of one workspace whose sessions go on at once; more wait their turn.
    AUTOMATIONS_MAX_CONCURRENT_RUNS = "automations.max_concurrent_runs",
        Kind::Whole { min: 1, max: 10_000, unit: "runs" }, Fallback::Value("4");
    /// How long a node holds a job before another may take it (heartbeats extend it).
    AUTOMATIONS_JOB_LEASE = "automations.job_lease_secs",
        Kind::Whole { min: 2, max: 3600, unit: "seconds" }, Fallback::Value("60");
    /// Whether this node runs queued jobs (off: it only schedules, takes webhooks and serves).
    AUTOMATIONS_RUN_JOBS = "automations.run_jobs", Kind::Switch, Fallback::Value("true");
    /// Attempts before a job is dead.
    AUTOMATIONS_JOB_ATTEMPTS = "automations.job_attempts",
        Kind::Whole { min: 1, max: 100, unit: "attempts" }, Fallback::Value("5");

    /// Whether a workspace's ticket tracker may be on a private or loopback address (over
    /// http:// too); link-local addresses are refused regardless.
    TICKETS_ALLOW_PRIVATE_TRACKERS = "tickets.allow_private_trackers", Kind::Switch, Fallback::Value("false");
    /// How often each synced workspace reads its ticket tracker.
    TICKETS_SYNC_EVERY = "tickets.sync_every_secs",
        Kind::Whole { min: 1, max: 86_400, unit: "seconds" }, Fallback::Value("300");

    /// Whether workspaces may point LLM upstreams at private and loopback addresses (a model
    /// served inside the network); link-local addresses are refused regardless.
    LLM_ALLOW_PRIVATE_UPSTREAMS = "llm.allow_private_upstreams", Kind::Switch, Fallback::Value("false");
    /// The largest request body the LLM gateway accepts; larger ones get 413 before any
    /// upstream call.
    LLM_BODY_LIMIT = "llm.body_limit_bytes",
        Kind::Whole { min: 1024, max: 64 << 20, unit: "bytes" }, Fallback::Value("4194304");
    /// Where the gateway's endpoints are: `{prefix}/v1/…` (OpenAI) and
    /// `{prefix}/anthropic/v1/messages`. Empty only on a listener of the gateway's own.
    LLM_PATH_PREFIX = "llm.path_prefix", Kind::Text, Fallback::Value("/llm");
    /// A listener of the gateway's own (like 127.0.0.1:8081), serving nothing else; `listen`
    /// then serves no gateway. Unset: the gateway is on `listen`, under its prefix.
    LLM_LISTEN = "llm.listen", Kind::Text, Fallback::Optional;
    /// The origin sessions and clients reach the gateway at (sessions get it with the prefix).
    LLM_PUBLIC_URL = "llm.public_url", Kind::Text,
        Fallback::Derived("public_url, or the llm.listen address when that is set");

    /// The file holding the bearer token that opens `/metrics` (one word, at least 32
    /// characters); unset: metrics are off and `/metrics` answers 404.
    METRICS_TOKEN_FILE = "metrics.token_file", Kind::Path, Fallback::Optional;

    /// The operator's public key (PEM); unset: unlicensed, unless keys are built in.
    LICENSE_PUBLIC_KEY_FILE = "license.public_key_file", Kind::Path, Fallback::Optional;
    /// The operating system's machine identity.
    LICENSE_MACHINE_ID_FILE = "license.machine_id_file", Kind::Path,
        Fallback::Derived("/etc/machine-id, then /var/lib/dbus/machine-id");
    /// How old machine info and a licence's issue date may be at install.
    LICENSE_FRESHNESS_DAYS = "license.freshness_days",
        Kind::Whole { min: 1, max: 365, unit: "days" }, Fallback::Value("7");
    /// Hour (UTC) of the daily expiry-alert run.
    LICENSE_ALERT_HOUR = "license.alert_hour",
        Kind::Whole { min: 0, max: 23, unit: "hours" }, Fallback::Value("9");

    /// `smtp://host:port` or `smtps://…`; unset: mail is written to the log instead.
    SMTP_URL = "smtp.url", Kind::SecretUrl, Fallback::Optional;
    /// Sender address.
    SMTP_FROM = "smtp.from", Kind::Text, Fallback::Value("warden@localhost");
    /// PEM certificates of a private CA the SMTP server's certificate is checked against (on
    /// top of the system's roots), for a relay with an internal certificate.
    SMTP_CA_FILE = "smtp.ca_file", Kind::Path, Fallback::Optional;

    /// `text` or `json` (one object per line), to standard error.
    LOG_FORMAT = "log.format", Kind::Word(&["text", "json"]), Fallback::Value("text");
    /// A filter such as `info`, `debug` or `warden_server=debug,info`.
    LOG_LEVEL = "log.level", Kind::Text, Fallback::Value("info");
    /// Where `warden serve` sends a trace span for every request (OTLP over HTTP, protobuf:
    /// `http://collector:4318/v1/traces`); unset: no trace export.
    TRACES_OTLP_ENDPOINT = "traces.otlp_endpoint", Kind::Text, Fallback::Optional;
}

/// Environment variables Warden reads that are not settings of the server.
pub const OTHER_VARIABLES: &[(&str, &str)] = &[
    ("WARDEN_CONFIG", "the TOML configuration file"),
    ("WARDEN_WORKSPACE", "the workspace of `warden session`"),
];

/// The setting a file key or an environment variable names.
pub fn find(key: &str) -> Option<&'static Setting> {
    SETTINGS.iter().copied().find(|s| s.key == key)
}
