//! The files the server-rendered pages load, built into the binary: one stylesheet, the
//! passkey pages' script, the session page's script (it follows the output), htmx (vendored,
//! see `assets/VENDORED.md`), the icon. Same origin, so the Content-Security-Policy
//! (`default-src 'self'`, no inline script or style) lets them in and nothing else.

use std::io::Write as _;
use std::sync::LazyLock;

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use utoipa_axum::routes;
use warden_domain::access::Access;

use crate::http::routes::Routes;
use crate::state::AppState;

/// A file as built in, and gzip-compressed once, on first use, for browsers that accept it.
struct Asset {
    body: &'static str,
    gzip: Vec<u8>,
}

fn built_in(body: &'static str) -> Asset {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    // Writing to a Vec cannot fail; without the compressed copy the plain one is served.
    let gzip = enc
        .write_all(body.as_bytes())
        .and_then(|()| enc.finish())
        .unwrap_or_default();
    Asset { body, gzip }
}

static SCRIPT: LazyLock<Asset> =
    LazyLock::new(|| built_in(include_str!("../../assets/passkeys.js")));
static SESSION_SCRIPT: LazyLock<Asset> =
    LazyLock::new(|| built_in(include_str!("../../assets/session.js")));
static HTMX: LazyLock<Asset> = LazyLock::new(|| built_in(include_str!("../../assets/htmx.min.js")));
static STYLESHEET: LazyLock<Asset> =
    LazyLock::new(|| built_in(include_str!("../../assets/warden.css")));
static ICON: LazyLock<Asset> = LazyLock::new(|| built_in(include_str!("../../assets/warden.svg")));

pub(crate) fn routes() -> Routes<AppState> {
    Routes::new()
        .add_recovery(Access::Public, routes!(script))
        .add_recovery(Access::Public, routes!(stylesheet))
        .add_recovery(Access::Public, routes!(icon))
        .add_recovery(Access::Public, routes!(session_script))
        .add_recovery(Access::Public, routes!(htmx))
}

/// Whether the request accepts gzip (`Accept-Encoding`, without `gzip;q=0`).
fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|coding| {
            let mut parts = coding.split(';').map(str::trim);
            parts.next().is_some_and(|c| c.eq_ignore_ascii_case("gzip"))
                && !parts.any(|p| p.replace(' ', "") == "q=0")
        })
}

fn asset(file: &'static Asset, content_type: &'static str, headers: &HeaderMap) -> Response {
    let gzip = !file.gzip.is_empty() && accepts_gzip(headers);
    let mut res = if gzip {
        (StatusCode::OK, file.gzip.as_slice()).into_response()
    } else {
        (StatusCode::OK, file.body).into_response()
    };
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    if gzip {
        h.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    res
}

/// The pages' script (WebAuthn calls and the forms).
#[utoipa::path(get, path = "/assets/passkeys.js", tag = "pages",
    responses((status = 200, description = "Script", content_type = "text/javascript")))]
pub(crate) async fn script(headers: HeaderMap) -> Response {
    asset(&SCRIPT, "text/javascript; charset=utf-8", &headers)
}

/// The pages' stylesheet.
#[utoipa::path(get, path = "/assets/warden.css", tag = "pages",
    responses((status = 200, description = "Stylesheet", content_type = "text/css")))]
pub(crate) async fn stylesheet(headers: HeaderMap) -> Response {
    asset(&STYLESHEET, "text/css; charset=utf-8", &headers)
}

/// The icon.
#[utoipa::path(get, path = "/assets/warden.svg", tag = "pages",
    responses((status = 200, description = "Icon", content_type = "image/svg+xml")))]
pub(crate) async fn icon(headers: HeaderMap) -> Response {
    asset(&ICON, "image/svg+xml", &headers)
}

/// The session page's script: follows a session's output as it arrives.
#[utoipa::path(get, path = "/assets/session.js", tag = "pages",
    responses((status = 200, description = "Script", content_type = "text/javascript")))]
pub(crate) async fn session_script(headers: HeaderMap) -> Response {
    asset(&SESSION_SCRIPT, "text/javascript; charset=utf-8", &headers)
}

/// htmx, vendored at a pinned release: the console's lists refresh themselves with it.
#[utoipa::path(get, path = "/assets/htmx.min.js", tag = "pages",
    responses((status = 200, description = "Script", content_type = "text/javascript")))]
pub(crate) async fn htmx(headers: HeaderMap) -> Response {
    asset(&HTMX, "text/javascript; charset=utf-8", &headers)
}

#[cfg(test)]
mod tests {
    use std::io::Read as _;

    use super::*;

    fn with(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            header::ACCEPT_ENCODING,
            HeaderValue::from_str(value).unwrap(),
        );
        h
    }

    #[test]
    fn gzip_is_chosen_only_when_accepted() {
        assert!(accepts_gzip(&with("gzip, deflate, br, zstd")));
        assert!(accepts_gzip(&with("br;q=1.0, GZIP;q=0.5")));
        assert!(!accepts_gzip(&with("gzip;q=0, br")));
        assert!(!accepts_gzip(&with("br")));
        assert!(!accepts_gzip(&HeaderMap::new()));
    }

    #[test]
    fn the_compressed_copy_is_the_file() {
        for file in [&*SCRIPT, &*SESSION_SCRIPT, &*HTMX, &*STYLESHEET, &*ICON] {
            let mut plain = String::new();
            flate2::read::GzDecoder::new(file.gzip.as_slice())
                .read_to_string(&mut plain)
                .unwrap();
            assert_eq!(plain, file.body);
            assert!(file.gzip.len() < file.body.len());
        }
    }
}
