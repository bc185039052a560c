//! The MCP endpoint for agents: `POST /mcp`, the Streamable HTTP transport of the Model
//! Context Protocol served by the official Rust SDK (`rmcp`) without sessions and answering
//! in JSON, so any node serves any call.
//!
//! The handler only authenticates: the agent's `Authorization: Bearer wdn_mcp_…` is checked
//! by `warden_core::mcp::authenticate` (the same 401 for every bad token, with
//! `WWW-Authenticate: Bearer`), the caller is attached to the request, and `rmcp` answers
//! the JSON-RPC. Each tool translates its arguments and calls one use case of
//! `warden_core::mcp::tools`, which checks the grant, keeps to the token's own session and
//! audits the call. A browser's `Origin` is refused: agents are not web pages.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::tool::Extension;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{CallToolResult, ContentBlock, ServerCapabilities, ServerConfig};
use rmcp::transport::streamable_http_server::session::never::NeverSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{ErrorData, ServerHandler, schemars, tool, tool_handler, tool_router};
use serde::Deserialize;
use serde_json::Value;
use tower::ServiceExt;
use utoipa_axum::routes;
use warden_core::mcp::{McpCaller, tools};
use warden_core::{CoreError, CoreResult, Ctx, Op};
use warden_domain::access::Access;

use crate::audit::request::RequestMeta;
use crate::http::problem::ApiError;
use crate::http::routes::Routes;
use crate::state::AppState;

pub(crate) fn routes() -> Routes<AppState> {
    Routes::new().add(Access::McpToken, routes!(endpoint))
}

/// The SDK's service, built once per node.
#[derive(Clone)]
pub struct McpService(StreamableHttpService<Tools, NeverSessionManager>);

impl std::fmt::Debug for McpService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("McpService").finish_non_exhaustive()
    }
}

/// Builds the endpoint for `ctx`: stateless, JSON answers, any `Host` (the bearer token, not
/// the name, is what protects it), no browser origins.
pub fn endpoint_service(ctx: Arc<Ctx>) -> McpService {
    let router = Tools::tool_router();
    let config = StreamableHttpServerConfig::default()
        .with_legacy_session_mode(false)
        .with_max_request_body_bytes(512 * 1024)
        .with_json_response(true)
        .disable_allowed_hosts()
        .enforce_origin_validation();
    McpService(StreamableHttpService::new(
        move || {
            Ok(Tools {
                ctx: ctx.clone(),
                tool_router: router.clone(),
            })
        },
        Arc::new(NeverSessionManager::default()),
        config,
    ))
}

/// Who calls, attached to the request for the tools.
#[derive(Debug, Clone)]
struct Call {
    caller: McpCaller,
    meta: RequestMeta,
}

fn bearer(req: &Request) -> &str {
    req.headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map_or("", str::trim)
}

/// The MCP endpoint (Streamable HTTP, JSON-RPC 2.0). Tools: `search_tickets`,
/// `get_ticket_details`, `create_ticket`, `get_session_details`, `ask_user_question`,
/// `send_message`, `read_plan`, `write_plan`. Authenticated by the session's MCP token.
#[utoipa::path(post, path = "/mcp", tag = "mcp",
    request_body(content = Object, description = "A JSON-RPC 2.0 message of the Model Context Protocol"),
    responses(
        (status = 200, description = "The JSON-RPC answer", content_type = "application/json"),
        (status = 401, description = "No valid MCP token", content_type = "application/problem+json"),
        (status = 403, description = "A browser origin", content_type = "application/problem+json")))]
pub(crate) async fn endpoint(
    State(state): State<AppState>,
    meta: RequestMeta,
    mut req: Request,
) -> Response {
    let now = warden_core::op::unix_us(state.ctx.clock.now());
    let caller = match warden_core::mcp::authenticate(&state.ctx, bearer(&req), now).await {
        Ok(c) => c,
        Err(e) => {
            let mut res = ApiError::from(e).into_response();
            res.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(r#"Bearer realm="warden-mcp""#),
            );
            return res;
        }
    };
    req.extensions_mut().insert(Call { caller, meta });
    match state.mcp.0.clone().oneshot(req).await {
        Ok(res) => res.map(Body::new),
        Err(never) => match never {},
    }
}

