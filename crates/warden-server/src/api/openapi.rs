//! The OpenAPI document, generated from the registered routes, then completed with what the
//! stack enforces around every handler (so generated clients expect what the server does):
//! the problem document for every error, and the answers the middleware gives — 400/413/415/
//! 422 for request bodies, 400 for query strings, 401/403/404 from the access guard, 429 and
//! 503 where credentials are checked, 503 from the licence gate, 500 anywhere, 403 where a
//! browser's request can fail the CSRF check; and the credential each route checks, as a
//! security scheme.

use axum::extract::State;
use axum::http::{Method, header};
use axum::response::IntoResponse;
use utoipa::openapi::path::Operation;
use utoipa::openapi::security::{
    ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme,
};
use utoipa::openapi::{ContentBuilder, OpenApi, Ref, RefOr, ResponseBuilder};
use utoipa_axum::routes;
use warden_domain::access::Access;

use crate::http::problem::{ApiError, PROBLEM_JSON};
use crate::http::routes::{AccessTable, Routes};
use crate::state::AppState;

pub(crate) fn routes() -> Routes<AppState> {
    Routes::new().add(Access::Public, routes!(openapi_json))
}

/// The OpenAPI 3.1 document describing every route of this server.
#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "meta",
    responses((status = 200, description = "OpenAPI document", content_type = "application/json")))]
pub(crate) async fn openapi_json(State(state): State<AppState>) -> impl IntoResponse {
    match state.openapi_json.get() {
        Some(doc) => Ok(([(header::CONTENT_TYPE, "application/json")], doc.clone())),
        None => Err(ApiError::internal(&"OpenAPI document not assembled")),
    }
}

/// The credentials, as `Authorization: Bearer` values: (scheme name, format, description).
const SCHEMES: &[(&str, &str, &str)] = &[
    (
        "user",
        "JWT access token or personal access token (wdn_pat_…)",
        "A person's access token from sign-in (or the browser's `__Host-` session cookie, \
         with `X-CSRF-Token` on state-changing requests), or a personal access token. A \
         workspace's service key signs its requests instead (`Authorization: \
         WARDEN-HMAC-SHA256 keyId=wsk_…, ts=…, nonce=…, sig=…`).",
    ),
    (
        "host",
        "host key (whk_…)",
        "A host's key, issued when it was registered.",
    ),
    (
        "gateway",
        "gateway key (wdn_llm_…)",
        "An LLM gateway key (Anthropic clients may send it as `x-api-key`).",
    ),
    ("mcp", "MCP token (wdn_mcp_…)", "A workspace MCP token."),
    (
        "scim",
        "SCIM token (wdn_scim_…)",
        "A directory's SCIM provisioning token.",
    ),
];

/// The scheme a route's access rule checks; `None` for public routes.
fn scheme(access: Access) -> Option<&'static str> {
    match access {
        Access::Public => None,
        Access::Host => Some("host"),
        Access::LlmKey => Some("gateway"),
        Access::McpToken => Some("mcp"),
        Access::ScimToken => Some("scim"),
        Access::SignedIn | Access::Platform(_) | Access::Workspace(_) => Some("user"),
    }
}

/// Routes whose credential check is throttled (429) and bounded (503 `server-busy`).
const CREDENTIAL_ROUTES: &[&str] = &[
    "/api/v1/auth/sign-in",
    "/api/v1/auth/refresh",
    "/api/v1/me/password",
];

