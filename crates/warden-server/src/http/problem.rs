//! The one place errors become responses: RFC 9457 `application/problem+json`.
//!
//! Handlers return [`ApiError`], which carries a stable code and a safe message only. The
//! [`render_problems`](super::middleware::render_problems) middleware turns every error
//! response — ours, axum's rejections, tower's timeouts — into a problem document with the
//! request id, and drops whatever body it had, so no internal text reaches a client.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// The code of [`ApiError::busy`]; its responses carry `Retry-After`.
pub const BUSY: &str = "server-busy";

/// Content type of every error response.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// A client-facing error: a stable code, a status and a safe sentence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable, machine-readable code (`not-found`, `payload-too-large`, …).
    pub code: &'static str,
    /// A sentence safe to show anyone.
    pub detail: &'static str,
    /// The input the problem is about, for validation failures.
    pub field: Option<&'static str>,
}

impl ApiError {
    /// A problem for `status` with its standard code and sentence.
    pub fn from_status(status: StatusCode) -> Self {
        let (code, detail) = standard(status);
        Self {
            status,
            code,
            detail,
            field: None,
        }
    }

    /// A problem with its own code and sentence.
    pub fn new(status: StatusCode, code: &'static str, detail: &'static str) -> Self {
        Self {
            status,
            code,
            detail,
            field: None,
        }
    }

    /// A cookie-authenticated, state-changing request without same-origin evidence or the
    /// CSRF token.
    pub fn csrf() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "csrf-refused",
            "State-changing requests from the browser must come from this origin and carry \
             the X-CSRF-Token header.",
        )
    }

    /// An internal failure. The cause is logged here, under the request's id (the log line
    /// is inside the request span); the client sees only a generic sentence and that id.
    pub fn internal(cause: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self::from_status(StatusCode::INTERNAL_SERVER_ERROR)
    }

    /// Input that fails validation: 422, naming the field and what is wrong.
    pub fn invalid(problem: &warden_domain::tenancy::Invalid) -> Self {
        Self {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            code: "invalid-input",
            detail: problem.reason,
            field: Some(problem.field),
        }
    }

    /// Costly work (password hashing, host-key checks) is at its limit: 503 with
    /// `Retry-After: 1`.
    pub fn busy() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            BUSY,
            "The server is busy checking credentials; retry in a moment.",
        )
    }

    /// The dependency the request needs (e.g. the database) is not available.
    pub fn unavailable(cause: &dyn std::fmt::Display) -> Self {
        tracing::warn!(error = %cause, "service unavailable");
        Self::from_status(StatusCode::SERVICE_UNAVAILABLE)
    }
}

/// 429 after too many failed attempts, with `Retry-After` in whole seconds (at least 1).
pub fn too_many_attempts(wait: std::time::Duration) -> Response {
    let mut res = ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "too-many-attempts",
        "Too many failed attempts; wait before trying again.",
    )
    .into_response();
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    if let Ok(v) = axum::http::HeaderValue::from_str(&secs.max(1).to_string()) {
        res.headers_mut().insert(axum::http::header::RETRY_AFTER, v);
    }
    res
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut res = self.status.into_response();
        res.extensions_mut().insert(self);
        res
    }
}

/// The standard code and sentence for a status.
pub fn standard(status: StatusCode) -> (&'static str, &'static str) {
    match status.as_u16() {
        400 => (
            "bad-request",
            "The request is malformed (for example, the body is not valid JSON).",
        ),
        401 => ("unauthenticated", "Sign in to use this resource."),
        403 => ("forbidden", "You may not use this resource."),
        404 => ("not-found", "There is nothing at this address."),
        405 => (
            "method-not-allowed",
            "This address does not accept that method.",
        ),
        408 => (
            "request-timeout",
            "The request took too long and was stopped.",
        ),
        413 => (
            "payload-too-large",
            "The request body is larger than this server accepts.",
        ),
        415 => (
            "unsupported-media-type",
            "Send the request body as application/json.",
        ),
        422 => (
            "unprocessable-content",
            "The request body does not have the expected fields and types.",
        ),
        429 => (
            "too-many-requests",
            "Too many requests; slow down and retry later.",
        ),
        503 => ("unavailable", "The service is not ready; retry shortly."),
        s if s >= 500 => (
            "internal",
            "An internal error occurred; quote the request id when reporting it.",
        ),
        _ => ("error", "The request could not be completed."),
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
    /// The problem document for `err` on the request `request_id`.
    pub fn new(err: &'a ApiError, request_id: &'a str) -> Self {
        Self {
            kind: format!("urn:warden:problem:{}", err.code),
            title: err.status.canonical_reason().unwrap_or("Error"),
            status: err.status.as_u16(),
            detail: err.detail,
            code: err.code,
            request_id,
            field: err.field,
            errors: &[],
        }
    }
}
