//! The licence parser and verifier. Invariants: any text either verifies or is refused (no
//! panic); a licence signed by the key verifies to exactly the claims signed (round trip); a
//! licence with any one character changed never verifies; `unverified_payload` never panics.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use warden_crypto::license::{SigningKey, unverified_payload};

#[derive(Arbitrary, Debug)]
enum Input {
    /// Text presented as a licence.
    Token(String),
    /// Claims (JSON text) signed by the key, then optionally one character changed.
    Signed {
        claims: String,
        tamper: Option<(u16, u8)>,
    },
}

fn key() -> &'static SigningKey {
    static KEY: OnceLock<SigningKey> = OnceLock::new();
    KEY.get_or_init(|| SigningKey::generate().expect("key").0)
}

fuzz_target!(|input: Input| {
    let key = key();
    match input {
        Input::Token(token) => {
            let _ = unverified_payload(&token);
            // Random text is never signed by our key.
            if let Ok(claims) = key.public_key().verify(&token) {
                panic!("unsigned text verified: {claims:?}");
            }
        }
        Input::Signed { claims, tamper } => {
            let Ok(Value::Object(claims)) = serde_json::from_str::<Value>(&claims) else {
                return;
            };
            let Ok(token) = key.sign(&Value::Object(claims.clone())) else {
                return;
            };
            match tamper {
                None => {
                    let verified = key
                        .public_key()
                        .verify(&token)
                        .expect("own licence verifies");
                    assert_eq!(verified, claims, "claims changed in the round trip");
                    assert_eq!(unverified_payload(&token), Some(claims));
                }
                Some((at, with)) => {
                    let Some(changed) = warden_fuzz::change_one(&token, at, with) else {
                        return;
                    };
                    if let Ok(c) = key.public_key().verify(&changed) {
                        panic!("a changed licence verified: {changed} -> {c:?}");
                    }
                }
            }
        }
    }
});
