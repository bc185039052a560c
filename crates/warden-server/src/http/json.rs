//! The JSON body extractor every handler uses. Its rejections become problem documents with
//! the right status (400 syntax, 413 too large, 415 wrong content type, 422 wrong shape) and
//! never echo serde's or axum's text, which can quote the client's input — not to the client
//! and not to the log.

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};
use serde::de::DeserializeOwned;

use super::problem::ApiError;

/// `axum::Json`, with Warden's error mapping.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(Self(v)),
            Err(rejection) => Err(reject(&rejection)),
        }
    }
}

fn reject(rejection: &JsonRejection) -> ApiError {
    // Not the rejection's text: serde quotes the offending value, which may be a secret.
    let kind = match rejection {
        JsonRejection::JsonDataError(_) => "wrong shape",
        JsonRejection::JsonSyntaxError(_) => "not JSON",
        JsonRejection::MissingJsonContentType(_) => "not declared as JSON",
        JsonRejection::BytesRejection(_) => "unreadable or too large",
        _ => "refused",
    };
    tracing::debug!(kind, "request body refused");
    ApiError::from_status(rejection.status())
}
