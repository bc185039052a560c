//! The HTTP stack: middleware order, limits, and the assembly of routes into one service.
//!
//! Order, outermost first: edge (request id, span, timeout, body deadline, panic catcher,
//! problem documents, security headers) → body limit (enforced by the body extractors) →
//! router → access guard (per route) → handler.

pub mod authz;
pub mod body_deadline;
pub mod guard;
pub mod json;
pub mod middleware;
pub(crate) mod page;
pub mod problem;
pub mod query;
pub mod routes;
pub mod serve;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use tower::{Layer, ServiceBuilder};
use utoipa::openapi::OpenApi;

use crate::config::HttpConfig;
use crate::state::AppState;
use routes::{AccessTable, Routes};

/// The service Warden serves: edge → body limit → router.
pub type Service = middleware::Edge<<DefaultBodyLimit as Layer<Router>>::Service>;

/// The assembled application: the service to serve and what it was built from.
pub struct App {
    /// The service, every middleware in place.
    pub service: Service,
    /// The OpenAPI document of every declared route.
    pub openapi: OpenApi,
    /// The access rule of every declared route.
    pub access: Arc<AccessTable>,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App").field("access", &self.access).finish()
    }
}

/// Assembles the application from its routes. The edge and the body limit wrap the router
/// once, from outside, rather than per route; only the access guard sits on each route,
/// because only there is the matched route known. `gateway`: the LLM gateway's path prefix,
/// when `routes` hold it (its calls may take longer than others).
pub fn assemble(
    state: AppState,
    routes: Routes<AppState>,
    http: &HttpConfig,
    tls: bool,
    gateway: Option<&str>,
) -> App {
    let (router, openapi, access) = routes.into_parts();
    let metrics = state.metrics.clone();
    let router = router
        .route_layer(guard::AccessGuardLayer::new(
            access.clone(),
            state.ctx.identity.clone(),
            state.ctx.clone(),
            Arc::new(warden_core::hosts::gate::HostGate::new(
                state.ctx.store.clone(),
                state.ctx.audit_key.clone(),
                state.ctx.clock.clone(),
                state.ctx.hosts.clone(),
                state.ctx.host_tickets.clone(),
            )),
            Arc::new(warden_core::audit::denials::Denials::new(
                state.ctx.store.clone(),
                state.ctx.audit_key.clone(),
                state.ctx.clock.clone(),
            )),
        ))
        .fallback(middleware::not_found)
        .method_not_allowed_fallback(middleware::wrong_method)
        .with_state(state);
    let service = ServiceBuilder::new()
        .layer(
            middleware::EdgeLayer::new(tls, http.request_timeout, http.body_read_timeout, metrics)
                .with_gateway(gateway),
        )
        .layer(DefaultBodyLimit::max(http.body_limit_bytes))
        .service(router);
    App {
        service,
        openapi,
        access,
    }
}
