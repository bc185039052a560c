//! Console → Audit: the trail, newest first, a page at a time by sequence number (the same
//! keyset page as the API, so the thousandth page costs what the first does), filtered by
//! action, outcome, actor, resource and day; the chain's status; the CSV export of the same
//! filter when the role and the licence allow it.

use std::collections::HashMap;

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use utoipa_axum::routes;
use warden_core::audit as core;
use warden_domain::access::{Access, Permission};
use warden_domain::license::Feature;

use super::{Frame, frame, render, when};
use crate::api::audit::bad_filter;
use crate::audit::filter::AuditQuery;
use crate::http::authz::PlatformAccess;
use crate::http::problem::ApiError;
use crate::http::query::ApiQuery;
use crate::http::routes::Routes;
use crate::identity::Caller;
use crate::state::AppState;

pub(super) fn routes() -> Routes<AppState> {
    Routes::new().add(
        Access::Platform(Permission::AUDIT_READ),
        routes!(audit_page),
    )
}

/// The filter form's fields; blank fields filter nothing.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditForm {
    /// Actions starting with this (`user.`, `session.file`).
    pub action: Option<String>,
    /// `success`, `denied` or `failed`.
    pub outcome: Option<String>,
    /// The actor's id.
    pub actor_id: Option<String>,
    /// Resource id.
    pub resource_id: Option<String>,
    /// Workspace id.
    pub workspace_id: Option<String>,
    /// From this day (YYYY-MM-DD, UTC).
    pub since: Option<String>,
    /// Through this day (YYYY-MM-DD, UTC).
    pub until: Option<String>,
    /// Events older than this sequence number (the "older" link).
    pub cursor: Option<String>,
}

fn given(v: &Option<String>) -> Option<String> {
    v.as_deref()
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
}

impl AuditForm {
    /// The API's query for this form (a day becomes its first or last instant).
    fn query(&self) -> AuditQuery {
        let day = |v: &Option<String>, at: &str| {
            given(v).map(|d| {
                if d.len() == 10 {
                    format!("{d}T{at}Z")
                } else {
                    d
                }
            })
        };
        AuditQuery {
            action: given(&self.action),
            outcome: given(&self.outcome),
            actor_id: given(&self.actor_id),
            resource_id: given(&self.resource_id),
            workspace_id: given(&self.workspace_id),
            since: day(&self.since, "00:00:00"),
            until: day(&self.until, "23:59:59.999999"),
            cursor: given(&self.cursor),
            ..AuditQuery::default()
        }
    }

    /// The form as a query string (without the cursor), for links.
    fn encoded(&self) -> String {
        let mut out = form_urlencoded::Serializer::new(String::new());
        for (k, v) in [
            ("action", &self.action),
            ("outcome", &self.outcome),
            ("actor_id", &self.actor_id),
            ("resource_id", &self.resource_id),
            ("workspace_id", &self.workspace_id),
            ("since", &self.since),
            ("until", &self.until),
        ] {
            if let Some(v) = given(v) {
                out.append_pair(k, &v);
            }
        }
        out.finish()
    }
}

/// One event as the console lists it (the trail's page and an organization's view).
pub(super) struct EventItem {
    pub(super) seq: i64,
    pub(super) time: String,
    pub(super) actor: String,
    pub(super) actor_id: Option<String>,
    pub(super) action: String,
    pub(super) resource: String,
    pub(super) outcome: String,
    pub(super) from: String,
    pub(super) summary: String,
}

#[derive(Template)]
#[template(path = "console/audit.html")]
struct AuditPage {
    frame: Frame,
    form: AuditForm,
    events: Vec<EventItem>,
    older: Option<String>,
    export: Option<String>,
    paged: bool,
    chain: String,
    chain_ok: bool,
    /// Actors link to their events (the events partial).
    link_actors: bool,
}

const PER_PAGE: i64 = 50;

fn short(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_owned()
    } else {
        let cut: String = text.chars().take(max).collect();
        format!("{cut}…")
    }
}

/// The events as the console lists them: actors by email, long ids and summaries cut short.
pub(super) async fn items(
    state: &AppState,
    rows: Vec<warden_store::audit::Row>,
) -> Result<Vec<EventItem>, ApiError> {
    let mut names: HashMap<String, String> = HashMap::new();
    let mut events = Vec::with_capacity(rows.len());
    for r in rows {
        let actor = match (r.actor_kind.as_str(), r.actor_id.as_deref()) {
            ("user", Some(id)) => match names.get(id) {
                Some(e) => e.clone(),
                None => {
                    let e = match id.parse() {
                        Ok(uuid) => super::email_of(state, uuid).await?,
                        Err(_) => format!("user {id}"),
                    };
                    names.insert(id.to_owned(), e.clone());
                    e
                }
            },
            (kind, Some(id)) => format!("{kind} {}", short(id, 13)),
            (kind, None) => kind.to_owned(),
        };
        events.push(EventItem {
            seq: r.seq,
            time: when(r.occurred_at_us),
            actor,
            actor_id: r.actor_id,
            resource: match r.resource_id {
                Some(id) => format!("{} {}", r.resource_type, short(&id, 40)),
                None => r.resource_type,
            },
            action: r.action,
            outcome: r.outcome,
            from: r.client_ip.unwrap_or_default(),
            summary: short(&r.summary, 240),
        });
    }
    Ok(events)
}

/// The audit trail, filtered, a page at a time.
#[utoipa::path(get, path = "/console/audit", tag = "console", params(AuditForm),
    responses((status = 200, description = "Page", content_type = "text/html"),
              (status = 400, description = "A filter that does not parse", content_type = "text/html"),
              (status = 403, description = "Without audit.read", content_type = "text/html")))]
pub(crate) async fn audit_page(
    State(state): State<AppState>,
    PlatformAccess(grant): PlatformAccess,
    caller: Caller,
    ApiQuery(form): ApiQuery<AuditForm>,
) -> Result<Response, ApiError> {
    let parsed = form.query().parse().map_err(bad_filter)?;
    let rows = core::page(&state.ctx, &grant, &parsed.filter, parsed.before, PER_PAGE).await?;
    let full = i64::try_from(rows.len()).unwrap_or(i64::MAX) == PER_PAGE;
    let filters = form.encoded();
    let older = rows.last().filter(|_| full).map(|r| {
        let sep = if filters.is_empty() { "" } else { "&" };
        format!("/console/audit?{filters}{sep}cursor={}", r.seq)
    });
    let events = items(&state, rows).await?;
    let frame = frame(&state, &caller, "audit", None).await?;
    let export = (frame.may.contains(Permission::AUDIT_EXPORT)
        && state.ctx.license.feature(Feature::AuditExport))
    .then(|| {
        format!("/api/v1/audit/export.csv?{filters}")
            .trim_end_matches('?')
            .to_owned()
    });
    let status = state.ctx.audit_monitor.status();
    let (chain, chain_ok) = match status.status {
        "broken" => (
            format!(
                "The chain fails its check at event {} ({}).",
                status.broken_at.unwrap_or_default(),
                status.tamper.as_deref().unwrap_or("changed")
            ),
            false,
        ),
        "intact" if status.verified_through > 0 => (
            format!(
                "The chain checks out through event {}.",
                status.verified_through
            ),
            true,
        ),
        "intact" => ("The chain checks out.".to_owned(), true),
        _ => ("The chain has not been checked yet.".to_owned(), true),
    };
    let page = AuditPage {
        frame,
        paged: parsed.before.is_some(),
        form,
        events,
        older,
        export,
        chain,
        chain_ok,
        link_actors: true,
    };
    Ok(render(&page, StatusCode::OK))
}
