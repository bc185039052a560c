//! `POST /webhooks/{token}`: the public URL of an event source. Its answer is always the same
//! `200` whatever became of the delivery (unknown token, disabled source, bad signature,
//! over a limit, accepted), so the URL tells a prober nothing. Only a body over the size
//! limit (413, checked before any work on the token), one that does not arrive in time
//! (408), or one that could not be stored (503: the provider sends it again) is answered
//! otherwise. The `200` comes only after the delivery is stored. The route is logged by its
//! pattern, never its path, so the token appears in no access log.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use utoipa_axum::routes;
use warden_core::webhooks::CREDENTIAL_HEADERS;
use warden_domain::access::Access;

use crate::http::problem::ApiError;
use crate::http::routes::Routes;
use crate::state::AppState;

pub(crate) fn routes() -> Routes<AppState> {
    Routes::new().add(Access::Public, routes!(deliver))
}

/// Headers kept for signature checks, at most; credential headers are never kept (the
/// delivery waits in the database until it is processed).
const HEADERS_MAX: usize = 64;
/// How long a taken delivery may wait for its batch to commit before the sender is told to
/// send it again (providers give up after about 10 s).
const STORE_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

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
    request_body(content = Option<serde_json::Value>, content_type = "application/json",
        description = "The provider's payload, as it signed it"),
    responses(
        (status = 200, description = "Received (the same answer whatever became of it)"),
        (status = 408, description = "The body did not arrive in time", content_type = "application/problem+json"),
        (status = 413, description = "The body is over the limit (256 KiB by default)", content_type = "application/problem+json"),
        (status = 503, description = "The delivery could not be stored in time, or the node has just started: send it again", content_type = "application/problem+json")))]
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
    // A node that has just started knows no token until its routing table is loaded.
    if !state.ctx.webhooks.ready(STORE_WAIT).await {
        return Err(ApiError::unavailable(
            &"the webhook routing table is not loaded yet",
        ));
    }
    let now = warden_core::op::unix_us(state.ctx.clock.now());
    let taken = state.ctx.webhooks.offer(
        &token,
        now,
        || {
            headers
                .iter()
                .filter(|(n, _)| !CREDENTIAL_HEADERS.contains(&n.as_str()))
                .take(HEADERS_MAX)
                .filter_map(|(n, v)| Some((n.as_str().to_owned(), v.to_str().ok()?.to_owned())))
                .collect()
        },
        bytes.to_vec(),
    );
    // A delivery taken is answered once it is stored: a 200 survives a crash the next
    // moment. One that could not be stored in time is sent again by the provider.
    if let Some(stored) = taken
        && !stored.committed(STORE_WAIT).await
    {
        return Err(ApiError::unavailable(
            &"the webhook delivery could not be stored",
        ));
    }
    Ok(received())
}
