//! A stand-in for paid LLM providers at the network boundary: a small HTTP server speaking
//! OpenAI's (`/v1/chat/completions`, `/v1/completions`, `/v1/embeddings`) and Anthropic's
//! (`/v1/messages`) documented wire formats, streaming and not, with usage fields.
//!
//! The model name steers it: `…-slow` answers after `slow_ms`; `…-error` answers 500 in
//! the provider's error format; `…-endless` streams a chunk every 20 ms for a minute (a
//! client that goes away shows as a cancelled stream). Every request it receives is kept
//! (its key header and body), so tests can check what reached the provider — and what did
//! not. Usage: 10 input tokens; output tokens = `max_tokens` (or 16), capped at 64.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};

/// A request the stub received.
#[derive(Debug, Clone)]
pub struct Seen {
    /// Path.
    pub path: String,
    /// `authorization` or `x-api-key`, as sent.
    pub key: String,
    /// `x-request-id`, as sent.
    pub request_id: String,
    /// Body.
    pub body: Value,
}

#[derive(Default)]
struct Inner {
    seen: Mutex<Vec<Seen>>,
    cancelled: AtomicU64,
    finished: AtomicU64,
    delay_ms: AtomicU64,
    record: std::sync::atomic::AtomicBool,
}

/// The running stub.
#[derive(Clone)]
pub struct LlmStub {
    /// Its address.
    pub addr: SocketAddr,
    inner: Arc<Inner>,
}

impl std::fmt::Debug for LlmStub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LlmStub").field("addr", &self.addr).finish()
    }
}

/// Input tokens every call reports.
pub const INPUT_TOKENS: u64 = 10;

impl LlmStub {
    /// Starts one on a free loopback port; it lives as long as the runtime.
    pub async fn start() -> anyhow::Result<Self> {
        Self::start_on("127.0.0.1:0").await
    }

    /// Starts one on `addr`.
    pub async fn start_on(addr: &str) -> anyhow::Result<Self> {
        let inner = Arc::new(Inner::default());
        inner.record.store(true, Ordering::Relaxed);
        let app = Router::new()
            .route("/v1/chat/completions", post(chat))
            .route("/v1/completions", post(completion))
            .route("/v1/embeddings", post(embeddings))
            .route("/v1/messages", post(messages))
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self { addr, inner })
    }

    /// The OpenAI-style base URL (`http://…/v1`).
    pub fn openai_base(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// The Anthropic-style base URL (`http://…`).
    pub fn anthropic_base(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// What it received so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.inner
            .seen
            .lock()
            .map(|s| s.clone())
            .unwrap_or_default()
    }

    /// Streams that ended because the client went away.
    pub fn cancelled(&self) -> u64 {
        self.inner.cancelled.load(Ordering::SeqCst)
    }

    /// Streams sent to their end.
    pub fn finished(&self) -> u64 {
        self.inner.finished.load(Ordering::SeqCst)
    }

    /// Makes every answer wait `ms` first (a fixed response time, for benchmarks).
    pub fn set_delay_ms(&self, ms: u64) {
        self.inner.delay_ms.store(ms, Ordering::Relaxed);
    }

    /// Stops keeping requests (benchmarks).
    pub fn stop_recording(&self) {
        self.inner.record.store(false, Ordering::Relaxed);
    }
}

fn out_tokens(body: &Value) -> u64 {
    body.get("max_completion_tokens")
        .or_else(|| body.get("max_tokens"))
        .and_then(Value::as_u64)
        .unwrap_or(16)
        .min(64)
}

async fn note(s: &Inner, path: &str, headers: &HeaderMap, body: &Bytes) -> Value {
    let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    if s.record.load(Ordering::Relaxed) {
        let key = headers
            .get("x-api-key")
            .or_else(|| headers.get(header::AUTHORIZATION))
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let request_id = headers
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        if let Ok(mut seen) = s.seen.lock() {
            seen.push(Seen {
                path: path.to_owned(),
                key,
                request_id,
                body: v.clone(),
            });
        }
    }
    let delay = s.delay_ms.load(Ordering::Relaxed);
    let model = v["model"].as_str().unwrap_or("");
    let delay = if model.ends_with("-slow") {
        delay.max(1500)
    } else {
        delay
    };
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    v
}

fn model_of(v: &Value) -> &str {
    v["model"].as_str().unwrap_or("")
}

/// Counts a stream as finished or, when dropped before its end, cancelled.
struct StreamGuard {
    s: Arc<Inner>,
    done: bool,
}

impl StreamGuard {
    fn finish(mut self) {
        self.done = true;
    }
}

impl Drop for StreamGuard {
    fn drop(&mut self) {
        if self.done {
            self.s.finished.fetch_add(1, Ordering::SeqCst);
        } else {
            self.s.cancelled.fetch_add(1, Ordering::SeqCst);
        }
    }
}

fn sse(events: Vec<String>, s: Arc<Inner>, endless: bool) -> Response {
    let guard = StreamGuard { s, done: false };
    let stream = futures_util::stream::unfold(
        (events, 0usize, guard),
        move |(events, i, guard)| async move {
            if endless {
                if i >= 3000 {
                    guard.finish();
                    return None;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
                let chunk = "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"x\"}}]}\n\n";
                return Some((
                    Ok::<_, std::io::Error>(Bytes::from(chunk)),
                    (events, i + 1, guard),
                ));
            }
            if i >= events.len() {
                guard.finish();
                return None;
            }
            let b = Bytes::from(events[i].clone());
            Some((Ok(b), (events, i + 1, guard)))
        },
    );
    let mut res = Response::new(Body::from_stream(stream));
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/event-stream"),
    );
    res
}

