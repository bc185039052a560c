//! The settings of each area (licence, mail, hosts, sign-in): read from the file and the
//! environment, checked, and turned into their typed configuration.

use super::*;

pub(super) fn build_license(
    raw: FileLicense,
    env: &BTreeMap<String, String>,
) -> Result<LicenseConfig, ConfigError> {
    let path = |var: &str, file: Option<PathBuf>| {
        env.get(var)
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .or(file)
    };
    let freshness_days = env_or(
        env,
        "WARDEN_LICENSE_FRESHNESS_DAYS",
        raw.freshness_days,
        |v| v.parse().ok(),
        "a whole number of days",
    )?
    .unwrap_or(warden_domain::license::DEFAULT_FRESHNESS_DAYS);
    if !(1..=365).contains(&freshness_days) {
        return Err(ConfigError::new(
            "license.freshness_days: must be between 1 and 365",
        ));
    }
    let alert_hour = env_or(
        env,
        "WARDEN_LICENSE_ALERT_HOUR",
        raw.alert_hour,
        |v| v.parse().ok(),
        "an hour from 0 to 23",
    )?
    .unwrap_or(9);
    if alert_hour > 23 {
        return Err(ConfigError::new("license.alert_hour: must be from 0 to 23"));
    }
    Ok(LicenseConfig {
        public_key_file: path("WARDEN_LICENSE_PUBLIC_KEY_FILE", raw.public_key_file),
        machine_id_file: path("WARDEN_LICENSE_MACHINE_ID_FILE", raw.machine_id_file),
        freshness_days,
        alert_hour,
        public_host: None,
        embedded_keys: warden_core::license::EMBEDDED_OPERATOR_KEYS.to_owned(),
    })
}

pub(super) fn build_smtp(
    raw: FileSmtp,
    env: &BTreeMap<String, String>,
) -> Result<SmtpConfig, ConfigError> {
    let url = env
        .get("WARDEN_SMTP_URL")
        .cloned()
        .or(raw.url)
        .filter(|u| !u.trim().is_empty());
    if let Some(u) = &url
        && !(u.starts_with("smtp://") || u.starts_with("smtps://"))
    {
        return Err(ConfigError::new(
            "smtp.url: must start with smtp:// or smtps:// (for example smtp://127.0.0.1:25)",
        ));
    }
    let from = env
        .get("WARDEN_SMTP_FROM")
        .cloned()
        .or(raw.from)
        .unwrap_or_else(|| "warden@localhost".to_owned());
    if from.parse::<lettre::Address>().is_err() {
        return Err(ConfigError::new(format!(
            "smtp.from: '{}' is not an email address",
            from.trim()
        )));
    }
    Ok(SmtpConfig {
        url: url.map(SecretString::from),
        from,
    })
}

pub(super) fn build_hosts(
    raw: FileHosts,
    env: &BTreeMap<String, String>,
) -> Result<HostsConfig, ConfigError> {
    let list = |var: &str, file: Option<Vec<String>>| -> Vec<String> {
        match env.get(var) {
            Some(v) => v
                .split(',')
                .map(str::trim)
                .filter(|e| !e.is_empty())
                .map(str::to_owned)
                .collect(),
            None => file.unwrap_or_default(),
        }
    };
    let proxies = list("WARDEN_HOSTS_TRUSTED_PROXIES", raw.trusted_proxies);
    let allow = list("WARDEN_HOSTS_ALLOW_LIST", raw.allow_list);
    let trusted = warden_domain::hosts::AllowList::parse(proxies.iter().map(String::as_str))
        .map_err(|e| ConfigError::new(format!("hosts.trusted_proxies: {}", e.reason)))?;
    let allow_list = warden_domain::hosts::AllowList::parse(allow.iter().map(String::as_str))
        .map_err(|e| ConfigError::new(format!("hosts.allow_list: {}", e.reason)))?;
    let cap =
        |var: &str, file: Option<u32>, name: &str| -> Result<Option<u32>, ConfigError> {
            match env.get(var) {
                Some(v) => v.trim().parse::<u32>().map(Some).map_err(|_| {
                    ConfigError::new(format!("{name}: must be a whole number of hosts"))
                }),
                None => Ok(file),
            }
        };
    Ok(HostsConfig {
        trusted_proxies: trusted.networks().to_vec(),
        allow_list,
        max_session_hosts: cap(
            "WARDEN_HOSTS_MAX_SESSION_HOSTS",
            raw.max_session_hosts,
            "hosts.max_session_hosts",
        )?,
        max_deploy_hosts: cap(
            "WARDEN_HOSTS_MAX_DEPLOY_HOSTS",
            raw.max_deploy_hosts,
            "hosts.max_deploy_hosts",
        )?,
    })
}

