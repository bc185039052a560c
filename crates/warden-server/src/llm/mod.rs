//! The LLM gateway's endpoints, in its clients' own formats, under the configured prefix
//! (`llm.path_prefix`, [`DEFAULT_PREFIX`]) on the main listener or on one of their own
//! (`llm.listen`):
//!
//! - OpenAI-compatible under `{prefix}/v1`: `POST chat/completions`, `completions`,
//!   `embeddings`, `GET models` (key as `Authorization: Bearer`).
//! - Anthropic-compatible under `{prefix}/anthropic/v1`: `POST messages` (key as
//!   `x-api-key` or `Authorization: Bearer`).
//!
//! A handler only translates: it hands the key and the body to the gateway's use cases
//! (`warden_core::llm`), forwards what they admit, and passes the upstream's answer back —
//! unchanged, chunk by chunk when it streams ([`stream`]). Errors are answered in the
//! client's format (OpenAI's `{"error":{…}}`, Anthropic's `{"type":"error",…}`), the same
//! 401 for every bad key.

mod stream;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Extension;
use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde_json::json;
use utoipa_axum::routes;
use warden_core::llm::{GatewayKey, Refusal};
use warden_domain::access::Access;
use warden_llm::upstream::Passed;
use warden_llm::wire::{Endpoint, Usage};

use crate::http::middleware::Verbatim;
use crate::http::routes::Routes;
use crate::state::AppState;

/// Where the gateway is unless `llm.path_prefix` says otherwise.
pub const DEFAULT_PREFIX: &str = "/llm";

/// The gateway's routes under `prefix` (empty, or `/` and segments without a trailing `/`).
pub fn routes(prefix: &str) -> Routes<AppState> {
    Routes::new().nest(
        prefix,
        Routes::new()
            .add(Access::LlmKey, routes!(chat_completions))
            .add(Access::LlmKey, routes!(completions))
            .add(Access::LlmKey, routes!(embeddings))
            .add(Access::LlmKey, routes!(models))
            .add(Access::LlmKey, routes!(messages)),
    )
}

/// The largest complete (non-streaming) answer passed back.
const RESPONSE_MAX: usize = 64 * 1024 * 1024;

/// The client's format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    OpenAi,
    Anthropic,
}

fn error(format: Format, status: u16, message: &str, retry_after: Option<i64>) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let kind = match (format, status.as_u16()) {
        (_, 401) => "authentication_error",
        (_, 403) => "permission_error",
        (_, 429) => "rate_limit_error",
        (Format::Anthropic, 413) => "request_too_large",
        (_, 400 | 404 | 413) => "invalid_request_error",
        (Format::Anthropic, 503 | 529) => "overloaded_error",
        _ => "api_error",
    };
    let body = match format {
        Format::OpenAi => json!({
            "error": { "message": message, "type": kind, "param": null, "code": null }
        }),
        Format::Anthropic => json!({
            "type": "error", "error": { "type": kind, "message": message }
        }),
    };
    let mut res = (status, axum::Json(body)).into_response();
    if let Some(secs) = retry_after
        && let Ok(v) = HeaderValue::from_str(&secs.to_string())
    {
        res.headers_mut().insert(header::RETRY_AFTER, v);
    }
    res.extensions_mut().insert(Verbatim);
    res
}

fn refused(format: Format, r: &Refusal) -> Response {
    let retry = match r {
        Refusal::OverQuota { retry_after } => Some(*retry_after),
        Refusal::Unavailable => Some(1),
        _ => None,
    };
    error(format, r.status(), &r.message(), retry)
}

/// The presented key: `Authorization: Bearer …`, or Anthropic's `x-api-key`.
fn presented(headers: &HeaderMap) -> &str {
    if let Some(v) = headers.get("x-api-key").and_then(|v| v.to_str().ok()) {
        return v.trim();
    }
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map_or("", str::trim)
}

fn now_us(state: &AppState) -> i64 {
    warden_core::op::unix_us(state.ctx.clock.now())
}

