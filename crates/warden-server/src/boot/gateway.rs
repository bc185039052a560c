//! Where the LLM gateway is served: under `llm.path_prefix` on the main listener, or on a
//! listener of its own (`llm.listen`) that serves nothing else — so an operator can expose
//! the gateway to the hosts that run agents without exposing the API and console, or the
//! reverse. Either way the same use cases answer; only the routing differs.

use std::collections::btree_map::Entry;
use std::net::{SocketAddr, TcpListener};

use tokio::task::JoinHandle;
use utoipa::openapi::server::Server;

use super::BootError;
use crate::config::Config;
use crate::http::{self, routes::Routes};
use crate::state::AppState;

/// The gateway's own listener, bound at start (before anything else is created, like the
/// main one).
pub(super) fn bind(config: &Config) -> Result<Option<(TcpListener, SocketAddr)>, BootError> {
    let Some(at) = config.gateway.listen else {
        return Ok(None);
    };
    let listener = super::bind(at, "llm.listen", "WARDEN_LLM_LISTEN")?;
    let addr = listener
        .local_addr()
        .map_err(|e| BootError(format!("llm.listen: cannot read the bound address: {e}")))?;
    if config.tls.is_none() && !addr.ip().is_loopback() {
        tracing::warn!(
            %addr,
            "the LLM gateway listens on a non-loopback address without TLS: a TLS-terminating \
             proxy is expected in front of it (or set tls.cert_file and tls.key_file, which \
             both listeners use)"
        );
    }
    Ok(Some((listener, addr)))
}

/// The origin sessions and clients reach the gateway at: `llm.public_url`; else, on its own
/// listener, that listener's address (with a warning, as for `public_url`); else Warden's
/// public URL.
pub(super) fn origin(
    config: &Config,
    public_url: &str,
    own: Option<SocketAddr>,
    tls: bool,
) -> String {
    if let Some(url) = &config.gateway.public_url {
        return url.to_string();
    }
    match own {
        Some(addr) => {
            let scheme = if tls { "https" } else { "http" };
            let url = format!("{scheme}://{addr}");
            tracing::warn!(
                %url,
                "llm.public_url is not set: sessions are given the gateway's listen address, \
                 which only this machine may reach; set llm.public_url (WARDEN_LLM_PUBLIC_URL) \
                 to the address hosts reach the gateway at"
            );
            url
        }
        None => public_url.trim_end_matches('/').to_owned(),
    }
}

/// The main application and, when the gateway has a listener of its own, the gateway's. On
/// the main listener the prefix may not shadow any of Warden's own routes.
pub(super) fn split(
    state: &AppState,
    main: Routes<AppState>,
    config: &Config,
    tls: bool,
) -> Result<(http::App, Option<http::App>), BootError> {
    let prefix = config.gateway.path_prefix.as_str();
    let gateway = crate::llm::routes(prefix);
    if config.gateway.listen.is_some() {
        // Its own listener answers health checks too, for a load balancer in front of it.
        let own = crate::api::health::routes().merge(gateway);
        let own = http::assemble(state.clone(), own, &config.http, tls, Some(prefix));
        let main = http::assemble(state.clone(), main, &config.http, tls, None);
        return Ok((main, Some(own)));
    }
    if let Some(taken) = main
        .access()
        .entries()
        .map(|(_, path, _)| path)
        .find(|path| {
            *path == prefix
                || path
                    .strip_prefix(prefix)
                    .is_some_and(|r| r.starts_with('/'))
        })
    {
        return Err(BootError(format!(
            "llm.path_prefix: '{prefix}' would put the LLM gateway among Warden's own routes \
             ({taken}); choose another prefix, such as /llm, or give the gateway a listener of \
             its own (llm.listen)"
        )));
    }
    let app = http::assemble(
        state.clone(),
        main.merge(gateway),
        &config.http,
        tls,
        Some(prefix),
    );
    Ok((app, None))
}

/// Documents the gateway's own listener's routes in the main OpenAPI document, each with the
/// server it is on (OpenAPI's path-level `servers`); the health checks both listeners answer
/// stay documented once, on the main one.
pub(super) fn document(main: &mut http::App, own: &mut http::App, origin: &str) {
    crate::api::openapi::complete(&mut own.openapi, &own.access);
    for (path, mut item) in std::mem::take(&mut own.openapi.paths.paths) {
        if let Entry::Vacant(place) = main.openapi.paths.paths.entry(path) {
            item.servers = Some(vec![Server::new(origin)]);
            place.insert(item);
        }
    }
}

/// The gateway's own listener, serving.
#[derive(Debug)]
pub(super) struct Served {
    pub(super) addr: SocketAddr,
    pub(super) stop: tokio::sync::oneshot::Sender<()>,
    pub(super) task: JoinHandle<std::io::Result<()>>,
}
