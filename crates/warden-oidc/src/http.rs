//! The one outbound HTTP client for identity (discovery, keys, token endpoint): timeouts, a
//! response size cap, no redirects, and no private, loopback or link-local addresses unless
//! the provider's configuration allows them. Addresses are checked where the connection is
//! made (the resolver drops forbidden ones, and an address written in the URL is checked
//! before any request), so a name that resolves to a private address — or changes to one
//! between checks — is refused too.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use openidconnect::{HttpRequest, HttpResponse};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// Largest response read from a provider.
pub const MAX_RESPONSE_BYTES: usize = 1024 * 1024;
/// Longest a call to a provider may take.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// Why an outbound call failed (never with a secret in it).
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// The address is not allowed (private, loopback, link-local…), or the scheme is not
    /// https for a provider that must be public.
    #[error("refused: {0}")]
    Refused(String),
    /// Connection, timeout or protocol failure.
    #[error("unreachable: {0}")]
    Unreachable(String),
    /// The response is larger than allowed.
    #[error("the response is larger than {MAX_RESPONSE_BYTES} bytes")]
    TooLarge,
}

/// Whether `ip` is a public unicast address.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            !(v4.is_private()
                || v4.is_loopback()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || a == 0
                || (a == 100 && (64..128).contains(&b))
                || (a == 192 && b == 0)
                || (a == 198 && (18..20).contains(&b))
                || a >= 240)
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
                || first == 0x2001 && v6.segments()[1] == 0x0db8)
        }
    }
}

/// Whether `ip` is link-local (`169.254.0.0/16`, `fe80::/10`): where cloud metadata services
/// answer. Refused even where private networks are allowed.
pub fn is_link_local(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_link_local(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.is_link_local(),
            None => (v6.segments()[0] & 0xffc0) == 0xfe80,
        },
    }
}

/// A DNS resolver for reqwest that drops the addresses a policy forbids: every address that
/// is not public, unless `allow_private` — and link-local addresses always when
/// `never_link_local`. A name left with no address fails to resolve.
#[derive(Debug, Clone, Copy)]
pub struct Guard {
    /// Private and loopback addresses are allowed.
    pub allow_private: bool,
    /// Link-local addresses are refused even when private ones are allowed.
    pub never_link_local: bool,
}

impl Guard {
    /// Whether the policy allows connecting to `ip`.
    pub fn allows(&self, ip: IpAddr) -> bool {
        if self.never_link_local && is_link_local(ip) {
            return false;
        }
        self.allow_private || is_public(ip)
    }
}

impl Resolve for Guard {
    fn resolve(&self, name: Name) -> Resolving {
        let guard = *self;
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let found: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .filter(|a| guard.allows(a.ip()))
                .collect();
            if found.is_empty() {
                return Err(format!("{host} resolves to no address a provider may have").into());
            }
            Ok(Box::new(found.into_iter()) as Addrs)
        })
    }
}

/// The outbound client, one per policy.
#[derive(Clone)]
pub struct Client {
    inner: reqwest::Client,
    allow_private: bool,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("allow_private", &self.allow_private)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// A client that refuses private addresses (or, with `allow_private`, allows them: for a
    /// provider inside the organisation's network, or tests on loopback).
    pub fn new(allow_private: bool) -> Result<Self, HttpError> {
        let inner = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(TIMEOUT)
            .connect_timeout(Duration::from_secs(5))
            .no_proxy()
            .user_agent("warden-oidc")
            .dns_resolver(Arc::new(Guard {
                allow_private,
                never_link_local: false,
            }))
            .build()
            .map_err(|e| HttpError::Unreachable(e.to_string()))?;
        Ok(Self {
            inner,
            allow_private,
        })
    }

    /// Checks a URL before any request: https for a public provider, and an address written
    /// in the URL must be allowed.
    pub fn check_url(&self, url: &str) -> Result<(), HttpError> {
        let parsed = url::Url::parse(url).map_err(|_| HttpError::Refused("not a URL".into()))?;
        match parsed.scheme() {
            "https" => {}
            "http" if self.allow_private => {}
            other => {
                return Err(HttpError::Refused(format!(
                    "{other}:// is not allowed; a provider must use https"
                )));
            }
        }
        let ip = match parsed.host() {
            Some(url::Host::Ipv4(v4)) => Some(IpAddr::V4(v4)),
            Some(url::Host::Ipv6(v6)) => Some(IpAddr::V6(v6)),
            Some(url::Host::Domain(_)) => None,
            None => return Err(HttpError::Refused("the URL names no host".into())),
        };
        if let Some(ip) = ip
            && !self.allow_private
            && !is_public(ip)
        {
            return Err(HttpError::Refused(format!(
                "{ip} is a private, loopback or link-local address"
            )));
        }
        Ok(())
    }

    /// A document by GET (a SAML provider's metadata): the body of a 200 answer, at most
    /// the same size as any other answer, under the same address rules.
    pub async fn get(&self, url: &str) -> Result<Vec<u8>, HttpError> {
        let request = openidconnect::http::Request::builder()
            .method(openidconnect::http::Method::GET)
            .uri(url)
            .body(Vec::new())
            .map_err(|_| HttpError::Refused("not a URL".into()))?;
        let response = self.call(request).await?;
        if response.status() != openidconnect::http::StatusCode::OK {
            return Err(HttpError::Unreachable(format!(
                "answered {}",
                response.status()
            )));
        }
        Ok(response.into_body())
    }

    /// One request, as openidconnect asks for it.
    pub async fn call(&self, request: HttpRequest) -> Result<HttpResponse, HttpError> {
        self.check_url(&request.uri().to_string())?;
        let request = reqwest::Request::try_from(request)
            .map_err(|e| HttpError::Unreachable(e.to_string()))?;
        let mut response = self
            .inner
            .execute(request)
            .await
            .map_err(|e| HttpError::Unreachable(crate::error_chain(&e)))?;
        let mut builder = openidconnect::http::Response::builder().status(response.status());
        for (name, value) in response.headers() {
            builder = builder.header(name, value);
        }
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| HttpError::Unreachable(crate::error_chain(&e)))?
        {
            if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
                return Err(HttpError::TooLarge);
            }
            body.extend_from_slice(&chunk);
        }
        builder
            .body(body)
            .map_err(|e| HttpError::Unreachable(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_loopback_and_link_local_addresses_are_not_public() {
        for ip in [
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "127.0.0.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fe80::1",
            "fd00::1",
            "::ffff:169.254.169.254",
        ] {
            assert!(!is_public(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["93.184.216.34", "2606:4700::1111"] {
            assert!(is_public(ip.parse().unwrap()), "{ip}");
        }
    }

    #[test]
    fn a_public_provider_needs_https_and_a_public_address() {
        let strict = Client::new(false).unwrap();
        assert!(strict.check_url("https://login.example.com/x").is_ok());
        for bad in [
            "http://login.example.com/",
            "https://169.254.169.254/latest/meta-data",
            "https://[::1]/",
            "https://10.0.0.5/",
            "file:///etc/passwd",
        ] {
            assert!(strict.check_url(bad).is_err(), "{bad}");
        }
        let open = Client::new(true).unwrap();
        assert!(open.check_url("http://127.0.0.1:8080/").is_ok());
    }
}
