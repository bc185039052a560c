//! The device authorization grant over HTTP (RFC 8628): the device endpoint, the token
//! endpoint's `device_code` grant, and the verification page a signed-in person approves on.
//! Rules are `warden_core::identity::device`.
//!
//! The page is plain server-rendered HTML (no script). It reads only the console's cookie
//! session: a bearer credential (a personal access token among them) is never looked at, so
//! a token cannot approve anything. The approving POST must be same-origin and carry the
//! session's CSRF token as a form field.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::routes;
use warden_core::identity::device::{self, Pending, PollRefusal, Redeemed};
use warden_domain::access::Access;
use warden_domain::device::{DeviceKind, GRANT_TYPE, PollError};
use warden_domain::identity::Principal;

use super::auth::granted;
use crate::http::authz::{AnonymousOp, UserOp};
use crate::http::json::ApiJson;
use crate::http::page::{Page, escape, page};
use crate::http::problem::ApiError;
use crate::http::query::ApiQuery;
use crate::http::routes::Routes;
use crate::identity::{Caller, Credential, cookies};
use crate::state::AppState;

pub(crate) fn routes() -> Routes<AppState> {
    Routes::new()
        .add(Access::Public, routes!(start))
        .add(Access::Public, routes!(token))
        .add_recovery(Access::Public, routes!(verification_page))
        // The access guard authenticates the cookie session and checks the form's CSRF
        // field and origin, as for every cookie-authenticated form.
        .add_recovery(Access::SignedIn, routes!(verification_submit))
}

/// A device asking for a code.
#[derive(Debug, Deserialize, ToSchema)]
pub struct DeviceRequest {
    /// `user` (a terminal signing in; the default) or `host` (an agent enrolling).
    pub kind: Option<String>,
    /// What the device calls itself, shown to the approver (at most 64 characters).
    pub client_name: Option<String>,
    /// For a host: the name to register it under.
    pub host_name: Option<String>,
}

/// RFC 8628 § 3.2.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeviceAuthorization {
    /// Keep secret; poll the token endpoint with it.
    pub device_code: String,
    /// Show this to the person, `XXXX-XXXX`.
    pub user_code: String,
    /// Where the person enters the code.
    pub verification_uri: String,
    /// The same, with the code filled in.
    pub verification_uri_complete: String,
    /// Seconds until the codes expire.
    pub expires_in: i64,
    /// Seconds to wait between polls.
    pub interval: i64,
}

/// Starts a device authorization (RFC 8628 § 3.1).
#[utoipa::path(post, path = "/api/v1/auth/device", tag = "auth", request_body = DeviceRequest,
    responses(
        (status = 200, description = "Codes issued", body = DeviceAuthorization),
        (status = 422, description = "Unknown kind or bad host name", content_type = "application/problem+json"),
        (status = 429, description = "Too many codes asked for from this address", content_type = "application/problem+json")))]
pub(crate) async fn start(
    State(state): State<AppState>,
    AnonymousOp(op): AnonymousOp,
    ApiJson(input): ApiJson<DeviceRequest>,
) -> Result<Response, ApiError> {
    let kind = input.kind.as_deref().unwrap_or("user");
    let started = device::start(
        &state.ctx,
        &op,
        kind,
        input.client_name.as_deref(),
        input.host_name.as_deref(),
    )
    .await?;
    let base = format!("{}/device", state.ctx.public_url.trim_end_matches('/'));
    let body = DeviceAuthorization {
        device_code: started.device_code.to_string(),
        verification_uri_complete: format!("{base}?user_code={}", started.user_code),
        verification_uri: base,
        user_code: started.user_code,
        expires_in: started.expires_in,
        interval: started.interval,
    };
    Ok(no_store(Json(body).into_response()))
}

fn no_store(mut res: Response) -> Response {
    let h = res.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    res
}

/// A token request (RFC 6749 § 4.1.3 shape, RFC 8628 § 3.4 grant).
#[derive(Deserialize, ToSchema)]
pub struct TokenRequest {
    /// `urn:ietf:params:oauth:grant-type:device_code`.
    pub grant_type: String,
    /// The device code.
    pub device_code: String,
}

impl std::fmt::Debug for TokenRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenRequest")
            .field("grant_type", &self.grant_type)
            .finish_non_exhaustive()
    }
}

/// An OAuth error answer (RFC 6749 § 5.2).
#[derive(Debug, Serialize, ToSchema)]
pub struct OauthError {
    /// `authorization_pending`, `slow_down`, `expired_token`, `access_denied`,
    /// `invalid_grant` or `unsupported_grant_type`.
    pub error: &'static str,
    /// A sentence.
    pub error_description: &'static str,
}

/// An enrolled host's key, for the agent (shown once).
#[derive(Debug, Serialize, ToSchema)]
pub struct EnrolledHost {
    /// The host's id.
    pub host_id: String,
    /// Its name.
    pub name: String,
    /// Its key (`whk_…`): Warden keeps only a hash.
    pub host_key: String,
}