fn provider_error(anthropic: bool) -> Response {
    let body = if anthropic {
        json!({"type":"error","error":{"type":"api_error","message":"upstream exploded"}})
    } else {
        json!({"error":{"message":"upstream exploded","type":"server_error","param":null,"code":null}})
    };
    (StatusCode::INTERNAL_SERVER_ERROR, axum::Json(body)).into_response()
}

async fn chat(State(s): State<Arc<Inner>>, headers: HeaderMap, body: Bytes) -> Response {
    let v = note(&s, "/v1/chat/completions", &headers, &body).await;
    let model = model_of(&v).to_owned();
    if model.ends_with("-error") {
        return provider_error(false);
    }
    let out = out_tokens(&v);
    if v["stream"].as_bool() == Some(true) {
        let mut events = vec![format!(
            "data: {}\n\n",
            json!({"id":"chatcmpl-1","object":"chat.completion.chunk","created":0,"model":model,
                   "choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]})
        )];
        for word in ["Hello", " from", " the", " stub"] {
            events.push(format!(
                "data: {}\n\n",
                json!({"id":"chatcmpl-1","object":"chat.completion.chunk","created":0,"model":model,
                       "choices":[{"index":0,"delta":{"content":word},"finish_reason":null}]})
            ));
        }
        events.push(format!(
            "data: {}\n\n",
            json!({"id":"chatcmpl-1","object":"chat.completion.chunk","created":0,"model":model,
                   "choices":[{"index":0,"delta":{},"finish_reason":"stop"}]})
        ));
        if v["stream_options"]["include_usage"].as_bool() == Some(true) {
            events.push(format!(
                "data: {}\n\n",
                json!({"id":"chatcmpl-1","object":"chat.completion.chunk","created":0,"model":model,
                       "choices":[],"usage":{"prompt_tokens":INPUT_TOKENS,"completion_tokens":out,
                       "total_tokens":INPUT_TOKENS+out}})
            ));
        }
        events.push("data: [DONE]\n\n".to_owned());
        return sse(events, s, model.ends_with("-endless"));
    }
    axum::Json(json!({
        "id": "chatcmpl-1", "object": "chat.completion", "created": 0, "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello from the stub"},
                     "finish_reason": "stop", "logprobs": null}],
        "usage": {"prompt_tokens": INPUT_TOKENS, "completion_tokens": out, "total_tokens": INPUT_TOKENS + out}
    }))
    .into_response()
}

async fn completion(State(s): State<Arc<Inner>>, headers: HeaderMap, body: Bytes) -> Response {
    let v = note(&s, "/v1/completions", &headers, &body).await;
    let out = out_tokens(&v);
    axum::Json(json!({
        "id": "cmpl-1", "object": "text_completion", "created": 0, "model": model_of(&v),
        "choices": [{"text": "Hello", "index": 0, "logprobs": null, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": INPUT_TOKENS, "completion_tokens": out, "total_tokens": INPUT_TOKENS + out}
    }))
    .into_response()
}

async fn embeddings(State(s): State<Arc<Inner>>, headers: HeaderMap, body: Bytes) -> Response {
    let v = note(&s, "/v1/embeddings", &headers, &body).await;
    axum::Json(json!({
        "object": "list", "model": model_of(&v),
        "data": [{"object": "embedding", "index": 0, "embedding": [0.1, 0.2, 0.3]}],
        "usage": {"prompt_tokens": INPUT_TOKENS, "total_tokens": INPUT_TOKENS}
    }))
    .into_response()
}

async fn messages(State(s): State<Arc<Inner>>, headers: HeaderMap, body: Bytes) -> Response {
    let v = note(&s, "/v1/messages", &headers, &body).await;
    let model = model_of(&v).to_owned();
    if model.ends_with("-error") {
        return provider_error(true);
    }
    let out = out_tokens(&v);
    if v["stream"].as_bool() == Some(true) {
        let ev = |name: &str, data: Value| format!("event: {name}\ndata: {data}\n\n");
        let mut events = vec![ev(
            "message_start",
            json!({"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant",
                   "content":[],"model":model,"stop_reason":null,"stop_sequence":null,
                   "usage":{"input_tokens":INPUT_TOKENS,"output_tokens":1}}}),
        )];
        events.push(ev(
            "content_block_start",
            json!({"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}),
        ));
        for word in ["Hello", " from", " the", " stub"] {
            events.push(ev(
                "content_block_delta",
                json!({"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":word}}),
            ));
        }
        events.push(ev(
            "content_block_stop",
            json!({"type":"content_block_stop","index":0}),
        ));
        events.push(ev(
            "message_delta",
            json!({"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},
                   "usage":{"output_tokens":out}}),
        ));
        events.push(ev("message_stop", json!({"type":"message_stop"})));
        return sse(events, s, false);
    }
    axum::Json(json!({
        "id": "msg_1", "type": "message", "role": "assistant", "model": model,
        "content": [{"type": "text", "text": "Hello from the stub"}],
        "stop_reason": "end_turn", "stop_sequence": null,
        "usage": {"input_tokens": INPUT_TOKENS, "output_tokens": out}
    }))
    .into_response()
}
