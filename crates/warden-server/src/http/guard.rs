//! The access guard, on each route: the route's declared access rule decides whether the
//! handler runs, before anything else — the licence gate, authentication (bearer token,
//! personal access token, or the console's cookie with its CSRF token in a header or a
//! form field), then the platform or workspace grant, or the host gate. A route without a
//! rule is refused whoever asks; refusals of who the caller is or what it may do are
//! recorded sparsely as `access.denied`. A hand-written tower service with a named future
//! for the common case (nothing boxed; see BENCHMARKS.md).

use std::convert::Infallible;
use std::future::{Ready, ready};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::Body;
use axum::extract::{MatchedPath, Request};
use axum::http::StatusCode;
use axum::http::header::{self, HeaderName, HeaderValue};
use axum::response::{IntoResponse, Response};
use futures_util::future::Either;
use tower::{Layer, Service};
use warden_core::Ctx;
use warden_core::audit::denials::{Denial, Denials};
use warden_core::hosts::gate::{HostGate, HostRefusal};
use warden_core::identity::Identity;
use warden_core::license::{License, Refusal as LicenseRefusal};
use warden_domain::access::{Access, Gate, gate};
use warden_domain::clock::Clock;
use warden_domain::identity::Principal;
use warden_domain::organizations::OrgId;
use warden_domain::tenancy::WorkspaceId;
use warden_store::Store;
use warden_store::tenancy::Refusal;

use super::problem::ApiError;
use super::routes::AccessTable;
use crate::identity::{AuthFailure, Presented};
use crate::logging;

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
                        Some(Who::Signed(header)) => match with_signature(&ctx, &header, req).await
                        {
                            Ok((r, p)) => {
                                req = r;
                                Some(p)
                            }
                            Err((r, refused)) => {
                                if let Some(d) = denial(&r, &refused, None) {
                                    denials.record(d);
                                }
                                return Ok(refused);
                            }
                        },
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
                    if let Some(p) = &principal
                        && let Some(refused) = org_header_refusal(&req, p)
                    {
                        if let Some(d) = denial(&req, &refused, Some(p.user_id)) {
                            denials.record(d);
                        }
                        return Ok(refused);
                    }
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

/// The largest body of a signed service request.
const SIGNED_BODY_LIMIT: usize = 1024 * 1024;

/// Reads a signed request's body and checks its signature; hands the request on with the
/// body intact and its caller attached, or refuses it (401, alike for every failure).
async fn with_signature(
    ctx: &Arc<Ctx>,
    header: &str,
    req: Request,
) -> Result<(Request, Principal), (Request, Response)> {
    let unauthorized = || ApiError::from_status(StatusCode::UNAUTHORIZED).into_response();
    let (parts, body) = req.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, SIGNED_BODY_LIMIT).await else {
        let refused = ApiError::from_status(StatusCode::PAYLOAD_TOO_LARGE).into_response();
        return Err((Request::from_parts(parts, Body::empty()), refused));
    };
    let mut req = Request::from_parts(parts, Body::from(bytes.clone()));
    let Some(signed) = warden_core::service_keys::Signed::parse(header) else {
        return Err((req, unauthorized()));
    };
    let now = ctx.clock.now().unix_timestamp();
    let checked = warden_core::service_keys::authenticate(
        ctx,
        &signed,
        &warden_core::service_keys::Request {
            method: req.method().as_str(),
            path: req.uri().path(),
            query: req.uri().query().unwrap_or(""),
            body: &bytes,
        },
        now,
    )
    .await;
    match checked {
        Ok(Some(principal)) => {
            req.extensions_mut().insert(crate::identity::Caller {
                principal: principal.clone(),
                credential: crate::identity::Credential::ServiceKey,
            });
            Ok((req, principal))
        }
        Ok(None) => Err((req, unauthorized())),
        Err(e) => {
            tracing::warn!(
                code = e.code.as_str(),
                "cannot check a signed service request"
            );
            Err((req, unauthorized()))
        }
    }
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
        user: user.or_else(|| res.extensions().get::<DeniedUser>().map(|d| d.0)),
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
        None | Some(Access::Public | Access::LlmKey | Access::McpToken | Access::ScimToken) => {
            Presented::Nothing
        }
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
        Presented::Signed(header) => {
            // A service key reaches its own workspace's routes only.
            return match gate(rule, true) {
                g @ Gate::Workspace(_) => Ok(Some((g, Some(Who::Signed(header))))),
                _ => Err(ApiError::from_status(StatusCode::FORBIDDEN).into_response()),
            };
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
    if let Some(c) = &caller
        && let Some(refused) = org_header_refusal(req, &c.principal)
    {
        return Err(refused);
    }
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

/// The account a refusal answered, when the refusal itself knows it (the denial record).
#[derive(Debug, Clone, Copy)]
struct DeniedUser(uuid::Uuid);

/// The header a request may name its organization in.
const ORG_HEADER: &str = "x-org-id";

/// A request naming an organization (`x-org-id`, each value if repeated) must name the one
/// its credential acts in; otherwise 403 `org-mismatch`, logged and recorded as a denial. A
/// credential bound to one workspace (a service key) acts in no organization it could name.
#[allow(clippy::result_large_err)]
fn org_header_refusal(req: &Request, principal: &Principal) -> Option<Response> {
    let mut named = req.headers().get_all(ORG_HEADER).iter().peekable();
    named.peek()?;
    let acting = principal.organization;
    if acting.is_some() && named.all(|v| v.to_str().ok().and_then(OrgId::parse) == acting) {
        return None;
    }
    tracing::warn!(
        user = %principal.user_id,
        "x-org-id names another organization than the one the credential acts in"
    );
    let mut res = ApiError(warden_core::Code::OrgMismatch.into()).into_response();
    res.extensions_mut().insert(DeniedUser(principal.user_id));
    Some(res)
}

/// Who the guard's asynchronous half checks.
enum Who {
    /// Authenticated already.
    Known(Principal),
    /// A personal access token still to be read from the database.
    Uncached(String),
    /// A request signed with a service key: its body is read and its signature checked.
    Signed(String),
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
