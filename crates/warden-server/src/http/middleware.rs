//! What every request goes through around its handler, as two hand-written tower services
//! with named futures (nothing boxed per request; see BENCHMARKS.md for why):
//!
//! - [`EdgeLayer`], outermost: request id and log span, request timeout (408), panic catcher
//!   (500), problem documents for every error, security headers and the id on every response.
//! - [`AccessGuardLayer`], on each route: the route's declared access rule decides whether
//!   the handler runs. A route without a rule is refused whoever asks.

use std::convert::Infallible;
use std::future::{Ready, ready};
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{MatchedPath, Request};

use axum::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use futures_util::FutureExt;
use futures_util::future::Either;
use tokio::time::error::Elapsed;
use tower::{Layer, Service};
use warden_core::Ctx;
use warden_core::license::{License, Refusal as LicenseRefusal};
use warden_domain::access::{Access, Gate, gate};
use warden_domain::clock::Clock;
use warden_domain::identity::Principal;
use warden_domain::tenancy::WorkspaceId;
use warden_store::Store;
use warden_store::tenancy::Refusal;

use crate::identity::{AuthFailure, Presented};
use warden_core::audit::denials::{Denial, Denials};
use warden_core::hosts::gate::{HostGate, HostRefusal};
use warden_core::identity::Identity;
use warden_domain::request_id::RequestId;

use super::problem::{ApiError, PROBLEM_JSON, Problem};
use super::routes::AccessTable;
use crate::logging::{self, RequestContext};

/// Header carrying the request id, in and out.
pub static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The outermost layer. See the module documentation.
#[derive(Debug, Clone)]
pub struct EdgeLayer {
    config: Arc<EdgeConfig>,
}

#[derive(Debug)]
struct EdgeConfig {
    security_headers: HeaderMap,
    timeout: Duration,
}

impl EdgeLayer {
    /// The edge for a server that does (`tls`) or does not terminate TLS itself, answering
    /// 408 to requests that take longer than `timeout`.
    pub fn new(tls: bool, timeout: Duration) -> Self {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(
                "default-src 'self'; object-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
            ),
        );
        h.insert(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        );
        h.insert(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        );
        h.insert(
            HeaderName::from_static("cross-origin-opener-policy"),
            HeaderValue::from_static("same-origin"),
        );
        if tls {
            h.insert(
                header::STRICT_TRANSPORT_SECURITY,
                HeaderValue::from_static("max-age=31536000; includeSubDomains"),
            );
        }
        Self {
            config: Arc::new(EdgeConfig {
                security_headers: h,
                timeout,
            }),
        }
    }
}

impl<S> Layer<S> for EdgeLayer {
    type Service = Edge<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Edge {
            inner,
            config: self.config.clone(),
        }
    }
}

/// The service [`EdgeLayer`] makes.
#[derive(Debug, Clone)]
pub struct Edge<S> {
    inner: S,
    config: Arc<EdgeConfig>,
}

impl<S, B> Service<axum::http::Request<B>> for Edge<S>
where
    S: Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: axum::body::HttpBody<Data = axum::body::Bytes> + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = EdgeFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: axum::http::Request<B>) -> Self::Future {
        let req = req.map(Body::new);
        let id = req
            .headers()
            .get(&X_REQUEST_ID)
            .and_then(|v| v.to_str().ok())
            .and_then(RequestId::parse)
            .unwrap_or_else(RequestId::generate);
        // Every line logged while handling the request carries its id, method and route.
        let ctx = RequestContext {
            id: id.clone(),
            method: req.method().clone(),
            route: OnceLock::new(),
        };
        // A refusal on a console page is answered with a page, not a problem document.
        let console = req.uri().path().starts_with("/console").then(|| {
            req.uri()
                .path_and_query()
                .map_or_else(|| "/console".to_owned(), ToString::to_string)
        });
        let handled = tokio::time::timeout(
            self.config.timeout,
            AssertUnwindSafe(self.inner.call(req)).catch_unwind(),
        )
        .map(settle as Settle);
        EdgeFuture {
            inner: logging::in_request(ctx, handled),
            id: Some(id),
            config: self.config.clone(),
            console,
        }
    }
}

