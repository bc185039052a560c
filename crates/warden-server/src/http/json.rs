//! The JSON body extractor every handler uses. Its rejections become problem documents with
//! the right status (400 syntax, 413 too large, 415 wrong content type, 422 wrong shape) and
//! never echo serde's or axum's text, which can quote the client's input — not to the client
//! and not to the log. A 422 names each wrong field (a JSON pointer) and what was expected,
//! from the type's side only.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;

use super::problem::{ApiError, FieldProblem};

/// `axum::Json`, with Warden's error mapping.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiJson<T>(pub T);

/// Why a JSON body was refused: the problem, and for a wrong shape the field at fault.
#[derive(Debug)]
pub struct JsonRefusal {
    error: ApiError,
    fields: Vec<FieldProblem>,
}

impl IntoResponse for JsonRefusal {
    fn into_response(self) -> Response {
        let mut res = self.error.into_response();
        if !self.fields.is_empty() {
            res.extensions_mut().insert(self.fields);
        }
        res
    }
}

impl From<ApiError> for JsonRefusal {
    fn from(error: ApiError) -> Self {
        Self {
            error,
            fields: Vec::new(),
        }
    }
}

impl<S, T> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = JsonRefusal;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !declares_json(req.headers()) {
            tracing::debug!(kind = "not declared as JSON", "request body refused");
            return Err(ApiError::from_status(StatusCode::UNSUPPORTED_MEDIA_TYPE).into());
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|r| {
            tracing::debug!(kind = "unreadable or too large", "request body refused");
            ApiError::from_status(r.status())
        })?;
        parse(&bytes).map(Self)
    }
}

/// `application/json` or any `application/*+json`, as `axum::Json` accepts.
fn declares_json(headers: &axum::http::HeaderMap) -> bool {
    let Some(value) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = value
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || essence
            .strip_prefix("application/")
            .is_some_and(|sub| sub.ends_with("+json"))
}

/// Parses a body, naming the field at fault when its shape is wrong.
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, JsonRefusal> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    match serde_path_to_error::deserialize(&mut de) {
        Ok(v) => match de.end() {
            Ok(()) => Ok(v),
            Err(_) => {
                tracing::debug!(kind = "not JSON", "request body refused");
                Err(ApiError::from_status(StatusCode::BAD_REQUEST).into())
            }
        },
        Err(e) => {
            let inner = e.inner();
            if !inner.is_data() {
                tracing::debug!(kind = "not JSON", "request body refused");
                return Err(ApiError::from_status(StatusCode::BAD_REQUEST).into());
            }
            let field = describe(e.path(), &inner.to_string());
            tracing::debug!(
                kind = "wrong shape",
                pointer = %field.pointer,
                "request body refused"
            );
            Err(JsonRefusal {
                error: ApiError::from_status(StatusCode::UNPROCESSABLE_ENTITY),
                fields: vec![field],
            })
        }
    }
}

