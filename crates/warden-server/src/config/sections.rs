//! The settings of each area, read from the checked layers and turned into typed
//! configuration. Types, ranges and defaults are the table's (`table.rs`); what is left here
//! is what one value means next to another and what a plain type cannot say (an address, a
//! URL scheme, a log filter).

use super::table::*;
use super::values::Values;
use super::*;

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn days(n: u64) -> Duration {
    Duration::from_secs(n * 86_400)
}

pub(super) fn build_license(v: &mut Values) -> Result<LicenseConfig, ConfigError> {
    Ok(LicenseConfig {
        public_key_file: v.path_opt(&LICENSE_PUBLIC_KEY_FILE)?,
        machine_id_file: v.path_opt(&LICENSE_MACHINE_ID_FILE)?,
        freshness_days: u32::try_from(v.whole(&LICENSE_FRESHNESS_DAYS)?).unwrap_or(u32::MAX),
        alert_hour: u8::try_from(v.whole(&LICENSE_ALERT_HOUR)?).unwrap_or(u8::MAX),
        public_host: None,
        embedded_keys: warden_core::license::EMBEDDED_OPERATOR_KEYS.to_owned(),
    })
}

pub(super) fn build_smtp(v: &mut Values) -> Result<SmtpConfig, ConfigError> {
    let url = v.secret_opt(&SMTP_URL)?;
    if let Some(u) = &url {
        let u = u.expose_secret();
        if !(u.starts_with("smtp://") || u.starts_with("smtps://")) {
            return Err(v.refuse(
                &SMTP_URL,
                "must start with smtp:// or smtps:// (for example smtp://127.0.0.1:25)",
            ));
        }
        if lettre::AsyncSmtpTransport::<lettre::Tokio1Executor>::from_url(u).is_err() {
            return Err(v.refuse(&SMTP_URL, "is not a usable SMTP URL"));
        }
        // Mail carries sign-in links (and the URL may carry a password): in the clear only
        // to this machine.
        let host = u
            .parse::<axum::http::Uri>()
            .ok()
            .and_then(|uri| uri.host().map(str::to_owned))
            .unwrap_or_default();
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let local = host == "localhost"
            || host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback());
        if u.starts_with("smtp://") && !u.contains("tls=required") && !local {
            return Err(v.refuse(
                &SMTP_URL,
                "sends mail unencrypted to another machine: use smtps://HOST (implicit TLS) or \
                 smtp://HOST:587?tls=required (STARTTLS)",
            ));
        }
    }
    let from = v.text(&SMTP_FROM)?;
    if from.parse::<lettre::Address>().is_err() {
        return Err(v.refuse(&SMTP_FROM, format!("'{from}' is not an email address")));
    }
    let ca_pem = read_ca_file(v, &SMTP_CA_FILE)?;
    if ca_pem
        .as_deref()
        .is_some_and(|pem| lettre::transport::smtp::client::Certificate::from_pem(pem).is_err())
    {
        return Err(v.refuse(&SMTP_CA_FILE, "holds no PEM certificate"));
    }
    Ok(SmtpConfig { url, from, ca_pem })
}

/// The PEM certificates in the file `setting` names, when set: refused unless it holds at
/// least one certificate and every PEM block in it is one.
pub(super) fn read_ca_file(
    v: &mut Values,
    setting: &'static Setting,
) -> Result<Option<Vec<u8>>, ConfigError> {
    let Some(path) = v.path_opt(setting)? else {
        return Ok(None);
    };
    let pem = std::fs::read(&path)
        .map_err(|e| v.refuse(setting, format!("cannot read {}: {e}", path.display())))?;
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let certs: Result<Vec<_>, _> = CertificateDer::pem_slice_iter(&pem).collect();
    if !certs.is_ok_and(|c| !c.is_empty()) {
        return Err(v.refuse(setting, "holds no PEM certificate"));
    }
    Ok(Some(pem))
}