type Outcome = Result<Result<Result<Response, Infallible>, Box<dyn std::any::Any + Send>>, Elapsed>;
type Settle = fn(Outcome) -> Response;
type Handled<F> = futures_util::future::Map<
    tokio::time::Timeout<futures_util::future::CatchUnwind<AssertUnwindSafe<F>>>,
    Settle,
>;

/// Turns what the handler did (answered, panicked, ran out of time) into a response, and logs
/// it while still inside the request's log context.
fn settle(outcome: Outcome) -> Response {
    let res = match outcome {
        Ok(Ok(Ok(res))) => res,
        Ok(Ok(Err(never))) => match never {},
        Ok(Err(_panic)) => {
            tracing::error!("handler panicked");
            ApiError::from_status(StatusCode::INTERNAL_SERVER_ERROR).into_response()
        }
        Err(_elapsed) => {
            tracing::warn!("request timed out");
            ApiError::from_status(StatusCode::REQUEST_TIMEOUT).into_response()
        }
    };
    let status = res.status();
    if status.is_server_error() {
        tracing::warn!(status = status.as_u16(), "request failed");
    } else {
        tracing::debug!(status = status.as_u16(), "request handled");
    }
    res
}

pin_project_lite::pin_project! {
    /// The edge's future: the handler inside its log context, then the finishing touches.
    /// A named type, so no request pays for boxing it.
    pub struct EdgeFuture<F> {
        #[pin]
        inner: tokio::task::futures::TaskLocalFuture<RequestContext, Handled<F>>,
        id: Option<RequestId>,
        config: Arc<EdgeConfig>,
        console: Option<String>,
    }
}

impl<F> Future for EdgeFuture<F>
where
    F: Future<Output = Result<Response, Infallible>>,
{
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let res = std::task::ready!(this.inner.poll(cx));
        let id = this.id.take().unwrap_or_else(RequestId::generate);
        Poll::Ready(Ok(finish(res, &id, this.config, this.console.as_deref())))
    }
}

fn finish(
    mut res: Response,
    id: &RequestId,
    config: &EdgeConfig,
    console: Option<&str>,
) -> Response {
    let status = res.status();
    let page = res.extensions().get::<super::page::Page>().is_some();
    if (status.is_client_error() || status.is_server_error()) && !page {
        res = match console {
            Some(path) => crate::console::error_page(status, path),
            None => render_problem(res, id),
        };
    }
    let headers = res.headers_mut();
    for (name, value) in &config.security_headers {
        headers.insert(name.clone(), value.clone());
    }
    if let Ok(v) = HeaderValue::from_str(id.as_str()) {
        headers.insert(X_REQUEST_ID.clone(), v);
    }
    res
}

/// Replaces an error response's body with a problem document. Whatever body it had (axum's
/// rejection text, a layer's message) is dropped: clients only ever see the safe sentence.
fn render_problem(res: Response, id: &RequestId) -> Response {
    let (mut parts, _body) = res.into_parts();
    let err = parts
        .extensions
        .remove::<ApiError>()
        .unwrap_or_else(|| ApiError::from_status(parts.status));
    let fields = parts
        .extensions
        .remove::<Vec<super::problem::FieldProblem>>()
        .unwrap_or_default();
    let mut problem = Problem::new(&err, parts.status, id.as_str());
    problem.errors = &fields;
    let body = serde_json::to_vec(&problem).unwrap_or_default();
    parts.headers.remove(header::CONTENT_LENGTH);
    parts
        .headers
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
    if err.0.retry_after.is_some() && !parts.headers.contains_key(header::RETRY_AFTER) {
        parts
            .headers
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    if parts.status == StatusCode::UNAUTHORIZED {
        parts
            .headers
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    Response::from_parts(parts, Body::from(body))
}

/// Applies each route's declared access rule. See the module documentation.
#[derive(Clone)]
pub struct AccessGuardLayer {
    table: Arc<AccessTable>,
    identity: Arc<Identity>,
    ctx: Arc<Ctx>,
    hosts: Arc<HostGate>,
    denials: Arc<Denials>,
}

impl std::fmt::Debug for AccessGuardLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessGuardLayer").finish_non_exhaustive()
    }
}

