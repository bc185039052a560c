//! Single sign-on with OpenID Connect: providers administrators configure (`providers`) and
//! the sign-in itself (`flow`); SAML 2.0 providers share both and add their own protocol
//! (`saml`, on `warden-saml`); `discovery` finds the providers an email's domain signs in
//! with (home-realm discovery). The protocol — discovery, keys, PKCE, code exchange, ID-token
//! checks, the guarded outbound client — is `warden-oidc`'s; here are Warden's rules: who a
//! verified identity is (by issuer and subject, never by email), when an email may link or
//! create an account, and where the browser may be sent afterwards.

pub mod discovery;
pub mod flow;
pub mod groups;
pub mod providers;
pub mod saml;

/// Where the browser goes after signing in when the request named nowhere.
pub const DEFAULT_AFTER: &str = "/sso/signed-in";

/// The paths the browser may be sent to after signing in (same origin only).
const AFTER_ALLOWLIST: &[&str] = &["/console", "/sso/signed-in", "/device"];

/// A safe place to send the browser after signing in: a same-origin relative path under the
/// allowlist, or `None`. Protocol-relative (`//host`), backslash (`/\host`), scheme
/// (`javascript:`), control characters and their percent-encoded forms are refused.
pub fn safe_after(target: &str) -> Option<String> {
    let decoded = percent_decode(target)?;
    for t in [target, decoded.as_str()] {
        if !t.starts_with('/')
            || t.starts_with("//")
            || t.contains('\\')
            || t.chars().any(char::is_control)
            || t.len() > 500
        {
            return None;
        }
        let path = t.split(['?', '#']).next().unwrap_or_default();
        if path.split('/').any(|seg| seg == "..") {
            return None;
        }
        let allowed = AFTER_ALLOWLIST.iter().any(|p| {
            path == *p
                || path
                    .strip_prefix(p)
                    .is_some_and(|rest| rest.starts_with('/'))
        });
        if !allowed {
            return None;
        }
    }
    Some(target.to_owned())
}

/// Percent-decoding, twice over (so `%252F` is seen as `/` too); `None` for invalid UTF-8.
fn percent_decode(s: &str) -> Option<String> {
    let once = |s: &str| {
        percent_encoding::percent_decode_str(s)
            .decode_utf8()
            .ok()
            .map(|c| c.into_owned())
    };
    once(&once(s)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_allowlisted_same_origin_paths_are_redirect_targets() {
        for ok in ["/console", "/console/workspaces/1?tab=a", "/sso/signed-in"] {
            assert_eq!(safe_after(ok).as_deref(), Some(ok), "{ok}");
        }
        for bad in [
            "//evil.example",
            "/\\evil.example",
            "javascript:alert(1)",
            "%2F%2Fevil.example",
            "/%2F%2Fevil.example",
            "/%252F%252Fevil.example",
            "/%5Cevil.example",
            "https://evil.example/console",
            "/console/../admin",
            "/elsewhere",
            "/consolex",
            "/console\n",
            "",
        ] {
            assert_eq!(safe_after(bad), None, "{bad}");
        }
    }
}