pub(super) fn build_auth(
    raw: FileAuth,
    env: &BTreeMap<String, String>,
) -> Result<AuthConfig, ConfigError> {
    let d = AuthConfig::default();
    let number =
        |name: &str, file: Option<u64>, range: std::ops::RangeInclusive<u64>, setting: &str| {
            let v = env_or(env, name, file, |v| v.parse().ok(), "a whole number")?;
            match v {
                Some(v) if !range.contains(&v) => Err(ConfigError::new(format!(
                    "{setting}: must be between {} and {}, not {v}",
                    range.start(),
                    range.end()
                ))),
                other => Ok(other),
            }
        };
    let minutes = number(
        "WARDEN_AUTH_ACCESS_TOKEN_MINUTES",
        raw.access_token_minutes,
        5..=60,
        "auth.access_token_minutes",
    )?;
    let bits = env_or(
        env,
        "WARDEN_AUTH_SIGNING_KEY_BITS",
        raw.signing_key_bits,
        |v| v.parse().ok(),
        "a number of bits",
    )?
    .unwrap_or(d.signing_key_bits);
    if ![2048, 3072, 4096].contains(&bits) {
        return Err(ConfigError::new(format!(
            "auth.signing_key_bits: must be 2048, 3072 or 4096, not {bits}"
        )));
    }
    let grace = number(
        "WARDEN_AUTH_REFRESH_GRACE_SECS",
        raw.refresh_grace_secs,
        0..=60,
        "auth.refresh_grace_secs",
    )?;
    let lifetime = number(
        "WARDEN_AUTH_SESSION_LIFETIME_DAYS",
        raw.session_lifetime_days,
        1..=365,
        "auth.session_lifetime_days",
    )?;
    let idle = number(
        "WARDEN_AUTH_SESSION_IDLE_DAYS",
        raw.session_idle_days,
        1..=365,
        "auth.session_idle_days",
    )?;
    let multiple = env_or(
        env,
        "WARDEN_AUTH_MULTIPLE_ACTIVE_SESSIONS",
        raw.multiple_active_sessions,
        |v| v.parse().ok(),
        "true or false",
    )?;
    let issuer = env
        .get("WARDEN_AUTH_ISSUER")
        .cloned()
        .or(raw.issuer)
        .unwrap_or(d.issuer);
    if issuer.trim().is_empty() || issuer.len() > 200 {
        return Err(ConfigError::new(
            "auth.issuer: must be a non-empty string of at most 200 characters",
        ));
    }
    Ok(AuthConfig {
        access_token_ttl: minutes.map_or(d.access_token_ttl, |m| Duration::from_secs(m * 60)),
        signing_key_bits: bits,
        refresh_grace: grace.map_or(d.refresh_grace, Duration::from_secs),
        session_lifetime: lifetime.map_or(d.session_lifetime, |v| Duration::from_secs(v * 86_400)),
        session_idle: idle.map_or(d.session_idle, |v| Duration::from_secs(v * 86_400)),
        multiple_active_sessions: multiple.unwrap_or(d.multiple_active_sessions),
        issuer,
    })
}

pub(super) fn build_database(
    raw: FileDatabase,
    env: &BTreeMap<String, String>,
    data_dir: &Path,
) -> Result<DatabaseConfig, ConfigError> {
    let url = env
        .get("WARDEN_DATABASE_URL")
        .cloned()
        .or(raw.url)
        .unwrap_or_else(|| format!("sqlite://{}", data_dir.join("warden.db").display()));
    let backend = Backend::of_url(&url).map_err(|_| {
        ConfigError::new(
            "database.url: must start with sqlite:// (embedded) or postgres:// (cluster)",
        )
    })?;
    let owner_url = env
        .get("WARDEN_DATABASE_OWNER_URL")
        .cloned()
        .or(raw.owner_url);
    if let Some(owner) = &owner_url
        && (backend != Backend::Postgres || Backend::of_url(owner).ok() != Some(Backend::Postgres))
    {
        return Err(ConfigError::new(
            "database.owner_url: only used with PostgreSQL, and must be a postgres:// URL like \
             database.url",
        ));
    }
    let max_connections = env_or(
        env,
        "WARDEN_DATABASE_MAX_CONNECTIONS",
        raw.max_connections,
        |v| v.parse().ok(),
        "a whole number",
    )?
    .unwrap_or(10);
    if !(1..=1000).contains(&max_connections) {
        return Err(ConfigError::new(
            "database.max_connections: must be between 1 and 1000",
        ));
    }
    let connect_timeout = secs(
        env_or(
            env,
            "WARDEN_DATABASE_CONNECT_TIMEOUT_SECS",
            raw.connect_timeout_secs,
            |v| v.parse().ok(),
            "a whole number of seconds",
        )?,
        5,
        "database.connect_timeout_secs",
    )?;

    Ok(DatabaseConfig {
        url: SecretString::from(url),
        owner_url: owner_url.map(SecretString::from),
        backend,
        max_connections,
        connect_timeout,
    })
}