impl AccessGuardLayer {
    /// A guard enforcing `table`, authenticating with `identity`, gating on the licence and
    /// looking up roles in the store of `ctx`.
    pub fn new(
        table: Arc<AccessTable>,
        identity: Arc<Identity>,
        ctx: Arc<Ctx>,
        hosts: Arc<HostGate>,
        denials: Arc<Denials>,
    ) -> Self {
        Self {
            table,
            identity,
            ctx,
            hosts,
            denials,
        }
    }
}

impl<S> Layer<S> for AccessGuardLayer {
    type Service = AccessGuard<S>;

    fn layer(&self, inner: S) -> Self::Service {
        AccessGuard {
            inner,
            table: self.table.clone(),
            identity: self.identity.clone(),
            ctx: self.ctx.clone(),
            hosts: self.hosts.clone(),
            denials: self.denials.clone(),
        }
    }
}

/// The service [`AccessGuardLayer`] makes.
#[derive(Clone)]
pub struct AccessGuard<S> {
    inner: S,
    table: Arc<AccessTable>,
    identity: Arc<Identity>,
    ctx: Arc<Ctx>,
    hosts: Arc<HostGate>,
    denials: Arc<Denials>,
}

impl<S> std::fmt::Debug for AccessGuard<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessGuard").finish_non_exhaustive()
    }
}

type Boxed = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

impl<S> Service<Request> for AccessGuard<S>
where
    S: Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Either<Ready<Result<Response, Infallible>>, Either<S::Future, Boxed>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request) -> Self::Future {
        match first_gate(
            &self.table,
            &self.identity,
            &self.ctx.license,
            self.ctx.clock.as_ref(),
            &mut req,
        ) {
            Err(refused) => {
                if let Some(d) = denial(&req, &refused, None) {
                    self.denials.record(d);
                }
                Either::Left(ready(Ok(refused)))
            }
            Ok(None) => {
                if req.extensions_mut().remove::<NoteTokenUse>().is_some()
                    && let (Some(caller), Some(ip)) = (
                        req.extensions().get::<crate::identity::Caller>(),
                        peer_ip(&req),
                    )
                {
                    let now_us = warden_core::identity::now_us(self.ctx.clock.as_ref());
                    warden_core::identity::tokens::noticed(
                        &self.ctx,
                        &caller.principal,
                        ip,
                        now_us,
                    );
                }
                Either::Right(Either::Left(self.inner.call(req)))
            }
            Ok(Some((gate, who))) => {
                if req.extensions_mut().remove::<NoteTokenUse>().is_some()
                    && let (Some(Who::Known(p)), Some(ip)) = (&who, peer_ip(&req))
                {
                    let now_us = warden_core::identity::now_us(self.ctx.clock.as_ref());
                    warden_core::identity::tokens::noticed(&self.ctx, p, ip, now_us);
                }
                // The ready clone goes into the future; this service keeps a fresh clone.
                let clone = self.inner.clone();
                let mut inner = std::mem::replace(&mut self.inner, clone);
                let ctx = self.ctx.clone();
                let hosts = self.hosts.clone();
                let denials = self.denials.clone();
                Either::Right(Either::Right(Box::pin(async move {
                    if let Some(FormCsrf(session_id)) = req.extensions_mut().remove::<FormCsrf>() {
                        req = match with_form_csrf(&ctx.identity, session_id, req).await {
                            Ok(req) => req,
                            Err(refused) => return Ok(refused),
                        };
                    }
                    let principal = match who {
                        None => None,
                        Some(Who::Known(p)) => Some(p),
                        Some(Who::Uncached(secret)) => {
                            match look_up_token(&ctx, &secret, &mut req).await {
                                Some(p) => Some(p),
                                None => {
                                    let refused = ApiError::from_status(StatusCode::UNAUTHORIZED)
                                        .into_response();
                                    if let Some(d) = denial(&req, &refused, None) {
                                        denials.record(d);
                                    }
                                    return Ok(refused);
                                }
                            }
                        }
                    };
                    if gate == Gate::Allow {
                        return inner.call(req).await;
                    }
                    let user = principal.as_ref().map(|p| p.user_id);
                    let granted = match (gate, principal) {
                        // Host authentication failures have their own sparse audit.
                        (Gate::Host, _) => host_grant(&hosts, &mut req).await,
                        (gate, Some(principal)) => {
                            let granted = grant(&ctx.store, gate, &principal, &mut req).await;
                            if let Err(refused) = &granted
                                && let Some(d) = denial(&req, refused, user)
                            {
                                denials.record(d);
                            }
                            granted
                        }
                        (_, None) => {
                            Err(ApiError::from_status(StatusCode::UNAUTHORIZED).into_response())
                        }
                    };
                    match granted {
                        Ok(()) => inner.call(req).await,
                        Err(refused) => Ok(refused),
                    }
                })))
            }
        }
    }
}