/// The JSON pointer of `path` and a reason built only from what the type expected: serde's
/// own message can quote the value sent (a secret, say), so only known shapes of it are
/// used, and then only the part that comes from the type.
fn describe(path: &serde_path_to_error::Path, message: &str) -> FieldProblem {
    use serde_path_to_error::Segment;
    let mut pointer = String::new();
    for segment in path.iter() {
        pointer.push('/');
        match segment {
            Segment::Seq { index } => pointer.push_str(&index.to_string()),
            Segment::Map { key } | Segment::Enum { variant: key } => {
                pointer.push_str(&key.replace('~', "~0").replace('/', "~1"));
            }
            Segment::Unknown => pointer.push('-'),
        }
    }
    // serde's messages end with " at line L column C".
    let message = message
        .rsplit_once(" at line ")
        .map_or(message, |(head, _)| head);
    let reason = if let Some(rest) = message.strip_prefix("missing field `") {
        let name = rest.split('`').next().unwrap_or_default();
        pointer.push('/');
        pointer.push_str(&name.replace('~', "~0").replace('/', "~1"));
        "is required".to_owned()
    } else if message.starts_with("unknown field `") {
        // The pointer names the object, not the member sent (a name the client chose).
        if let Some(cut) = pointer.rfind('/') {
            pointer.truncate(cut);
        }
        match message.rsplit_once(", expected ") {
            Some((_, expected)) => format!("has an unknown member; expected {expected}"),
            None => "has an unknown member".to_owned(),
        }
    } else if message.starts_with("invalid type:")
        || message.starts_with("invalid value:")
        || message.starts_with("invalid length")
        || message.starts_with("unknown variant `")
    {
        match message.rsplit_once(", expected ") {
            Some((_, expected)) if !expected.contains('`') || message.starts_with("unknown") => {
                format!("expected {}", plain_type(expected))
            }
            _ => "has the wrong type or value".to_owned(),
        }
    } else if message.starts_with("duplicate field `") {
        "is given twice".to_owned()
    } else {
        "has the wrong type or value".to_owned()
    };
    FieldProblem { pointer, reason }
}

/// Rust's names for numbers, in words a client understands.
fn plain_type(expected: &str) -> &str {
    match expected {
        "u8" => "a whole number from 0 to 255",
        "u16" => "a whole number from 0 to 65535",
        "u32" | "u64" | "usize" => "a whole number, 0 or more",
        "i8" | "i16" | "i32" | "i64" | "isize" => "a whole number",
        "f32" | "f64" => "a number",
        other => other,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Input {
        name: String,
        count: u32,
        mode: Option<Mode>,
        tags: Option<Vec<String>>,
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(rename_all = "lowercase")]
    enum Mode {
        Develop,
        Chat,
    }

    fn refused(body: &str) -> FieldProblem {
        let refusal = parse::<Input>(body.as_bytes()).unwrap_err();
        assert_eq!(refusal.error.status(), StatusCode::UNPROCESSABLE_ENTITY);
        refusal.fields.into_iter().next().unwrap()
    }

    #[test]
    fn a_wrong_shape_names_the_field_and_the_expectation_without_the_value() {
        let f = refused(r#"{"name": "x"}"#);
        assert_eq!(
            (f.pointer.as_str(), f.reason.as_str()),
            ("/count", "is required")
        );
        let f = refused(r#"{"name": "x", "count": "sk-live-SECRET"}"#);
        assert_eq!(f.pointer, "/count");
        assert_eq!(f.reason, "expected a whole number, 0 or more");
        let f = refused(r#"{"name": "x", "count": 1, "mode": "sk-live-SECRET"}"#);
        assert_eq!(f.pointer, "/mode");
        assert!(f.reason.contains("develop"), "{}", f.reason);
        let f = refused(r#"{"name": "x", "count": 1, "tags": ["a", 7]}"#);
        assert_eq!(
            (f.pointer.as_str(), f.reason.as_str()),
            ("/tags/1", "expected a string")
        );
        let f = refused(r#"{"name": "x", "count": 1, "sk-live-SECRET": 1}"#);
        assert_eq!(f.pointer, "");
        assert!(
            f.reason.starts_with("has an unknown member; expected"),
            "{}",
            f.reason
        );
        assert!(!f.reason.contains("SECRET"), "{}", f.reason);
        for f in [
            refused(r#"{"name": "x", "count": -5}"#),
            refused(r#"{"name": "x", "count": 1, "mode": "sk-live-SECRET"}"#),
        ] {
            assert!(
                !f.reason.contains("SECRET") && !f.reason.contains("-5"),
                "{f:?}"
            );
        }
    }

    #[test]
    fn syntax_errors_and_trailing_data_are_400() {
        for body in ["{", "nonsense", r#"{"name": "x", "count": 1} trailing"#] {
            let refusal = parse::<Input>(body.as_bytes()).unwrap_err();
            assert_eq!(refusal.error.status(), StatusCode::BAD_REQUEST, "{body}");
        }
    }
}