pub(super) fn build_http(
    raw: FileHttp,
    env: &BTreeMap<String, String>,
) -> Result<HttpConfig, ConfigError> {
    let body_limit_bytes = env_or(
        env,
        "WARDEN_HTTP_BODY_LIMIT_BYTES",
        raw.body_limit_bytes,
        |v| v.parse().ok(),
        "a whole number of bytes",
    )?
    .unwrap_or(1024 * 1024);
    if body_limit_bytes == 0 {
        return Err(ConfigError::new("http.body_limit_bytes: must be above 0"));
    }
    let request_timeout = secs(
        env_or(
            env,
            "WARDEN_HTTP_REQUEST_TIMEOUT_SECS",
            raw.request_timeout_secs,
            |v| v.parse().ok(),
            "a whole number of seconds",
        )?,
        30,
        "http.request_timeout_secs",
    )?;
    let shutdown_grace = secs(
        env_or(
            env,
            "WARDEN_HTTP_SHUTDOWN_GRACE_SECS",
            raw.shutdown_grace_secs,
            |v| v.parse().ok(),
            "a whole number of seconds",
        )?,
        10,
        "http.shutdown_grace_secs",
    )?;
    let header_read_timeout = secs(
        env_or(
            env,
            "WARDEN_HTTP_HEADER_READ_TIMEOUT_SECS",
            raw.header_read_timeout_secs,
            |v| v.parse().ok(),
            "a whole number of seconds",
        )?,
        20,
        "http.header_read_timeout_secs",
    )?;
    let http_max_connections = env_or(
        env,
        "WARDEN_HTTP_MAX_CONNECTIONS",
        raw.max_connections,
        |v| v.parse().ok(),
        "a whole number of connections",
    )?
    .unwrap_or(10_000);
    let max_connections_per_ip = env_or(
        env,
        "WARDEN_HTTP_MAX_CONNECTIONS_PER_IP",
        raw.max_connections_per_ip,
        |v| v.parse().ok(),
        "a whole number of connections",
    )?
    .unwrap_or(1_000);
    if !(1..=1_000_000).contains(&http_max_connections) {
        return Err(ConfigError::new(
            "http.max_connections: must be between 1 and 1000000",
        ));
    }
    if max_connections_per_ip == 0 || max_connections_per_ip > http_max_connections {
        return Err(ConfigError::new(
            "http.max_connections_per_ip: must be at least 1 and at most http.max_connections",
        ));
    }

    Ok(HttpConfig {
        body_limit_bytes,
        request_timeout,
        shutdown_grace,
        header_read_timeout,
        max_connections: http_max_connections,
        max_connections_per_ip,
    })
}

pub(super) fn build_tls(
    raw: FileTls,
    env: &BTreeMap<String, String>,
) -> Result<Option<TlsConfig>, ConfigError> {
    let cert = env
        .get("WARDEN_TLS_CERT_FILE")
        .map(PathBuf::from)
        .or(raw.cert_file);
    let key = env
        .get("WARDEN_TLS_KEY_FILE")
        .map(PathBuf::from)
        .or(raw.key_file);
    Ok(match (cert, key) {
        (Some(cert_file), Some(key_file)) => Some(TlsConfig {
            cert_file,
            key_file,
        }),
        (None, None) => None,
        _ => {
            return Err(ConfigError::new(
                "tls: set both tls.cert_file and tls.key_file, or neither",
            ));
        }
    })
}

pub(super) fn build_audit(
    raw: FileAudit,
    env: &BTreeMap<String, String>,
) -> Result<AuditConfig, ConfigError> {
    let verify_interval = secs(
        env_or(
            env,
            "WARDEN_AUDIT_VERIFY_INTERVAL_SECS",
            raw.verify_interval_secs,
            |v| v.parse().ok(),
            "a whole number of seconds",
        )?,
        60,
        "audit.verify_interval_secs",
    )?;

    let retention_days = env_or(
        env,
        "WARDEN_AUDIT_RETENTION_DAYS",
        raw.retention_days,
        |v| v.parse().ok(),
        "a whole number of days",
    )?
    .unwrap_or(MIN_AUDIT_RETENTION_DAYS);
    if !(MIN_AUDIT_RETENTION_DAYS..=36_500).contains(&retention_days) {
        return Err(ConfigError::new(format!(
            "audit.retention_days: must be at least {MIN_AUDIT_RETENTION_DAYS} (and at most \
             36500); {retention_days} would discard audit history too early"
        )));
    }

    Ok(AuditConfig {
        verify_interval,
        retention: Duration::from_secs(retention_days * 86_400),
    })
}

pub(super) fn build_log(
    raw: FileLog,
    env: &BTreeMap<String, String>,
) -> Result<LogConfig, ConfigError> {
    let format = match env
        .get("WARDEN_LOG_FORMAT")
        .cloned()
        .or(raw.format)
        .as_deref()
        .map(str::trim)
    {
        None | Some("text") => LogFormat::Text,
        Some("json") => LogFormat::Json,
        Some(other) => {
            return Err(ConfigError::new(format!(
                "log.format: '{other}' is not one of: text, json"
            )));
        }
    };
    let level = env
        .get("WARDEN_LOG_LEVEL")
        .cloned()
        .or(raw.level)
        .unwrap_or_else(|| "info".to_owned());
    if tracing_subscriber::EnvFilter::try_new(&level).is_err() {
        return Err(ConfigError::new(format!(
            "log.level: '{level}' is not a log filter such as info, debug or warden_server=debug"
        )));
    }

    Ok(LogConfig { format, level })
}