/// A cookie-authenticated HTML form post whose CSRF token is in its body: checked by the
/// guard's asynchronous half before anything else runs.
#[derive(Debug, Clone, Copy)]
struct FormCsrf(uuid::Uuid);

/// The largest form body the guard reads to find its CSRF field.
const FORM_LIMIT: usize = 256 * 1024;

/// Reads a form body, checks its `csrf` field against the session, and hands the request on
/// with the body intact; 403 `csrf` when the field is missing or wrong.
async fn with_form_csrf(
    identity: &Identity,
    session_id: uuid::Uuid,
    req: Request,
) -> Result<Request, Response> {
    let (parts, body) = req.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, FORM_LIMIT).await else {
        return Err(ApiError::from_status(StatusCode::PAYLOAD_TOO_LARGE).into_response());
    };
    if !crate::identity::form_csrf_matches(identity, session_id, &bytes) {
        return Err(ApiError::csrf().into_response());
    }
    Ok(Request::from_parts(parts, Body::from(bytes)))
}

/// What to record of a refused request: only refusals of who the caller is or what it may do
/// (401, 403, 404 from the guard), never a wrong method, a licence gate or a throttle.
fn denial(req: &Request, res: &Response, user: Option<uuid::Uuid>) -> Option<Denial> {
    let status = res.status().as_u16();
    if !matches!(status, 401 | 403 | 404) {
        return None;
    }
    let reason = res
        .extensions()
        .get::<ApiError>()
        .map_or("refused", |e| e.code().as_str());
    if reason == warden_core::Code::FeatureNotLicensed.as_str() {
        return None;
    }
    Some(Denial {
        user,
        ip: req
            .extensions()
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .map(|c| c.0.ip().to_canonical()),
        user_agent: req
            .headers()
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|s| s.chars().take(256).collect()),
        method: req.method().as_str().to_owned(),
        route: req
            .extensions()
            .get::<MatchedPath>()
            .map_or_else(String::new, |m| m.as_str().to_owned()),
        reason,
        status,
        request_id: logging::current_request_id().map(|id| id.to_string()),
    })
}

