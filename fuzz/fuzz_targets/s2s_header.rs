//! The S2S `Authorization: WARDEN-HMAC-SHA256 …` header parser. Invariants: any value parses
//! or is refused (no panic); what parses has every promised property (a `wsk_` key id of at
//! most 100 bytes, a 16–64 character nonce of URL-safe characters, a 32-byte signature) and
//! renders back to a header that parses to the same thing.
#![no_main]

use libfuzzer_sys::fuzz_target;
use warden_core::service_keys::{KEY_PREFIX, SCHEME, Signed};

fuzz_target!(|value: &str| {
    let Some(s) = Signed::parse(value) else {
        return;
    };
    assert!(
        s.key_id.starts_with(KEY_PREFIX) && s.key_id.len() <= 100,
        "{s:?}"
    );
    assert!((16..=64).contains(&s.nonce.len()), "{s:?}");
    assert!(
        s.nonce
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
        "{s:?}"
    );
    assert_eq!(s.sig.len(), 32);
    let rendered = format!(
        "{SCHEME} keyId={},ts={},nonce={},sig={}",
        s.key_id,
        s.ts,
        s.nonce,
        hex::encode(&s.sig)
    );
    assert_eq!(Signed::parse(&rendered).as_ref(), Some(&s), "{rendered}");
});