fn oauth_error(error: &'static str, description: &'static str) -> Response {
    let mut res = (
        StatusCode::BAD_REQUEST,
        Json(OauthError {
            error,
            error_description: description,
        }),
    )
        .into_response();
    // The RFC's body is the answer: the edge keeps it.
    res.extensions_mut().insert(Page);
    no_store(res)
}

/// Redeems a device code (polling): the RFC 8628 errors until the grant is decided, then once
/// a session (terminal) or the host's key (agent).
#[utoipa::path(post, path = "/api/v1/auth/token", tag = "auth", request_body = TokenRequest,
    responses(
        (status = 200, description = "A session (kind user) or an enrolled host's key (kind host)", body = super::auth::TokenResponse),
        (status = 400, description = "Pending, slow down, expired, denied or invalid", body = OauthError)))]
pub(crate) async fn token(
    State(state): State<AppState>,
    AnonymousOp(op): AnonymousOp,
    ApiJson(input): ApiJson<TokenRequest>,
) -> Result<Response, ApiError> {
    if input.grant_type != GRANT_TYPE {
        return Ok(oauth_error(
            "unsupported_grant_type",
            "This endpoint grants urn:ietf:params:oauth:grant-type:device_code only.",
        ));
    }
    match device::poll(&state.ctx, &op, &input.device_code).await {
        Ok(Redeemed::User(grant)) => Ok(granted(&state, grant, false)),
        Ok(Redeemed::Host {
            host_id,
            name,
            api_key,
        }) => Ok(no_store(
            Json(EnrolledHost {
                host_id: host_id.to_string(),
                name,
                host_key: api_key.to_string(),
            })
            .into_response(),
        )),
        Err(PollRefusal::Oauth(e)) => Ok(oauth_error(e.as_str(), e.description())),
        Err(PollRefusal::Core(e)) => Err(e.into()),
    }
}

/// The code in the verification page's address.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CodeQuery {
    /// The user code, `XXXX-XXXX` (any case, dash optional).
    pub user_code: Option<String>,
}

/// The console session of the browser, from its cookie only.
fn browser_session(state: &AppState, headers: &HeaderMap, now: i64) -> Option<Principal> {
    let token = cookies::get(headers, cookies::ACCESS)?;
    state
        .ctx
        .identity
        .verify(token, now)
        .filter(|p| !p.is_token())
}

fn sign_in_first(methods: &[(String, String, String)], code: Option<&str>) -> Response {
    let back = match code {
        Some(c) => format!("/device?user_code={}", percent(c)),
        None => "/device".to_owned(),
    };
    let links: String = methods
        .iter()
        .map(|(_, name, start)| {
            format!(
                "<li><a href=\"{}?redirect={}\">Sign in with {}</a></li>",
                escape(start),
                percent(&back),
                escape(name)
            )
        })
        .collect();
    let links = if links.is_empty() {
        "<p>Sign in to Warden in this browser, then open this page again.</p>".to_owned()
    } else {
        format!("<ul>{links}</ul>")
    };
    page(
        StatusCode::UNAUTHORIZED,
        "Sign in to approve a device",
        &format!("<p>A device is waiting for your approval. Sign in first.</p>{links}"),
    )
}

fn percent(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

fn entry_form(message: Option<&str>) -> String {
    let message = message
        .map(|m| format!("<p role=\"alert\">{}</p>", escape(m)))
        .unwrap_or_default();
    format!(
        "{message}<form method=\"get\" action=\"/device\">\
         <label for=\"user_code\">Code shown on the device</label> \
         <input id=\"user_code\" name=\"user_code\" autocomplete=\"off\" autocapitalize=\"characters\" \
         spellcheck=\"false\" placeholder=\"XXXX-XXXX\" required maxlength=\"20\"> \
         <button type=\"submit\">Continue</button></form>"
    )
}

/// The verification page: a form for the code, or (with a valid code) what the device asks
/// for, with Approve and Deny.
#[utoipa::path(get, path = "/device", tag = "auth", params(CodeQuery),
    responses(
        (status = 200, description = "HTML page", content_type = "text/html"),
        (status = 401, description = "Sign in first", content_type = "text/html")))]
pub(crate) async fn verification_page(
    State(state): State<AppState>,
    AnonymousOp(op): AnonymousOp,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<CodeQuery>,
) -> Response {
    let code = q
        .user_code
        .as_deref()
        .map(str::trim)
        .filter(|c| !c.is_empty());
    let Some(principal) = browser_session(&state, &headers, op.now.unix_timestamp()) else {
        let methods = warden_core::sso::flow::methods(&state.ctx)
            .await
            .unwrap_or_default();
        return sign_in_first(&methods, code);
    };
    let Some(code) = code else {
        return page(StatusCode::OK, "Approve a device", &entry_form(None));
    };
    match device::find(&state.ctx, &op, &principal, code).await {
        Ok(pending) => confirm(&state, &principal, &pending).await,
        Err(e) => refused_page(e),
    }
}

