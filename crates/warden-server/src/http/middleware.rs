//! What every request goes through around its handler, as two hand-written tower services
//! with named futures (nothing boxed per request; see BENCHMARKS.md for why):
//!
//! - [`EdgeLayer`], outermost: request id and log span, request timeout (408), a deadline for
//!   the request body (408 and the connection closed; `body_deadline.rs`), panic catcher
//!   (500), problem documents for every error, security headers and the id on every response.
//! - The access guard (`guard.rs`), on each route: the route's declared access rule decides
//!   whether the handler runs. A route without a rule is refused whoever asks.

use std::convert::Infallible;
use std::future::{Ready, ready};
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::Request;

use axum::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use futures_util::FutureExt;
use tokio::time::error::Elapsed;
use tower::{Layer, Service};

use warden_domain::request_id::RequestId;

use super::problem::{ApiError, PROBLEM_JSON, Problem};
use crate::logging::{self, RequestContext};

/// Marks a response whose error body is already in its client's format (the LLM gateway
/// answers OpenAI and Anthropic clients in theirs): the edge keeps it.
#[derive(Debug, Clone, Copy)]
pub struct Verbatim;

/// How long a call through the LLM gateway may take before its answer starts (a model may
/// think for minutes); every other request has the configured timeout.
const LLM_TIMEOUT: Duration = Duration::from_secs(600);
/// How long an MCP tool call may take: `ask_user_question` waits up to 15 minutes for a
/// person's answer.
const MCP_TIMEOUT: Duration = Duration::from_secs(960);

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
    /// How long a request's body may take to arrive, from the end of its headers.
    body_timeout: Duration,
    /// Where each answered request is counted, when metrics are on.
    metrics: Option<Arc<crate::metrics::Metrics>>,
    /// The LLM gateway's path prefix, when this service serves it: calls under it have
    /// [`LLM_TIMEOUT`].
    gateway: Option<String>,
}

impl EdgeLayer {
    /// The edge for a server that does (`tls`) or does not terminate TLS itself, answering
    /// 408 to requests that take longer than `timeout` or whose body takes longer than
    /// `body_timeout` to arrive, counting each answer in `metrics` when they are on.
    pub fn new(
        tls: bool,
        timeout: Duration,
        body_timeout: Duration,
        metrics: Option<Arc<crate::metrics::Metrics>>,
    ) -> Self {
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
                body_timeout,
                metrics,
                gateway: None,
            }),
        }
    }

    /// The same edge for a service that serves the LLM gateway under `prefix`.
    #[must_use]
    pub fn with_gateway(mut self, prefix: Option<&str>) -> Self {
        if let Some(config) = Arc::get_mut(&mut self.config) {
            config.gateway = prefix.map(str::to_owned);
        }
        self
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
        let (parts, body) = req.into_parts();
        // Only a request that has a body gets (and pays for) a deadline on it.
        let (body, body_expired) = if super::body_deadline::has_body(&parts.headers) {
            let (body, expired) =
                super::body_deadline::limit(Body::new(body), self.config.body_timeout);
            (
                body,
                Some((expired, parts.version < axum::http::Version::HTTP_2)),
            )
        } else {
            (Body::new(body), None)
        };
        let req = Request::from_parts(parts, body);
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
        // Under SCIM, every refusal (the guard's, a body limit's, an unknown path) is a SCIM
        // error document.
        let scim = req.uri().path().starts_with(warden_core::scim::ROOT);
        let timeout = if self.config.gateway.as_deref().is_some_and(|prefix| {
            req.uri()
                .path()
                .strip_prefix(prefix)
                .is_some_and(|rest| rest.starts_with('/'))
        }) {
            LLM_TIMEOUT
        } else if req.uri().path() == "/mcp" {
            MCP_TIMEOUT
        } else {
            self.config.timeout
        };
        let handled = tokio::time::timeout(
            timeout,
            AssertUnwindSafe(self.inner.call(req)).catch_unwind(),
        )
        .map(settle as Settle);
        // A trace span only when traces are exported; its name and route come at the end.
        let span = if logging::tracing_requests() {
            tracing::info_span!(
                "request",
                otel.kind = "server",
                http.request.method = %ctx.method,
                warden.request_id = %id,
            )
        } else {
            tracing::Span::none()
        };
        EdgeFuture {
            inner: logging::in_request(ctx, handled),
            span,
            started: self.config.metrics.as_ref().map(|_| Instant::now()),
            id: Some(id),
            config: self.config.clone(),
            console,
            scim,
            body_expired,
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
        // The request's trace span (disabled unless traces are exported).
        span: tracing::Span,
        // When the request arrived, when metrics are on.
        started: Option<Instant>,
        id: Option<RequestId>,
        config: Arc<EdgeConfig>,
        console: Option<String>,
        scim: bool,
        // Set when the request had a body: whether its deadline passed before it was read,
        // and whether it came over HTTP/1 (whose connection is then closed).
        body_expired: Option<(super::body_deadline::Expired, bool)>,
    }
}

impl<F> Future for EdgeFuture<F>
where
    F: Future<Output = Result<Response, Infallible>>,
{
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        let res = {
            let _in_span = this.span.enter();
            std::task::ready!(this.inner.as_mut().poll(cx))
        };
        let id = this.id.take().unwrap_or_else(RequestId::generate);
        let res = match this.body_expired {
            Some((expired, http1)) if expired.expired() => body_too_slow(*http1),
            _ => res,
        };
        let res = finish(res, &id, this.config, this.console.as_deref(), *this.scim);
        let observed = this.config.metrics.is_some() || !this.span.is_none();
        if observed && let Some(ctx) = this.inner.take_value() {
            let route = ctx.route.get().map(axum::extract::MatchedPath::as_str);
            if let (Some(metrics), Some(started)) = (&this.config.metrics, this.started.take()) {
                metrics.record_request(&ctx.method, route, res.status(), started.elapsed());
            }
            if !this.span.is_none() {
                logging::finish_span(this.span, &ctx.method, route, res.status());
            }
        }
        Poll::Ready(Ok(res))
    }
}

/// The answer to a request whose body did not arrive in time, whatever the handler made of
/// the failed read (a 400, or the LLM gateway's 413): 408, and on HTTP/1 the connection is
/// closed — what is left of the body is not worth waiting for. (HTTP/2 has no `Connection`
/// header; its stream ends with the answer.)
fn body_too_slow(http1: bool) -> Response {
    tracing::debug!("request body timed out");
    let mut res = ApiError::from_status(StatusCode::REQUEST_TIMEOUT).into_response();
    if http1 {
        res.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    res
}

fn finish(
    mut res: Response,
    id: &RequestId,
    config: &EdgeConfig,
    console: Option<&str>,
    scim: bool,
) -> Response {
    let status = res.status();
    let page = res.extensions().get::<super::page::Page>().is_some()
        || res.extensions().get::<Verbatim>().is_some();
    if (status.is_client_error() || status.is_server_error()) && !page {
        res = match console {
            _ if scim => crate::scim::error_document(res),
            Some(path) => {
                let why = res.extensions().get::<ApiError>().map(|e| {
                    (
                        e.0.field,
                        e.0.note.clone().unwrap_or_else(|| e.0.detail.to_owned()),
                    )
                });
                let mut page = crate::console::error_page(status, path, why);
                // What the refusal tells the client to do next survives the page.
                for name in [header::ALLOW, header::RETRY_AFTER] {
                    if let Some(v) = res.headers().get(&name) {
                        page.headers_mut().insert(name, v.clone());
                    }
                }
                page
            }
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