/// What needs no database: is the route declared, is the caller authenticated. `Ok(None)`
/// admits the request; `Ok(Some(..))` leaves a permission to check against the store. An
/// admitted, authenticated request carries its [`Caller`] in its extensions.
// The refusal is the response itself; boxing it would only add an allocation per refusal.
#[allow(clippy::result_large_err)]
fn first_gate(
    table: &AccessTable,
    identity: &Identity,
    license: &License,
    clock: &dyn Clock,
    req: &mut Request,
) -> Result<Option<(Gate, Option<Who>)>, Response> {
    let Some(matched) = req.extensions().get::<MatchedPath>().cloned() else {
        tracing::error!("routed request without a matched path; refusing");
        return Err(ApiError::from_status(StatusCode::FORBIDDEN).into_response());
    };
    logging::record_route(&matched);
    let path = matched.as_str();
    let declared = table.declared(req.method(), path);
    let rule = declared.map(|d| d.access);
    // The licence comes first: without a valid one, only the recovery routes answer.
    if let Some(d) = declared
        && license.applies(path, d.license)
        && let Err(refusal) = license.gate(clock, path, d.license)
    {
        return Err(license_refusal(refusal).into_response());
    }
    if rule.is_none() {
        let allowed: Vec<&str> = table.methods(path).collect();
        if !allowed.is_empty() {
            return Err(method_not_allowed(&allowed));
        }
    }
    // Public routes never look at credentials, host routes check a host key (not here);
    // every other route authenticates a user first.
    let presented = match rule {
        None | Some(Access::Public) => Presented::Nothing,
        Some(Access::Host) => return Ok(Some((Gate::Host, None))),
        Some(_) => {
            let now = clock.now().unix_timestamp();
            let ip = peer_ip(req);
            match crate::identity::authenticate(identity, req.method(), req.headers(), now, ip) {
                Ok(presented) => presented,
                Err(AuthFailure::Unauthenticated) => {
                    return Err(ApiError::from_status(StatusCode::UNAUTHORIZED).into_response());
                }
                Err(AuthFailure::Csrf) => return Err(ApiError::csrf().into_response()),
            }
        }
    };
    let caller = match presented {
        Presented::Nothing => None,
        Presented::Caller(caller) => Some(caller),
        Presented::CallerWithFormCsrf(caller) => {
            req.extensions_mut()
                .insert(FormCsrf(caller.principal.session_id));
            Some(caller)
        }
        Presented::Token(caller, note) => {
            if note {
                req.extensions_mut().insert(NoteTokenUse);
            }
            Some(caller)
        }
        Presented::UncachedToken(secret) => {
            // Read from the database by the guard's asynchronous half.
            return match gate(rule, true) {
                g @ (Gate::Allow | Gate::Platform(_) | Gate::Workspace(_)) => {
                    Ok(Some((g, Some(Who::Uncached(secret)))))
                }
                _ => Err(ApiError::from_status(StatusCode::FORBIDDEN).into_response()),
            };
        }
    };
    let principal = caller.as_ref().map(|c| Who::Known(c.principal.clone()));
    match gate(rule, caller.is_some()) {
        Gate::Allow => {
            if let Some(caller) = caller {
                req.extensions_mut().insert(caller);
            }
            // A form's CSRF field is read by the asynchronous half.
            if req.extensions().get::<FormCsrf>().is_some() {
                return Ok(Some((Gate::Allow, None)));
            }
            Ok(None)
        }
        Gate::Unauthenticated => {
            Err(ApiError::from_status(StatusCode::UNAUTHORIZED).into_response())
        }
        Gate::Undeclared => {
            tracing::error!(route = %path, "route declares no access rule; refusing");
            Err(ApiError::from_status(StatusCode::FORBIDDEN).into_response())
        }
        Gate::Host => Ok(Some((Gate::Host, None))),
        g @ (Gate::Platform(_) | Gate::Workspace(_)) => {
            let (Some(caller), Some(principal)) = (caller, principal) else {
                return Err(ApiError::from_status(StatusCode::UNAUTHORIZED).into_response());
            };
            req.extensions_mut().insert(caller);
            Ok(Some((g, Some(principal))))
        }
    }
}

