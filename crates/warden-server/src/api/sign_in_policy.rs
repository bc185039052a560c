//! The sign-in policy: password sign-in on, or off for everyone but a break-glass
//! administrator (password-free mode).

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::routes;
use warden_core::identity::policy::{self, Policy};
use warden_domain::access::{Access, Permission};

use crate::http::authz::{PlatformAccess, UserOp};
use crate::http::json::ApiJson;
use crate::http::problem::ApiError;
use crate::http::routes::Routes;
use crate::state::AppState;

pub(crate) fn routes() -> Routes<AppState> {
    use Access::Platform;
    Routes::new()
        .add(Platform(Permission::SETTINGS_READ), routes!(get_policy))
        .add(Platform(Permission::SETTINGS_UPDATE), routes!(set_policy))
}

/// The sign-in policy.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SignInPolicy {
    /// Whether anyone may sign in with a password. Off: password-free mode (emailed links,
    /// and single sign-on once configured).
    pub password_sign_in: bool,
    /// The one active administrator who may still use a password while it is off.
    #[serde(default)]
    pub break_glass_email: Option<String>,
}

fn view(p: Policy) -> SignInPolicy {
    SignInPolicy {
        password_sign_in: p.password_sign_in,
        break_glass_email: p.break_glass_email,
    }
}

/// The sign-in policy.
#[utoipa::path(get, path = "/api/v1/admin/sign-in-policy", tag = "admin",
    responses((status = 200, description = "The policy", body = SignInPolicy)))]
pub(crate) async fn get_policy(
    State(state): State<AppState>,
    PlatformAccess(grant): PlatformAccess,
) -> Result<Json<SignInPolicy>, ApiError> {
    Ok(Json(view(policy::get(&state.ctx, &grant).await?)))
}

/// Sets the sign-in policy. Turning password sign-in off is refused (409) when
/// administrators would have no way in: no SMTP server for magic links and no break-glass
/// administrator.
#[utoipa::path(put, path = "/api/v1/admin/sign-in-policy", tag = "admin", request_body = SignInPolicy,
    responses(
        (status = 200, description = "The new policy", body = SignInPolicy),
        (status = 409, description = "It would leave administrators no way in", content_type = "application/problem+json"),
        (status = 422, description = "The break-glass email is not an active administrator's", content_type = "application/problem+json")))]
pub(crate) async fn set_policy(
    State(state): State<AppState>,
    UserOp(op): UserOp,
    PlatformAccess(grant): PlatformAccess,
    ApiJson(input): ApiJson<SignInPolicy>,
) -> Result<Json<SignInPolicy>, ApiError> {
    let p = policy::set(
        &state.ctx,
        &op,
        &grant,
        input.password_sign_in,
        input.break_glass_email.as_deref(),
    )
    .await?;
    Ok(Json(view(p)))
}
