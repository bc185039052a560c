//! The first look at a SAML response (`warden_saml::screen`), before any signature is
//! checked. Invariants: any text is accepted or refused without a panic, and its base64 form
//! goes through `verify` to the same answer (a build without xmlsec stops right after the
//! screen; nothing verifies without the IdP's metadata).
#![no_main]

use base64::Engine as _;
use libfuzzer_sys::fuzz_target;
use warden_saml::{Expect, SamlError, Signed, Sp, screen, verify};

fuzz_target!(|text: &str| {
    let screened = screen(text);
    let sp = Sp {
        entity_id: "https://warden.example/sp",
        acs_url: "https://warden.example/acs",
    };
    let expect = Expect {
        request_id: Some("_0123"),
        signed: Signed::Assertion,
    };
    let encoded = base64::engine::general_purpose::STANDARD.encode(text);
    match verify(&sp, "", &encoded, &expect) {
        // Built without xmlsec, only the screen can say no before the signature check.
        Err(SamlError::NotBuilt) => assert!(screened.is_ok(), "{text:?}"),
        Err(_) => {}
        Ok(_) => panic!("verified without metadata: {text:?}"),
    }
});
