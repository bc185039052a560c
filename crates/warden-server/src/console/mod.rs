//! The web console: server-rendered pages (askama templates under `templates/console`, output
//! escaped by the engine) over the same use cases as the API. Every route is declared with
//! its access rule like an API route, so the access guard authenticates the cookie session,
//! applies the licence gate and checks each form's CSRF field and origin before a handler
//! runs; a handler reads through `warden-core` and never the store.
//!
//! Refusals on console paths are pages (see `error_page`): without a session the browser is
//! sent to `/sign-in` and comes back; 403/404/500 keep the layout and say what to do.

use askama::Template;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use utoipa_axum::routes;
use warden_core::identity::account;
use warden_core::op::rfc3339;
use warden_domain::access::{Access, Permission, PermissionSet};

use crate::http::page::Page;
use crate::http::problem::ApiError;
use crate::http::routes::Routes;
use crate::identity::Caller;
use crate::state::AppState;

mod admin;
mod agent_sessions;
mod audit;
mod automations;
mod bots;
mod directory_groups;
mod home;
mod hosts;
mod license;
mod llm;
mod org_admin;
mod organizations;
mod profile;
mod saml_admin;
mod sessions;
mod sign_in_admin;
mod tickets;
mod workflows;
mod workspace_hosts;
mod workspace_settings;
mod workspaces;

pub(crate) fn routes() -> Routes<AppState> {
    use Access::Platform;
    Routes::new()
        .add(
            Platform(Permission::SESSIONS_READ),
            routes!(sessions::sessions),
        )
        .add(
            Platform(Permission::SESSIONS_DELETE),
            routes!(sessions::revoke),
        )
        .add_recovery(Access::SignedIn, routes!(license::license))
        .add_recovery(
            Platform(Permission::ADMIN_UPDATE),
            routes!(license::install_license),
        )
        .add_recovery(Access::SignedIn, routes!(home::home))
        .merge(profile::routes())
        .merge(organizations::routes())
        .merge(org_admin::routes())
        .merge(hosts::routes())
        .merge(admin::routes())
        .merge(sign_in_admin::routes())
        .merge(saml_admin::routes())
        .merge(audit::routes())
        .merge(workspaces::routes())
        .merge(directory_groups::routes())
        .merge(workspace_settings::routes())
        .merge(workspace_hosts::routes())
        .merge(agent_sessions::routes())
        .merge(automations::routes())
        .merge(llm::routes())
        .merge(tickets::routes())
        .merge(workflows::routes())
        .merge(bots::routes())
}

/// What every console page shows around its content.
#[derive(Debug)]
pub(crate) struct Frame {
    /// The signed-in person's email (empty on a page without a session).
    pub email: String,
    /// Their display name, if they gave one.
    pub name: Option<String>,
    /// Which navigation entry is current.
    pub section: &'static str,
    /// The session's CSRF token, for the page's forms.
    pub csrf: String,
    /// A fixed sentence about what just happened.
    pub notice: Option<&'static str>,
    /// What the person may do platform-wide now (the navigation shows what it allows).
    pub may: PermissionSet,
    /// For administrators: the licence runs out within 30 days (or has).
    pub banner: Option<String>,
    /// For administrators: the audit trail's chain is broken, or the clock went back.
    pub tamper: Option<String>,
    /// Whether the licence opens the console's gated pages now (the navigation hides them
    /// while it does not).
    pub open: bool,
    /// The organizations the person may switch between (empty: no choice to offer).
    pub orgs: Vec<organizations::OrgChoice>,
    /// Whether the person administers the organization they act in (the navigation's
    /// Organization).
    pub org_admin: bool,
}

impl Frame {
    /// The first administration page the person may open, if any (the navigation's Admin).
    pub(crate) fn admin_home(&self) -> Option<&'static str> {
        [
            (Permission::USERS_READ, "/console/admin/users"),
            (Permission::ADMIN_READ, "/console/admin/roles"),
            (Permission::SETTINGS_READ, "/console/admin/sso"),
        ]
        .into_iter()
        .find(|(p, _)| self.may.contains(*p))
        .map(|(_, url)| url)
    }

    /// Whether this page is one of the administration pages.
    pub(crate) fn in_admin(&self) -> bool {
        matches!(self.section, "users" | "roles" | "sso" | "mail")
    }
}

