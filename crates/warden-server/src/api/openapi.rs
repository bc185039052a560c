//! The OpenAPI document, generated from the registered routes.

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use utoipa_axum::routes;
use warden_domain::access::Access;

use crate::http::problem::ApiError;
use crate::http::routes::Routes;
use crate::state::AppState;

pub(crate) fn routes() -> Routes<AppState> {
    Routes::new().add(Access::Public, routes!(openapi_json))
}

/// The OpenAPI 3.1 document describing every route of this server.
#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "meta",
    responses((status = 200, description = "OpenAPI document", content_type = "application/json")))]
pub(crate) async fn openapi_json(State(state): State<AppState>) -> impl IntoResponse {
    match state.openapi_json.get() {
        Some(doc) => Ok(([(header::CONTENT_TYPE, "application/json")], doc.clone())),
        None => Err(ApiError::internal(&"OpenAPI document not assembled")),
    }
}
