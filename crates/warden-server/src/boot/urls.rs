//! Where this node is reached — by people (`public_url`), by the other nodes (`node_url`) and
//! at its LLM gateway (`llm.public_url` and `llm.path_prefix`) — worked out once at start
//! from the settings and the addresses actually bound.

use std::net::SocketAddr;

use crate::config::Config;

/// Where this node is reached.
pub(super) struct Urls {
    /// The origin people reach Warden at.
    pub(super) public: String,
    /// Where the other nodes reach this one, when they can.
    pub(super) node: Option<String>,
    /// The LLM gateway's origin and prefix (what sessions are given).
    pub(super) gateway: String,
    /// The LLM gateway's origin alone (its listener's, when it has one of its own).
    pub(super) gateway_origin: String,
}

impl Urls {
    /// From the settings, the main listener's address and the gateway's own, if it has one.
    pub(super) fn work_out(
        config: &Config,
        addr: &SocketAddr,
        gateway_addr: Option<SocketAddr>,
        tls: bool,
    ) -> Self {
        let public = public_url(config, addr, tls);
        let gateway_origin = super::gateway::origin(config, &public, gateway_addr, tls);
        Self {
            node: node_url(config, addr, tls),
            gateway: format!("{gateway_origin}{}", config.gateway.path_prefix),
            gateway_origin,
            public,
        }
    }
}

/// Where the other nodes reach this one: `node_url`, or the address Warden listens on when
/// that names one interface. Listening on every address without `node_url`, no other node
/// can relay to this one (said once, at start).
fn node_url(config: &Config, addr: &SocketAddr, tls: bool) -> Option<String> {
    if let Some(url) = &config.node_url {
        return Some(url.to_string());
    }
    if addr.ip().is_unspecified() {
        tracing::warn!(
            "node_url is not set and Warden listens on every address: other nodes cannot \
             relay requests for hosts connected here; set node_url (WARDEN_NODE_URL) when \
             running several nodes"
        );
        return None;
    }
    let scheme = if tls { "https" } else { "http" };
    Some(format!("{scheme}://{addr}"))
}

/// The origin every mailed or redirected link starts with: `public_url`, or (with a warning:
/// links then reach only this machine) the address Warden listens on. Never a request's
/// `Host` or `X-Forwarded-Host`, which the client chooses.
fn public_url(config: &Config, addr: &SocketAddr, tls: bool) -> String {
    if let Some(url) = &config.public_url {
        return url.to_string();
    }
    let scheme = if tls { "https" } else { "http" };
    let url = format!("{scheme}://{addr}");
    tracing::warn!(
        %url,
        "public_url is not set: links Warden emails and single sign-on redirects use the \
         listen address, which only this machine may reach; set public_url \
         (WARDEN_PUBLIC_URL) to the address people reach Warden at"
    );
    url
}
