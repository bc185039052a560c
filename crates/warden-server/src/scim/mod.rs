//! SCIM 2.0 at `/scim/v2` (RFC 7644): the handlers only authenticate the directory's bearer
//! token, read the query and body, and call `warden_core::scim`; answers and errors are
//! `application/scim+json` in SCIM's own shapes. The token check is the handler's (the
//! access rule `ScimToken` lets the request through the guard), and every failure is the
//! same 401.

mod resources;

use axum::body::Bytes;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use warden_core::scim::{Listed, ScimClient};
use warden_core::{Code, CoreError, Op};

use crate::audit::request::RequestMeta;
use crate::http::routes::Routes;
use crate::state::AppState;

pub(crate) fn routes() -> Routes<AppState> {
    resources::routes()
}

/// The media type of every SCIM answer.
pub const SCIM_JSON: &str = "application/scim+json";
const ERROR_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:Error";

/// A SCIM error answer (RFC 7644 §3.12).
#[derive(Debug)]
pub struct ScimError(CoreError);

impl From<CoreError> for ScimError {
    fn from(e: CoreError) -> Self {
        Self(e)
    }
}

impl From<Code> for ScimError {
    fn from(c: Code) -> Self {
        Self(c.into())
    }
}

fn scim_type(code: Code) -> Option<&'static str> {
    Some(match code {
        Code::ScimInvalidFilter => "invalidFilter",
        Code::ScimInvalidValue => "invalidValue",
        Code::ScimInvalidSyntax => "invalidSyntax",
        Code::ScimUniqueness => "uniqueness",
        Code::ScimMutability => "mutability",
        Code::ScimInvalidPath => "invalidPath",
        Code::ScimNoTarget => "noTarget",
        Code::InvalidInput => "invalidValue",
        _ => return None,
    })
}

impl IntoResponse for ScimError {
    fn into_response(self) -> Response {
        let e = self.0;
        let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut body = json!({
            "schemas": [ERROR_SCHEMA],
            "status": e.status.to_string(),
            "detail": e.note.clone().unwrap_or_else(|| e.detail.to_owned()),
        });
        if let Some(t) = scim_type(e.code) {
            body["scimType"] = json!(t);
        }
        let mut res = scim_json(status, &body);
        if e.code == Code::Unauthenticated {
            res.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(r#"Bearer realm="warden-scim""#),
            );
        }
        res
    }
}

/// An error answer made before (or instead of) a SCIM handler — the guard's, a body limit's,
/// an unknown path's — rewritten as a SCIM error document, keeping what tells the client
/// what to do next.
pub fn error_document(res: Response) -> Response {
    let (parts, _) = res.into_parts();
    let err = parts
        .extensions
        .get::<crate::http::problem::ApiError>()
        .map_or_else(
            || CoreError::new(Code::for_status(parts.status.as_u16())),
            |e| e.0.clone(),
        );
    let mut out = ScimError(CoreError {
        status: parts.status.as_u16(),
        ..err
    })
    .into_response();
    for name in [
        header::ALLOW,
        header::RETRY_AFTER,
        header::WWW_AUTHENTICATE,
        header::CONNECTION,
    ] {
        if let Some(v) = parts.headers.get(&name) {
            out.headers_mut().insert(name, v.clone());
        }
    }
    out
}

/// A SCIM JSON answer.
pub fn scim_json(status: StatusCode, body: &Value) -> Response {
    let mut res = (status, body.to_string()).into_response();
    res.extensions_mut()
        .insert(crate::http::middleware::Verbatim);
    res.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(SCIM_JSON));
    res
}

/// The authenticated directory and the operation it performs.
#[derive(Debug)]
pub struct Scim {
    /// The directory.
    pub client: ScimClient,
    /// Its operation (audited as the token).
    pub op: Op,
}

impl FromRequestParts<AppState> for Scim {
    type Rejection = ScimError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ScimError> {
        let meta = RequestMeta::from_request_parts(parts, state)
            .await
            .unwrap_or_else(|never| match never {});
        let presented = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map_or("", str::trim);
        let now = warden_core::op::unix_us(state.ctx.clock.now());
        let client = warden_core::scim::authenticate(&state.ctx, presented, now).await?;
        let op = meta.op(client.actor(), state.ctx.clock.as_ref());
        Ok(Self { client, op })
    }
}

/// A SCIM request body: JSON (`application/scim+json` or `application/json`).
pub fn body(headers: &HeaderMap, bytes: &Bytes) -> Result<Value, ScimError> {
    let json_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_none_or(|t| {
            let t = t
                .split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase();
            t == SCIM_JSON || t == "application/json"
        });
    if !json_type {
        return Err(CoreError::noted(
            Code::ScimInvalidSyntax,
            "body",
            "send the body as application/scim+json".into(),
        )
        .into());
    }
    warden_crypto::strict_json::object(bytes)
        .map(Value::Object)
        .ok_or_else(|| {
            CoreError::noted(
                Code::ScimInvalidSyntax,
                "body",
                "the body is not a JSON object (or repeats a member)".into(),
            )
            .into()
        })
}

/// The query parameters of a list.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListQuery {
    /// A SCIM filter.
    pub filter: Option<String>,
    /// 1-based index of the first result.
    pub start_index: Option<String>,
    /// Page size.
    pub count: Option<String>,
    /// Only these attributes (comma-separated).
    pub attributes: Option<String>,
    /// Not these attributes (comma-separated).
    pub excluded_attributes: Option<String>,
    /// Sorting is not supported; accepted and ignored.
    pub sort_by: Option<String>,
    /// Ignored with `sortBy`.
    pub sort_order: Option<String>,
}

