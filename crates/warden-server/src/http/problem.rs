//! The one place errors become responses: RFC 9457 `application/problem+json`.
//!
//! Handlers return [`ApiError`], which carries a stable code and a safe message only. The
//! `render_problems` middleware (in `http::middleware`) turns every error
//! response — ours, axum's rejections, tower's timeouts — into a problem document with the
//! request id, and drops whatever body it had, so no internal text reaches a client.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use warden_core::{Code, CoreError};

/// Content type of every error response.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// A client-facing error: the core's error (a registered code, a safe sentence) as an HTTP
/// answer. Its status comes from the code registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError(pub CoreError);

impl ApiError {
    /// The standard problem for `status`.
    pub fn from_status(status: StatusCode) -> Self {
        Self(CoreError::new(Code::for_status(status.as_u16())))
    }

    /// The registered code.
    pub fn code(&self) -> Code {
        self.0.code
    }

    /// The status it is answered with.
    pub fn status(&self) -> StatusCode {
        StatusCode::from_u16(self.0.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    /// A cookie-authenticated, state-changing request without same-origin evidence or the
    /// CSRF token.
    pub fn csrf() -> Self {
        Code::CsrfRefused.into()
    }

    /// An internal failure. The cause is logged here, under the request's id (the log line
    /// is inside the request span); the client sees only a generic sentence and that id.
    pub fn internal(cause: &dyn std::fmt::Display) -> Self {
        Self(CoreError::internal(cause))
    }

    /// Input that fails validation: 422, naming the field and what is wrong.
    pub fn invalid(problem: &warden_domain::tenancy::Invalid) -> Self {
        Self(problem.into())
    }

    /// Costly work (password hashing, host-key checks) is at its limit: 503 with
    /// `Retry-After: 1`.
    pub fn busy() -> Self {
        Self(CoreError::busy())
    }

    /// The dependency the request needs (e.g. the database) is not available.
    pub fn unavailable(cause: &dyn std::fmt::Display) -> Self {
        Self(CoreError::unavailable(cause))
    }
}

impl<E: Into<CoreError>> From<E> for ApiError {
    fn from(e: E) -> Self {
        Self(e.into())
    }
}

/// 429 after too many failed attempts, with `Retry-After` in whole seconds (at least 1).
pub fn too_many_attempts(wait: std::time::Duration) -> Response {
    ApiError(CoreError::too_many_attempts(wait)).into_response()
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut res = self.status().into_response();
        if let Some(wait) = self.0.retry_after {
            let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            if let Ok(v) = HeaderValue::from_str(&secs.max(1).to_string()) {
                res.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        res.extensions_mut().insert(self);
        res
    }
}

/// One input at fault in a request body: where (a JSON pointer, RFC 6901) and why, in words
/// that come from the expected type, never from the value sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct FieldProblem {
    /// JSON pointer to the member or element (`/repo/url`, `/tags/2`).
    pub pointer: String,
    /// What is wrong with it (`is required`, `expected a string`).
    pub reason: String,
}

/// The JSON body of a problem response.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Problem<'a> {
    /// URI naming the problem type.
    #[serde(rename = "type")]
    pub kind: String,
    /// Short summary of the problem type.
    pub title: &'a str,
    /// HTTP status.
    pub status: u16,
    /// What happened, in words safe for anyone to read.
    pub detail: &'a str,
    /// Stable code for programs.
    pub code: &'a str,
    /// The request's id, for correlating with the server's logs.
    pub request_id: &'a str,
    /// The input the problem is about, for validation failures.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<&'a str>,
    /// Each input at fault, for request bodies of the wrong shape.
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    pub errors: &'a [FieldProblem],
}

impl<'a> Problem<'a> {
    /// The problem document for `err`, answered with `status`, on the request `request_id`.
    pub fn new(err: &'a ApiError, status: StatusCode, request_id: &'a str) -> Self {
        Self {
            kind: format!("urn:warden:problem:{}", err.0.code),
            title: status.canonical_reason().unwrap_or("Error"),
            status: status.as_u16(),
            detail: err.0.note.as_deref().unwrap_or(err.0.detail),
            code: err.0.code.as_str(),
            request_id,
            field: err.0.field,
            errors: &[],
        }
    }
}