pub(super) fn build_hosts(v: &mut Values) -> Result<HostsConfig, ConfigError> {
    let proxies = v.list(&HOSTS_TRUSTED_PROXIES)?;
    let trusted = warden_domain::hosts::AllowList::parse(proxies.iter().map(String::as_str))
        .map_err(|e| v.refuse(&HOSTS_TRUSTED_PROXIES, e.reason))?;
    let allow = v.list(&HOSTS_ALLOW_LIST)?;
    let allow_list = warden_domain::hosts::AllowList::parse(allow.iter().map(String::as_str))
        .map_err(|e| v.refuse(&HOSTS_ALLOW_LIST, e.reason))?;
    let cap = |n: Option<u64>| n.map(|n| u32::try_from(n).unwrap_or(u32::MAX));
    Ok(HostsConfig {
        trusted_proxies: trusted.networks().to_vec(),
        allow_list,
        max_session_hosts: cap(v.whole_opt(&HOSTS_MAX_SESSION_HOSTS)?),
        max_deploy_hosts: cap(v.whole_opt(&HOSTS_MAX_DEPLOY_HOSTS)?),
    })
}

pub(super) fn build_auth(v: &mut Values) -> Result<AuthConfig, ConfigError> {
    let issuer = v.text(&AUTH_ISSUER)?;
    if issuer.is_empty() || issuer.len() > 200 {
        return Err(v.refuse(
            &AUTH_ISSUER,
            "must be a non-empty string of at most 200 characters",
        ));
    }
    Ok(AuthConfig {
        access_token_ttl: secs(v.whole(&AUTH_ACCESS_TOKEN_MINUTES)? * 60),
        signing_key: {
            // Checked whichever algorithm is chosen: a bad size is a mistake either way.
            let bits = u32::try_from(v.whole(&AUTH_SIGNING_KEY_BITS)?).unwrap_or(u32::MAX);
            match v.text(&AUTH_SIGNING_ALGORITHM)?.as_str() {
                "RS256" => warden_crypto::jwt::KeyKind::Rs256(bits),
                _ => warden_crypto::jwt::KeyKind::Es256,
            }
        },
        refresh_grace: secs(v.whole(&AUTH_REFRESH_GRACE)?),
        session_lifetime: days(v.whole(&AUTH_SESSION_LIFETIME_DAYS)?),
        session_idle: days(v.whole(&AUTH_SESSION_IDLE_DAYS)?),
        multiple_active_sessions: v.switch(&AUTH_MULTIPLE_ACTIVE_SESSIONS)?,
        issuer,
    })
}

pub(super) fn build_database(
    v: &mut Values,
    data_dir: &Path,
) -> Result<DatabaseConfig, ConfigError> {
    let url = match v.secret_opt(&DATABASE_URL)? {
        Some(url) => url,
        None => {
            let url = format!("sqlite://{}", data_dir.join("warden.db").display());
            v.show(&DATABASE_URL, url.clone());
            SecretString::from(url)
        }
    };
    let backend = Backend::of_url(url.expose_secret()).map_err(|_| {
        v.refuse(
            &DATABASE_URL,
            "must start with sqlite:// (embedded) or postgres:// (cluster)",
        )
    })?;
    let owner_url = v.secret_opt(&DATABASE_OWNER_URL)?;
    if let Some(owner) = &owner_url
        && (backend != Backend::Postgres
            || Backend::of_url(owner.expose_secret()).ok() != Some(Backend::Postgres))
    {
        return Err(v.refuse(
            &DATABASE_OWNER_URL,
            "only used with PostgreSQL, and must be a postgres:// URL like database.url",
        ));
    }
    Ok(DatabaseConfig {
        url,
        owner_url,
        backend,
        max_connections: u32::try_from(v.whole(&DATABASE_MAX_CONNECTIONS)?).unwrap_or(u32::MAX),
        connect_timeout: secs(v.whole(&DATABASE_CONNECT_TIMEOUT)?),
    })
}

pub(super) fn build_http(v: &mut Values) -> Result<HttpConfig, ConfigError> {
    let size = |n: u64| usize::try_from(n).unwrap_or(usize::MAX);
    let max_connections = v.whole_opt(&HTTP_MAX_CONNECTIONS)?.map(size);
    let max_connections_per_ip = size(v.whole(&HTTP_MAX_CONNECTIONS_PER_IP)?);
    if max_connections.is_some_and(|max| max_connections_per_ip > max) {
        return Err(v.refuse(
            &HTTP_MAX_CONNECTIONS_PER_IP,
            "must be at most http.max_connections",
        ));
    }
    Ok(HttpConfig {
        body_limit_bytes: size(v.whole(&HTTP_BODY_LIMIT)?),
        request_timeout: secs(v.whole(&HTTP_REQUEST_TIMEOUT)?),
        shutdown_grace: secs(v.whole(&HTTP_SHUTDOWN_GRACE)?),
        header_read_timeout: secs(v.whole(&HTTP_HEADER_READ_TIMEOUT)?),
        body_read_timeout: secs(v.whole(&HTTP_BODY_READ_TIMEOUT)?),
        max_connections,
        max_connections_per_ip,
    })
}

