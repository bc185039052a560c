//! The web console's cookies and the same-origin rules for requests that use them.
//!
//! Cookies are `__Host-` prefixed (so: `Secure`, `Path=/`, no `Domain`), `HttpOnly` (except
//! the CSRF token, which the console's script must read) and `SameSite=Lax` — but for the
//! cookie binding a SAML sign-in to its browser, which must come back on a cross-site POST.

use axum::http::{HeaderMap, HeaderValue, header};

/// The access token.
pub const ACCESS: &str = "__Host-warden_access";
/// The refresh token.
pub const REFRESH: &str = "__Host-warden_refresh";
/// The CSRF token (readable by the console's script; sent back in [`CSRF_HEADER`]).
pub const CSRF: &str = "__Host-warden_csrf";
/// The header carrying the CSRF token.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// The value of cookie `name`, if the request carries it.
pub fn get<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
        .filter(|v| !v.is_empty())
}

/// A `Set-Cookie` value for `name`, living `max_age` seconds.
pub fn set(name: &str, value: &str, max_age: i64, http_only: bool) -> Option<HeaderValue> {
    let http_only = if http_only { "; HttpOnly" } else { "" };
    HeaderValue::from_str(&format!(
        "{name}={value}; Path=/; Secure{http_only}; SameSite=Lax; Max-Age={max_age}"
    ))
    .ok()
}

/// A `Set-Cookie` value for `name` that a cross-site POST carries too (`SameSite=None`,
/// HttpOnly): only for binding a sign-in to the browser that started it, when the identity
/// provider comes back by posting a form (SAML's HTTP-POST binding).
pub fn set_cross_site(name: &str, value: &str, max_age: i64) -> Option<HeaderValue> {
    HeaderValue::from_str(&format!(
        "{name}={value}; Path=/; Secure; HttpOnly; SameSite=None; Max-Age={max_age}"
    ))
    .ok()
}

/// A `Set-Cookie` value that deletes `name`.
pub fn clear(name: &str) -> Option<HeaderValue> {
    HeaderValue::from_str(&format!(
        "{name}=; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age=0"
    ))
    .ok()
}

/// Whether a request comes from a page of this same origin. Browsers send `Sec-Fetch-Site`
/// (modern) or `Origin` (all, on state-changing requests); at least one must be present and
/// every one present must say "same origin". `Origin` is compared with `Host`.
pub fn same_origin(headers: &HeaderMap) -> bool {
    let fetch_site = headers.get("sec-fetch-site").map(|v| v.as_bytes());
    let origin = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok());
    if fetch_site.is_none() && origin.is_none() {
        return false;
    }
    if fetch_site.is_some_and(|s| s != b"same-origin") {
        return false;
    }
    // A page with `Referrer-Policy: no-referrer` (all of Warden's) makes browsers send
    // `Origin: null` on its own form posts; then the browser's `Sec-Fetch-Site` decides, and
    // without it the request is refused.
    if origin == Some("null") {
        return fetch_site == Some(b"same-origin".as_slice());
    }
    if let Some(origin) = origin {
        let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
        let authority = origin
            .strip_prefix("https://")
            .or_else(|| origin.strip_prefix("http://"));
        return matches!((authority, host), (Some(a), Some(h)) if a.eq_ignore_ascii_case(h));
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn cookies_are_found_by_exact_name() {
        let h = headers(&[("cookie", "a=1; __Host-warden_access=tok; b=2")]);
        assert_eq!(get(&h, ACCESS), Some("tok"));
        assert_eq!(get(&h, REFRESH), None);
    }

    #[test]
    fn same_origin_needs_evidence_and_no_contradiction() {
        assert!(!same_origin(&headers(&[("host", "w.test")])));
        assert!(same_origin(&headers(&[("sec-fetch-site", "same-origin")])));
        assert!(!same_origin(&headers(&[("sec-fetch-site", "cross-site")])));
        assert!(!same_origin(&headers(&[("sec-fetch-site", "same-site")])));
        assert!(same_origin(&headers(&[
            ("host", "w.test"),
            ("origin", "https://w.test")
        ])));
        assert!(!same_origin(&headers(&[
            ("host", "w.test"),
            ("origin", "https://evil.test")
        ])));
        assert!(!same_origin(&headers(&[
            ("host", "w.test"),
            ("origin", "null")
        ])));
        assert!(!same_origin(&headers(&[
            ("host", "w.test"),
            ("origin", "https://w.test"),
            ("sec-fetch-site", "cross-site")
        ])));
    }

    #[test]
    fn set_cookies_carry_every_flag() {
        let v = set(ACCESS, "x", 60, true).unwrap();
        let v = v.to_str().unwrap();
        for flag in ["Path=/", "Secure", "HttpOnly", "SameSite=Lax", "Max-Age=60"] {
            assert!(v.contains(flag), "{v}");
        }
        assert!(!v.contains("Domain"));
    }

    #[test]
    fn a_null_origin_counts_only_with_the_browsers_same_origin_fetch_site() {
        let host = ("host", "warden.example");
        assert!(same_origin(&headers(&[
            host,
            ("origin", "null"),
            ("sec-fetch-site", "same-origin")
        ])));
        assert!(!same_origin(&headers(&[host, ("origin", "null")])));
        assert!(!same_origin(&headers(&[
            host,
            ("origin", "null"),
            ("sec-fetch-site", "cross-site")
        ])));
    }
}