fn int(v: Option<&str>) -> Result<Option<i64>, ScimError> {
    v.map(|s| {
        s.trim().parse::<i64>().map_err(|_| {
            ScimError(CoreError::noted(
                Code::ScimInvalidValue,
                "startIndex",
                "startIndex and count must be integers".into(),
            ))
        })
    })
    .transpose()
}

impl ListQuery {
    /// The page asked for.
    pub fn paging(&self) -> Result<warden_core::scim::Paging, ScimError> {
        Ok(warden_core::scim::Paging::new(
            int(self.start_index.as_deref())?,
            int(self.count.as_deref())?,
        ))
    }

    /// The projection asked for.
    pub fn projection(&self) -> Projection {
        Projection::new(
            self.attributes.as_deref(),
            self.excluded_attributes.as_deref(),
        )
    }
}

/// `attributes` / `excludedAttributes` (RFC 7644 §3.4.2.5): applied to the answer; `id` and
/// `schemas` are always returned.
#[derive(Debug, Default, Clone)]
pub struct Projection {
    only: Vec<(String, Option<String>)>,
    except: Vec<(String, Option<String>)>,
}

fn names(list: Option<&str>) -> Vec<(String, Option<String>)> {
    list.unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            // `urn:…:User:name.givenName` → `name.givenname`
            let s = s
                .rsplit_once(':')
                .map_or(s, |(_, rest)| rest)
                .to_ascii_lowercase();
            match s.split_once('.') {
                Some((a, b)) => (a.to_owned(), Some(b.to_owned())),
                None => (s, None),
            }
        })
        .collect()
}

impl Projection {
    /// From the two query values.
    pub fn new(only: Option<&str>, except: Option<&str>) -> Self {
        Self {
            only: names(only),
            except: names(except),
        }
    }

    /// Whether `attr` (folded) is left out.
    pub fn excludes(&self, attr: &str) -> bool {
        self.except.iter().any(|(a, s)| a == attr && s.is_none())
            || (!self.only.is_empty() && !self.only.iter().any(|(a, _)| a == attr))
    }

    /// Applies the projection to one resource.
    pub fn apply(&self, v: Value) -> Value {
        let Value::Object(m) = v else { return v };
        let mut out = serde_json::Map::new();
        for (k, val) in m {
            let key = k.to_ascii_lowercase();
            if key == "id" || key == "schemas" {
                out.insert(k, val);
                continue;
            }
            if !self.only.is_empty() {
                let subs: Vec<&String> = self
                    .only
                    .iter()
                    .filter(|(a, _)| *a == key)
                    .filter_map(|(_, s)| s.as_ref())
                    .collect();
                let whole = self.only.iter().any(|(a, s)| *a == key && s.is_none());
                if !whole && subs.is_empty() {
                    continue;
                }
                if !whole {
                    out.insert(k, keep_subs(val, &subs));
                    continue;
                }
            }
            if self.except.iter().any(|(a, s)| *a == key && s.is_none()) {
                continue;
            }
            let drop: Vec<&String> = self
                .except
                .iter()
                .filter(|(a, _)| *a == key)
                .filter_map(|(_, s)| s.as_ref())
                .collect();
            out.insert(k, drop_subs(val, &drop));
        }
        Value::Object(out)
    }
}

fn keep_subs(v: Value, subs: &[&String]) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.into_iter()
                .filter(|(k, _)| subs.iter().any(|s| **s == k.to_ascii_lowercase()))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.into_iter().map(|x| keep_subs(x, subs)).collect()),
        v => v,
    }
}

fn drop_subs(v: Value, subs: &[&String]) -> Value {
    if subs.is_empty() {
        return v;
    }
    match v {
        Value::Object(m) => Value::Object(
            m.into_iter()
                .filter(|(k, _)| !subs.iter().any(|s| **s == k.to_ascii_lowercase()))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.into_iter().map(|x| drop_subs(x, subs)).collect()),
        v => v,
    }
}

/// A list answer.
pub fn list_response(listed: Listed, projection: &Projection) -> Response {
    let resources: Vec<Value> = listed
        .resources
        .into_iter()
        .map(|r| projection.apply(r))
        .collect();
    scim_json(
        StatusCode::OK,
        &json!({
            "schemas": [warden_core::scim::model::LIST_SCHEMA],
            "totalResults": listed.total,
            "startIndex": listed.start_index,
            "itemsPerPage": resources.len(),
            "Resources": resources,
        }),
    )
}

/// A resource answer with its `ETag` (and `Location` when created).
pub fn resource_response(
    status: StatusCode,
    (v, version): (Value, i64),
    projection: &Projection,
) -> Response {
    let location = v["meta"]["location"].as_str().map(str::to_owned);
    let mut res = scim_json(status, &projection.apply(v));
    if let Ok(tag) = HeaderValue::from_str(&warden_core::scim::model::etag(version)) {
        res.headers_mut().insert(header::ETAG, tag);
    }
    if status == StatusCode::CREATED
        && let Some(l) = location.and_then(|l| HeaderValue::from_str(&l).ok())
    {
        res.headers_mut().insert(header::LOCATION, l);
    }
    res
}

/// `If-Match`, as text.
pub fn if_match(headers: &HeaderMap) -> Option<&str> {
    headers.get(header::IF_MATCH).and_then(|v| v.to_str().ok())
}

/// Whether `If-None-Match` names this version (a GET then answers 304).
pub fn not_modified(headers: &HeaderMap, version: i64) -> bool {
    let tag = warden_core::scim::model::etag(version);
    headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').map(str::trim).any(|t| t == tag || t == "*"))
}
