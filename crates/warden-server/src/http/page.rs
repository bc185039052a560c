//! The few server-rendered pages that exist before the console (setup, emailed links): one
//! plain HTML shape, never cached, with every value escaped.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};

/// Marks a response as one of these pages: its body (escaped, written here) is what the
/// person should read, so the edge keeps it instead of replacing an error page's body with
/// a problem document.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Page;

/// A page titled `title` with `body` (already HTML), never cached.
pub(crate) fn page(status: StatusCode, title: &str, body: &str) -> Response {
    let title = escape(title);
    let mut res = (
        status,
        Html(format!(
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
             <meta name=\"referrer\" content=\"no-referrer\">\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
             <link rel=\"stylesheet\" href=\"/assets/warden.css\">\
             <link rel=\"icon\" href=\"/assets/warden.svg\" type=\"image/svg+xml\">\
             <title>{title}</title></head><body><main><h1>{title}</h1>{body}\
             </main></body></html>"
        )),
    )
        .into_response();
    res.extensions_mut().insert(Page);
    let h = res.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    // A page reached by a link that carries a token must not leak it to another site.
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    res
}

/// Text made safe for HTML content and attribute values.
pub(crate) fn escape(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '&' => "&amp;".to_owned(),
            '<' => "&lt;".to_owned(),
            '>' => "&gt;".to_owned(),
            '"' => "&quot;".to_owned(),
            '\'' => "&#39;".to_owned(),
            c => c.to_string(),
        })
        .collect()
}
