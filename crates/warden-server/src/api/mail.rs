//! The mail log: what Warden sent, wrote to its log (no SMTP configured), is still trying to
//! send, or gave up on — never a message body.

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::routes;
use warden_domain::access::{Access, Permission};

use crate::http::authz::PlatformAccess;
use crate::http::problem::ApiError;
use crate::http::query::ApiQuery;
use crate::http::routes::Routes;
use crate::state::AppState;

pub(crate) fn routes() -> Routes<AppState> {
    Routes::new().add(
        Access::Platform(Permission::SETTINGS_READ),
        routes!(mail_log),
    )
}

/// Paging.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MailLogQuery {
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Page size, 1–200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<i64>,
}

/// One message.
#[derive(Debug, Serialize, ToSchema)]
pub struct MailView {
    /// Its id.
    pub id: String,
    /// What sent it: `magic_link`, `password_reset`, `license_expiry`, …
    pub kind: String,
    /// The address.
    pub recipient: String,
    /// Subject line.
    pub subject: String,
    /// `queued` (waiting or retrying), `sent`, `logged` (no SMTP configured) or `failed`
    /// (given up after 6 attempts).
    pub status: String,
    /// Attempts made.
    pub attempts: i32,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    /// When the next attempt is due (queued only), RFC 3339.
    pub next_attempt_at: Option<String>,
    /// When queued, RFC 3339.
    pub created_at: String,
    /// When sent, logged or given up, RFC 3339.
    pub finished_at: Option<String>,
}

/// One page of the mail log.
#[derive(Debug, Serialize, ToSchema)]
pub struct MailPage {
    /// Messages, newest first.
    pub items: Vec<MailView>,
    /// Pass as `cursor` for the next page; absent on the last.
    pub next_cursor: Option<String>,
}

/// The mail log, newest first (platform `settings.read`).
#[utoipa::path(get, path = "/api/v1/admin/mail-log", tag = "admin", params(MailLogQuery),
    responses(
        (status = 200, description = "Messages", body = MailPage),
        (status = 403, description = "Not allowed", content_type = "application/problem+json")))]
pub(crate) async fn mail_log(
    State(state): State<AppState>,
    PlatformAccess(grant): PlatformAccess,
    ApiQuery(q): ApiQuery<MailLogQuery>,
) -> Result<Json<MailPage>, ApiError> {
    let page = warden_core::mail::log(&state.ctx, &grant, q.cursor.as_deref(), q.limit).await?;
    let time = warden_core::op::rfc3339;
    Ok(Json(MailPage {
        items: page
            .items
            .into_iter()
            .map(|m| MailView {
                id: m.id.to_string(),
                next_attempt_at: (m.status == "queued").then(|| time(m.next_attempt_at)),
                finished_at: m.finished_at.map(time),
                created_at: time(m.created_at),
                kind: m.kind,
                recipient: m.recipient,
                subject: m.subject,
                status: m.status,
                attempts: m.attempts,
                last_error: m.last_error,
            })
            .collect(),
        next_cursor: page.next_cursor,
    }))
}
