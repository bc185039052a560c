//! `public_url`: the origin people and agents reach Warden at, checked once at start.

use std::fmt;

use super::ConfigError;

/// `public_url`: an absolute `http` or `https` URL with a host and nothing after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicUrl {
    scheme: String,
    host: String,
    port: Option<u16>,
}

impl PublicUrl {
    /// Parses and checks a `public_url` setting.
    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        let bad = |why: &str| {
            ConfigError::new(format!(
                "public_url: {why}; write it like https://warden.example.com or \
                 https://warden.example.com:8443"
            ))
        };
        let uri: axum::http::Uri = text.trim().parse().map_err(|_| bad("not a URL"))?;
        let scheme = match uri.scheme_str() {
            Some(s @ ("http" | "https")) => s.to_owned(),
            _ => return Err(bad("the scheme must be http or https")),
        };
        let authority = uri.authority().ok_or_else(|| bad("it names no host"))?;
        if authority.as_str().contains('@') {
            return Err(bad("it may not carry a user name or password"));
        }
        if !matches!(uri.path(), "" | "/") || uri.query().is_some() {
            return Err(bad("it may not have a path or query"));
        }
        let host = authority.host().trim_end_matches('.').to_ascii_lowercase();
        if host.is_empty() {
            return Err(bad("it names no host"));
        }
        Ok(Self {
            scheme,
            host,
            port: authority.port_u16(),
        })
    }

    /// The host name (lower case), without the port.
    pub fn host(&self) -> &str {
        &self.host
    }
}

impl fmt::Display for PublicUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}", self.scheme, self.host)?;
        if let Some(port) = self.port {
            write!(f, ":{port}")?;
        }
        Ok(())
    }
}
