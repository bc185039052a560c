//! Console → Admin → Single sign-on and Mail log: the sign-in policy (password sign-in on, or
//! off but for a break-glass administrator), the OpenID Connect providers (add one from
//! a preset — Google, Microsoft Entra with its tenant — or any issuer URL; the client secret is
//! write-only: shown as "set", never the value; delete), and what Warden sent by email (never
//! a body). Through `warden_core::sso::providers` and `warden_core::mail`, as the API.

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use utoipa_axum::routes;
use warden_core::CoreError;
use warden_core::sso::providers::{self, Issuer, Settings};
use warden_domain::access::{Access, Permission};

use super::{Done, Fields, Frame, frame, render, when};
use crate::http::authz::{PlatformAccess, UserOp};
use crate::http::problem::ApiError;
use crate::http::query::ApiQuery;
use crate::http::routes::Routes;
use crate::identity::Caller;
use crate::state::AppState;

pub(super) fn routes() -> Routes<AppState> {
    use Access::Platform;
    Routes::new()
        .add(Platform(Permission::SETTINGS_READ), routes!(sso_page))
        .add(Platform(Permission::SETTINGS_CREATE), routes!(add_provider))
        .add(
            Platform(Permission::SETTINGS_DELETE),
            routes!(delete_provider),
        )
        .add(Platform(Permission::SETTINGS_READ), routes!(mail_page))
        .add(Platform(Permission::SETTINGS_UPDATE), routes!(set_policy))
        .add(
            Platform(Permission::SETTINGS_UPDATE),
            routes!(update_provider),
        )
}

struct ProviderItem {
    slug: String,
    name: String,
    issuer: String,
    client_id: String,
    secret_set: bool,
    domains: String,
    jit: String,
    link_by_email: bool,
    callback: String,
    /// A SAML provider's settings (`None`: OpenID Connect).
    saml: Option<super::saml_admin::SamlItem>,
    /// For the edit form.
    domains_raw: String,
    jit_on: bool,
    default_role: String,
    private_network: bool,
}

#[derive(Template)]
#[template(path = "console/admin_sso.html")]
struct SsoPage {
    frame: Frame,
    providers: Vec<ProviderItem>,
    may_create: bool,
    may_delete: bool,
    may_update: bool,
    /// Whether SAML providers may be added (licence feature `sso-saml`).
    saml_licensed: bool,
    password_sign_in: bool,
    break_glass: String,
}

/// The single sign-on providers and the form that adds one.
#[utoipa::path(get, path = "/console/admin/sso", tag = "console", params(Done),
    responses((status = 200, description = "Page", content_type = "text/html"),
              (status = 403, description = "Without settings.read", content_type = "text/html")))]
pub(crate) async fn sso_page(
    State(state): State<AppState>,
    PlatformAccess(grant): PlatformAccess,
    caller: Caller,
    ApiQuery(done): ApiQuery<Done>,
) -> Result<Response, ApiError> {
    let mut items = Vec::new();
    for p in providers::list(&state.ctx, &grant).await? {
        let saml = if p.protocol == "saml" {
            Some(super::saml_admin::item(&state, &grant, &p.slug).await?)
        } else {
            None
        };
        items.push(ProviderItem {
            callback: warden_core::sso::flow::callback_url(&state.ctx, &p.slug),
            saml,
            domains_raw: p.allowed_domains.replace(' ', ", "),
            jit_on: p.jit,
            default_role: p.default_role.clone(),
            private_network: p.allow_private_network,
            slug: p.slug,
            name: p.display_name,
            issuer: p.issuer,
            client_id: p.client_id,
            secret_set: p.sealed_secret.is_some(),
            domains: if p.allowed_domains.is_empty() {
                "any".to_owned()
            } else {
                p.allowed_domains.replace(' ', ", ")
            },
            jit: if p.jit {
                format!("new accounts as {}", p.default_role)
            } else {
                "off".to_owned()
            },
            link_by_email: p.link_by_email,
        });
    }
    let providers = items;
    let policy = warden_core::identity::policy::get(&state.ctx, &grant).await?;
    let frame = frame(&state, &caller, "sso", super::notice(done.done.as_deref())).await?;
    let page = SsoPage {
        may_update: frame.may.contains(Permission::SETTINGS_UPDATE),
        password_sign_in: policy.password_sign_in,
        break_glass: policy.break_glass_email.unwrap_or_default(),
        may_create: frame.may.contains(Permission::SETTINGS_CREATE),
        saml_licensed: state
            .ctx
            .license
            .feature(warden_domain::license::Feature::SsoSaml),
        may_delete: frame.may.contains(Permission::SETTINGS_DELETE),
        frame,
        providers,
    };
    Ok(render(&page, StatusCode::OK))
}

/// A provider's settings as a form gives them (`preset`: google, entra or issuer; `tenant`,
/// `issuer`, `client_id`, `client_secret` — blank keeps the stored one on a change —,
/// `allowed_domains`, `jit`, `default_role`, `link_by_email`).
fn settings_from(form: &Fields) -> Result<Settings, ApiError> {
    let issuer = match form.text("preset") {
        "google" => Issuer::Google,
        "entra" => Issuer::Entra {
            tenant: form.text("tenant").trim().to_owned(),
        },
        "issuer" => Issuer::Url(form.text("issuer").trim().to_owned()),
        _ => {
            return Err(CoreError::invalid("preset", "must be google, entra or issuer").into());
        }
    };
    Ok(Settings {
        display_name: form.text("display_name").trim().to_owned(),
        issuer,
        client_id: form.text("client_id").trim().to_owned(),
        client_secret: form.given("client_secret").map(str::to_owned),
        scopes: None,
        allowed_domains: form.words("allowed_domains"),
        jit: form.text("jit") == "on",
        default_role: form.given("default_role").map(str::to_owned),
        link_by_email: form.text("link_by_email") == "on",
        allow_private_network: form.text("allow_private_network") == "on",
    })
}

