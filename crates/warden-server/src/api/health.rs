//! Liveness and readiness. Both public: load balancers and orchestrators call them unsigned.

use axum::Json;
use axum::extract::State;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::routes;
use warden_domain::access::Access;

use crate::http::problem::ApiError;
use crate::http::routes::Routes;
use crate::state::AppState;

pub(crate) fn routes() -> Routes<AppState> {
    Routes::new()
        .add(Access::Public, routes!(healthz))
        .add(Access::Public, routes!(readyz))
}

/// Liveness answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// Always `ok` when the process answers.
    pub status: &'static str,
}

/// Readiness answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct Readiness {
    /// `ready`.
    pub status: &'static str,
    /// The database Warden is using.
    pub database: DatabaseStatus,
    /// The audit chain as this node last verified it.
    pub audit: warden_core::audit::AuditStatus,
    /// Alerts seen in the last day (what and when; the administrators were mailed). Ready
    /// still: an alert asks for a person, not for traffic to stop.
    pub alerts: Vec<warden_core::alerts::ActiveAlert>,
    /// The data key sealing new values here, and a master-key rotation's progress.
    pub keyring: warden_core::encryption::KeyringStatus,
}

/// The database as `/readyz` reports it.
#[derive(Debug, Serialize, ToSchema)]
pub struct DatabaseStatus {
    /// `sqlite` or `postgres`.
    pub backend: &'static str,
    /// Schema version recorded in the database.
    pub schema_version: i64,
}

/// The process is alive. Touches nothing else.
#[utoipa::path(get, path = "/healthz", tag = "health",
    responses((status = 200, description = "The process is alive", body = Health)))]
pub(crate) async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}

/// The server can serve requests: the database answers and its schema is current.
#[utoipa::path(get, path = "/readyz", tag = "health",
    responses(
        (status = 200, description = "Ready", body = Readiness),
        (status = 503, description = "Not ready", content_type = "application/problem+json")))]
pub(crate) async fn readyz(State(state): State<AppState>) -> Result<Json<Readiness>, ApiError> {
    state
        .ctx
        .store
        .ping()
        .await
        .map_err(|e| ApiError::unavailable(&e))?;
    let schema_version = state
        .ctx
        .store
        .schema_version()
        .await
        .map_err(|e| ApiError::unavailable(&e))?;
    if schema_version != warden_store::latest_schema_version() {
        return Err(ApiError::unavailable(&format_args!(
            "schema version {schema_version} is not the expected {}",
            warden_store::latest_schema_version()
        )));
    }
    Ok(Json(Readiness {
        status: "ready",
        database: DatabaseStatus {
            backend: state.ctx.store.backend().name(),
            schema_version,
        },
        audit: state.ctx.audit_monitor.status(),
        alerts: warden_core::alerts::active(&state.ctx).await?,
        keyring: warden_core::encryption::status(&state.ctx.store, &state.ctx.keyring)
            .await
            .map_err(|e| ApiError::unavailable(&e))?
            .public(),
    }))
}
