//! Access tokens: JWTs signed RS256 with RSA keys that aws-lc-rs generates and signs with.
//! Verification goes through `jsonwebtoken` (aws-lc-rs backend) after a strict look at the
//! header, and checks time against the caller's clock, not the system's.
//!
//! Refused, whatever the signature: any `alg` but RS256 (`none`, HS*, PS*, ES*, other RS*),
//! an unknown `kid`, `jku`/`x5u`/`jwk`/`x5c` and other key-carrying or critical headers,
//! tokens over 8 KiB, a wrong `iss` or `aud`, expiry beyond a 30 s leeway, and `iat`/`nbf`
//! in the future.

use std::collections::HashMap;
use std::fmt;

use aws_lc_rs::rsa::{KeyPair, KeySize};
use aws_lc_rs::signature::{KeyPair as _, RSA_PKCS1_SHA256};
use aws_lc_rs::{digest, encoding::AsDer};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

/// Largest token accepted, in bytes.
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;
/// Clock skew tolerated on `exp`, `iat` and `nbf`, in seconds.
pub const LEEWAY_SECS: i64 = 30;
/// Longest access-token lifetime accepted (the setting's upper bound), in seconds.
pub const MAX_LIFETIME_SECS: i64 = 60 * 60;

/// Why a token was refused. The HTTP layer answers 401 to all of them alike.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    /// Over [`MAX_TOKEN_BYTES`].
    #[error("token too large")]
    TooLarge,
    /// Not three base64url parts with JSON inside, or claims missing.
    #[error("malformed token")]
    Malformed,
    /// `alg` other than RS256.
    #[error("algorithm not accepted")]
    Algorithm,
    /// A header that points at or carries a key, or marks extensions critical.
    #[error("header not accepted")]
    Header,
    /// No `kid`, or one this server does not publish.
    #[error("unknown key")]
    UnknownKey,
    /// The signature does not verify.
    #[error("bad signature")]
    Signature,
    /// `iss` is not this server.
    #[error("wrong issuer")]
    Issuer,
    /// `aud` is not this server's API.
    #[error("wrong audience")]
    Audience,
    /// Past `exp` (plus leeway).
    #[error("expired")]
    Expired,
    /// `iat` or `nbf` in the future, or a lifetime longer than any this server issues.
    #[error("not yet valid")]
    NotYetValid,
}

/// Something went wrong with a signing key itself.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// Only 2048, 3072 and 4096 bits are offered.
    #[error("RSA key size must be 2048, 3072 or 4096 bits, not {0}")]
    Size(u32),
    /// Key generation failed.
    #[error("RSA key generation failed")]
    Generate,

    /// The stored key does not parse.
    #[error("the stored signing key is not a valid RSA private key")]
    Parse,
    /// The key could not sign, or its signature did not verify with its public half.
    #[error("the signing key failed its sign/verify self-test")]
    SelfTest,
    /// Claims could not be encoded.
    #[error("could not encode token claims")]
    Encode,
}

/// The claims of a Warden access token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    /// Issuer: this Warden.
    pub iss: String,
    /// Audience: this Warden's API.
    pub aud: String,
    /// The user id.
    pub sub: String,
    /// The device session (refresh-token family) the token belongs to.
    pub sid: String,
    /// This token's id.
    pub jti: String,
    /// Issued at (Unix seconds).
    pub iat: i64,
    /// Expires at (Unix seconds).
    pub exp: i64,
    /// Not before (Unix seconds), if present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
}

/// A public key as published in the JWKS.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jwk {
    /// Always `RSA`.
    pub kty: String,
    /// Always `sig`.
    #[serde(rename = "use")]
    pub use_: String,
    /// Always `RS256`.
    pub alg: String,
    /// Key id (RFC 7638 thumbprint).
    pub kid: String,
    /// Modulus, base64url.
    pub n: String,
    /// Exponent, base64url.
    pub e: String,
}