async fn authenticate(
    state: &AppState,
    headers: &HeaderMap,
    format: Format,
) -> Result<Arc<GatewayKey>, Response> {
    state
        .ctx
        .llm
        .authenticate(&state.ctx, presented(headers), now_us(state))
        .await
        .map_err(|r| refused(format, &r))
}

/// One call: authenticate, read the body (within the limit), admit, forward, answer.
async fn call(
    state: AppState,
    endpoint: Endpoint,
    peer: Option<SocketAddr>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let format = if endpoint.is_anthropic() {
        Format::Anthropic
    } else {
        Format::OpenAi
    };
    let ctx = &state.ctx;
    let key = match authenticate(&state, &headers, format).await {
        Ok(k) => k,
        Err(res) => return res,
    };
    let limit = ctx.llm.config.body_limit;
    let too_large = || {
        error(
            format,
            413,
            &format!("The request body is larger than this gateway accepts ({limit} bytes)."),
            None,
        )
    };
    if headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
        .is_some_and(|n| n > limit)
    {
        return too_large();
    }
    let bytes: Bytes = match axum::body::to_bytes(body, limit).await {
        Ok(b) => b,
        Err(_) => return too_large(),
    };
    let request_id = crate::logging::current_request_id()
        .map(|id| id.to_string())
        .unwrap_or_default();
    let admitted = ctx
        .llm
        .admit(
            ctx,
            key,
            endpoint,
            bytes,
            request_id.clone(),
            peer.map(|p| p.ip()),
            now_us(&state),
        )
        .await;
    let mut admitted = match admitted {
        Ok(a) => a,
        Err((r, recorded)) => {
            if let Some(a) = recorded {
                ctx.llm
                    .finish(ctx, a, r.status(), Usage::default(), None)
                    .await;
            }
            return refused(format, &r);
        }
    };
    let passed = Passed {
        request_id,
        anthropic_version: header_text(&headers, "anthropic-version"),
        anthropic_beta: header_text(&headers, "anthropic-beta"),
    };
    let upstream = match ctx.llm.send(&admitted, &passed).await {
        Ok(u) => u,
        Err(e) => {
            let (status, message) = match e {
                warden_llm::upstream::UpstreamError::Timeout => {
                    (504, "The upstream did not answer in time.")
                }
                _ => (502, "The upstream could not be reached."),
            };
            ctx.llm
                .finish(ctx, admitted, status, Usage::default(), None)
                .await;
            return error(format, status, message, None);
        }
    };
    let status = upstream.status();
    let content_type = upstream.headers().get(header::CONTENT_TYPE).cloned();
    let streams = content_type
        .as_ref()
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/event-stream"));
    if streams {
        return stream::response(state.ctx.clone(), admitted, status, content_type, upstream);
    }
    // A complete answer: read it (bounded), meter it, filter it if the workspace asks.
    let mut body = Vec::new();
    let mut upstream = upstream;
    loop {
        match upstream.chunk().await {
            Ok(Some(c)) => {
                if body.len() + c.len() > RESPONSE_MAX {
                    ctx.llm
                        .finish(ctx, admitted, 502, Usage::default(), None)
                        .await;
                    return error(format, 502, "The upstream's answer is too large.", None);
                }
                body.extend_from_slice(&c);
            }
            Ok(None) => break,
            Err(_) => {
                ctx.llm
                    .finish(ctx, admitted, 502, Usage::default(), None)
                    .await;
                return error(format, 502, "The upstream's answer was cut off.", None);
            }
        }
    }
    let usage = warden_llm::wire::response_usage(&body);
    if status.is_success()
        && let Some(changed) = admitted.filter_response(&body)
    {
        body = changed;
    }
    let captured = admitted.captures().then(|| body.clone());
    ctx.llm
        .finish(ctx, admitted, status.as_u16(), usage, captured.as_deref())
        .await;
    let mut res = Response::new(Body::from(body));
    *res.status_mut() = status;
    if let Some(ct) = content_type {
        res.headers_mut().insert(header::CONTENT_TYPE, ct);
    }
    res.extensions_mut().insert(Verbatim);
    res
}