/// The tamper banner administrators see while the audit chain is broken or the clock check
/// fails.
fn tamper_banner(state: &AppState, may: PermissionSet) -> Option<String> {
    if !may.contains(Permission::ADMIN_READ) {
        return None;
    }
    let audit = state.ctx.audit_monitor.status();
    if audit.status == "broken" {
        return Some(format!(
            "The audit trail fails its check at event {} ({}): run `warden audit verify` and investigate.",
            audit.broken_at.unwrap_or_default(),
            audit.tamper.as_deref().unwrap_or("changed")
        ));
    }
    let now = warden_core::license::unix_now(state.ctx.clock.as_ref());
    state
        .ctx
        .license
        .clock_watch()
        .tampered_at(now)
        .then(|| "The system clock was set back: licence checks treat it as tampering until it is right again.".to_owned())
}

/// The expiry banner administrators see from 30 days before the licence ends.
fn expiry_banner(state: &AppState, may: PermissionSet) -> Option<String> {
    use warden_domain::license::{BANNER_DAYS, DAY, days_left};
    let license = &state.ctx.license;
    if !may.contains(Permission::ADMIN_READ) || !license.enforced() {
        return None;
    }
    let now = warden_core::license::unix_now(state.ctx.clock.as_ref());
    let installed = license.installed()?;
    let exp = installed.claims.exp;
    if exp - now > BANNER_DAYS * DAY {
        return None;
    }
    Some(match days_left(exp, now) {
        d if d > 1 => format!("The licence expires in {d} days: install a renewed one."),
        d if d >= 0 => "The licence expires within a day: install a renewed one.".to_owned(),
        _ => "The licence has expired: install a new one.".to_owned(),
    })
}

pub(crate) async fn frame(
    state: &AppState,
    caller: &Caller,
    section: &'static str,
    notice: Option<&'static str>,
) -> Result<Frame, ApiError> {
    let may = warden_core::access::platform_permissions(&state.ctx, &caller.principal).await?;
    let (orgs, org_admin) = organizations::choices(state, caller, may).await?;
    Ok(Frame {
        email: account::email(&state.ctx, &caller.principal).await?,
        name: account::display_name(&state.ctx, &caller.principal).await?,
        section,
        csrf: state.ctx.identity.csrf_token(caller.principal.session_id),
        notice,
        may,
        banner: expiry_banner(state, may),
        tamper: tamper_banner(state, may),
        open: state
            .ctx
            .license
            .gate(
                state.ctx.clock.as_ref(),
                "/console/hosts",
                warden_domain::license::LicenseRule::Required,
            )
            .is_ok(),
        orgs,
        org_admin,
    })
}

/// A user's email for a list (`user <id>` when the account is gone or inactive).
pub(crate) async fn email_of(state: &AppState, user: uuid::Uuid) -> Result<String, ApiError> {
    Ok(state
        .ctx
        .identity
        .user_email(&state.ctx.store, user)
        .await
        .map_err(warden_core::CoreError::from)?
        .unwrap_or_else(|| format!("user {user}")))
}

/// A rendered template as a page: HTML, never cached, marked so the edge keeps it.
pub(crate) fn render(t: &impl Template, status: StatusCode) -> Response {
    match t.render() {
        Ok(html) => {
            let mut res = (status, axum::response::Html(html)).into_response();
            res.extensions_mut().insert(Page);
            res.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            res
        }
        Err(e) => ApiError::internal(&e).into_response(),
    }
}

/// A submitted form's fields (`application/x-www-form-urlencoded`), read by name.
pub(crate) struct Fields(Vec<(String, String)>);

impl Fields {
    pub(crate) fn parse(body: &[u8]) -> Self {
        Self(form_urlencoded::parse(body).into_owned().collect())
    }

    /// The first value of `name`, as sent (empty when absent).
    pub(crate) fn text(&self, name: &str) -> &str {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map_or("", |(_, v)| v.as_str())
    }