/// The tools, over the node's use cases.
#[derive(Clone)]
pub struct Tools {
    ctx: Arc<Ctx>,
    tool_router: ToolRouter<Self>,
}

impl std::fmt::Debug for Tools {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tools").finish_non_exhaustive()
    }
}

/// `search_tickets`' arguments.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
pub struct SearchArgs {
    /// Words to find in titles and bodies.
    #[serde(default)]
    pub query: Option<String>,
    /// Only this status: backlog, ready_for_development, in_development, ready_for_qa,
    /// done or rejected.
    #[serde(default)]
    pub status: Option<String>,
    /// Only tickets with this label.
    #[serde(default)]
    pub label: Option<String>,
    /// At most this many (1–200, default 20).
    #[serde(default)]
    pub limit: Option<i64>,
}

/// Names a ticket.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
pub struct TicketArgs {
    /// The ticket's number in the workspace (`12` or `#12`) or its id.
    pub ticket: String,
}

/// `create_ticket`'s arguments.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
pub struct CreateTicketArgs {
    /// 1 to 200 characters on one line.
    pub title: String,
    /// Markdown, at most 64 KiB.
    #[serde(default)]
    pub body: String,
    /// At most 20 labels.
    #[serde(default)]
    pub labels: Vec<String>,
}

/// Names a session.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
pub struct SessionArgs {
    /// The session's id; only the calling session may be named (default: it).
    #[serde(default)]
    pub session_id: Option<String>,
}

/// `ask_user_question`'s arguments.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
pub struct AskArgs {
    /// The question for the session's owner (at most 16 KiB).
    pub question: String,
    /// How long to wait for the answer, in seconds (1–900, default 300).
    #[serde(default)]
    pub timeout_seconds: Option<u64>,
}

/// `send_message`'s arguments.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
pub struct MessageArgs {
    /// The message for the session's owner (at most 16 KiB).
    pub message: String,
}

/// `write_plan`'s arguments.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
pub struct PlanArgs {
    /// The whole plan document (Markdown, at most 256 KiB); it replaces the previous one.
    pub content: String,
}

/// No arguments.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
pub struct NoArgs {}

impl Tools {
    fn op(&self, call: &Call) -> Op {
        call.meta.op(call.caller.actor(), self.ctx.clock.as_ref())
    }

    /// Audits the call and turns its outcome into the tool's result: a refusal or invalid
    /// input is a tool error (`isError`) naming the code and the reason, never internals.
    async fn finish(
        &self,
        op: &Op,
        call: &Call,
        tool: &str,
        result: CoreResult<Value>,
    ) -> CallToolResult {
        tools::audit(&self.ctx, op, &call.caller, tool, &result).await;
        match result {
            Ok(v) => CallToolResult::structured(v),
            Err(e) => CallToolResult::error(vec![ContentBlock::text(refusal(&e))]),
        }
    }
}

fn refusal(e: &CoreError) -> String {
    match e.field {
        Some(field) => format!("{} ({field}): {}", e.code.as_str(), e.detail),
        None => format!("{}: {}", e.code.as_str(), e.detail),
    }
}

fn caller(parts: &axum::http::request::Parts) -> Result<Call, ErrorData> {
    parts
        .extensions
        .get::<Call>()
        .cloned()
        .ok_or_else(|| ErrorData::internal_error("unauthenticated MCP call", None))
}

type Parts = axum::http::request::Parts;