/// Who the guard's asynchronous half checks.
enum Who {
    /// Authenticated already.
    Known(Principal),
    /// A personal access token still to be read from the database.
    Uncached(String),
}

/// Marks a request whose personal access token use should be written down.
#[derive(Debug, Clone, Copy)]
struct NoteTokenUse;

fn peer_ip(req: &Request) -> Option<std::net::IpAddr> {
    req.extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip().to_canonical())
}

/// Reads an uncached personal access token; on success the request carries its caller.
async fn look_up_token(ctx: &Arc<Ctx>, secret: &str, req: &mut Request) -> Option<Principal> {
    let now_us = warden_core::identity::now_us(ctx.clock.as_ref());
    let ip = peer_ip(req);
    match warden_core::identity::tokens::authenticate(ctx, secret, now_us, ip).await {
        Ok(Some((principal, note))) => {
            if note && let Some(ip) = ip {
                warden_core::identity::tokens::noticed(ctx, &principal, ip, now_us);
            }
            req.extensions_mut().insert(crate::identity::Caller {
                principal: principal.clone(),
                credential: crate::identity::Credential::Bearer,
            });
            Some(principal)
        }
        Ok(None) => None,
        Err(e) => {
            tracing::warn!(error = ?e, "cannot read a personal access token");
            None
        }
    }
}

/// The answer for a request the licence refuses.
pub fn license_refusal(r: LicenseRefusal) -> ApiError {
    ApiError(r.into())
}

/// Checks a platform or workspace permission against the store and leaves the grant in the
/// request's extensions for the handler.
async fn grant(
    store: &Store,
    gate: Gate,
    principal: &Principal,
    req: &mut Request,
) -> Result<(), Response> {
    match gate {
        Gate::Platform(p) => {
            let grant = store
                .authorize_platform(principal, p)
                .await
                .map_err(refusal_response)?;
            req.extensions_mut().insert(grant);
        }
        Gate::Workspace(p) => {
            let workspace = path_workspace(req)?;
            let grant = store
                .authorize(principal, workspace, p)
                .await
                .map_err(refusal_response)?;
            req.extensions_mut().insert(grant);
        }
        Gate::Allow | Gate::Unauthenticated | Gate::Undeclared | Gate::Host => {
            return Err(ApiError::from_status(StatusCode::FORBIDDEN).into_response());
        }
    }
    Ok(())
}

/// Authenticates a host key and leaves the [`HostCaller`](warden_core::hosts::HostCaller) for the
/// handler. Every failure is one 401; a throttled address or key gets 429 with `Retry-After`.
async fn host_grant(hosts: &HostGate, req: &mut Request) -> Result<(), Response> {
    let Some(peer) = req
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip())
    else {
        return Err(ApiError::from_status(StatusCode::UNAUTHORIZED).into_response());
    };
    let headers = req.headers();
    let forwarded = headers.get("x-forwarded-for").and_then(|v| v.to_str().ok());
    let ip = hosts.client_ip(peer, forwarded);
    let presented = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    let request_id = crate::logging::current_request_id().map(|id| id.to_string());
    match hosts.authenticate(presented, ip, request_id).await {
        Ok(caller) => {
            req.extensions_mut().insert(caller);
            Ok(())
        }
        Err(HostRefusal::Invalid) => {
            Err(ApiError::from_status(StatusCode::UNAUTHORIZED).into_response())
        }
        Err(HostRefusal::Throttled(wait)) => Err(super::problem::too_many_attempts(wait)),
        Err(HostRefusal::Store(e)) => Err(ApiError::internal(&e).into_response()),
    }
}

