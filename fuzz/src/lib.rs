//! What several fuzz targets share.

const B64URL: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.";

/// `token` (a compact JWS) with the character at `at` replaced by another base64url
/// character or a dot, both chosen by the fuzzer; `None` if that changes nothing.
pub fn change_one(token: &str, at: u16, with: u8) -> Option<String> {
    let mut bytes = token.as_bytes().to_vec();
    let at = usize::from(at) % bytes.len().max(1);
    let with = B64URL[usize::from(with) % B64URL.len()];
    if bytes.get(at) == Some(&with) || bytes.is_empty() {
        return None;
    }
    bytes[at] = with;
    String::from_utf8(bytes).ok()
}