pub(super) fn build_tls(v: &mut Values) -> Result<Option<TlsConfig>, ConfigError> {
    let cert = v.path_opt(&TLS_CERT_FILE)?;
    let key = v.path_opt(&TLS_KEY_FILE)?;
    Ok(match (cert, key) {
        (Some(cert_file), Some(key_file)) => Some(TlsConfig {
            cert_file,
            key_file,
        }),
        (None, None) => None,
        (Some(_), None) => {
            return Err(v.refuse(&TLS_CERT_FILE, "set tls.key_file too, or neither"));
        }
        (None, Some(_)) => {
            return Err(v.refuse(&TLS_KEY_FILE, "set tls.cert_file too, or neither"));
        }
    })
}

pub(super) fn build_audit(v: &mut Values) -> Result<AuditConfig, ConfigError> {
    Ok(AuditConfig {
        verify_interval: secs(v.whole(&AUDIT_VERIFY_INTERVAL)?),
        retention: days(v.whole(&AUDIT_RETENTION_DAYS)?),
    })
}

pub(super) fn build_log(v: &mut Values) -> Result<LogConfig, ConfigError> {
    let format = match v.text(&LOG_FORMAT)?.as_str() {
        "json" => LogFormat::Json,
        _ => LogFormat::Text,
    };
    let level = v.text(&LOG_LEVEL)?;
    if tracing_subscriber::EnvFilter::try_new(&level).is_err() {
        return Err(v.refuse(
            &LOG_LEVEL,
            format!("'{level}' is not a log filter such as info, debug or warden_server=debug"),
        ));
    }
    let otlp_endpoint = v.text_opt(&TRACES_OTLP_ENDPOINT)?;
    if let Some(url) = &otlp_endpoint {
        let ok = url
            .parse::<axum::http::Uri>()
            .is_ok_and(|u| matches!(u.scheme_str(), Some("http" | "https")) && u.host().is_some());
        if !ok {
            return Err(v.refuse(
                &TRACES_OTLP_ENDPOINT,
                "must be an http:// or https:// URL such as http://127.0.0.1:4318/v1/traces",
            ));
        }
    }
    Ok(LogConfig {
        format,
        level,
        otlp_endpoint,
    })
}

/// Where the master key comes from: the environment, a file, or (SQLite only) a key
/// generated in the data directory.
pub(super) fn build_key_source(
    v: &mut Values,
    data_dir: &Path,
    backend: Backend,
) -> Result<KeySource, ConfigError> {
    let env_name = ENCRYPTION_KEY.env();
    if v.is_set(&ENCRYPTION_KEY) && v.is_set(&ENCRYPTION_KEY_FILE) {
        return Err(ConfigError::new(format!(
            "{env_name} and encryption_key_file are both set; keep one"
        )));
    }
    let source = if let Some(value) = v.secret_opt(&ENCRYPTION_KEY)? {
        // The message names the variable and the fix, never the value.
        MasterKey::from_hex(value.expose_secret())
            .map_err(|e| ConfigError::new(format!("{env_name} {e}; {KEY_HINT}")))?;
        KeySource::Env(value)
    } else if let Some(path) = v.path_opt(&ENCRYPTION_KEY_FILE)? {
        KeySource::File(path)
    } else {
        match backend {
            Backend::Sqlite => KeySource::DataDir(data_dir.join(KEY_FILE_NAME)),
            Backend::Postgres => {
                return Err(ConfigError::new(format!(
                    "{env_name} is not set: with PostgreSQL the master key must come from your \
                     secret store ({env_name} or {}); {KEY_HINT}",
                    ENCRYPTION_KEY_FILE.env()
                )));
            }
        }
    };
    v.show(&ENCRYPTION_KEY, source.describe());
    Ok(source)
}

