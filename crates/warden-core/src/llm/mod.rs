//! The LLM gateway with governance: agents and people call OpenAI- and Anthropic-style
//! endpoints with a gateway key; Warden checks the key, the kill switches and the licence,
//! resolves the model to one of the workspace's upstreams, runs the filters, reserves quota,
//! forwards the call with the workspace's provider key (which never leaves the server), and
//! records it.
//!
//! - [`Gateway::authenticate`]: every presented key takes the same path — hashed, looked up
//!   in this node's cache (positive and negative entries, 30 s), else by its hash in the
//!   database — so a wrong, revoked, expired or unknown key is refused alike. Revocation is
//!   logged like a sign-in session's, so every node refuses a revoked key at once.
//! - [`Gateway::admit`]: the decisions before the call. The workspace's configuration
//!   (policy, upstreams with their keys opened, compiled filters) is cached for 2 s.
//! - [`Gateway::finish`]: settles the quota and hands the record to the writer
//!   ([`records`]).
//!
//! Administration (policies, upstreams, keys, records, usage) is in [`admin`].

pub mod admin;
mod config;
mod keys;
pub mod policy;
pub mod quota;
pub mod records;
pub mod reports;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

use bytes::Bytes;
use serde_json::json;
use uuid::Uuid;
use warden_crypto::keyring::Context;
use warden_domain::license::Feature;
use warden_llm::filters::{Decision, Filters, Verdict};
use warden_llm::upstream::{Kind, Passed, Target, UpstreamError, Upstreams};
use warden_llm::wire::{Endpoint, Usage};
use warden_store::llm::CallRow;
use zeroize::Zeroizing;

use crate::Ctx;
use policy::Policy;
use quota::{Quotas, Reservation};

/// The prefix of gateway keys.
pub const KEY_PREFIX: &str = "wdn_llm_";
/// How long a looked-up key is trusted without reading the database again (µs).
const KEY_CACHE_US: i64 = 30_000_000;
/// How long a workspace's configuration is used before it is read again (µs).
const CONFIG_CACHE_US: i64 = 2_000_000;
/// How long a cached configuration may still be used while one request reads it again (µs);
/// older than this, every request waits for a fresh one (and is refused if it cannot be read).
const STALE_US: i64 = 30_000_000;
const KEY_CACHE_CAPACITY: usize = 100_000;
/// Captured content kept per call, at most (each way).
const CAPTURE_MAX: usize = 1024 * 1024;

/// The gateway's settings (configuration file, `llm.*`).
#[derive(Debug, Clone)]
pub struct LlmConfig {
    /// Whether workspaces may point upstreams at private and loopback addresses (a
    /// self-hosted model inside the network). Link-local addresses are refused regardless.
    pub allow_private_upstreams: bool,
    /// The largest request body accepted (bytes), refused before any upstream call.
    pub body_limit: usize,
    /// Where sessions and clients reach the gateway: its origin and path prefix, without a
    /// trailing slash (`https://warden.example.com/llm`); the OpenAI endpoints are under
    /// `{url}/v1`, Anthropic's under `{url}/anthropic/v1`. Worked out at start.
    pub url: String,
}

impl Default for LlmConfig {
    fn default() -> Self {
        Self {
            allow_private_upstreams: false,
            body_limit: 4 * 1024 * 1024,
            url: "http://127.0.0.1:8080/llm".to_owned(),
        }
    }
}

/// A key, as the gateway knows it.
#[derive(Debug, Clone)]
pub struct GatewayKey {
    /// Id.
    pub id: Uuid,
    /// Workspace.
    pub workspace_id: Uuid,
    /// The user whose quota it counts against (the key's user, or the session's owner).
    pub user_id: Option<Uuid>,
    /// The agent session it was minted for.
    pub session_id: Option<Uuid>,
    /// Who answers for it (the user, else its creator): deactivating them ends it.
    pub owner: Uuid,
    /// Ends then (µs).
    pub expires_at: Option<i64>,
    /// The automation run that started its session, if one did.
    pub automation_run_id: Option<Uuid>,
}

struct KeyEntry {
    key: Option<Arc<GatewayKey>>,
    until: i64,
}

