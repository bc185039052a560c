//! The outbound side: one pooled client per network policy (HTTP/1.1, and HTTP/2 where the
//! upstream offers it over TLS), with connect and read timeouts, no redirects, no proxy, and
//! the identity issue's SSRF rules — public addresses only unless the operator allowed
//! private upstreams, and link-local addresses (cloud metadata) never. Addresses are checked
//! where connections are made (the resolver drops forbidden ones) and in the URL itself.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use warden_oidc::http::{Guard, is_link_local, is_public};

/// The provider protocol an upstream speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// OpenAI (`https://api.openai.com/v1`).
    OpenAi,
    /// Anthropic (`https://api.anthropic.com`).
    Anthropic,
    /// Anything that speaks OpenAI's format (vLLM, Ollama, …) at its own base URL.
    OpenAiCompatible,
}

impl Kind {
    /// Its stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::OpenAi => "openai",
            Self::Anthropic => "anthropic",
            Self::OpenAiCompatible => "openai_compatible",
        }
    }

    /// From its stored name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "openai" => Some(Self::OpenAi),
            "anthropic" => Some(Self::Anthropic),
            "openai_compatible" => Some(Self::OpenAiCompatible),
            _ => None,
        }
    }

    /// The base URL a preset starts from.
    pub fn default_base_url(self) -> Option<&'static str> {
        match self {
            Self::OpenAi => Some("https://api.openai.com/v1"),
            Self::Anthropic => Some("https://api.anthropic.com"),
            Self::OpenAiCompatible => None,
        }
    }

    /// Whether it speaks Anthropic's format.
    pub fn is_anthropic(self) -> bool {
        self == Self::Anthropic
    }
}

/// Why an upstream cannot be called.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// The URL or its address is not allowed.
    #[error("refused: {0}")]
    Refused(String),
    /// Connection, timeout or protocol failure (no secret in the text).
    #[error("the upstream could not be reached")]
    Unreachable,
    /// The upstream took too long.
    #[error("the upstream did not answer in time")]
    Timeout,
}

/// Checks an upstream's base URL: `https` (or `http` where private networks are allowed),
/// a host, no credentials or query, and an address written in it must be allowed.
pub fn check_base_url(url: &str, allow_private: bool) -> Result<url::Url, UpstreamError> {
    let parsed = url::Url::parse(url).map_err(|_| UpstreamError::Refused("not a URL".into()))?;
    match parsed.scheme() {
        "https" => {}
        "http" if allow_private => {}
        other => {
            return Err(UpstreamError::Refused(format!(
                "{other}:// is not allowed; an upstream uses https"
            )));
        }
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(UpstreamError::Refused(
            "a base URL carries no credentials; the key is stored apart".into(),
        ));
    }
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Err(UpstreamError::Refused(
            "a base URL has no query or fragment".into(),
        ));
    }
    let ip = match parsed.host() {
        Some(url::Host::Ipv4(v4)) => Some(IpAddr::V4(v4)),
        Some(url::Host::Ipv6(v6)) => Some(IpAddr::V6(v6)),
        Some(url::Host::Domain(d)) if d.eq_ignore_ascii_case("localhost") => {
            Some(IpAddr::V4(std::net::Ipv4Addr::LOCALHOST))
        }
        Some(url::Host::Domain(_)) => None,
        None => return Err(UpstreamError::Refused("the URL names no host".into())),
    };
    if let Some(ip) = ip {
        if is_link_local(ip) {
            return Err(UpstreamError::Refused(format!(
                "{ip} is a link-local address (where cloud metadata answers)"
            )));
        }
        if !allow_private && !is_public(ip) {
            return Err(UpstreamError::Refused(format!(
                "{ip} is a private or loopback address, and private upstreams are not allowed"
            )));
        }
    }
    Ok(parsed)
}

