//! The files the server-rendered pages load, built into the binary: one stylesheet, the
//! passkey pages' script, the session page's script (it follows the output), htmx (vendored,
//! see `assets/VENDORED.md`), the icon. Same origin, so the Content-Security-Policy
//! (`default-src 'self'`, no inline script or style) lets them in and nothing else.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use utoipa_axum::routes;
use warden_domain::access::Access;

use crate::http::routes::Routes;
use crate::state::AppState;

const SCRIPT: &str = include_str!("../../assets/passkeys.js");
const SESSION_SCRIPT: &str = include_str!("../../assets/session.js");
const HTMX: &str = include_str!("../../assets/htmx.min.js");
const STYLESHEET: &str = include_str!("../../assets/warden.css");
const ICON: &str = include_str!("../../assets/warden.svg");

pub(crate) fn routes() -> Routes<AppState> {
    Routes::new()
        .add_recovery(Access::Public, routes!(script))
        .add_recovery(Access::Public, routes!(stylesheet))
        .add_recovery(Access::Public, routes!(icon))
        .add_recovery(Access::Public, routes!(session_script))
        .add_recovery(Access::Public, routes!(htmx))
}

fn asset(body: &'static str, content_type: &'static str) -> Response {
    let mut res = (StatusCode::OK, body).into_response();
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    res
}

/// The pages' script (WebAuthn calls and the forms).
#[utoipa::path(get, path = "/assets/passkeys.js", tag = "pages",
    responses((status = 200, description = "Script", content_type = "text/javascript")))]
pub(crate) async fn script() -> Response {
    asset(SCRIPT, "text/javascript; charset=utf-8")
}

/// The pages' stylesheet.
#[utoipa::path(get, path = "/assets/warden.css", tag = "pages",
    responses((status = 200, description = "Stylesheet", content_type = "text/css")))]
pub(crate) async fn stylesheet() -> Response {
    asset(STYLESHEET, "text/css; charset=utf-8")
}

/// The icon.
#[utoipa::path(get, path = "/assets/warden.svg", tag = "pages",
    responses((status = 200, description = "Icon", content_type = "image/svg+xml")))]
pub(crate) async fn icon() -> Response {
    asset(ICON, "image/svg+xml")
}

/// The session page's script: follows a session's output as it arrives.
#[utoipa::path(get, path = "/assets/session.js", tag = "pages",
    responses((status = 200, description = "Script", content_type = "text/javascript")))]
pub(crate) async fn session_script() -> Response {
    asset(SESSION_SCRIPT, "text/javascript; charset=utf-8")
}

/// htmx, vendored at a pinned release: the console's lists refresh themselves with it.
#[utoipa::path(get, path = "/assets/htmx.min.js", tag = "pages",
    responses((status = 200, description = "Script", content_type = "text/javascript")))]
pub(crate) async fn htmx() -> Response {
    asset(HTMX, "text/javascript; charset=utf-8")
}
