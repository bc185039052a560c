//! `warden config check`: the effective configuration as TOML, every secret redacted (the
//! master key only by where it comes from, URLs with their passwords masked). The values
//! were recorded, already redacted, as each setting was read (`values.rs`).

use super::Config;

impl Config {
    /// The configuration as TOML, every secret redacted, for `warden config check`.
    pub fn redacted_toml(&self) -> String {
        toml::to_string(&self.shown)
            .unwrap_or_else(|_| "# could not render configuration\n".to_owned())
    }
}

/// A database URL with its password (in the userinfo or a `password=` parameter) masked.
pub fn redact_url(url: &str) -> String {
    let mut out = url.to_owned();
    if let Some(scheme_end) = out.find("://") {
        let rest_start = scheme_end + 3;
        let authority_end = out[rest_start..]
            .find(['/', '?', '#'])
            .map_or(out.len(), |i| rest_start + i);
        if let Some(at) = out[rest_start..authority_end].rfind('@') {
            let userinfo = &out[rest_start..rest_start + at];
            if let Some(colon) = userinfo.find(':') {
                let start = rest_start + colon + 1;
                out.replace_range(start..rest_start + at, "[redacted]");
            }
        }
    }
    if let Some(q) = out.find('?') {
        let (base, query) = out.split_at(q + 1);
        let masked = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=[redacted]"),
                _ => pair.to_owned(),
            })
            .collect::<Vec<_>>()
            .join("&");
        out = format!("{base}{masked}");
    }
    out
}