fn header_text(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .filter(|v| v.len() <= 256)
        .map(str::to_owned)
}

/// OpenAI-compatible chat completion (streaming or not).
#[utoipa::path(post, path = "/v1/chat/completions", tag = "llm gateway",
    request_body(content = String, content_type = "application/json", description = "An OpenAI chat completion request"),
    responses(
        (status = 200, description = "The upstream's answer, passed through (JSON or server-sent events)"),
        (status = 400, description = "Malformed, or blocked by a filter (OpenAI error format)"),
        (status = 401, description = "No valid gateway key (the same for every reason)"),
        (status = 403, description = "Model not allowed, gateway switched off, or not licensed"),
        (status = 413, description = "Body over the limit"),
        (status = 429, description = "Over a quota (with Retry-After)"),
        (status = 502, description = "The upstream could not be reached"),
        (status = 503, description = "Quotas cannot be checked (refused: fail closed)")))]
pub(crate) async fn chat_completions(
    State(state): State<AppState>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    call(
        state,
        Endpoint::ChatCompletions,
        peer.map(|c| c.0.0),
        headers,
        body,
    )
    .await
}

/// OpenAI-compatible (legacy) completion.
#[utoipa::path(post, path = "/v1/completions", tag = "llm gateway",
    request_body(content = String, content_type = "application/json", description = "An OpenAI completion request"),
    responses((status = 200, description = "The upstream's answer, passed through"),
        (status = 401, description = "No valid gateway key"),
        (status = 429, description = "Over a quota")))]
pub(crate) async fn completions(
    State(state): State<AppState>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    call(
        state,
        Endpoint::Completions,
        peer.map(|c| c.0.0),
        headers,
        body,
    )
    .await
}

/// OpenAI-compatible embeddings.
#[utoipa::path(post, path = "/v1/embeddings", tag = "llm gateway",
    request_body(content = String, content_type = "application/json", description = "An OpenAI embeddings request"),
    responses((status = 200, description = "The upstream's answer, passed through"),
        (status = 401, description = "No valid gateway key"),
        (status = 429, description = "Over a quota")))]
pub(crate) async fn embeddings(
    State(state): State<AppState>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    call(
        state,
        Endpoint::Embeddings,
        peer.map(|c| c.0.0),
        headers,
        body,
    )
    .await
}

/// Anthropic-compatible messages (streaming or not).
#[utoipa::path(post, path = "/anthropic/v1/messages", tag = "llm gateway",
    request_body(content = String, content_type = "application/json", description = "An Anthropic messages request"),
    responses((status = 200, description = "The upstream's answer, passed through (JSON or server-sent events)"),
        (status = 401, description = "No valid gateway key (Anthropic error format)"),
        (status = 429, description = "Over a quota")))]
pub(crate) async fn messages(
    State(state): State<AppState>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    call(
        state,
        Endpoint::Messages,
        peer.map(|c| c.0.0),
        headers,
        body,
    )
    .await
}

/// The models a key may call (OpenAI's list format).
#[utoipa::path(get, path = "/v1/models", tag = "llm gateway",
    responses((status = 200, description = "The models this key may call"),
        (status = 401, description = "No valid gateway key")))]
pub(crate) async fn models(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let key = match authenticate(&state, &headers, Format::OpenAi).await {
        Ok(k) => k,
        Err(res) => return res,
    };
    match state.ctx.llm.models(&state.ctx, &key, now_us(&state)).await {
        Ok(list) => {
            let data: Vec<_> = list
                .into_iter()
                .map(|(id, owner)| json!({ "id": id, "object": "model", "created": 0, "owned_by": owner }))
                .collect();
            let mut res = axum::Json(json!({ "object": "list", "data": data })).into_response();
            res.extensions_mut().insert(Verbatim);
            res
        }
        Err(r) => refused(Format::OpenAi, &r),
    }
}