/// An RSA private key that signs access tokens. Never printed.
pub struct SigningKey {
    pair: KeyPair,
    jwk: Jwk,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.jwk.kid)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// Generates a key of `bits` bits. Returns it with its PKCS#8 encoding, to be sealed
    /// before it is stored.
    pub fn generate(bits: u32) -> Result<(Self, Zeroizing<Vec<u8>>), KeyError> {
        let size = match bits {
            2048 => KeySize::Rsa2048,
            3072 => KeySize::Rsa3072,
            4096 => KeySize::Rsa4096,
            other => return Err(KeyError::Size(other)),
        };
        let pair = KeyPair::generate(size).map_err(|_| KeyError::Generate)?;
        let der = pair.as_der().map_err(|_| KeyError::Generate)?;
        let der = Zeroizing::new(der.as_ref().to_vec());
        Ok((Self::from_pair(pair)?, der))
    }

    /// Loads a stored PKCS#8 key and runs the self-test.
    pub fn from_pkcs8(der: &[u8]) -> Result<Self, KeyError> {
        let pair = KeyPair::from_pkcs8(der).map_err(|_| KeyError::Parse)?;
        Self::from_pair(pair)
    }

    fn from_pair(pair: KeyPair) -> Result<Self, KeyError> {
        let public = pair.public_key();
        let n = B64URL.encode(public.modulus().big_endian_without_leading_zero());
        let e = B64URL.encode(public.exponent().big_endian_without_leading_zero());
        // RFC 7638: SHA-256 over the required members in lexicographic order.
        let canonical = format!(r#"{{"e":"{e}","kty":"RSA","n":"{n}"}}"#);
        let kid = B64URL.encode(digest::digest(&digest::SHA256, canonical.as_bytes()));
        let key = Self {
            pair,
            jwk: Jwk {
                kty: "RSA".to_owned(),
                use_: "sig".to_owned(),
                alg: "RS256".to_owned(),
                kid,
                n,
                e,
            },
        };
        key.self_test()?;
        Ok(key)
    }

    /// Signs a probe token and verifies it with the public half.
    pub fn self_test(&self) -> Result<(), KeyError> {
        let claims = AccessClaims {
            iss: "self-test".to_owned(),
            aud: "self-test".to_owned(),
            sub: "self-test".to_owned(),
            sid: "self-test".to_owned(),
            jti: "self-test".to_owned(),
            iat: 1_000,
            exp: 1_060,
            nbf: None,
        };
        let token = self.sign(&claims)?;
        let verifier = Verifier::new("self-test", "self-test", [&self.jwk]);
        match verifier.verify(&token, 1_000) {
            Ok(back) if back == claims => Ok(()),
            _ => Err(KeyError::SelfTest),
        }
    }

    /// The key id.
    pub fn kid(&self) -> &str {
        &self.jwk.kid
    }

    /// The public key for the JWKS.
    pub fn jwk(&self) -> &Jwk {
        &self.jwk
    }

    /// Signs `claims` into a compact JWT.
    pub fn sign(&self, claims: &AccessClaims) -> Result<String, KeyError> {
        #[derive(Serialize)]
        struct Header<'a> {
            alg: &'static str,
            typ: &'static str,
            kid: &'a str,
        }
        let header = serde_json::to_vec(&Header {
            alg: "RS256",
            typ: "JWT",
            kid: &self.jwk.kid,
        })
        .map_err(|_| KeyError::Encode)?;
        let payload = serde_json::to_vec(claims).map_err(|_| KeyError::Encode)?;
        let mut token = String::with_capacity(
            (header.len() + payload.len()) * 4 / 3 + self.pair.public_modulus_len() * 4 / 3 + 8,
        );
        B64URL.encode_string(&header, &mut token);
        token.push('.');
        B64URL.encode_string(&payload, &mut token);
        let mut sig = vec![0u8; self.pair.public_modulus_len()];
        let rng = aws_lc_rs::rand::SystemRandom::new();
        self.pair
            .sign(&RSA_PKCS1_SHA256, &rng, token.as_bytes(), &mut sig)
            .map_err(|_| KeyError::SelfTest)?;
        token.push('.');
        B64URL.encode_string(&sig, &mut token);
        Ok(token)
    }
}

