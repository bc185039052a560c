//! The access-token (JWS, ES256 and RS256) verifier, publishing one key of each. Invariants: random text never verifies; a token
//! this Warden signed verifies to exactly its claims when issuer, audience and times are
//! right, and is refused otherwise; one changed character makes any token fail; a verified
//! token always has the issuer, audience and validity the verifier promises.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use warden_crypto::jwt::{
    AccessClaims, KeyKind, LEEWAY_SECS, MAX_LIFETIME_SECS, MAX_TOKEN_BYTES, SigningKey, Verifier,
};

const ISS: &str = "https://warden.test";
const AUD: &str = "warden-api";
const NOW: i64 = 1_800_000_000;

#[derive(Arbitrary, Debug)]
enum Input {
    Token(String),
    Signed {
        rsa: bool,
        other_iss: bool,
        other_aud: bool,
        sub: String,
        sid: String,
        jti: String,
        iat: i32,
        exp: i32,
        nbf: Option<i32>,
        tamper: Option<(u16, u8)>,
    },
}

fn keys() -> &'static (SigningKey, SigningKey, Verifier) {
    static KEYS: OnceLock<(SigningKey, SigningKey, Verifier)> = OnceLock::new();
    KEYS.get_or_init(|| {
        let ec = SigningKey::generate(KeyKind::Es256).expect("key").0;
        let rsa = SigningKey::generate(KeyKind::Rs256(2048)).expect("key").0;
        let verifier = Verifier::new(ISS, AUD, [ec.jwk(), rsa.jwk()]);
        (ec, rsa, verifier)
    })
}

fn check_promises(c: &AccessClaims) {
    assert_eq!(c.iss, ISS);
    assert_eq!(c.aud, AUD);
    // Within the leeway: not expired, not from the future, not too long-lived.
    assert!(NOW <= c.exp + LEEWAY_SECS, "expired token accepted: {c:?}");
    assert!(c.iat <= NOW + LEEWAY_SECS, "future token accepted: {c:?}");
    assert!(
        c.nbf.is_none_or(|n| n <= NOW + LEEWAY_SECS),
        "not-yet-valid token accepted: {c:?}"
    );
    assert!(
        c.exp - c.iat <= MAX_LIFETIME_SECS,
        "overlong token accepted: {c:?}"
    );
}

fuzz_target!(|input: Input| {
    let (ec, rsa_key, verifier) = keys();
    match input {
        Input::Token(token) => {
            if let Ok(c) = verifier.verify(&token, NOW) {
                panic!("unsigned text verified: {c:?}");
            }
        }
        Input::Signed {
            rsa,
            other_iss,
            other_aud,
            sub,
            sid,
            jti,
            iat,
            exp,
            nbf,
            tamper,
        } => {
            // An organization claim on every other input (its text is the token id's).
            let org = (jti.len() % 2 == 1).then(|| jti.clone());
            let claims = AccessClaims {
                iss: if other_iss {
                    "https://evil.test".into()
                } else {
                    ISS.into()
                },
                aud: if other_aud {
                    "other-api".into()
                } else {
                    AUD.into()
                },
                sub,
                sid,
                jti,
                iat: NOW + i64::from(iat),
                exp: NOW + i64::from(exp),
                nbf: nbf.map(|n| NOW + i64::from(n)),
                org,
            };
            let key = if rsa { rsa_key } else { ec };
            let Ok(token) = key.sign(&claims) else { return };
            match tamper {
                None => match verifier.verify(&token, NOW) {
                    Ok(c) => {
                        check_promises(&c);
                        assert_eq!(c, claims, "claims changed in the round trip");
                    }
                    Err(_) => {
                        let valid = !other_iss
                            && !other_aud
                            && NOW <= claims.exp + LEEWAY_SECS
                            && claims.iat <= NOW + LEEWAY_SECS
                            && claims.nbf.is_none_or(|n| n <= NOW + LEEWAY_SECS)
                            && claims.exp - claims.iat <= MAX_LIFETIME_SECS;
                        // Refusing a well-formed, in-date token of ours is a bug too — unless
                        // it is oversized.
                        assert!(
                            !valid || token.len() > MAX_TOKEN_BYTES,
                            "own token refused: {claims:?}"
                        );
                    }
                },
                Some((at, with)) => {
                    let Some(changed) = warden_fuzz::change_one(&token, at, with) else {
                        return;
                    };
                    if let Ok(c) = verifier.verify(&changed, NOW) {
                        panic!("a changed token verified: {changed} -> {c:?}");
                    }
                }
            }
        }
    }
});
