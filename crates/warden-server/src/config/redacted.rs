//! `warden config check`: the effective configuration as TOML, every secret redacted (the
//! master key only by where it comes from, database URLs with their passwords masked).

use serde::Serialize;

use super::*;

impl Config {
    /// The configuration as TOML, every secret redacted, for `warden config check`.
    pub fn redacted_toml(&self) -> String {
        let view = RedactedView {
            data_dir: self.data_dir.display().to_string(),
            listen: self.listen.to_string(),
            public_url: self.public_url.as_ref().map(ToString::to_string),
            encryption_key: self.encryption_key.describe(),
            database: RedactedDatabase {
                url: redact_url(self.database.url.expose_secret()),
                owner_url: self
                    .database
                    .owner_url
                    .as_ref()
                    .map(|u| redact_url(u.expose_secret())),
                backend: self.database.backend.name(),
                max_connections: self.database.max_connections,
                connect_timeout_secs: self.database.connect_timeout.as_secs(),
            },
            http: RedactedHttp {
                body_limit_bytes: self.http.body_limit_bytes,
                request_timeout_secs: self.http.request_timeout.as_secs(),
                shutdown_grace_secs: self.http.shutdown_grace.as_secs(),
                header_read_timeout_secs: self.http.header_read_timeout.as_secs(),
                max_connections: self.http.max_connections,
                max_connections_per_ip: self.http.max_connections_per_ip,
            },
            audit: RedactedAudit {
                verify_interval_secs: self.audit.verify_interval.as_secs(),
                retention_days: self.audit.retention.as_secs() / 86_400,
            },
            tls: self.tls.as_ref().map(|t| RedactedTls {
                cert_file: t.cert_file.display().to_string(),
                key_file: t.key_file.display().to_string(),
            }),
            auth: RedactedAuth {
                access_token_minutes: self.auth.access_token_ttl.as_secs() / 60,
                signing_key_bits: self.auth.signing_key_bits,
                refresh_grace_secs: self.auth.refresh_grace.as_secs(),
                session_lifetime_days: self.auth.session_lifetime.as_secs() / 86_400,
                session_idle_days: self.auth.session_idle.as_secs() / 86_400,
                multiple_active_sessions: self.auth.multiple_active_sessions,
                issuer: self.auth.issuer.clone(),
            },
            hosts: RedactedHosts {
                trusted_proxies: self
                    .hosts
                    .trusted_proxies
                    .iter()
                    .map(ToString::to_string)
                    .collect(),
                allow_list: self.hosts.allow_list.entries(),
                max_session_hosts: self.hosts.max_session_hosts,
                max_deploy_hosts: self.hosts.max_deploy_hosts,
            },
            local_host: self.local_host,
            license: RedactedLicense {
                public_key_file: self
                    .license
                    .public_key_file
                    .as_ref()
                    .map(|p| p.display().to_string()),
                machine_id_file: self
                    .license
                    .machine_id_file
                    .as_ref()
                    .map(|p| p.display().to_string()),
                freshness_days: self.license.freshness_days,
                alert_hour: self.license.alert_hour,
            },
            smtp: RedactedSmtp {
                url: self
                    .smtp
                    .url
                    .as_ref()
                    .map(|u| redact_url(u.expose_secret())),
                from: self.smtp.from.clone(),
            },
            log: RedactedLog {
                format: self.log.format,
                level: self.log.level.clone(),
            },
        };
        toml::to_string(&view).unwrap_or_else(|_| "# could not render configuration\n".to_owned())
    }
}

#[derive(Serialize)]
struct RedactedView {
    data_dir: String,
    listen: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    public_url: Option<String>,
    encryption_key: String,
    local_host: bool,
    database: RedactedDatabase,
    http: RedactedHttp,
    #[serde(skip_serializing_if = "Option::is_none")]
    tls: Option<RedactedTls>,
    audit: RedactedAudit,
    auth: RedactedAuth,
    hosts: RedactedHosts,
    license: RedactedLicense,
    smtp: RedactedSmtp,
    log: RedactedLog,
}

#[derive(Serialize)]
struct RedactedLicense {
    #[serde(skip_serializing_if = "Option::is_none")]
    public_key_file: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    machine_id_file: Option<String>,
    freshness_days: u32,
    alert_hour: u8,
}

#[derive(Serialize)]
struct RedactedSmtp {
    #[serde(skip_serializing_if = "Option::is_none")]
    url: Option<String>,
    from: String,
}

#[derive(Serialize)]
struct RedactedHosts {
    trusted_proxies: Vec<String>,
    allow_list: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_session_hosts: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_deploy_hosts: Option<u32>,
}

#[derive(Serialize)]
struct RedactedAuth {
    access_token_minutes: u64,
    signing_key_bits: u32,
    refresh_grace_secs: u64,
    session_lifetime_days: u64,
    session_idle_days: u64,
    multiple_active_sessions: bool,
    issuer: String,
}

#[derive(Serialize)]
struct RedactedAudit {
    verify_interval_secs: u64,
    retention_days: u64,
}

#[derive(Serialize)]
struct RedactedDatabase {
    url: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    owner_url: Option<String>,
    backend: &'static str,
    max_connections: u32,
    connect_timeout_secs: u64,
}

#[derive(Serialize)]
struct RedactedHttp {
    body_limit_bytes: usize,
    request_timeout_secs: u64,
    shutdown_grace_secs: u64,
    header_read_timeout_secs: u64,
    max_connections: usize,
    max_connections_per_ip: usize,
}

#[derive(Serialize)]
struct RedactedTls {
    cert_file: String,
    key_file: String,
}

#[derive(Serialize)]
struct RedactedLog {
    format: LogFormat,
    level: String,
}

/// A database URL with its password (in the userinfo or a `password=` parameter) masked.
pub fn redact_url(url: &str) -> String {
    let mut out = url.to_owned();
    if let Some(scheme_end) = out.find("://") {
        let rest_start = scheme_end + 3;
        let authority_end = out[rest_start..]
            .find(['/', '?', '#'])
            .map_or(out.len(), |i| rest_start + i);
        if let Some(at) = out[rest_start..authority_end].rfind('@') {
            let userinfo = &out[rest_start..rest_start + at];
            if let Some(colon) = userinfo.find(':') {
                let start = rest_start + colon + 1;
                out.replace_range(start..rest_start + at, "[redacted]");
            }
        }
    }
    if let Some(q) = out.find('?') {
        let (base, query) = out.split_at(q + 1);
        let masked = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=[redacted]"),
                _ => pair.to_owned(),
            })
            .collect::<Vec<_>>()
            .join("&");
        out = format!("{base}{masked}");
    }
    out
}
