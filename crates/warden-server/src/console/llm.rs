//! Console → a workspace's LLM gateway: its gateway keys (made with the secret shown once,
//! revoked), upstreams (provider keys write-only), the policy's common settings (kill
//! switch, session tokens, filters, the main quotas, capture), usage of the last 30 days and
//! the latest calls. Through `warden_core::llm::admin`, exactly as the API.

use std::collections::BTreeMap;

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use utoipa_axum::routes;
use uuid::Uuid;
use warden_core::llm::admin::{self, KeyView, PolicyView, UpstreamInput};
use warden_core::llm::reports::{self, CallView, UsageLine};
use warden_domain::access::{Access, Permission};
use warden_domain::license::Feature;
use warden_llm::filters::Action;
use zeroize::Zeroizing;

use super::workspaces::Place;
use super::{Done, Fields, Frame, frame, render};
use crate::http::authz::{UserOp, WorkspaceAccess};
use crate::http::problem::ApiError;
use crate::http::query::ApiQuery;
use crate::http::routes::Routes;
use crate::identity::Caller;
use crate::state::AppState;

pub(super) fn routes() -> Routes<AppState> {
    use Access::Workspace;
    use Permission as P;
    let f = Feature::LlmGateway;
    Routes::new()
        .add_feature(Workspace(P::WORKSPACES_READ), f, routes!(page))
        .add_feature(Workspace(P::LLM_CREATE), f, routes!(create_key))
        .add_feature(Workspace(P::LLM_CREATE), f, routes!(revoke_key))
        .add_feature(Workspace(P::LLM_UPDATE), f, routes!(add_upstream))
        .add_feature(Workspace(P::LLM_UPDATE), f, routes!(delete_upstream))
        .add_feature(Workspace(P::LLM_UPDATE), f, routes!(save_policy))
}

struct UpstreamItem {
    id: String,
    name: String,
    kind: &'static str,
    base_url: String,
    models: String,
    has_key: bool,
}

/// The policy's common settings, as the form shows them.
struct PolicyForm {
    enabled: bool,
    session_gateway: bool,
    secrets: &'static str,
    personal_data: &'static str,
    prompt_injection: &'static str,
    tokens_per_month: String,
    user_requests_per_minute: String,
    capture: bool,
}

fn policy_form(v: &PolicyView) -> PolicyForm {
    let opt = |x: Option<i64>| x.map(|n| n.to_string()).unwrap_or_default();
    PolicyForm {
        enabled: v.enabled,
        session_gateway: v.session_gateway,
        secrets: v.policy.filters.secrets.as_str(),
        personal_data: v.policy.filters.personal_data.as_str(),
        prompt_injection: v.policy.filters.prompt_injection.as_str(),
        tokens_per_month: opt(v.policy.quotas.workspace.tokens_per_month),
        user_requests_per_minute: opt(v.policy.quotas.per_user.requests_per_minute),
        capture: v.policy.capture.enabled,
    }
}

struct KeyItem {
    id: String,
    name: String,
    scope: &'static str,
    hint: String,
    created: String,
    ends: String,
    revoked: bool,
}

/// An RFC 3339 time as the console writes times.
fn shown(t: &str) -> String {
    time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339)
        .map(|t| super::when(warden_core::op::unix_us(t)))
        .unwrap_or_default()
}

fn key_item(k: KeyView) -> KeyItem {
    KeyItem {
        id: k.id.to_string(),
        name: k.name,
        scope: k.scope,
        hint: k.hint,
        created: shown(&k.created_at),
        ends: k.expires_at.as_deref().map(shown).unwrap_or_default(),
        revoked: k.revoked_at.is_some(),
    }
}

struct UsageItem {
    line: UsageLine,
    who: String,
}

struct CallItem {
    at: String,
    model: String,
    status: i32,
    tokens: String,
    decisions: String,
}

fn call_item(c: &CallView) -> CallItem {
    let decisions = c
        .decisions
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|d| {
                    Some(format!(
                        "{} ({})",
                        d["rule"].as_str()?,
                        d["action"].as_str()?
                    ))
                })
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default();
    CallItem {
        at: shown(&c.at),
        model: c.model.clone(),
        status: c.status,
        tokens: format!("{} in / {} out", c.tokens_in, c.tokens_out),
        decisions: if decisions.is_empty() {
            "—".into()
        } else {
            decisions
        },
    }
}

#[derive(Template)]
#[template(path = "console/llm.html")]
struct LlmPage {
    frame: Frame,
    place: Place,
    base_url: String,
    keys: Vec<KeyItem>,
    upstreams: Vec<UpstreamItem>,
    policy: Option<PolicyForm>,
    usage: Vec<UsageItem>,
    calls: Vec<CallItem>,
    may_read: bool,
    may_update: bool,
}

