//! `GET /metrics`: the Prometheus exposition, for a caller holding the metrics token. Public
//! as a route (a scraper holds no Warden account); the token is its own gate. Off (404)
//! unless `metrics.token_file` is set.

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use utoipa_axum::routes;
use warden_domain::access::Access;

use crate::http::problem::ApiError;
use crate::http::routes::Routes;
use crate::state::AppState;

/// The Prometheus text format's media type.
const EXPOSITION: &str = "text/plain; version=0.0.4; charset=utf-8";

pub(crate) fn routes() -> Routes<AppState> {
    Routes::new().add(Access::Public, routes!(metrics))
}

/// The node's metrics in the Prometheus text format: requests by route template, failed
/// sign-ins, hosts, sessions, the work queue, the audit chain's backlog, the database pool and
/// the licence. Requires `Authorization: Bearer <metrics token>`.
#[utoipa::path(get, path = "/metrics", tag = "health",
    responses(
        (status = 200, description = "Prometheus text exposition", content_type = "text/plain", body = String),
        (status = 401, description = "No token, or not the metrics token", content_type = "application/problem+json"),
        (status = 404, description = "Metrics are off (metrics.token_file is not set)", content_type = "application/problem+json")))]
pub(crate) async fn metrics(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let Some(metrics) = &state.metrics else {
        return Err(ApiError::from_status(StatusCode::NOT_FOUND));
    };
    if !metrics.authorizes(&headers) {
        return Err(ApiError::from_status(StatusCode::UNAUTHORIZED));
    }
    let snapshot = warden_core::metrics::snapshot(&state.ctx).await?;
    let mut res = metrics.render(&snapshot).into_response();
    res.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(EXPOSITION));
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(res)
}
