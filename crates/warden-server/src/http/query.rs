//! The query-string extractor every handler uses. Unlike `axum::extract::Query`, which
//! replaces bytes that are not UTF-8 with U+FFFD (so a name stored or looked up differs from
//! the one sent), it refuses such a query with 400 before anything reads it — and one that
//! holds a NUL, which no text Warden stores or searches may contain (PostgreSQL's text
//! cannot: a search for one failed there with a database error).

use axum::extract::FromRequestParts;
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use super::problem::ApiError;

/// `axum::extract::Query`, strict about encoding, with Warden's error mapping.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiQuery<T>(pub T);

impl<S, T> FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let raw = parts.uri.query().unwrap_or_default();
        if !decodes_to_text(raw) {
            return Err(ApiError::from(warden_core::Code::InvalidEncoding));
        }
        // Not the rejection's text: it can quote the input. The one use of axum's extractor.
        #[allow(clippy::disallowed_types)]
        axum::extract::Query::<T>::try_from_uri(&parts.uri)
            .map(|axum::extract::Query(v)| Self(v))
            .map_err(|_| ApiError::from_status(StatusCode::BAD_REQUEST))
    }
}

/// Whether every name and value of an `application/x-www-form-urlencoded` string is UTF-8
/// without NUL once percent-decoded.
fn decodes_to_text(raw: &str) -> bool {
    raw.split(['&', '=']).all(|part| {
        percent_encoding::percent_decode_str(part)
            .decode_utf8()
            .is_ok_and(|text| !text.contains('\0'))
    })
}

#[cfg(test)]
mod tests {
    use super::decodes_to_text;

    #[test]
    fn only_queries_that_decode_to_utf8_pass() {
        assert!(decodes_to_text(""));
        assert!(decodes_to_text("path=src%2Fmain.rs&x=%E2%9C%93+y"));
        assert!(
            decodes_to_text("path=%EF%BF%BD"),
            "U+FFFD itself, sent as such"
        );
        assert!(!decodes_to_text("path=a%FFb"));
        assert!(!decodes_to_text("path=%C3"), "cut multibyte character");
        assert!(!decodes_to_text("%FF=1"));
        assert!(!decodes_to_text("q=x%00y"), "NUL");
        assert!(!decodes_to_text("q%00=1"), "NUL in a name");
    }
}