pub(super) fn build_automations(
    v: &mut Values,
) -> Result<warden_core::settings::AutomationsConfig, ConfigError> {
    let size = |n: u64| usize::try_from(n).unwrap_or(usize::MAX);
    let whole = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
    Ok(warden_core::settings::AutomationsConfig {
        webhook_body_limit: size(v.whole(&AUTOMATIONS_WEBHOOK_BODY_LIMIT)?),
        webhook_body_timeout: secs(v.whole(&AUTOMATIONS_WEBHOOK_BODY_TIMEOUT)?),
        webhook_rate_per_minute: whole(v.whole(&AUTOMATIONS_WEBHOOK_RATE)?),
        webhook_backlog: whole(v.whole(&AUTOMATIONS_WEBHOOK_BACKLOG)?),
        max_concurrent_runs: whole(v.whole(&AUTOMATIONS_MAX_CONCURRENT_RUNS)?),
        job_lease: secs(v.whole(&AUTOMATIONS_JOB_LEASE)?),
        job_attempts: i32::try_from(v.whole(&AUTOMATIONS_JOB_ATTEMPTS)?).unwrap_or(i32::MAX),
        run_jobs: v.switch(&AUTOMATIONS_RUN_JOBS)?,
    })
}

pub(super) fn build_tickets(
    v: &mut Values,
) -> Result<warden_core::settings::TicketsConfig, ConfigError> {
    Ok(warden_core::settings::TicketsConfig {
        allow_private_trackers: v.switch(&TICKETS_ALLOW_PRIVATE_TRACKERS)?,
        sync_every: Duration::from_secs(v.whole(&TICKETS_SYNC_EVERY)?),
    })
}

pub(super) fn build_llm(v: &mut Values) -> Result<warden_core::llm::LlmConfig, ConfigError> {
    Ok(warden_core::llm::LlmConfig {
        allow_private_upstreams: v.switch(&LLM_ALLOW_PRIVATE_UPSTREAMS)?,
        body_limit: usize::try_from(v.whole(&LLM_BODY_LIMIT)?).unwrap_or(usize::MAX),
        ..Default::default()
    })
}

pub(super) fn build_gateway_place(v: &mut Values) -> Result<GatewayPlace, ConfigError> {
    let listen = match v.text_opt(&LLM_LISTEN)? {
        Some(text) => Some(text.parse::<SocketAddr>().map_err(|_| {
            v.refuse(
                &LLM_LISTEN,
                format!("'{text}' is not an address like 127.0.0.1:8081 or [::1]:8081"),
            )
        })?),
        None => None,
    };
    let path_prefix = v.text(&LLM_PATH_PREFIX)?;
    if let Err(why) = check_path_prefix(&path_prefix, listen.is_some()) {
        return Err(v.refuse(&LLM_PATH_PREFIX, why));
    }
    let public_url = match v.text_opt(&LLM_PUBLIC_URL)? {
        Some(text) => Some(PublicUrl::parse(&text).map_err(|e| {
            ConfigError::new(e.to_string().replacen("public_url", "llm.public_url", 1))
        })?),
        None => None,
    };
    Ok(GatewayPlace {
        path_prefix,
        listen,
        public_url,
    })
}

/// A gateway path prefix: `/` and plain segments (letters, digits, `-`, `_`, `.`, `~`, not
/// `.` or `..`), no trailing `/`, at most 64 characters; empty only on its own listener
/// (where the gateway is all there is).
fn check_path_prefix(prefix: &str, own_listener: bool) -> Result<(), String> {
    if prefix.is_empty() {
        return if own_listener {
            Ok(())
        } else {
            Err(
                "may be empty only when the gateway has a listener of its own (llm.listen); \
                 write it like /llm or /ai/gateway"
                    .to_owned(),
            )
        };
    }
    let plain = |seg: &str| {
        !seg.is_empty()
            && seg != "."
            && seg != ".."
            && seg
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~'))
    };
    match prefix.strip_prefix('/') {
        Some(rest) if prefix.len() <= 64 && rest.split('/').all(plain) => Ok(()),
        _ => Err(format!(
            "'{prefix}' is not a path like /llm or /ai/gateway (a leading /, no trailing /, \
             segments of letters, digits, -, _, ., ~; at most 64 characters)"
        )),
    }
}