#[tool_router]
impl Tools {
    #[tool(
        description = "Search the workspace's tickets by words, status or label. Returns \
        their numbers, titles, statuses and labels, newest first."
    )]
    async fn search_tickets(
        &self,
        Extension(parts): Extension<Parts>,
        Parameters(a): Parameters<SearchArgs>,
    ) -> Result<CallToolResult, ErrorData> {
        let call = caller(&parts)?;
        let op = self.op(&call);
        let r = tools::search_tickets(
            &self.ctx,
            &call.caller,
            a.query.as_deref(),
            a.status.as_deref(),
            a.label.as_deref(),
            a.limit,
        )
        .await;
        Ok(self.finish(&op, &call, "search_tickets", r).await)
    }

    #[tool(
        description = "Read one ticket: title, Markdown body, status, labels, assignee and \
        the sessions that worked on it."
    )]
    async fn get_ticket_details(
        &self,
        Extension(parts): Extension<Parts>,
        Parameters(a): Parameters<TicketArgs>,
    ) -> Result<CallToolResult, ErrorData> {
        let call = caller(&parts)?;
        let op = self.op(&call);
        let r = tools::get_ticket_details(&self.ctx, &call.caller, &a.ticket).await;
        Ok(self.finish(&op, &call, "get_ticket_details", r).await)
    }

    #[tool(
        description = "Write a new ticket into the workspace's backlog, linked to this \
        session."
    )]
    async fn create_ticket(
        &self,
        Extension(parts): Extension<Parts>,
        Parameters(a): Parameters<CreateTicketArgs>,
    ) -> Result<CallToolResult, ErrorData> {
        let call = caller(&parts)?;
        let op = self.op(&call);
        let r =
            tools::create_ticket(&self.ctx, &op, &call.caller, &a.title, &a.body, &a.labels).await;
        Ok(self.finish(&op, &call, "create_ticket", r).await)
    }

    #[tool(
        description = "Read this session: status, provider, mode, prompt and the tickets it \
        works on."
    )]
    async fn get_session_details(
        &self,
        Extension(parts): Extension<Parts>,
        Parameters(a): Parameters<SessionArgs>,
    ) -> Result<CallToolResult, ErrorData> {
        let call = caller(&parts)?;
        let op = self.op(&call);
        let r = tools::get_session_details(&self.ctx, &call.caller, a.session_id.as_deref()).await;
        Ok(self.finish(&op, &call, "get_session_details", r).await)
    }

    #[tool(
        description = "Ask the session's owner a question and wait for the answer (up to \
        timeout_seconds, default 300). Returns answered=false if nobody answered in time."
    )]
    async fn ask_user_question(
        &self,
        Extension(parts): Extension<Parts>,
        Parameters(a): Parameters<AskArgs>,
    ) -> Result<CallToolResult, ErrorData> {
        let call = caller(&parts)?;
        let op = self.op(&call);
        let r =
            tools::ask_user_question(&self.ctx, &op, &call.caller, &a.question, a.timeout_seconds)
                .await;
        Ok(self.finish(&op, &call, "ask_user_question", r).await)
    }

    #[tool(description = "Send the session's owner a message (shown on the session's page).")]
    async fn send_message(
        &self,
        Extension(parts): Extension<Parts>,
        Parameters(a): Parameters<MessageArgs>,
    ) -> Result<CallToolResult, ErrorData> {
        let call = caller(&parts)?;
        let op = self.op(&call);
        let r = tools::send_message(&self.ctx, &op, &call.caller, &a.message).await;
        Ok(self.finish(&op, &call, "send_message", r).await)
    }

    #[tool(description = "Read this session's plan document.")]
    async fn read_plan(
        &self,
        Extension(parts): Extension<Parts>,
        Parameters(_a): Parameters<NoArgs>,
    ) -> Result<CallToolResult, ErrorData> {
        let call = caller(&parts)?;
        let op = self.op(&call);
        let r = tools::read_plan(&self.ctx, &call.caller).await;
        Ok(self.finish(&op, &call, "read_plan", r).await)
    }

    #[tool(description = "Replace this session's plan document (Markdown, at most 256 KiB).")]
    async fn write_plan(
        &self,
        Extension(parts): Extension<Parts>,
        Parameters(a): Parameters<PlanArgs>,
    ) -> Result<CallToolResult, ErrorData> {
        let call = caller(&parts)?;
        let op = self.op(&call);
        let r = tools::write_plan(&self.ctx, &op, &call.caller, &a.content).await;
        Ok(self.finish(&op, &call, "write_plan", r).await)
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for Tools {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build()).with_instructions(
            "Warden: read and write the workspace's tickets, read this session, ask its owner \
             questions, send messages and keep a plan.",
        )
    }
}