/// Checks access tokens against the published keys.
pub struct Verifier {
    keys: HashMap<String, DecodingKey>,
    validation: Validation,
}

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Verifier")
            .field("kids", &self.keys.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Verifier {
    /// A verifier accepting tokens from `issuer` for `audience` signed by any of `keys`.
    pub fn new<'a>(issuer: &str, audience: &str, keys: impl IntoIterator<Item = &'a Jwk>) -> Self {
        let keys = keys
            .into_iter()
            .filter_map(|jwk| {
                DecodingKey::from_rsa_components(&jwk.n, &jwk.e)
                    .ok()
                    .map(|k| (jwk.kid.clone(), k))
            })
            .collect();
        let mut validation = Validation::new(Algorithm::RS256);
        // Time is checked below against the caller's clock.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.required_spec_claims.clear();
        validation.set_issuer(&[issuer]);
        validation.set_audience(&[audience]);
        Self { keys, validation }
    }

    /// Verifies `token` at `now` (Unix seconds) and returns its claims.
    pub fn verify(&self, token: &str, now: i64) -> Result<AccessClaims, Rejection> {
        use jsonwebtoken::errors::ErrorKind;
        if token.len() > MAX_TOKEN_BYTES {
            return Err(Rejection::TooLarge);
        }
        if token.bytes().filter(|b| *b == b'.').count() != 2 {
            return Err(Rejection::Malformed);
        }
        let header = jsonwebtoken::decode_header(token).map_err(|e| match e.kind() {
            // An `alg` the library does not know, such as `none`.
            ErrorKind::Json(_) | ErrorKind::InvalidAlgorithmName => Rejection::Algorithm,
            _ => Rejection::Malformed,
        })?;
        if header.alg != Algorithm::RS256 {
            return Err(Rejection::Algorithm);
        }
        if header.jku.is_some()
            || header.jwk.is_some()
            || header.x5u.is_some()
            || header.x5c.is_some()
            || header.x5t.is_some()
            || header.x5t_s256.is_some()
            || header.crit.is_some()
            || header.url.is_some()
            || !header.extras.inner().is_empty()
            || header
                .typ
                .as_deref()
                .is_some_and(|t| !t.eq_ignore_ascii_case("JWT") && t != "at+jwt")
        {
            return Err(Rejection::Header);
        }
        let key = header
            .kid
            .as_deref()
            .and_then(|kid| self.keys.get(kid))
            .ok_or(Rejection::UnknownKey)?;
        let data = jsonwebtoken::decode::<AccessClaims>(token, key, &self.validation).map_err(
            |e| match e.kind() {
                ErrorKind::InvalidSignature => Rejection::Signature,
                ErrorKind::InvalidIssuer => Rejection::Issuer,
                ErrorKind::InvalidAudience => Rejection::Audience,
                ErrorKind::InvalidAlgorithm => Rejection::Algorithm,
                _ => Rejection::Malformed,
            },
        )?;
        let c = data.claims;
        if now > c.exp.saturating_add(LEEWAY_SECS) {
            return Err(Rejection::Expired);
        }
        if c.iat > now.saturating_add(LEEWAY_SECS)
            || c.nbf
                .is_some_and(|nbf| nbf > now.saturating_add(LEEWAY_SECS))
            || c.exp.saturating_sub(c.iat) > MAX_LIFETIME_SECS
        {
            return Err(Rejection::NotYetValid);
        }
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
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
        }
    }

    fn key() -> SigningKey {
        static KEY: std::sync::OnceLock<Zeroizing<Vec<u8>>> = std::sync::OnceLock::new();
        let der = KEY.get_or_init(|| SigningKey::generate(2048).unwrap().1);
        SigningKey::from_pkcs8(der).unwrap()
    }

    fn verifier(k: &SigningKey) -> Verifier {
        Verifier::new("https://warden.test", "warden-api", [k.jwk()])
    }

    fn b64(v: &serde_json::Value) -> String {
        B64URL.encode(serde_json::to_vec(v).unwrap())
    }

    /// A token with any header, signed by `k` with any RSA padding.
    fn forge_rsa(
        k: &SigningKey,
        header: serde_json::Value,
        enc: &'static dyn RsaEncoding,
    ) -> String {
        let input = format!(
            "{}.{}",
            b64(&header),
            b64(&serde_json::to_value(claims(1_000)).unwrap())
        );
        let mut sig = vec![0u8; k.pair.public_modulus_len()];
        k.pair
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
        assert!(!format!("{k:?}").contains(&k.jwk().n));
    }

    #[test]
    fn only_the_offered_key_sizes_are_generated() {
        assert_eq!(SigningKey::generate(1024).err(), Some(KeyError::Size(1024)));
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

    #[test]
    fn hs256_keyed_with_our_public_key_is_refused() {
        let k = key();
        let input = format!(
            "{}.{}",
            b64(&serde_json::json!({"alg": "HS256", "kid": k.kid(), "typ": "JWT"})),
            b64(&serde_json::to_value(claims(1_000)).unwrap())
        );
        for secret in [
            k.jwk().n.as_bytes(),
            serde_json::to_vec(k.jwk()).unwrap().as_slice(),
        ] {
            let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, secret), input.as_bytes());
            let token = format!("{input}.{}", B64URL.encode(tag));
            assert_eq!(
                verifier(&k).verify(&token, 1_000),
                Err(Rejection::Algorithm)
            );
        }
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
        let other = SigningKey::generate(2048).unwrap().0;
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
        let mut sig = vec![0u8; k.pair.public_modulus_len()];
        k.pair
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
}
