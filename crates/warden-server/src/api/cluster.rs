//! `POST /internal/v1/relay`: another node of this installation hands a message for a host
//! connected here. Public as a route (a node holds no account); the body is its own gate — an
//! envelope sealed with the shared keyring for this node, fresh, never seen before (see
//! `warden_core::cluster`). Anything else is 403, saying only that.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use utoipa_axum::routes;
use warden_domain::access::Access;

use crate::http::problem::ApiError;
use crate::http::routes::Routes;
use crate::state::AppState;

pub(crate) fn routes() -> Routes<AppState> {
    Routes::new().add(Access::Public, routes!(relay))
}

/// Delivers a message another node relays to a host connected here; answers with the
/// sealed outcome (and the host's answer, when one was asked for).
#[utoipa::path(post, path = "/internal/v1/relay", tag = "health",
    request_body(content = Vec<u8>, content_type = "application/octet-stream",
        description = "An envelope sealed by another node"),
    responses(
        (status = 200, description = "The sealed outcome", content_type = "application/octet-stream", body = Vec<u8>),
        (status = 403, description = "Not an envelope for this node, stale, or replayed", content_type = "application/problem+json")))]
pub(crate) async fn relay(
    State(state): State<AppState>,
    body: Bytes,
) -> Result<Response, ApiError> {
    match warden_core::cluster::receive(&state.ctx, &body).await {
        Ok(sealed) => {
            let mut res = sealed.into_response();
            res.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/octet-stream"),
            );
            Ok(res)
        }
        Err(refused) => {
            tracing::warn!(reason = %refused, "a node-to-node message was refused");
            Err(ApiError::from_status(StatusCode::FORBIDDEN))
        }
    }
}
