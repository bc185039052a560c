#![allow(clippy::unwrap_used, clippy::expect_used)]
use super::*;
use aws_lc_rs::hmac;
use aws_lc_rs::signature::{RSA_PKCS1_SHA384, RSA_PSS_SHA256, RsaEncoding};

fn claims(now: i64) -> AccessClaims {
    AccessClaims {
        iss: "https://warden.test".to_owned(),
        aud: "warden-api".to_owned(),
        sub: "user-1".to_owned(),
        sid: "session-1".to_owned(),
        jti: "token-1".to_owned(),
        iat: now,
        exp: now + 900,
        nbf: None,
        org: None,
    }
}

fn key() -> SigningKey {
    static KEY: std::sync::OnceLock<Zeroizing<Vec<u8>>> = std::sync::OnceLock::new();
    let der = KEY.get_or_init(|| SigningKey::generate(KeyKind::Rs256(2048)).unwrap().1);
    SigningKey::from_pkcs8(der).unwrap()
}

fn rsa(k: &SigningKey) -> &KeyPair {
    match &k.pair {
        Pair::Rsa(pair) => pair,
        Pair::Ec(_) => panic!("not an RSA key"),
    }
}

fn ec_key() -> SigningKey {
    SigningKey::generate(KeyKind::Es256).unwrap().0
}

/// A token with any header and claims, signed by the P-256 key `k`.
fn forge_ec(k: &SigningKey, header: &serde_json::Value, claims: &serde_json::Value) -> String {
    let Pair::Ec(pair) = &k.pair else {
        panic!("not a P-256 key")
    };
    let input = format!("{}.{}", b64(header), b64(claims));
    let sig = pair
        .sign(&aws_lc_rs::rand::SystemRandom::new(), input.as_bytes())
        .unwrap();
    format!("{input}.{}", B64URL.encode(sig.as_ref()))
}

fn verifier(k: &SigningKey) -> Verifier {
    Verifier::new("https://warden.test", "warden-api", [k.jwk()])
}

fn b64(v: &serde_json::Value) -> String {
    B64URL.encode(serde_json::to_vec(v).unwrap())
}

/// A token with any header, signed by `k` with any RSA padding.
fn forge_rsa(k: &SigningKey, header: serde_json::Value, enc: &'static dyn RsaEncoding) -> String {
    let input = format!(
        "{}.{}",
        b64(&header),
        b64(&serde_json::to_value(claims(1_000)).unwrap())
    );
    let mut sig = vec![0u8; rsa(k).public_modulus_len()];
    rsa(k)
        .sign(
            enc,
            &aws_lc_rs::rand::SystemRandom::new(),
            input.as_bytes(),
            &mut sig,
        )
        .unwrap();
    format!("{input}.{}", B64URL.encode(sig))
}

#[test]
fn a_signed_token_verifies_and_round_trips_its_claims() {
    let k = key();
    let token = k.sign(&claims(1_000)).unwrap();
    assert_eq!(verifier(&k).verify(&token, 1_000).unwrap(), claims(1_000));
}

#[test]
fn a_key_publishes_a_stable_rfc7638_kid() {
    let k = key();
    assert_eq!(k.kid().len(), 43);
    assert_eq!(k.jwk().alg, "RS256");
    assert!(!format!("{k:?}").contains(k.jwk().n.as_deref().unwrap()));
}

#[test]
fn only_the_offered_key_sizes_are_generated() {
    assert_eq!(
        SigningKey::generate(KeyKind::Rs256(1024)).err(),
        Some(KeyError::Size(1024))
    );
    assert_eq!(
        SigningKey::from_pkcs8(b"not a key").err(),
        Some(KeyError::Parse)
    );
}

#[test]
fn alg_none_is_refused() {
    let k = key();
    let token = format!(
        "{}.{}.",
        b64(&serde_json::json!({"alg": "none", "kid": k.kid()})),
        b64(&serde_json::to_value(claims(1_000)).unwrap())
    );
    assert_eq!(
        verifier(&k).verify(&token, 1_000),
        Err(Rejection::Algorithm)
    );
}