    /// Every value of `name` (a group of checkboxes).
    pub(crate) fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0
            .iter()
            .filter(move |(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Whether the form has a field called `name` (even empty).
    pub(crate) fn has(&self, name: &str) -> bool {
        self.0.iter().any(|(k, _)| k == name)
    }

    /// The value of `name` trimmed, or `None` when absent or blank.
    pub(crate) fn given(&self, name: &str) -> Option<&str> {
        Some(self.text(name).trim()).filter(|v| !v.is_empty())
    }

    /// The field's comma- or space-separated words (email domains, say).
    pub(crate) fn words(&self, name: &str) -> Vec<String> {
        self.text(name)
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|d| !d.is_empty())
            .map(str::to_owned)
            .collect()
    }
}

/// Which fixed sentence to show after a redirect (`?done=…`): never text from the URL.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Done {
    /// `device-signed-out` or `token-revoked`.
    pub done: Option<String>,
}

pub(crate) fn notice(done: Option<&str>) -> Option<&'static str> {
    match done? {
        "device-signed-out" => Some("That device is signed out."),
        "token-revoked" => Some("The token is revoked."),
        "license-installed" => Some("The licence is installed and in effect on every node."),
        "host-approved" => Some("The host is approved: it may receive work."),
        "host-rejected" => Some("The host is rejected: it gets no work."),
        "host-workspaces-saved" => Some("The workspaces this host serves are saved."),
        "host-deleted" => Some("The host is deleted: its key no longer works."),
        "allow-list-saved" => {
            Some("The allow-list is saved: it applies from the host's next connection.")
        }
        "workspace-created" => Some("The workspace is created: you are its owner."),
        "workspace-renamed" => Some("The workspace is renamed."),
        "workspace-archived" => {
            Some("The workspace is archived: it stays readable, and nothing in it can change.")
        }
        "org-switched" => Some("You now act in this organization: these are its workspaces."),
        "member-added" => Some("The member is added."),
        "member-changed" => Some("The member's role is changed."),
        "member-removed" => Some("The member is removed."),
        "group-mapped" => Some(
            "The group is mapped: its members are in line now, and follow the directory from now on.",
        ),
        "group-unmapped" => Some("The mapping is removed: the memberships it granted ended."),
        "settings-saved" => Some("The settings are saved."),
        "secret-set" => Some("The value is saved. It is write-only: nobody can read it back."),
        "secret-removed" => Some("The value is removed."),
        "prompt-saved" => Some("The prompt is saved."),
        "prompt-removed" => Some("The prompt is removed."),
        "automation-created" => Some("The automation is saved: its runs act for you."),
        "automation-deleted" => Some("The automation is deleted; the sessions it started stay."),
        "run-queued" => Some("A run is queued: it starts when a host and a slot are free."),
        "bot-created" => Some("The bot is made: its sessions act for you."),
        "bot-message-sent" => Some("The message is queued: the bot answers in turn."),
        "workflow-saved" => Some("The workflow is saved."),
        "run-started" => Some("The run is started: its steps act for you."),
        "run-decided" => Some("Your decision is recorded; the run goes on from it."),
        "run-canceled" => Some("The run is canceled; its running session is asked to stop."),
        "ticket-created" => Some("The ticket is written into the backlog."),
        "ticket-moved" => Some("The ticket is moved."),
        "comment-written" => Some(
            "The comment is written; on a synced ticket it goes to the tracker with the next sync.",
        ),
        "sync-requested" => Some("The sync runs in a moment; reload to see how it went."),
        "answer-sent" => Some("The answer is sent: the agent waiting on it has it now."),
        "mcp-saved" => Some("The MCP setting is saved: it applies to sessions started from now."),
        "source-deleted" => Some("The event source is deleted: its URL no longer works."),
        "session-stopping" => Some("The session is asked to stop."),
        "session-closed" => Some("The session is closed: its worktree is removed."),
        "file-saved" => Some("The file is saved in the session's worktree."),
        "name-saved" => Some("Your name is saved."),
        "password-changed" => Some("Your password is changed; your other sessions are signed out."),
        "invitation-sent" => Some("The invitation is sent: its link works for 7 days."),
        "invitation-revoked" => Some("The invitation is revoked: its link no longer works."),
        "role-changed" => Some("The role is changed: it applies from their next request."),
        "user-deactivated" => Some("The user is deactivated: every sign-in of theirs has ended."),
        "user-reactivated" => Some("The user is reactivated: they can sign in again."),
        "role-created" => Some("The role is defined."),
        "role-deleted" => Some("The role is deleted."),
        "role-saved" => {
            Some("The role is saved: its holders have the new permissions from their next request.")
        }
        "password-reset" => Some("The password is set and that person is signed out everywhere."),
        "signed-out-everywhere" => {
            Some("Every session and personal access token of that person has ended.")
        }
        "policy-saved" => Some("The sign-in policy is saved."),
        "provider-added" => Some("The provider is added: its button is on the sign-in page."),
        "provider-saved" => Some("The provider is saved."),
        "provider-deleted" => {
            Some("The provider is deleted: its button is gone from the sign-in page.")
        }
        _ => None,
    }
}

