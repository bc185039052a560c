//! Identity on the server: reading who a request is from its headers (bearer token or the
//! console's cookie, with CSRF rules for cookies) and handing handlers the [`Caller`]. Tokens,
//! keys, revocation and the sign-in use cases are `warden_core::identity`.

pub mod cookies;

use axum::http::{HeaderMap, Method, header};
use warden_core::identity::Identity;
use warden_domain::identity::Principal;

/// How a request proved who it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credential {
    /// `Authorization: Bearer`.
    Bearer,
    /// The web console's cookie: state-changing requests need the CSRF checks.
    Cookie,
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

/// Authenticates a request from its headers: `Ok(None)` when it carries no credential.
pub fn authenticate(
    identity: &Identity,
    method: &Method,
    headers: &HeaderMap,
    now: i64,
) -> Result<Option<Caller>, AuthFailure> {
    let (token, credential) = match headers.get(header::AUTHORIZATION) {
        Some(value) => {
            let value = value.to_str().map_err(|_| AuthFailure::Unauthenticated)?;
            let token = value
                .strip_prefix("Bearer ")
                .or_else(|| value.strip_prefix("bearer "))
                .ok_or(AuthFailure::Unauthenticated)?;
            (token.trim(), Credential::Bearer)
        }
        None => match cookies::get(headers, cookies::ACCESS) {
            Some(token) => (token, Credential::Cookie),
            None => return Ok(None),
        },
    };
    let principal = identity
        .verify(token, now)
        .ok_or(AuthFailure::Unauthenticated)?;
    if credential == Credential::Cookie && !is_safe(method) {
        let same_origin = cookies::same_origin(headers);
        let csrf = headers
            .get(cookies::CSRF_HEADER)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| identity.csrf_matches(principal.session_id, v));
        if !same_origin || !csrf {
            return Err(AuthFailure::Csrf);
        }
    }
    Ok(Some(Caller {
        principal,
        credential,
    }))
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
        warden_domain::audit::Actor {
            kind: warden_domain::audit::ActorKind::User,
            id: Some(self.principal.user_id.to_string()),
        }
    }
}