/// The workspace's gateway: keys, upstreams, policy, usage, latest calls.
#[utoipa::path(get, path = "/console/workspaces/{workspace_id}/llm", tag = "console",
    params(("workspace_id" = String, Path, description = "Workspace id"), Done),
    responses((status = 200, description = "Page", content_type = "text/html"),
              (status = 404, description = "No such workspace for this person", content_type = "text/html")))]
pub(crate) async fn page(
    State(state): State<AppState>,
    WorkspaceAccess(grant): WorkspaceAccess,
    caller: Caller,
    ApiQuery(done): ApiQuery<Done>,
) -> Result<Response, ApiError> {
    let ctx = &state.ctx;
    let may_read = grant.holds(Permission::LLM_READ);
    let place = Place::of(&state, &grant, "llm").await?;
    let may_update = !place.archived && grant.holds(Permission::LLM_UPDATE);
    let keys = admin::keys(ctx, &grant).await?;
    let (upstreams, policy, usage, calls) = if may_read {
        let today =
            i32::try_from(warden_core::op::unix_us(ctx.clock.now()).div_euclid(86_400_000_000))
                .unwrap_or(0);
        (
            admin::upstreams(ctx, &grant)
                .await?
                .into_iter()
                .map(|u| UpstreamItem {
                    id: u.id.to_string(),
                    name: u.name,
                    kind: u.kind,
                    base_url: u.base_url,
                    models: u.models.join(", "),
                    has_key: u.has_key,
                })
                .collect(),
            Some(policy_form(&admin::policy(ctx, &grant).await?)),
            reports::usage(ctx, &grant, today - 30, today)
                .await?
                .into_iter()
                .map(|line| UsageItem {
                    who: match line.user_id {
                        Some(u) if u == grant.user_id() => "you".to_owned(),
                        Some(u) => format!("member {}", &u.simple().to_string()[24..]),
                        None => "workspace key".to_owned(),
                    },
                    line,
                })
                .collect(),
            reports::calls(ctx, &grant, None, 20)
                .await?
                .iter()
                .map(call_item)
                .collect(),
        )
    } else {
        (Vec::new(), None, Vec::new(), Vec::new())
    };
    let page = LlmPage {
        frame: frame(&state, &caller, "workspaces", notice(done.done.as_deref())).await?,
        base_url: format!("{}/v1", ctx.llm.config.url),
        keys: keys.into_iter().map(key_item).collect(),
        upstreams,
        policy,
        usage,
        calls,
        may_read,
        may_update,
        place,
    };
    Ok(render(&page, StatusCode::OK))
}

fn notice(done: Option<&str>) -> Option<&'static str> {
    match done? {
        "key-revoked" => Some("The key is revoked: every node refuses it now."),
        "upstream-added" => Some("The upstream is added. Its key is write-only."),
        "upstream-deleted" => Some("The upstream is deleted."),
        "llm-policy-saved" => {
            Some("The gateway settings are saved; every node applies them within 2 seconds.")
        }
        other => super::notice(Some(other)),
    }
}

#[derive(Template)]
#[template(path = "console/llm_key.html")]
struct KeyPage {
    frame: Frame,
    name: String,
    secret: Zeroizing<String>,
    base_url: String,
    back: String,
}

/// Makes a gateway key of your own; its secret is shown once.
#[utoipa::path(post, path = "/console/workspaces/{workspace_id}/llm/keys", tag = "console",
    params(("workspace_id" = String, Path, description = "Workspace id")),
    request_body(content = String, content_type = "application/x-www-form-urlencoded"),
    responses((status = 200, description = "The key, shown once", content_type = "text/html")))]
pub(crate) async fn create_key(
    State(state): State<AppState>,
    WorkspaceAccess(grant): WorkspaceAccess,
    UserOp(op): UserOp,
    caller: Caller,
    body: Bytes,
) -> Result<Response, ApiError> {
    let f = Fields::parse(&body);
    let days = f.given("expires_in_days").and_then(|d| d.parse().ok());
    let made = admin::create_key(&state.ctx, &op, &grant, f.text("name"), false, days).await?;
    let page = KeyPage {
        frame: frame(&state, &caller, "workspaces", None).await?,
        name: made.view.name,
        secret: made.secret,
        base_url: format!("{}/v1", state.ctx.llm.config.url),
        back: Place::url(&grant, "/llm"),
    };
    let mut res = render(&page, StatusCode::OK);
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(res)
}

fn id(s: &str) -> Result<Uuid, ApiError> {
    s.parse()
        .map_err(|_| ApiError(warden_core::Code::NotFound.into()))
}

/// Revokes a gateway key (your own, or any with `llm.delete`).
#[utoipa::path(post, path = "/console/workspaces/{workspace_id}/llm/keys/{llm_key_id}/revoke", tag = "console",
    params(("workspace_id" = String, Path, description = "Workspace id"),
           ("llm_key_id" = String, Path, description = "Key id")),
    responses((status = 303, description = "Revoked")))]