/// Adds a provider (`slug`, `display_name`, `preset`: google, entra or issuer; `tenant`,
/// `issuer`, `client_id`, `client_secret`, `allowed_domains`, `jit`, `default_role`,
/// `link_by_email`).
#[utoipa::path(post, path = "/console/admin/sso", tag = "console",
    request_body(content = String, content_type = "application/x-www-form-urlencoded"),
    responses((status = 303, description = "Added: back to the providers")))]
pub(crate) async fn add_provider(
    State(state): State<AppState>,
    UserOp(op): UserOp,
    PlatformAccess(grant): PlatformAccess,
    body: Bytes,
) -> Result<Response, ApiError> {
    let form = Fields::parse(&body);
    let settings = settings_from(&form)?;
    providers::create(&state.ctx, &op, &grant, form.text("slug").trim(), &settings).await?;
    Ok(Redirect::to("/console/admin/sso?done=provider-added").into_response())
}

/// Deletes a provider: its button goes from the sign-in page; linked accounts stay.
#[utoipa::path(post, path = "/console/admin/sso/{slug}/delete", tag = "console",
    params(("slug" = String, Path, description = "Provider slug")),
    request_body(content = String, content_type = "application/x-www-form-urlencoded"),
    responses((status = 303, description = "Deleted: back to the providers")))]
pub(crate) async fn delete_provider(
    State(state): State<AppState>,
    UserOp(op): UserOp,
    PlatformAccess(grant): PlatformAccess,
    Path(slug): Path<String>,
) -> Result<Response, ApiError> {
    providers::delete(&state.ctx, &op, &grant, &slug).await?;
    Ok(Redirect::to("/console/admin/sso?done=provider-deleted").into_response())
}

/// Which page of the mail log.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MailQuery {
    /// The "older" link of the previous page.
    pub cursor: Option<String>,
}

struct MailItem {
    kind: String,
    recipient: String,
    subject: String,
    status: String,
    attempts: i32,
    created_at: String,
    finished_at: Option<String>,
    last_error: Option<String>,
}

#[derive(Template)]
#[template(path = "console/admin_mail.html")]
struct MailPage {
    frame: Frame,
    items: Vec<MailItem>,
    older: Option<String>,
}

/// What Warden sent by email, newest first (never a body).
#[utoipa::path(get, path = "/console/admin/mail", tag = "console", params(MailQuery),
    responses((status = 200, description = "Page", content_type = "text/html"),
              (status = 403, description = "Without settings.read", content_type = "text/html")))]
pub(crate) async fn mail_page(
    State(state): State<AppState>,
    PlatformAccess(grant): PlatformAccess,
    caller: Caller,
    ApiQuery(q): ApiQuery<MailQuery>,
) -> Result<Response, ApiError> {
    let page = warden_core::mail::log(&state.ctx, &grant, q.cursor.as_deref(), Some(50)).await?;
    let older = page.next_cursor.map(|c| {
        let c: String = form_urlencoded::byte_serialize(c.as_bytes()).collect();
        format!("/console/admin/mail?cursor={c}")
    });
    let items = page
        .items
        .into_iter()
        .map(|m| MailItem {
            kind: m.kind.replace('_', " "),
            recipient: m.recipient,
            subject: m.subject,
            status: m.status,
            attempts: m.attempts,
            created_at: when(m.created_at),
            finished_at: m.finished_at.map(when),
            last_error: m.last_error,
        })
        .collect();
    let page = MailPage {
        frame: frame(&state, &caller, "mail", None).await?,
        items,
        older,
    };
    Ok(render(&page, StatusCode::OK))
}

/// Sets the sign-in policy (`password_sign_in` on or absent, `break_glass_email`); turning
/// passwords off is refused when administrators would have no way in.
#[utoipa::path(post, path = "/console/admin/sign-in-policy", tag = "console",
    request_body(content = String, content_type = "application/x-www-form-urlencoded"),
    responses((status = 303, description = "Saved: back to single sign-on")))]
pub(crate) async fn set_policy(
    State(state): State<AppState>,
    UserOp(op): UserOp,
    PlatformAccess(grant): PlatformAccess,
    body: Bytes,
) -> Result<Response, ApiError> {
    let form = Fields::parse(&body);
    warden_core::identity::policy::set(
        &state.ctx,
        &op,
        &grant,
        form.text("password_sign_in") == "on",
        form.given("break_glass_email"),
    )
    .await?;
    Ok(Redirect::to("/console/admin/sso?done=policy-saved").into_response())
}

/// Changes a provider (the form of [`add_provider`] without `slug`; a blank secret keeps the
/// stored one).
#[utoipa::path(post, path = "/console/admin/sso/{slug}", tag = "console",
    params(("slug" = String, Path, description = "Provider slug")),
    request_body(content = String, content_type = "application/x-www-form-urlencoded"),
    responses((status = 303, description = "Saved: back to the providers")))]
pub(crate) async fn update_provider(
    State(state): State<AppState>,
    UserOp(op): UserOp,
    PlatformAccess(grant): PlatformAccess,
    Path(slug): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let settings = settings_from(&Fields::parse(&body))?;
    providers::update(&state.ctx, &op, &grant, &slug, &settings).await?;
    Ok(Redirect::to("/console/admin/sso?done=provider-saved").into_response())
}
