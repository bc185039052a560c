//! The core's one error type: a registered [`Code`], the sentence to show with it, and for
//! invalid input the field at fault. Nothing here carries internal text: an internal failure
//! is logged where it is converted, and the client sees only the code's sentence.

mod codes;

use std::time::Duration;

pub use codes::Code;
use warden_domain::tenancy::Invalid;
use warden_store::StoreError;
use warden_store::tenancy::Refusal;

/// Why a use case did not happen, in words safe to show its caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoreError {
    /// The registered code.
    pub code: Code,
    /// The HTTP status: the code's registered one, except where a use case documents
    /// another (a licence refused at upload is invalid input, 422, whatever its code).
    pub status: u16,
    /// The sentence shown; the code's own unless a more precise one applies.
    pub detail: &'static str,
    /// The input at fault, for invalid input.
    pub field: Option<&'static str>,
    /// When to try again, for throttles and busy answers.
    pub retry_after: Option<Duration>,
    /// A sentence written for this one refusal, shown instead of `detail` (it names what is
    /// wrong in the caller's own input — a workflow's step — never anything internal).
    pub note: Option<String>,
}

/// What use cases return.
pub type CoreResult<T> = Result<T, CoreError>;

impl CoreError {
    /// The error for `code`, with its registered sentence.
    pub fn new(code: Code) -> Self {
        Self {
            code,
            status: code.status(),
            detail: code.sentence(),
            field: None,
            retry_after: None,
            note: None,
        }
    }

    /// `code` about `field`, with a sentence naming exactly what is wrong in the input.
    pub fn noted(code: Code, field: &'static str, note: String) -> Self {
        Self {
            field: Some(field),
            note: Some(note),
            ..Self::new(code)
        }
    }

    /// The error for `code` with a more precise sentence.
    pub fn with_detail(code: Code, detail: &'static str) -> Self {
        Self {
            detail,
            ..Self::new(code)
        }
    }

    /// Input that fails validation: `field` and what is wrong with it.
    pub fn invalid(field: &'static str, reason: &'static str) -> Self {
        Self {
            field: Some(field),
            ..Self::with_detail(Code::InvalidInput, reason)
        }
    }

    /// An internal failure. The cause is logged here (inside the request's span, so under its
    /// id); the caller sees only the generic sentence.
    pub fn internal(cause: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self::new(Code::Internal)
    }

    /// A dependency (the database) is not available.
    pub fn unavailable(cause: &dyn std::fmt::Display) -> Self {
        tracing::warn!(error = %cause, "service unavailable");
        Self::new(Code::Unavailable)
    }

    /// 429 after too many failed attempts, to be retried after `wait`.
    pub fn too_many_attempts(wait: Duration) -> Self {
        Self {
            retry_after: Some(wait),
            ..Self::new(Code::TooManyAttempts)
        }
    }

    /// Costly work is at its limit: retry in a second.
    pub fn busy() -> Self {
        Self {
            retry_after: Some(Duration::from_secs(1)),
            ..Self::new(Code::ServerBusy)
        }
    }

    /// The same error, naming the input it is about.
    pub fn on_field(self, field: &'static str) -> Self {
        Self {
            field: Some(field),
            ..self
        }
    }

    /// The same error, answered as input the server cannot process (422).
    pub fn unprocessable(self) -> Self {
        Self {
            status: 422,
            ..self
        }
    }

    /// The HTTP status this error is answered with.
    pub fn status(&self) -> u16 {
        self.status
    }
}

impl From<Code> for CoreError {
    fn from(code: Code) -> Self {
        Self::new(code)
    }
}

impl From<StoreError> for CoreError {
    /// 507 when the database's storage is full; 503 with `Retry-After` when the database is
    /// out of reach (down, restarting, its connections cut); otherwise an internal error.
    fn from(e: StoreError) -> Self {
        if e.is_storage_full() {
            tracing::error!(error = %e, "the database's storage is full: a change was refused");
            Self::new(Code::StorageFull)
        } else if e.is_unavailable() {
            Self {
                retry_after: Some(Duration::from_secs(1)),
                ..Self::unavailable(&e)
            }
        } else {
            Self::internal(&e)
        }
    }
}

impl From<&Invalid> for CoreError {
    fn from(problem: &Invalid) -> Self {
        Self::invalid(problem.field, problem.reason)
    }
}

impl From<Invalid> for CoreError {
    fn from(problem: Invalid) -> Self {
        Self::from(&problem)
    }
}

impl From<Refusal> for CoreError {
    /// 404 where existence must not leak, 403, or 409 for a change to an archived workspace.
    fn from(r: Refusal) -> Self {
        match r {
            Refusal::NotFound => Self::new(Code::NotFound),
            Refusal::Forbidden => Self::new(Code::Forbidden),
            Refusal::Archived => Self::new(Code::WorkspaceArchived),
            Refusal::Store(e) => e.into(),
        }
    }
}

impl std::fmt::Display for CoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.detail)
    }
}

impl std::error::Error for CoreError {}