/// Adds the problem schema and, to every operation, the error answers the stack gives it.
pub fn complete(doc: &mut OpenApi, table: &AccessTable) {
    let components = doc.components.get_or_insert_with(Default::default);
    components.schemas.insert(
        "Problem".to_owned(),
        <crate::http::problem::Problem<'_> as utoipa::PartialSchema>::schema(),
    );
    components.schemas.insert(
        "FieldProblem".to_owned(),
        <crate::http::problem::FieldProblem as utoipa::PartialSchema>::schema(),
    );
    for (name, format, description) in SCHEMES {
        let scheme = HttpBuilder::new()
            .scheme(HttpAuthScheme::Bearer)
            .bearer_format(*format)
            .description(Some(*description))
            .build();
        components.add_security_scheme(*name, SecurityScheme::Http(scheme));
    }
    components.add_security_scheme(
        "console",
        SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
            crate::identity::cookies::ACCESS,
            "The browser's session cookie, set by signing in; forms carry the `csrf` field.",
        ))),
    );
    // Each standard answer is described once and referenced by every operation: a problem
    // document on the API, a page on the console.
    for status in [400, 401, 403, 404, 409, 413, 415, 422, 429, 500, 503] {
        let standard = match status {
            409 => warden_core::Code::WorkspaceArchived,
            s => warden_core::Code::for_status(s),
        };
        let (code, sentence) = (standard.as_str(), standard.sentence());
        let response = ResponseBuilder::new()
            .description(format!(
                "{sentence} (problem code `{code}` or a more specific one)"
            ))
            .content(PROBLEM_JSON, problem())
            .build();
        components
            .responses
            .insert(format!("Problem{status}"), RefOr::T(response));
        let page = ResponseBuilder::new()
            .description(format!("A page saying: {sentence}"))
            .content("text/html", ContentBuilder::new().build())
            .build();
        components
            .responses
            .insert(format!("Page{status}"), RefOr::T(page));
    }
    // SCIM answers its directories in SCIM's error format (RFC 7644 §3.12).
    components
        .schemas
        .insert("ScimError".to_owned(), scim_error_schema().into());
    for status in [400, 401, 413, 500] {
        let sentence = warden_core::Code::for_status(status).sentence();
        let response = ResponseBuilder::new()
            .description(format!("{sentence} (a SCIM error document)"))
            .content(
                crate::scim::SCIM_JSON,
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("ScimError")))
                    .build(),
            )
            .build();
        components
            .responses
            .insert(format!("Scim{status}"), RefOr::T(response));
    }
    components.responses.insert(
        "SignIn303".to_owned(),
        RefOr::T(
            ResponseBuilder::new()
                .description("Not signed in: to `/sign-in?next=…` and back")
                .build(),
        ),
    );
    let cookie_bodies = cookie_bodies(doc);
    for (path, item) in doc.paths.paths.iter_mut() {
        for (method, op) in [
            (Method::GET, item.get.as_mut()),
            (Method::PUT, item.put.as_mut()),
            (Method::POST, item.post.as_mut()),
            (Method::DELETE, item.delete.as_mut()),
            (Method::PATCH, item.patch.as_mut()),
        ] {
            let Some(op) = op else { continue };
            let access = table.rule(&method, path);
            let console = path == "/console" || path.starts_with("/console/");
            let scheme = match access.and_then(scheme) {
                Some("user") if console => Some("console"),
                other => other,
            };
            if let Some(scheme) = scheme {
                op.security = Some(vec![SecurityRequirement::new(scheme, Vec::<String>::new())]);
            }
            if access == Some(Access::ScimToken) {
                let with_body = op.request_body.is_some();
                for status in [401, 500]
                    .into_iter()
                    .chain(with_body.then_some([400, 413]).into_iter().flatten())
                {
                    add_answer(op, status, &format!("Scim{status}"));
                }
                continue;
            }
            let cookies = body_schema(op).is_some_and(|n| cookie_bodies.contains(n));
            for status in statuses(path, &method, op, access, cookies) {
                match (console, status) {
                    (true, 401) => add_answer(op, 303, "SignIn303"),
                    (true, s) => add_answer(op, s, &format!("Page{s}")),
                    (false, s) => add_problem(op, s),
                }
            }
        }
    }
}