/// HS256 tokens keyed with what `k` publishes (its modulus or point, its whole JWK): refused.
fn hs256_keyed_with_the_public_key_is_refused(k: &SigningKey) {
    let input = format!(
        "{}.{}",
        b64(&serde_json::json!({"alg": "HS256", "kid": k.kid(), "typ": "JWT"})),
        b64(&serde_json::to_value(claims(1_000)).unwrap())
    );
    let public = k.jwk().n.as_deref().or(k.jwk().x.as_deref()).unwrap();
    for secret in [
        public.as_bytes(),
        serde_json::to_vec(k.jwk()).unwrap().as_slice(),
    ] {
        let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, secret), input.as_bytes());
        let token = format!("{input}.{}", B64URL.encode(tag));
        assert_eq!(verifier(k).verify(&token, 1_000), Err(Rejection::Algorithm));
    }
}

#[test]
fn hs256_keyed_with_our_public_key_is_refused() {
    hs256_keyed_with_the_public_key_is_refused(&key());
}

#[test]
fn other_rsa_algorithms_signed_by_our_own_key_are_refused() {
    let k = key();
    for (alg, enc) in [
        ("RS384", &RSA_PKCS1_SHA384 as &'static dyn RsaEncoding),
        ("PS256", &RSA_PSS_SHA256),
    ] {
        let token = forge_rsa(&k, serde_json::json!({"alg": alg, "kid": k.kid()}), enc);
        assert_eq!(
            verifier(&k).verify(&token, 1_000),
            Err(Rejection::Algorithm),
            "{alg}"
        );
    }
    let es = forge_rsa(
        &k,
        serde_json::json!({"alg": "ES256", "kid": k.kid()}),
        &RSA_PKCS1_SHA256,
    );
    assert_eq!(verifier(&k).verify(&es, 1_000), Err(Rejection::Algorithm));
}

#[test]
fn key_carrying_headers_are_refused_even_with_a_valid_signature() {
    let k = key();
    for extra in [
        serde_json::json!({"jku": "http://127.0.0.1:9/jwks.json"}),
        serde_json::json!({"x5u": "http://127.0.0.1:9/cert.pem"}),
        serde_json::json!({"jwk": {"kty": "RSA", "n": k.jwk().n, "e": k.jwk().e}}),
        serde_json::json!({"x5c": ["MIIB"]}),
        serde_json::json!({"crit": ["exp"]}),
    ] {
        let mut header = serde_json::json!({"alg": "RS256", "kid": k.kid()});
        header
            .as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        let token = forge_rsa(&k, header, &RSA_PKCS1_SHA256);
        assert_eq!(
            verifier(&k).verify(&token, 1_000),
            Err(Rejection::Header),
            "{extra}"
        );
    }
}

#[test]
fn unknown_or_missing_kid_and_foreign_keys_are_refused() {
    let k = key();
    let other = SigningKey::generate(KeyKind::Rs256(2048)).unwrap().0;
    let token = other.sign(&claims(1_000)).unwrap();
    assert_eq!(
        verifier(&k).verify(&token, 1_000),
        Err(Rejection::UnknownKey)
    );
    let no_kid = forge_rsa(&k, serde_json::json!({"alg": "RS256"}), &RSA_PKCS1_SHA256);
    assert_eq!(
        verifier(&k).verify(&no_kid, 1_000),
        Err(Rejection::UnknownKey)
    );
    // Another key's signature presented under our kid.
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    parts[0] = b64(&serde_json::json!({"alg": "RS256", "kid": k.kid(), "typ": "JWT"}));
    let spliced = parts.join(".");
    assert_eq!(
        verifier(&k).verify(&spliced, 1_000),
        Err(Rejection::Signature)
    );
}

#[test]
fn a_flipped_signature_or_payload_is_refused() {
    let k = key();
    let token = k.sign(&claims(1_000)).unwrap();
    let (head, sig) = token.rsplit_once('.').unwrap();
    let mut sig = B64URL.decode(sig).unwrap();
    sig[10] ^= 1;
    let bad = format!("{head}.{}", B64URL.encode(sig));
    assert_eq!(verifier(&k).verify(&bad, 1_000), Err(Rejection::Signature));
    let mut c = claims(1_000);
    c.sub = "admin".to_owned();
    let parts: Vec<&str> = token.split('.').collect();
    let swapped = format!(
        "{}.{}.{}",
        parts[0],
        b64(&serde_json::to_value(c).unwrap()),
        parts[2]
    );
    assert_eq!(
        verifier(&k).verify(&swapped, 1_000),
        Err(Rejection::Signature)
    );
}

#[test]
fn wrong_issuer_or_audience_is_refused() {
    let k = key();
    let mut c = claims(1_000);
    c.iss = "https://evil.test".to_owned();
    assert_eq!(
        verifier(&k).verify(&k.sign(&c).unwrap(), 1_000),
        Err(Rejection::Issuer)
    );
    let mut c = claims(1_000);
    c.aud = "another-api".to_owned();
    assert_eq!(
        verifier(&k).verify(&k.sign(&c).unwrap(), 1_000),
        Err(Rejection::Audience)
    );
}

#[test]
fn expiry_and_future_times_respect_a_small_leeway() {
    let k = key();
    let v = verifier(&k);
    let token = k.sign(&claims(1_000)).unwrap();
    assert!(v.verify(&token, 1_900 + LEEWAY_SECS).is_ok());
    assert_eq!(
        v.verify(&token, 1_901 + LEEWAY_SECS),
        Err(Rejection::Expired)
    );
    assert_eq!(
        v.verify(&token, 1_000 - LEEWAY_SECS - 1),
        Err(Rejection::NotYetValid)
    );
    let mut c = claims(1_000);
    c.nbf = Some(2_000);
    assert_eq!(
        v.verify(&k.sign(&c).unwrap(), 1_000),
        Err(Rejection::NotYetValid)
    );
    let mut c = claims(1_000);
    c.exp = 1_000 + MAX_LIFETIME_SECS + 1;
    assert_eq!(
        v.verify(&k.sign(&c).unwrap(), 1_000),
        Err(Rejection::NotYetValid)
    );
}

#[test]
fn malformed_and_oversized_tokens_are_refused() {
    let k = key();
    let v = verifier(&k);
    for bad in ["", "abc", "a.b", "a.b.c.d", "!!.!!.!!", "e30.e30.e30"] {
        assert!(v.verify(bad, 1_000).is_err(), "{bad}");
    }
    let big = format!("{}.{}.x", "a".repeat(MAX_TOKEN_BYTES), "b");
    assert_eq!(v.verify(&big, 1_000), Err(Rejection::TooLarge));
    // A valid signature over claims missing `sid` is malformed.
    let input = format!(
        "{}.{}",
        b64(&serde_json::json!({"alg": "RS256", "kid": k.kid()})),
        b64(
            &serde_json::json!({"iss": "https://warden.test", "aud": "warden-api", "sub": "u", "iat": 1000, "exp": 1900, "jti": "j"})
        )
    );
    let mut sig = vec![0u8; rsa(&k).public_modulus_len()];
    rsa(&k)
        .sign(
            &RSA_PKCS1_SHA256,
            &aws_lc_rs::rand::SystemRandom::new(),
            input.as_bytes(),
            &mut sig,
        )
        .unwrap();
    let token = format!("{input}.{}", B64URL.encode(sig));
    assert_eq!(v.verify(&token, 1_000), Err(Rejection::Malformed));
}

#[test]
fn a_p256_key_signs_es256_and_publishes_an_ec_jwk() {
    let (k, der) = SigningKey::generate(KeyKind::Es256).unwrap();
    let token = k.sign(&claims(1_000)).unwrap();
    let header: serde_json::Value =
        serde_json::from_slice(&B64URL.decode(token.split('.').next().unwrap()).unwrap()).unwrap();
    assert_eq!(header["alg"], "ES256");
    assert_eq!(header["kid"], k.kid());
    assert_eq!(
        B64URL
            .decode(token.rsplit('.').next().unwrap())
            .unwrap()
            .len(),
        64,
        "JWS wants the fixed r ‖ s encoding, not DER"
    );
    assert_eq!(verifier(&k).verify(&token, 1_000).unwrap(), claims(1_000));
    let jwk = serde_json::to_value(k.jwk()).unwrap();
    assert_eq!(jwk["kty"], "EC");
    assert_eq!(jwk["crv"], "P-256");
    assert_eq!(jwk["alg"], "ES256");
    assert!(jwk.get("n").is_none() && jwk.get("d").is_none(), "{jwk}");
    assert_eq!(B64URL.decode(jwk["x"].as_str().unwrap()).unwrap().len(), 32);
    // RFC 7638 over crv, kty, x, y; stable across a reload from the stored PKCS#8.
    let canonical = format!(
        r#"{{"crv":"P-256","kty":"EC","x":"{}","y":"{}"}}"#,
        jwk["x"].as_str().unwrap(),
        jwk["y"].as_str().unwrap()
    );
    assert_eq!(
        k.kid(),
        B64URL.encode(digest::digest(&digest::SHA256, canonical.as_bytes()))
    );
    assert_eq!(SigningKey::from_pkcs8(&der).unwrap().kid(), k.kid());
    assert!(!format!("{k:?}").contains(jwk["x"].as_str().unwrap()));
}

#[test]
fn a_p256_key_verifies_es256_only() {
    let k = ec_key();
    let body = serde_json::to_value(claims(1_000)).unwrap();
    // Its own signature under another algorithm's name.
    for alg in ["RS256", "ES384", "ES512", "PS256", "EdDSA"] {
        let token = forge_ec(&k, &serde_json::json!({"alg": alg, "kid": k.kid()}), &body);
        assert_eq!(
            verifier(&k).verify(&token, 1_000),
            Err(Rejection::Algorithm),
            "{alg}"
        );
    }
    hs256_keyed_with_the_public_key_is_refused(&k);
    // An RSA key's RS256 token presented under the P-256 key's kid.
    let r = key();
    let mut parts: Vec<String> = r
        .sign(&claims(1_000))
        .unwrap()
        .split('.')
        .map(str::to_owned)
        .collect();
    parts[0] = b64(&serde_json::json!({"alg": "RS256", "kid": k.kid()}));
    assert_eq!(
        verifier(&k).verify(&parts.join("."), 1_000),
        Err(Rejection::Algorithm)
    );
}

#[test]
fn forged_es256_signatures_are_refused() {
    let k = ec_key();
    let token = k.sign(&claims(1_000)).unwrap();
    let (input, sig) = token.rsplit_once('.').unwrap();
    let sig = B64URL.decode(sig).unwrap();
    let mut flipped = sig.clone();
    flipped[5] ^= 1;
    // r = s = 0 ("psychic signatures", CVE-2022-21449), r = s = n-ish garbage, a DER
    // encoding of the right signature, a truncated one, and none at all.
    let mut der = vec![0x30, 0x44, 0x02, 0x20];
    der.extend_from_slice(&sig[..32]);
    der.extend_from_slice(&[0x02, 0x20]);
    der.extend_from_slice(&sig[32..]);
    for (what, bad) in [
        ("flipped", flipped),
        ("zero", vec![0u8; 64]),
        ("all ones", vec![0xff; 64]),
        ("DER", der),
        ("truncated", sig[..63].to_vec()),
        ("empty", Vec::new()),
    ] {
        let forged = format!("{input}.{}", B64URL.encode(&bad));
        assert!(
            matches!(
                verifier(&k).verify(&forged, 1_000),
                Err(Rejection::Signature | Rejection::Malformed)
            ),
            "{what}"
        );
    }
    // Another P-256 key's token under our kid.
    let other = ec_key().sign(&claims(1_000)).unwrap();
    let spliced = format!(
        "{}.{}",
        input.split('.').next().unwrap(),
        other.split_once('.').unwrap().1
    );
    assert_eq!(
        verifier(&k).verify(&spliced, 1_000),
        Err(Rejection::Signature)
    );
    // Key-carrying headers on a correctly signed token.
    let body = serde_json::to_value(claims(1_000)).unwrap();
    let forged = forge_ec(
        &k,
        &serde_json::json!({"alg": "ES256", "kid": k.kid(), "jwk": k.jwk()}),
        &body,
    );
    assert_eq!(verifier(&k).verify(&forged, 1_000), Err(Rejection::Header));
}

#[test]
fn rsa_and_p256_keys_published_together_each_verify_their_own_tokens() {
    // An installation moving from RSA to P-256: both are published while the old one's
    // tokens live.
    let (r, e) = (key(), ec_key());
    let both = Verifier::new("https://warden.test", "warden-api", [r.jwk(), e.jwk()]);
    for k in [&r, &e] {
        let token = k.sign(&claims(1_000)).unwrap();
        assert_eq!(both.verify(&token, 1_000).unwrap(), claims(1_000));
    }
    // A JWK this server would never publish is ignored, not trusted.
    let mut odd = e.jwk().clone();
    odd.crv = Some("P-384".to_owned());
    let v = Verifier::new("https://warden.test", "warden-api", [&odd]);
    assert_eq!(
        v.verify(&e.sign(&claims(1_000)).unwrap(), 1_000),
        Err(Rejection::UnknownKey)
    );
}
