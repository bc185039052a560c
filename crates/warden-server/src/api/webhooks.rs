//! `POST /webhooks/{token}`: the public URL of an event source. Its answer is always the same
//! `200` whatever became of the delivery (unknown token, disabled source, bad signature,
//! over a limit, accepted), so the URL tells a prober nothing. Only a body over the size
//! limit (413, checked before any work on the token) or one that does not arrive in time
//! (408) is answered otherwise. The route is logged by its pattern, never its path, so the
//! token appears in no access log.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use utoipa_axum::routes;
use warden_domain::access::Access;

use crate::http::problem::ApiError;
use crate::http::routes::Routes;
use crate::state::AppState;

pub(crate) fn routes() -> Routes<AppState> {
    Routes::new().add(Access::Public, routes!(deliver))
}

/// Headers kept for signature checks, at most.
const HEADERS_MAX: usize = 64;

/// The one answer.
fn received() -> Response {
    let mut res = (StatusCode::OK, "{\"received\":true}").into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    res
}

/// Receives a delivery for an event source.
#[utoipa::path(post, path = "/webhooks/{token}", tag = "event sources",
    params(("token" = String, Path, description = "The source's URL token (`wwh_…`)")),
    request_body(content = String, content_type = "application/json",
        description = "The provider's payload, as it signed it"),
    responses(
        (status = 200, description = "Received (the same answer whatever became of it)"),
        (status = 408, description = "The body did not arrive in time", content_type = "application/problem+json"),
        (status = 413, description = "The body is over the limit (256 KiB by default)", content_type = "application/problem+json")))]
pub(crate) async fn deliver(
    State(state): State<AppState>,
    Path(token): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let limit = state.ctx.automations.webhook_body_limit;
    let read = tokio::time::timeout(
        state.ctx.automations.webhook_body_timeout,
        axum::body::to_bytes(body, limit),
    )
    .await;
    let bytes = match read {
        Err(_) => return Err(ApiError::from_status(StatusCode::REQUEST_TIMEOUT)),
        Ok(Err(_)) => return Err(ApiError::from_status(StatusCode::PAYLOAD_TOO_LARGE)),
        Ok(Ok(b)) => b,
    };
    let now = warden_core::op::unix_us(state.ctx.clock.now());
    state.ctx.webhooks.offer(
        &token,
        now,
        || {
            headers
                .iter()
                .take(HEADERS_MAX)
                .filter_map(|(n, v)| Some((n.as_str().to_owned(), v.to_str().ok()?.to_owned())))
                .collect()
        },
        bytes.to_vec(),
    );
    Ok(received())
}