fn refused_page(e: warden_core::CoreError) -> Response {
    let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::BAD_REQUEST);
    let mut res = page(status, "Approve a device", &entry_form(Some(e.detail)));
    if let Some(wait) = e.retry_after
        && let Ok(v) = HeaderValue::from_str(&wait.as_secs().max(1).to_string())
    {
        res.headers_mut().insert(header::RETRY_AFTER, v);
    }
    res
}

async fn confirm(state: &AppState, principal: &Principal, pending: &Pending) -> Response {
    let g = &pending.grant;
    let from = match (&g.requested_ip, &g.user_agent) {
        (Some(ip), Some(ua)) => format!("{ip} ({ua})"),
        (Some(ip), None) => ip.clone(),
        _ => "an unknown address".to_owned(),
    };
    let what = match pending.kind {
        DeviceKind::User => format!(
            "<p><strong>{}</strong> from {} asks to sign in <strong>as you</strong>. \
             It will be able to do everything you can, until you sign it out \
             (Profile → Devices, or <code>DELETE /api/v1/me/devices/…</code>).</p>",
            escape(&g.client_name),
            escape(&from)
        ),
        DeviceKind::Host => format!(
            "<p><strong>{}</strong> from {} asks to enrol the host \
             <strong>{}</strong>. Once approved it runs agent sessions for the workspaces \
             you choose below.</p>",
            escape(&g.client_name),
            escape(&from),
            escape(g.host_name.as_deref().unwrap_or("?"))
        ),
    };
    if !device::may_approve(&state.ctx, principal, pending).await {
        return page(
            StatusCode::FORBIDDEN,
            "Approve a device",
            &format!("{what}<p>Only someone who may register hosts can approve this.</p>"),
        );
    }
    let workspaces = if pending.kind == DeviceKind::Host {
        let rows = state
            .ctx
            .store
            .my_workspaces(principal, None, 200, false)
            .await
            .unwrap_or_default();
        let boxes: String = rows
            .iter()
            .map(|w| {
                format!(
                    "<li><label><input type=\"checkbox\" name=\"workspace_ids\" value=\"{}\"> {}</label></li>",
                    w.id,
                    escape(&w.name)
                )
            })
            .collect();
        format!("<fieldset><legend>Workspaces it may serve</legend><ul>{boxes}</ul></fieldset>")
    } else {
        String::new()
    };
    let csrf = state.ctx.identity.csrf_token(principal.session_id);
    page(
        StatusCode::OK,
        "Approve a device",
        &format!(
            "{what}<p>Code: <strong>{}</strong>. Approve only if you started this on your \
             device just now.</p>\
             <form method=\"post\" action=\"/device\">\
             <input type=\"hidden\" name=\"csrf\" value=\"{}\">\
             <input type=\"hidden\" name=\"user_code\" value=\"{}\">{workspaces}\
             <button type=\"submit\" name=\"action\" value=\"approve\">Approve</button> \
             <button type=\"submit\" name=\"action\" value=\"deny\">Deny</button></form>",
            escape(&pending.user_code),
            escape(&csrf),
            escape(&pending.user_code)
        ),
    )
}

/// The decision, posted by the verification page's form (`csrf`, `user_code`, `action` =
/// `approve` or `deny`, and for a host any number of `workspace_ids`).
#[utoipa::path(post, path = "/device", tag = "auth",
    request_body(content = String, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "Decided (HTML)", content_type = "text/html"),
        (status = 401, description = "Sign in first", content_type = "text/html"),
        (status = 403, description = "Cross-site, or without the CSRF token", content_type = "text/html")))]
pub(crate) async fn verification_submit(
    State(state): State<AppState>,
    UserOp(op): UserOp,
    caller: Caller,
    body: Bytes,
) -> Response {
    // Only the browser's own session approves: never a bearer token (a script's).
    if caller.credential != Credential::Cookie {
        return sign_in_first(&[], None);
    }
    let principal = caller.principal;
    let mut code = None;
    let mut action = None;
    let mut workspaces = Vec::new();
    for (k, v) in form_urlencoded::parse(&body) {
        match k.as_ref() {
            "user_code" => code = Some(v.into_owned()),
            "action" => action = Some(v.into_owned()),
            "workspace_ids" if workspaces.len() < 1000 => workspaces.push(v.into_owned()),
            _ => {}
        }
    }
    let approve = match action.as_deref() {
        Some("approve") => true,
        Some("deny") => false,
        _ => {
            return page(
                StatusCode::BAD_REQUEST,
                "Approve a device",
                &entry_form(None),
            );
        }
    };
    let code = code.unwrap_or_default();
    match device::decide(&state.ctx, &op, &principal, &code, approve, &workspaces).await {
        Ok(_) if approve => page(
            StatusCode::OK,
            "Device approved",
            "<p>Approved. The device continues by itself; you can close this page.</p>",
        ),
        Ok(_) => page(
            StatusCode::OK,
            "Device denied",
            "<p>Denied. The device was told so; nothing was signed in.</p>",
        ),
        Err(e) => refused_page(e),
    }
}

impl From<PollError> for OauthError {
    fn from(e: PollError) -> Self {
        Self {
            error: e.as_str(),
            error_description: e.description(),
        }
    }
}
