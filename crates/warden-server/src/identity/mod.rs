//! Identity on the server: reading who a request is from its headers (bearer token or the
//! console's cookie, with CSRF rules for cookies) and handing handlers the [`Caller`]. Tokens,
//! keys, revocation and the sign-in use cases are `warden_core::identity`.

pub mod cookies;

use axum::http::{HeaderMap, Method, header};
use warden_core::identity::Identity;
use warden_core::identity::tokens::Lookup;
use warden_domain::identity::{PAT_PREFIX, Principal};

/// How a request proved who it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credential {
    /// `Authorization: Bearer`.
    Bearer,
    /// The web console's cookie: state-changing requests need the CSRF checks.
    Cookie,
    /// A request signed with a workspace's service key (`WARDEN-HMAC-SHA256`).
    ServiceKey,
}

/// An authenticated caller, as handlers receive it.
#[derive(Debug, Clone)]
pub struct Caller {
    /// Who.
    pub principal: Principal,
    /// How.
    pub credential: Credential,
}

/// Why authentication failed. Every variant is a 401 (CSRF failures a 403).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthFailure {
    /// Missing, malformed, forged, expired or revoked credential.
    Unauthenticated,
    /// A cookie-authenticated, state-changing request from another origin or without the
    /// CSRF token.
    Csrf,
}

/// What a request's headers say about who sends it.
#[derive(Debug)]
pub enum Presented {
    /// No credential.
    Nothing,
    /// Verified (a token this node has cached, or an access token).
    Caller(Caller),
    /// A personal access token this node has cached; `true` when the use should be
    /// written down.
    Token(Caller, bool),
    /// A well-formed personal access token this node has not cached: the guard reads it.
    UncachedToken(String),
    /// A browser's same-origin HTML form post on the console's cookie, without the CSRF
    /// header: the guard reads the token from the form's `csrf` field before letting it in.
    CallerWithFormCsrf(Caller),
    /// A request signed with a service key (the `Authorization` value): the guard reads the
    /// body and checks the signature.
    Signed(String),
}

/// Authenticates a request from its headers. Personal access tokens are accepted only as
/// `Authorization: Bearer` (never from a cookie or the query string).
pub fn authenticate(
    identity: &Identity,
    method: &Method,
    headers: &HeaderMap,
    now: i64,
    ip: Option<std::net::IpAddr>,
) -> Result<Presented, AuthFailure> {
    if let Some(value) = headers.get(header::AUTHORIZATION)
        && let Some(signed) = value
            .to_str()
            .ok()
            .filter(|v| v.starts_with(warden_core::service_keys::SCHEME))
    {
        return Ok(Presented::Signed(signed.to_owned()));
    }
    if let Some(token) = bearer(headers)?
        && token.starts_with(PAT_PREFIX)
    {
        return match identity
            .tokens
            .cached(token, now.saturating_mul(1_000_000), ip)
        {
            Lookup::Refused => Err(AuthFailure::Unauthenticated),
            Lookup::Unknown => Ok(Presented::UncachedToken(token.to_owned())),
            Lookup::Valid(principal, note) => {
                if identity
                    .revocations
                    .is_revoked(principal.session_id, principal.user_id)
                {
                    return Err(AuthFailure::Unauthenticated);
                }
                Ok(Presented::Token(
                    Caller {
                        principal,
                        credential: Credential::Bearer,
                    },
                    note,
                ))
            }
        };
    }
    Ok(
        match authenticate_session(identity, method, headers, now)? {
            Some((caller, false)) => Presented::Caller(caller),
            Some((caller, true)) => Presented::CallerWithFormCsrf(caller),
            None => Presented::Nothing,
        },
    )
}

/// Whether the body is an HTML form (`application/x-www-form-urlencoded`).
fn is_form(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| {
            v.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        })
}

/// The name of the CSRF field of the console's HTML forms.
pub const CSRF_FIELD: &str = "csrf";

/// Whether the form `body` carries the CSRF token of `session_id` in its [`CSRF_FIELD`].
pub fn form_csrf_matches(identity: &Identity, session_id: uuid::Uuid, body: &[u8]) -> bool {
    let mut presented = form_urlencoded::parse(body).filter(|(k, _)| k == CSRF_FIELD);
    match (presented.next(), presented.next()) {
        (Some((_, v)), None) => identity.csrf_matches(session_id, &v),
        _ => false,
    }
}

fn bearer(headers: &HeaderMap) -> Result<Option<&str>, AuthFailure> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let value = value.to_str().map_err(|_| AuthFailure::Unauthenticated)?;
    let token = value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))
        .ok_or(AuthFailure::Unauthenticated)?;
    Ok(Some(token.trim()))
}

/// Authenticates a signed-in session's access token (bearer or cookie): `Ok(None)` when the
/// request carries no credential; with `true` when the CSRF token is still to be read from
/// the form body.
fn authenticate_session(
    identity: &Identity,
    method: &Method,
    headers: &HeaderMap,
    now: i64,
) -> Result<Option<(Caller, bool)>, AuthFailure> {
    let (token, credential) = match bearer(headers)? {
        Some(token) => (token, Credential::Bearer),
        None => match cookies::get(headers, cookies::ACCESS) {
            Some(token) => (token, Credential::Cookie),
            None => return Ok(None),
        },
    };
    let principal = identity
        .verify(token, now)
        .ok_or(AuthFailure::Unauthenticated)?;
    let mut form_csrf = false;
    if credential == Credential::Cookie && !is_safe(method) {
        // Same origin always; the token in the header (scripts) or, for a plain HTML form,
        // in its `csrf` field (checked by the guard once the body is read).
        if !cookies::same_origin(headers) {
            return Err(AuthFailure::Csrf);
        }
        match headers.get(cookies::CSRF_HEADER) {
            Some(v) => {
                let ok = v
                    .to_str()
                    .is_ok_and(|v| identity.csrf_matches(principal.session_id, v));
                if !ok {
                    return Err(AuthFailure::Csrf);
                }
            }
            None if is_form(headers) => form_csrf = true,
            None => return Err(AuthFailure::Csrf),
        }
    }
    Ok(Some((
        Caller {
            principal,
            credential,
        },
        form_csrf,
    )))
}

fn is_safe(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Caller {
    type Rejection = crate::http::problem::ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _state: &S,
    ) -> Result<Self, Self::Rejection> {
        parts.extensions.get::<Caller>().cloned().ok_or_else(|| {
            crate::http::problem::ApiError::from_status(axum::http::StatusCode::UNAUTHORIZED)
        })
    }
}

impl Caller {
    /// The caller as an audit actor.
    pub fn actor(&self) -> warden_domain::audit::Actor {
        match self.credential {
            // A service key: the key (its row id) acts, for its creator.
            Credential::ServiceKey => warden_domain::audit::Actor {
                kind: warden_domain::audit::ActorKind::ApiKey,
                id: Some(self.principal.session_id.to_string()),
            },
            _ => warden_domain::audit::Actor {
                kind: warden_domain::audit::ActorKind::User,
                id: Some(self.principal.user_id.to_string()),
            },
        }
    }
}