/// The path segment named `{workspace_id}`, checked against an `X-Workspace-Id` header when
/// one is sent. A malformed id answers 404, like a missing workspace.
#[allow(clippy::result_large_err)]
fn path_workspace(req: &Request) -> Result<WorkspaceId, Response> {
    let not_found = || ApiError::from_status(StatusCode::NOT_FOUND).into_response();
    let pattern = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str())
        .unwrap_or_default();
    let index = pattern
        .split('/')
        .position(|seg| seg == "{workspace_id}")
        .ok_or_else(|| {
            tracing::error!(route = %pattern, "workspace route without {{workspace_id}}");
            ApiError::from_status(StatusCode::FORBIDDEN).into_response()
        })?;
    let workspace = req
        .uri()
        .path()
        .split('/')
        .nth(index)
        .and_then(WorkspaceId::parse)
        .ok_or_else(not_found)?;
    if let Some(header) = req.headers().get(&X_WORKSPACE_ID) {
        let named = header.to_str().ok().and_then(WorkspaceId::parse);
        if named != Some(workspace) {
            return Err(ApiError::from(warden_core::Code::WorkspaceMismatch).into_response());
        }
    }
    Ok(workspace)
}

/// Header that, when sent, must name the workspace in the path.
pub static X_WORKSPACE_ID: HeaderName = HeaderName::from_static("x-workspace-id");

fn refusal_response(r: Refusal) -> Response {
    ApiError::from(r).into_response()
}

fn method_not_allowed(allowed: &[&str]) -> Response {
    let mut res = ApiError::from_status(StatusCode::METHOD_NOT_ALLOWED).into_response();
    let mut list: Vec<&str> = allowed.to_vec();
    if list.contains(&"GET") && !list.contains(&"HEAD") {
        list.push("HEAD");
    }
    if let Ok(v) = HeaderValue::from_str(&list.join(", ")) {
        res.headers_mut().insert(header::ALLOW, v);
    }
    res
}

/// Fallback for paths no route matches.
pub async fn not_found() -> ApiError {
    ApiError::from_status(StatusCode::NOT_FOUND)
}

/// Fallback for a known path with a method it does not serve.
pub async fn wrong_method(method: Method) -> ApiError {
    tracing::debug!(%method, "method not allowed");
    ApiError::from_status(StatusCode::METHOD_NOT_ALLOWED)
}

/// Makes one [`WithPeer`] service per connection, so handlers can read the client's socket
/// address (`ConnectInfo<SocketAddr>`). Works for axum's server and for axum-server (TLS).
#[derive(Debug, Clone)]
pub struct MakeWithPeer<S>(pub S);

impl<S: Clone> Service<axum::serve::IncomingStream<'_, tokio::net::TcpListener>>
    for MakeWithPeer<S>
{
    type Response = WithPeer<S>;
    type Error = Infallible;
    type Future = Ready<Result<WithPeer<S>, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(
        &mut self,
        stream: axum::serve::IncomingStream<'_, tokio::net::TcpListener>,
    ) -> Self::Future {
        ready(Ok(WithPeer {
            inner: self.0.clone(),
            peer: *stream.remote_addr(),
        }))
    }
}

impl<S: Clone> Service<std::net::SocketAddr> for MakeWithPeer<S> {
    type Response = WithPeer<S>;
    type Error = Infallible;
    type Future = Ready<Result<WithPeer<S>, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, peer: std::net::SocketAddr) -> Self::Future {
        ready(Ok(WithPeer {
            inner: self.0.clone(),
            peer,
        }))
    }
}

/// One connection's service: records the peer address on each request.
#[derive(Debug, Clone)]
pub struct WithPeer<S> {
    inner: S,
    peer: std::net::SocketAddr,
}

impl<S> WithPeer<S> {
    /// `inner`, for the connection from `peer`.
    pub fn new(inner: S, peer: std::net::SocketAddr) -> Self {
        Self { inner, peer }
    }
}

impl<S, B> Service<axum::http::Request<B>> for WithPeer<S>
where
    S: Service<axum::http::Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: axum::http::Request<B>) -> Self::Future {
        req.extensions_mut()
            .insert(axum::extract::ConnectInfo(self.peer));
        self.inner.call(req)
    }
}