/// A time for people: `2026-12-03 07:41 UTC`.
pub(crate) fn when(us: i64) -> String {
    let t = rfc3339(us);
    match (t.get(..10), t.get(11..16)) {
        (Some(d), Some(h)) => format!("{d} {h} UTC"),
        _ => t,
    }
}

/// A browser or client, as its user agent names it, shortened for a list.
pub(crate) fn agent(ua: Option<&str>) -> String {
    let ua = ua.unwrap_or("").trim();
    let name = ["Firefox", "Edg", "Chrome", "Safari", "curl", "warden"]
        .iter()
        .find(|n| ua.contains(*n))
        .map(|n| match *n {
            "Edg" => "Edge",
            "warden" => "Warden CLI",
            other => other,
        });
    let os = ["Windows", "Mac OS", "Android", "iPhone", "Linux"]
        .iter()
        .find(|o| ua.contains(*o));
    match (name, os) {
        (Some(n), Some(o)) => format!("{n} on {o}"),
        (Some(n), None) => n.to_owned(),
        _ if ua.is_empty() => "Unknown client".to_owned(),
        _ => ua.chars().take(60).collect(),
    }
}

#[derive(Template)]
#[template(path = "console/error.html")]
struct ErrorPage {
    frame: Frame,
    title: &'static str,
    message: &'static str,
    reason: Option<String>,
}

/// The page for a refusal on a console path (`path_and_query` is where the browser was
/// going): without a session, to `/sign-in` and back; otherwise a page in the layout saying
/// what happened and what to do.
pub(crate) fn error_page(
    status: StatusCode,
    path_and_query: &str,
    why: Option<(Option<&'static str>, String)>,
) -> Response {
    if status == StatusCode::UNAUTHORIZED {
        let next: String = form_urlencoded::byte_serialize(path_and_query.as_bytes()).collect();
        let mut res = Redirect::to(&format!("/sign-in?next={next}")).into_response();
        res.extensions_mut().insert(Page);
        return res;
    }
    let (title, message) = match status.as_u16() {
        403 => (
            "Not allowed",
            "Your role does not allow this page. Ask an administrator if you need it.",
        ),
        404 => (
            "Not found",
            "There is nothing here, or nothing you may see. Check the address.",
        ),
        429 => ("Too many requests", "Wait a moment, then try again."),
        503 => (
            "Licence needed",
            "Warden's licence is missing or no longer valid, so this page is closed. An administrator can install a licence on the licence page (/console/license); everyone else: ask your administrator.",
        ),
        s if s >= 500 => (
            "Something went wrong",
            "Warden could not answer this time. Try again; if it keeps happening, tell your administrator.",
        ),
        _ => (
            "That did not work",
            "The request was refused. Go back and try again.",
        ),
    };
    // A refused form says which field and why, in the fixed sentence of the use case
    // (never the value sent).
    let reason = match why {
        Some((field, detail)) if matches!(status.as_u16(), 400 | 409 | 422) => Some(match field {
            Some(f) => format!("{f}: {detail}"),
            None => detail,
        }),
        _ => None,
    };
    let page = ErrorPage {
        frame: Frame {
            email: String::new(),
            name: None,
            section: "",
            csrf: String::new(),
            notice: None,
            may: PermissionSet::default(),
            banner: None,
            tamper: None,
            open: false,
            orgs: Vec::new(),
            org_admin: false,
        },
        title,
        message,
        reason,
    };
    render(&page, status)
}