/// The error answers the stack around a handler may give it. `cookies`: its body can ask
/// for browser cookies.
fn statuses(
    path: &str,
    method: &Method,
    op: &Operation,
    access: Option<Access>,
    cookies: bool,
) -> Vec<u16> {
    let mut out = Vec::new();
    if op.request_body.is_some() {
        out.extend([400, 413, 415, 422]);
    }
    let has_query = op.parameters.as_ref().is_some_and(|ps| {
        ps.iter().any(|p| match p {
            RefOr::T(p) => matches!(p.parameter_in, utoipa::openapi::path::ParameterIn::Query),
            RefOr::Ref(_) => false,
        })
    });
    if has_query {
        // 400: not a query string of this shape; 422: a value it does not accept.
        out.extend([400, 422]);
    }
    let writes = *method != Method::GET;
    match access {
        Some(Access::Public) | None => {}
        Some(Access::Host) => out.extend([401, 429]),
        // The gateway answers in its clients' own error format, declared on each route; SCIM
        // routes (RFC 7644 §3.12 errors) get theirs in `declare_errors` and never come here.
        Some(Access::LlmKey | Access::ScimToken) => return Vec::new(),
        Some(Access::McpToken) => out.extend([401, 403]),
        Some(Access::SignedIn) => out.push(401),
        Some(Access::Platform(_)) => out.extend([401, 403]),
        // An archived workspace can be read, not changed.
        Some(Access::Workspace(_)) => out.extend(if writes {
            &[401, 403, 404, 409][..]
        } else {
            &[401, 403, 404][..]
        }),
    }
    // A browser's state-changing request is refused without same-origin evidence and the
    // CSRF token: on every signed-in route, and on the public sign-in routes when they are
    // asked to set cookies.
    let csrf = match access {
        Some(Access::SignedIn) => writes,
        Some(Access::Public) => cookies,
        _ => false,
    };
    if csrf {
        out.push(403);
    }
    if CREDENTIAL_ROUTES.contains(&path) {
        out.extend([429, 503]);
    }
    if path.starts_with("/api/") {
        out.push(503);
    }
    out.push(500);
    out
}

/// Names of the request-body schemas with a `cookies` switch (sign-in for the browser).
fn cookie_bodies(doc: &OpenApi) -> std::collections::HashSet<String> {
    let Some(components) = doc.components.as_ref() else {
        return Default::default();
    };
    components
        .schemas
        .iter()
        .filter(|(_, schema)| match schema {
            RefOr::T(utoipa::openapi::Schema::Object(o)) => o.properties.contains_key("cookies"),
            _ => false,
        })
        .map(|(name, _)| name.clone())
        .collect()
}

/// The schema name a JSON request body refers to.
fn body_schema(op: &Operation) -> Option<&str> {
    let RefOr::T(body) = op.request_body.as_ref()? else {
        return None;
    };
    let RefOr::T(content) = body.content.get("application/json")? else {
        return None;
    };
    match content.schema.as_ref()? {
        RefOr::Ref(r) => r.ref_location.rsplit('/').next(),
        RefOr::T(_) => None,
    }
}

/// SCIM's error document: `schemas`, `status` (as a string), `scimType`, `detail`.
fn scim_error_schema() -> utoipa::openapi::schema::Object {
    use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, Type};
    let text = || ObjectBuilder::new().schema_type(Type::String);
    ObjectBuilder::new()
        .property("schemas", ArrayBuilder::new().items(text()))
        .required("schemas")
        .property(
            "status",
            text().description(Some("The HTTP status, as a string")),
        )
        .required("status")
        .property(
            "scimType",
            text().description(Some(
                "invalidFilter, invalidValue, uniqueness, mutability, …",
            )),
        )
        .property("detail", text())
        .build()
}

fn problem() -> utoipa::openapi::Content {
    ContentBuilder::new()
        .schema(Some(Ref::from_schema_name("Problem")))
        .build()
}

fn add_problem(op: &mut Operation, status: u16) {
    let key = status.to_string();
    match op.responses.responses.get_mut(&key) {
        // Declared by hand: make sure it names the problem document too (an endpoint with
        // answers of its own, such as OAuth's token errors, still refuses a malformed
        // request with a problem document).
        Some(RefOr::T(declared)) => {
            declared
                .content
                .insert(PROBLEM_JSON.to_owned(), RefOr::T(problem()));
        }
        Some(RefOr::Ref(_)) => {}
        None => {
            let shared = Ref::new(format!("#/components/responses/Problem{status}"));
            op.responses.responses.insert(key, RefOr::Ref(shared));
        }
    }
}

/// A console answer: a page, or the way to sign in. Answers declared by hand stay.
fn add_answer(op: &mut Operation, status: u16, component: &str) {
    let key = status.to_string();
    op.responses
        .responses
        .entry(key)
        .or_insert_with(|| RefOr::Ref(Ref::new(format!("#/components/responses/{component}"))));
}