/// Where one call goes, and with what.
#[derive(Clone, Copy)]
pub struct Target<'a> {
    /// Its protocol.
    pub kind: Kind,
    /// Its base URL (checked when stored).
    pub base_url: &'a str,
    /// The provider key.
    pub key: Option<&'a str>,
    /// Whether the upstream may be on a private network.
    pub allow_private: bool,
}

impl std::fmt::Debug for Target<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target")
            .field("kind", &self.kind)
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

/// Headers passed on from the client (Anthropic's version and betas) and the correlation id.
#[derive(Debug, Clone, Default)]
pub struct Passed {
    /// `x-request-id`.
    pub request_id: String,
    /// `anthropic-version`.
    pub anthropic_version: Option<String>,
    /// `anthropic-beta`.
    pub anthropic_beta: Option<String>,
}

/// The pooled clients.
#[derive(Debug, Clone)]
pub struct Upstreams {
    public: reqwest::Client,
    private: reqwest::Client,
}

/// How long a connection may take to open.
const CONNECT: Duration = Duration::from_secs(5);
/// The longest silence while reading an answer (a model may think for a while).
const READ: Duration = Duration::from_secs(300);

fn client(allow_private: bool) -> Result<reqwest::Client, UpstreamError> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(CONNECT)
        .read_timeout(READ)
        .pool_idle_timeout(Duration::from_secs(90))
        .pool_max_idle_per_host(1024)
        .tcp_nodelay(true)
        .no_proxy()
        .user_agent("warden-llm-gateway")
        .dns_resolver(Arc::new(Guard {
            allow_private,
            never_link_local: true,
        }))
        .build()
        .map_err(|_| UpstreamError::Unreachable)
}

impl Upstreams {
    /// The clients.
    pub fn new() -> Result<Self, UpstreamError> {
        Ok(Self {
            public: client(false)?,
            private: client(true)?,
        })
    }

    /// Sends one call's body to `target` and returns the answer as it starts (its body is
    /// read by the caller, chunk by chunk).
    pub async fn send(
        &self,
        target: Target<'_>,
        path: &str,
        body: Bytes,
        passed: &Passed,
    ) -> Result<reqwest::Response, UpstreamError> {
        let url = check_base_url(target.base_url, target.allow_private)?;
        let url = format!("{}{path}", url.as_str().trim_end_matches('/'));
        let client = if target.allow_private {
            &self.private
        } else {
            &self.public
        };
        let mut req = client
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header("x-request-id", &passed.request_id)
            .body(body);
        match (target.kind, target.key) {
            (Kind::Anthropic, key) => {
                if let Some(k) = key {
                    req = req.header("x-api-key", k);
                }
                req = req.header(
                    "anthropic-version",
                    passed.anthropic_version.as_deref().unwrap_or("2023-06-01"),
                );
                if let Some(b) = &passed.anthropic_beta {
                    req = req.header("anthropic-beta", b);
                }
            }
            (_, Some(k)) => req = req.bearer_auth(k),
            (_, None) => {}
        }
        req.send().await.map_err(|e| {
            if e.is_timeout() {
                UpstreamError::Timeout
            } else {
                UpstreamError::Unreachable
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls_follow_the_ssrf_rules() {
        assert!(check_base_url("https://api.openai.com/v1", false).is_ok());
        for bad in [
            "http://api.openai.com/v1",
            "https://169.254.169.254/latest",
            "https://10.0.0.8/v1",
            "https://[::1]/v1",
            "https://localhost/v1",
            "https://user:pass@api.openai.com/v1",
            "https://api.openai.com/v1?key=x",
            "ftp://x/",
        ] {
            assert!(check_base_url(bad, false).is_err(), "{bad}");
        }
        assert!(check_base_url("http://127.0.0.1:8000/v1", true).is_ok());
        // Metadata stays out even where private networks are allowed.
        assert!(check_base_url("http://169.254.169.254/", true).is_err());
        assert!(check_base_url("http://[fe80::1]/", true).is_err());
    }
}
