//! Where a request comes from (address, user agent, when it arrived): the origin of the
//! `Op` a handler passes to the core, and so of every audit event it records.

use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::header;
use axum::http::request::Parts;
use warden_domain::audit::Actor;

/// The client's address and user agent, and when handling began.
#[derive(Debug, Clone)]
pub struct RequestMeta {
    /// Client address (the socket peer).
    pub ip: Option<IpAddr>,
    /// `User-Agent`.
    pub user_agent: Option<String>,
    started: Instant,
}

impl<S: Send + Sync> FromRequestParts<S> for RequestMeta {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(Self {
            ip: parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0.ip().to_canonical()),
            user_agent: parts
                .headers
                .get(header::USER_AGENT)
                .and_then(|v| v.to_str().ok())
                .map(|s| s.chars().take(256).collect()),
            started: Instant::now(),
        })
    }
}

impl RequestMeta {
    /// The operation `actor` performs through this request, with one clock reading.
    pub fn op(&self, actor: Actor, clock: &dyn warden_domain::clock::Clock) -> warden_core::Op {
        warden_core::Op::started_at(
            actor,
            warden_core::Origin {
                ip: self.ip,
                user_agent: self.user_agent.clone(),
                request_id: crate::logging::current_request_id().map(|id| id.to_string()),
            },
            clock,
            self.started,
        )
    }

    /// The operation an authenticated host performs through this request: its origin is the
    /// host's address as the gate resolved it (trusted proxies included).
    pub fn host_op(
        &self,
        host: &warden_core::hosts::HostCaller,
        clock: &dyn warden_domain::clock::Clock,
    ) -> warden_core::Op {
        let mut op = self.op(host.actor(), clock);
        op.origin.ip = Some(host.ip);
        op
    }
}
