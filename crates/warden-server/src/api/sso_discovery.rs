//! Home-realm discovery over HTTP: from an email address, the single sign-on providers its
//! domain signs in with — as JSON for clients, and as the sign-in page's "continue with single
//! sign-on" form, which sends the browser straight to the one provider. Rules are
//! `warden_core::sso::discovery`.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::routes;
use warden_core::sso::discovery::{self, Realm};
use warden_domain::access::Access;

use crate::http::json::ApiJson;
use crate::http::page::{escape, page};
use crate::http::problem::ApiError;
use crate::http::query::ApiQuery;
use crate::http::routes::Routes;
use crate::state::AppState;

pub(crate) fn routes() -> Routes<AppState> {
    Routes::new()
        .add_recovery(Access::Public, routes!(discover))
        .add_recovery(Access::Public, routes!(continue_page))
}

/// An email address whose organization's sign-in is wanted.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DiscoverRequest {
    /// The address someone signs in with.
    pub email: String,
}

impl std::fmt::Debug for DiscoverRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DiscoverRequest([redacted])")
    }
}

/// A provider someone can sign in with.
#[derive(Debug, Serialize, ToSchema)]
pub struct RealmView {
    /// Its slug.
    pub slug: String,
    /// Its name on the sign-in screen.
    pub name: String,
    /// `oidc` or `saml`.
    pub protocol: String,
    /// Where the browser starts signing in with it (add `?redirect=` for where to land).
    pub start: String,
}

/// The providers an email's domain signs in with.
#[derive(Debug, Serialize, ToSchema)]
pub struct DiscoverView {
    /// Those trusted for the domain, by name; empty when none is (sign in another way).
    pub providers: Vec<RealmView>,
}

fn view(r: Realm) -> RealmView {
    RealmView {
        slug: r.slug,
        name: r.name,
        protocol: r.protocol,
        start: r.start,
    }
}

/// Finds the single sign-on providers for an email address's domain (home-realm discovery).
/// The answer depends on the domain only, never on whether an account exists.
#[utoipa::path(post, path = "/api/v1/auth/sso/discover", tag = "auth", request_body = DiscoverRequest,
    responses(
        (status = 200, description = "The domain's providers (maybe none)", body = DiscoverView),
        (status = 422, description = "Not an email address", content_type = "application/problem+json")))]
pub(crate) async fn discover(
    State(state): State<AppState>,
    ApiJson(input): ApiJson<DiscoverRequest>,
) -> Result<Json<DiscoverView>, ApiError> {
    let found = discovery::discover(&state.ctx, &input.email).await?;
    Ok(Json(DiscoverView {
        providers: found.into_iter().map(view).collect(),
    }))
}

/// The sign-in page's single sign-on form.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ContinueQuery {
    /// The address someone signs in with.
    pub email: String,
    /// Where to land afterwards (a safe path of this site, else the console).
    pub next: Option<String>,
}

impl std::fmt::Debug for ContinueQuery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ContinueQuery([redacted])")
    }
}

/// Continues signing in with the email domain's single sign-on (the sign-in page's form without
/// script): the domain's provider, or a choice among several, as links to start signing in;
/// none → says so, with the way back.
#[utoipa::path(get, path = "/sign-in/sso", tag = "pages", params(ContinueQuery),
    responses((status = 200, description = "The domain's providers to sign in with, or none", content_type = "text/html"),
              (status = 422, description = "Not an email address", content_type = "text/html")))]
pub(crate) async fn continue_page(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<ContinueQuery>,
) -> Response {
    let next = q
        .next
        .as_deref()
        .and_then(warden_core::sso::safe_after)
        .unwrap_or_else(|| "/console".to_owned());
    let redirect: String = form_urlencoded::byte_serialize(next.as_bytes()).collect();
    let back = format!("<p><a href=\"/sign-in?next={redirect}\">Back to sign-in</a></p></section>");
    let found = match discovery::discover(&state.ctx, &q.email).await {
        Ok(found) => found,
        Err(e) if e.code == warden_core::Code::InvalidInput => {
            return page(
                StatusCode::UNPROCESSABLE_ENTITY,
                "Single sign-on",
                &format!("<section class=\"card\"><p>That is not an email address.</p>{back}"),
            );
        }
        Err(e) => return ApiError::from(e).into_response(),
    };
    match found.as_slice() {
        // A page, not a redirect: the form is subject to the sign-in page's `form-action
        // 'self'`, which a browser applies to every redirect that follows it. The sign-in
        // page's script navigates straight to the one provider instead.
        [one] => page(
            StatusCode::OK,
            "Single sign-on",
            &format!(
                "<section class=\"card\" data-page=\"sso-one\"><p>Your organization signs in \
                 with {name}.</p><div class=\"sso-list\"><a class=\"button sso\" \
                 href=\"{start}?redirect={redirect}\">Sign in with {name}</a></div>{back}",
                name = escape(&one.name),
                start = one.start,
            ),
        ),
        [] => {
            let domain = q.email.rsplit_once('@').map_or("", |(_, d)| d).trim();
            page(
                StatusCode::OK,
                "Single sign-on",
                &format!(
                    "<section class=\"card\" data-page=\"sso-none\"><p>No single sign-on is set up \
                     for <strong>{}</strong>. Sign in with a passkey, a password or an emailed \
                     link instead, or ask your administrator.</p>{back}",
                    escape(&domain.to_lowercase())
                ),
            )
        }
        several => {
            let buttons: String = several
                .iter()
                .map(|r| {
                    format!(
                        "<a class=\"button sso\" href=\"{}?redirect={redirect}\">Sign in with {}</a>",
                        r.start,
                        escape(&r.name)
                    )
                })
                .collect();
            page(
                StatusCode::OK,
                "Single sign-on",
                &format!(
                    "<section class=\"card\" data-page=\"sso-choice\"><p>Your organization signs \
                     in with more than one provider. Choose one:</p>\
                     <div class=\"sso-list\">{buttons}</div>{back}"
                ),
            )
        }
    }
}