/// An upstream, ready to call.
pub struct Upstream {
    /// Id.
    pub id: Uuid,
    /// Name.
    pub name: String,
    /// Protocol.
    pub kind: Kind,
    /// Base URL.
    pub base_url: String,
    key: Option<Zeroizing<String>>,
    /// Models served.
    pub models: Vec<String>,
    /// Aliases.
    pub aliases: HashMap<String, String>,
    /// May be on a private network.
    pub allow_private: bool,
}

impl std::fmt::Debug for Upstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upstream")
            .field("name", &self.name)
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

/// A workspace's configuration, cached.
#[derive(Debug)]
pub struct WsConfig {
    enabled: bool,
    policy: Arc<Policy>,
    filters: Filters,
    upstreams: Vec<Upstream>,
    loaded_at: i64,
    refreshing: std::sync::atomic::AtomicBool,
}

/// Why a call is refused (the front end words it in the client's format).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// No valid key (the same for every reason).
    Unauthorized,
    /// The gateway is switched off (platform or workspace).
    Disabled,
    /// The licence does not cover the gateway.
    Unlicensed,
    /// The body cannot be forwarded.
    BadRequest(&'static str),
    /// The model is not one the workspace allows.
    ModelNotAllowed,
    /// A filter blocks the call.
    Blocked(&'static str),
    /// Over a quota.
    OverQuota {
        /// Seconds to wait.
        retry_after: i64,
    },
    /// What the call must be checked against (key, configuration, quota counters) cannot
    /// be read: refused (fail closed).
    Unavailable,
}

impl Refusal {
    /// The HTTP status it is answered with.
    pub fn status(&self) -> u16 {
        match self {
            Self::Unauthorized => 401,
            Self::Disabled | Self::Unlicensed | Self::ModelNotAllowed => 403,
            Self::BadRequest(_) | Self::Blocked(_) => 400,
            Self::OverQuota { .. } => 429,
            Self::Unavailable => 503,
        }
    }

    /// A sentence for the client (never a secret: rules are named, text is not quoted).
    pub fn message(&self) -> String {
        match self {
            Self::Unauthorized => "Invalid API key.".into(),
            Self::Disabled => "The LLM gateway is switched off for this workspace.".into(),
            Self::Unlicensed => "The licence does not include the LLM gateway.".into(),
            Self::BadRequest(why) => format!("Bad request: {why}."),
            Self::ModelNotAllowed => "This model is not available to this key.".into(),
            Self::Blocked(rule) => {
                format!("The request was blocked by the workspace's filters (rule: {rule}).")
            }
            Self::OverQuota { .. } => "A quota of this workspace is used up.".into(),
            Self::Unavailable => {
                "The gateway cannot check this call right now; it was not made.".into()
            }
        }
    }
}

/// A call that may go ahead.
#[derive(Debug)]
pub struct Admitted {
    /// The record's id.
    pub call_id: Uuid,
    key: Arc<GatewayKey>,
    ws: Arc<WsConfig>,
    upstream: usize,
    /// The body to forward.
    pub body: Bytes,
    /// The model (after aliases).
    pub model: String,
    /// Whether the answer streams.
    pub stream: bool,
    endpoint: Endpoint,
    reservation: Reservation,
    decisions: Vec<Decision>,
    started: Instant,
    at: i64,
    request_id: String,
    client_ip: Option<IpAddr>,
    input_estimate: i64,
    automation_run_id: Option<Uuid>,
}

impl Admitted {
    /// Whether the workspace captures content (the front end then keeps a copy of the
    /// response, up to a limit).
    pub fn captures(&self) -> bool {
        self.ws.policy.capture.enabled
    }

    /// Filters a complete response (redactions only, when the workspace asks for it).
    pub fn filter_response(&mut self, body: &[u8]) -> Option<Vec<u8>> {
        let out = self.ws.filters.response(body);
        self.decisions.extend(out.decisions);
        match out.verdict {
            Verdict::Changed(b) => Some(b),
            _ => None,
        }
    }
}

/// The gateway on this node.
pub struct Gateway {
    /// Settings.
    pub config: LlmConfig,
    upstreams: Upstreams,
    keys: RwLock<HashMap<[u8; 32], KeyEntry>>,
    workspaces: RwLock<HashMap<Uuid, Arc<WsConfig>>>,
    global: RwLock<(bool, i64)>,
    global_refreshing: std::sync::atomic::AtomicBool,
    /// Quota leases of this node.
    pub quotas: Quotas,
    writer: records::Writer,
    inbox: Mutex<Option<records::Inbox>>,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

fn hash(presented: &str) -> [u8; 32] {
    warden_crypto::token::hash(presented)
}

/// The associated data sealing an upstream's provider key.
pub fn upstream_key_context(workspace: Uuid, upstream: Uuid) -> Context {
    Context::new("warden.llm_upstream_key")
        .with(workspace.as_bytes())
        .with(upstream.as_bytes())
}

/// The associated data sealing a call's captured content.
pub fn content_context(workspace: Uuid, call: Uuid) -> Context {
    Context::new("warden.llm_call_content")
        .with(workspace.as_bytes())
        .with(call.as_bytes())
}

impl Gateway {
    /// A gateway with `config`.
    pub fn new(config: LlmConfig) -> Result<Self, String> {
        let (writer, inbox) = records::channel();
        Ok(Self {
            config,
            upstreams: Upstreams::new().map_err(|e| e.to_string())?,
            keys: RwLock::default(),
            workspaces: RwLock::default(),
            global: RwLock::new((true, i64::MIN)),
            global_refreshing: std::sync::atomic::AtomicBool::new(false),
            quotas: Quotas::default(),
            writer,
            inbox: Mutex::new(Some(inbox)),
        })
    }

    /// Forgets what this node cached of a workspace (after a change here).
    pub fn forget_workspace(&self, ws: Uuid) {
        if let Ok(mut w) = self.workspaces.write() {
            w.remove(&ws);
        }
    }

    /// Forgets a key (after its revocation here).
    pub fn forget_keys(&self) {
        if let Ok(mut k) = self.keys.write() {
            k.clear();
        }
    }

    /// Forgets the platform switch (after a change here).
    pub fn forget_switch(&self) {
        if let Ok(mut g) = self.global.write() {
            g.1 = i64::MIN;
        }
    }

    /// The models a key may call.
    pub async fn models(
        &self,
        ctx: &Ctx,
        key: &GatewayKey,
        now: i64,
    ) -> Result<Vec<(String, &'static str)>, Refusal> {
        let ws = self.gate(ctx, key, now).await?;
        let mut out: Vec<(String, &'static str)> = Vec::new();
        for u in &ws.upstreams {
            for m in u.models.iter().chain(u.aliases.keys()) {
                if !out.iter().any(|(x, _)| x == m) {
                    out.push((m.clone(), u.kind.as_str()));
                }
            }
        }
        out.sort();
        Ok(out)
    }

    async fn gate(&self, ctx: &Ctx, key: &GatewayKey, now: i64) -> Result<Arc<WsConfig>, Refusal> {
        if !ctx.license.allows_background(now / 1_000_000)
            || !ctx.license.feature(Feature::LlmGateway)
        {
            return Err(Refusal::Unlicensed);
        }
        if !self.switch_on(ctx, now).await? {
            return Err(Refusal::Disabled);
        }
        let ws = self.workspace(ctx, key.workspace_id, now).await?;
        if !ws.enabled {
            return Err(Refusal::Disabled);
        }
        Ok(ws)
    }

    /// Everything decided before the call: switches, licence, model, filters, quota.
    #[allow(clippy::too_many_arguments)]
    pub async fn admit(
        &self,
        ctx: &Ctx,
        key: Arc<GatewayKey>,
        endpoint: Endpoint,
        body: Bytes,
        request_id: String,
        client_ip: Option<IpAddr>,
        now: i64,
    ) -> Result<Admitted, (Refusal, Option<Admitted>)> {
        let ws = self.gate(ctx, &key, now).await.map_err(|r| (r, None))?;
        let info = warden_llm::wire::peek(&body).map_err(|e| {
            (
                Refusal::BadRequest(match e {
                    warden_llm::wire::BadRequest::NotJson => "the body must be a JSON object",
                    warden_llm::wire::BadRequest::NoModel => "the request names no model",
                }),
                None,
            )
        })?;
        let found = ws.upstreams.iter().enumerate().find_map(|(i, u)| {
            if u.kind.is_anthropic() != endpoint.is_anthropic() {
                return None;
            }
            if let Some(target) = u.aliases.get(&info.model) {
                return Some((i, target.clone(), true));
            }
            u.models
                .iter()
                .any(|m| m == &info.model)
                .then(|| (i, info.model.clone(), false))
        });
        let mut admitted = Admitted {
            call_id: Uuid::now_v7(),
            key: key.clone(),
            ws: ws.clone(),
            upstream: 0,
            body: body.clone(),
            model: info.model.clone(),
            stream: info.stream,
            endpoint,
            reservation: Reservation::default(),
            decisions: Vec::new(),
            started: Instant::now(),
            at: now,
            request_id,
            client_ip,
            input_estimate: i64::try_from(body.len().div_ceil(4)).unwrap_or(i64::MAX),
            automation_run_id: None,
        };
        let Some((upstream, model, aliased)) = found else {
            return Err((Refusal::ModelNotAllowed, Some(admitted)));
        };
        admitted.upstream = upstream;
        admitted.model = model;
        let filtered = ws.filters.request(&body);
        admitted.decisions = filtered.decisions;
        let mut out = match filtered.verdict {
            Verdict::Blocked(rule) => return Err((Refusal::Blocked(rule), Some(admitted))),
            Verdict::Changed(b) => b,
            Verdict::Pass => Vec::new(),
        };
        if aliased {
            let base: &[u8] = if out.is_empty() { &body } else { &out };
            out = warden_llm::wire::with_model(base, &admitted.model)
                .map_err(|_| (Refusal::BadRequest("the body must be a JSON object"), None))?;
        }
        if !out.is_empty() {
            admitted.body = Bytes::from(out);
        }
        let max_tokens = match endpoint {
            Endpoint::Embeddings => 0,
            _ => info.max_tokens.map_or(ws.policy.default_max_tokens, |m| {
                i64::try_from(m).unwrap_or(i64::MAX)
            }),
        };
        let tokens = admitted.input_estimate.saturating_add(max_tokens);
        let cost = ws
            .policy
            .prices
            .get(&admitted.model)
            .map_or(0, |p| p.cost(admitted.input_estimate, max_tokens));
        match self
            .quotas
            .reserve(
                &ctx.store,
                key.workspace_id,
                key.user_id,
                &ws.policy.quotas,
                [1, tokens, cost],
                now,
            )
            .await
        {
            Ok(r) => admitted.reservation = r,
            Err(quota::Refused::Over { retry_after }) => {
                admitted.decisions.push(Decision {
                    rule: "quota",
                    action: "block",
                    count: 1,
                });
                return Err((Refusal::OverQuota { retry_after }, Some(admitted)));
            }
            Err(quota::Refused::Unavailable) => {
                return Err((Refusal::Unavailable, Some(admitted)));
            }
        }
        admitted.automation_run_id = key.automation_run_id;
        Ok(admitted)
    }

    /// Sends an admitted call upstream.
    pub async fn send(
        &self,
        a: &Admitted,
        passed: &Passed,
    ) -> Result<reqwest::Response, UpstreamError> {
        let u = &a.ws.upstreams[a.upstream];
        self.upstreams
            .send(
                Target {
                    kind: u.kind,
                    base_url: &u.base_url,
                    key: u.key.as_ref().map(|k| k.as_str()),
                    allow_private: u.allow_private,
                },
                a.endpoint.upstream_path(),
                a.body.clone(),
                passed,
            )
            .await
    }

    /// Settles a finished (or refused, or interrupted) call and records it.
    ///
    /// When the record writer is behind (its queue full), this waits for room: calls slow
    /// down to what the node can record rather than records piling up in memory.
    pub async fn finish(
        &self,
        ctx: &Arc<Ctx>,
        a: Admitted,
        status: u16,
        usage: Usage,
        response: Option<&[u8]>,
    ) {
        let f = self.settle(ctx, a, status, usage, response);
        self.writer.send(f).await;
    }

    /// [`Gateway::finish`] where nothing can wait (a stream dropped by its client): the
    /// record is handed over in the background when the queue is full.
    pub fn finish_detached(
        &self,
        ctx: &Arc<Ctx>,
        a: Admitted,
        status: u16,
        usage: Usage,
        response: Option<&[u8]>,
    ) {
        let f = self.settle(ctx, a, status, usage, response);
        self.writer.push(f);
    }

    fn settle(
        &self,
        ctx: &Arc<Ctx>,
        a: Admitted,
        status: u16,
        usage: Usage,
        response: Option<&[u8]>,
    ) -> records::Finished {
        let input = if usage.reported {
            i64::try_from(usage.input).unwrap_or(i64::MAX)
        } else {
            a.input_estimate
        };
        let output = i64::try_from(usage.output).unwrap_or(i64::MAX);
        // A call served (wholly, or until the client left) counts what it used; one the
        // upstream failed counts only what the upstream reported.
        let served = (200..300).contains(&status) || status == 499;
        let succeeded = served;
        let (tokens_in, tokens_out) = if served || usage.reported {
            (input, output)
        } else {
            (0, 0)
        };
        let cost =
            a.ws.policy
                .prices
                .get(&a.model)
                .map_or(0, |p| p.cost(tokens_in, tokens_out));
        let sealed_content = if a.captures() {
            let content = json!({
                "request": String::from_utf8_lossy(&a.body[..a.body.len().min(CAPTURE_MAX)]),
                "response": response.map(|r| String::from_utf8_lossy(&r[..r.len().min(CAPTURE_MAX)]).into_owned()),
            });
            ctx.keyring
                .seal(
                    &content_context(a.key.workspace_id, a.call_id),
                    content.to_string().as_bytes(),
                )
                .ok()
        } else {
            None
        };
        let row = CallRow {
            id: a.call_id,
            workspace_id: a.key.workspace_id,
            key_id: a.key.id,
            user_id: a.key.user_id,
            session_id: a.key.session_id,
            automation_run_id: a.automation_run_id,
            request_id: a.request_id.clone(),
            endpoint: a.endpoint.as_str().to_owned(),
            model: a.model.clone(),
            upstream_id: a.ws.upstreams.get(a.upstream).map(|u| u.id),
            status: i32::from(status),
            latency_us: i64::try_from(a.started.elapsed().as_micros()).unwrap_or(i64::MAX),
            tokens_in,
            tokens_out,
            cost,
            decisions: serde_json::to_string(&a.decisions).unwrap_or_else(|_| "[]".into()),
            sealed_content,
            created_at: a.at,
        };
        let used = if a.reservation.is_empty() {
            None
        } else {
            Some([
                if succeeded || usage.reported { 1 } else { 0 },
                tokens_in + tokens_out,
                cost,
            ])
        };
        let policy = a.ws.policy.clone();
        let client_ip = a.client_ip;
        if let Some(used) = used {
            let ctx2 = ctx.clone();
            let reservation = a.reservation;
            tokio::spawn(async move {
                ctx2.llm
                    .quotas
                    .settle(&ctx2.store, &reservation, used)
                    .await;
            });
        }
        records::Finished {
            row,
            client_ip,
            quotas: policy,
        }
    }

    /// Takes the record writer's inbox (once, when the node starts).
    pub fn take_inbox(&self) -> Option<records::Inbox> {
        self.inbox.lock().ok().and_then(|mut i| i.take())
    }
}

/// Starts the record writer and the housekeeping (idle quota leases given back every 5 s,
/// old records and content pruned hourly).
pub fn spawn(ctx: Arc<Ctx>) -> Vec<tokio::task::JoinHandle<()>> {
    let mut tasks = Vec::new();
    if let Some(inbox) = ctx.llm.take_inbox() {
        tasks.push(records::spawn(ctx.clone(), inbox));
    }
    tasks.push(tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(5));
        let mut n: u64 = 0;
        loop {
            tick.tick().await;
            let now = crate::op::unix_us(ctx.clock.now());
            ctx.llm.quotas.release_idle(&ctx.store, now).await;
            if n.is_multiple_of(720) {
                admin::prune(&ctx, now).await;
            }
            n += 1;
        }
    }));
    tasks
}