pub(crate) async fn revoke_key(
    State(state): State<AppState>,
    WorkspaceAccess(grant): WorkspaceAccess,
    UserOp(op): UserOp,
    Path(path): Path<(String, String)>,
) -> Result<Response, ApiError> {
    admin::revoke_key(&state.ctx, &op, &grant, id(&path.1)?).await?;
    Ok(Redirect::to(&Place::url(&grant, "/llm?done=key-revoked")).into_response())
}

/// Adds an upstream.
#[utoipa::path(post, path = "/console/workspaces/{workspace_id}/llm/upstreams", tag = "console",
    params(("workspace_id" = String, Path, description = "Workspace id")),
    request_body(content = String, content_type = "application/x-www-form-urlencoded"),
    responses((status = 303, description = "Added")))]
pub(crate) async fn add_upstream(
    State(state): State<AppState>,
    WorkspaceAccess(grant): WorkspaceAccess,
    UserOp(op): UserOp,
    body: Bytes,
) -> Result<Response, ApiError> {
    let f = Fields::parse(&body);
    let list = |name: &str| -> Vec<String> {
        f.text(name)
            .split(',')
            .map(str::trim)
            .filter(|m| !m.is_empty())
            .map(str::to_owned)
            .collect()
    };
    let input = UpstreamInput {
        name: f.text("name").to_owned(),
        kind: f.text("kind").to_owned(),
        base_url: f.given("base_url").map(str::to_owned),
        api_key: f.given("api_key").map(|k| Zeroizing::new(k.to_owned())),
        models: list("models"),
        aliases: BTreeMap::new(),
        allow_private_network: f.has("allow_private_network"),
    };
    admin::put_upstream(&state.ctx, &op, &grant, None, input).await?;
    Ok(Redirect::to(&Place::url(&grant, "/llm?done=upstream-added")).into_response())
}

/// Deletes an upstream.
#[utoipa::path(post, path = "/console/workspaces/{workspace_id}/llm/upstreams/{upstream_id}/delete", tag = "console",
    params(("workspace_id" = String, Path, description = "Workspace id"),
           ("upstream_id" = String, Path, description = "Upstream id")),
    responses((status = 303, description = "Deleted")))]
pub(crate) async fn delete_upstream(
    State(state): State<AppState>,
    WorkspaceAccess(grant): WorkspaceAccess,
    UserOp(op): UserOp,
    Path(path): Path<(String, String)>,
) -> Result<Response, ApiError> {
    admin::delete_upstream(&state.ctx, &op, &grant, id(&path.1)?).await?;
    Ok(Redirect::to(&Place::url(&grant, "/llm?done=upstream-deleted")).into_response())
}

fn action(s: &str, field: &'static str) -> Result<Action, ApiError> {
    serde_json::from_value(serde_json::Value::String(s.to_owned())).map_err(|_| {
        ApiError(warden_core::CoreError::invalid(
            field,
            "Choose one of the options.",
        ))
    })
}

fn limit(s: &str, field: &'static str) -> Result<Option<i64>, ApiError> {
    let s = s.trim().replace(['_', ','], "");
    if s.is_empty() {
        return Ok(None);
    }
    s.parse().map(Some).map_err(|_| {
        ApiError(warden_core::CoreError::invalid(
            field,
            "A whole number, or blank for no limit.",
        ))
    })
}

/// Saves the policy's common settings (the rest of the policy is kept as it is).
#[utoipa::path(post, path = "/console/workspaces/{workspace_id}/llm/policy", tag = "console",
    params(("workspace_id" = String, Path, description = "Workspace id")),
    request_body(content = String, content_type = "application/x-www-form-urlencoded"),
    responses((status = 303, description = "Saved")))]
pub(crate) async fn save_policy(
    State(state): State<AppState>,
    WorkspaceAccess(grant): WorkspaceAccess,
    UserOp(op): UserOp,
    body: Bytes,
) -> Result<Response, ApiError> {
    let f = Fields::parse(&body);
    let mut view = admin::policy(&state.ctx, &grant).await?;
    view.enabled = f.has("enabled");
    view.session_gateway = f.has("session_gateway");
    view.policy.filters.secrets = action(f.text("secrets"), "secrets")?;
    view.policy.filters.personal_data = action(f.text("personal_data"), "personal_data")?;
    view.policy.filters.prompt_injection = action(f.text("prompt_injection"), "prompt_injection")?;
    view.policy.quotas.workspace.tokens_per_month =
        limit(f.text("tokens_per_month"), "tokens_per_month")?;
    view.policy.quotas.per_user.requests_per_minute = limit(
        f.text("user_requests_per_minute"),
        "user_requests_per_minute",
    )?;
    view.policy.capture.enabled = f.has("capture");
    admin::set_policy(&state.ctx, &op, &grant, view).await?;
    Ok(Redirect::to(&Place::url(&grant, "/llm?done=llm-policy-saved")).into_response())
}
