//! The console's start page: who is signed in and what they hold, and an activity feed of
//! what happened lately that they may see (`warden_core::activity`).

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use warden_core::activity::{self, Activity};
use warden_core::identity::{account, passkeys, tokens};
use warden_domain::access::Permission;

use super::{Frame, frame, render, when};
use crate::http::authz::UserOp;
use crate::http::problem::ApiError;
use crate::identity::Caller;
use crate::state::AppState;

/// One line of the feed: what, when, and where to look.
struct FeedItem {
    when: String,
    text: String,
    href: Option<String>,
    tone: &'static str,
}

fn item(at: i64, a: Activity) -> FeedItem {
    let session = |w: &(uuid::Uuid, String), s: uuid::Uuid| {
        Some(format!("/console/workspaces/{}/sessions/{s}", w.0))
    };
    let (text, href, tone) = match a {
        Activity::SessionStarted {
            workspace,
            session: s,
            prompt,
        } => (
            format!("Session started in {}: {prompt}", workspace.1),
            session(&workspace, s),
            "running",
        ),
        Activity::SessionEnded {
            workspace,
            session: s,
            prompt,
            status,
        } => (
            format!("Session {status} in {}: {prompt}", workspace.1),
            session(&workspace, s),
            match status.as_str() {
                "done" => "done",
                "canceled" => "canceled",
                _ => "failed",
            },
        ),
        Activity::HostOffline { name } => (
            format!("Host {name} went offline"),
            Some("/console/hosts".to_owned()),
            "failed",
        ),
        Activity::HostWaiting { name } => (
            format!("Host {name} waits for your approval"),
            Some("/console/hosts".to_owned()),
            "waiting",
        ),
    };
    FeedItem {
        when: when(at),
        text,
        href,
        tone,
    }
}

#[derive(Template)]
#[template(path = "console/home.html")]
struct HomePage {
    frame: Frame,
    devices: usize,
    passkeys: usize,
    tokens: usize,
    feed: Vec<FeedItem>,
}

fn active_tokens(rows: &[warden_store::personal_tokens::PersonalTokenRow], now: i64) -> usize {
    rows.iter()
        .filter(|t| t.revoked_at.is_none() && t.expires_at > now)
        .count()
}

/// The most lines the feed shows.
const FEED: usize = 15;

/// The start page: who is signed in, what they hold, and what happened lately.
#[utoipa::path(get, path = "/console", tag = "console",
    responses((status = 200, description = "Page", content_type = "text/html"),
              (status = 303, description = "Not signed in: to /sign-in")))]
pub(crate) async fn home(
    State(state): State<AppState>,
    UserOp(op): UserOp,
    caller: Caller,
) -> Result<Response, ApiError> {
    let p = &caller.principal;
    let devices = account::active_devices(&state.ctx, &op, Some(p.user_id)).await?;
    let keys = passkeys::mine(&state.ctx, p).await?;
    let toks = tokens::mine(&state.ctx, &op, p).await?;
    let feed = activity::recent(&state.ctx, &op, p, FEED)
        .await?
        .into_iter()
        .map(|(at, a)| item(at, a))
        .collect();
    let page = HomePage {
        frame: frame(&state, &caller, "home", None).await?,
        devices: devices.len(),
        passkeys: keys.len(),
        tokens: active_tokens(&toks, op.now_us()),
        feed,
    };
    Ok(render(&page, StatusCode::OK))
}
