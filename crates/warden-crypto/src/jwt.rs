//! Access tokens: JWTs signed ES256 (P-256, the default) or RS256 (RSA) with keys that
//! aws-lc-rs generates and signs with; each published key verifies its own algorithm only.
//! Verification goes through `jsonwebtoken` (aws-lc-rs backend) after a strict look at the
//! header, and checks time against the caller's clock, not the system's.
//!
//! Refused, whatever the signature: any `alg` but the key's own (`none`, HS*, PS*, ES384,
//! RS384, ES256 on an RSA key, RS256 on a P-256 key),
//! an unknown `kid`, `jku`/`x5u`/`jwk`/`x5c` and other key-carrying or critical headers,
//! tokens over 8 KiB, a wrong `iss` or `aud`, expiry beyond a 30 s leeway, and `iat`/`nbf`
//! in the future.

use std::collections::HashMap;
use std::fmt;

use aws_lc_rs::rsa::{KeyPair, KeySize};
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _, RSA_PKCS1_SHA256,
};
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
    /// `alg` other than the key's own (RS256 for RSA, ES256 for P-256).
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
    /// Only 2048, 3072 and 4096 bits are offered for RSA.
    #[error("RSA key size must be 2048, 3072 or 4096 bits, not {0}")]
    Size(u32),
    /// Key generation failed.
    #[error("key generation failed")]
    Generate,

    /// The stored key does not parse.
    #[error("the stored signing key is not a valid RSA or P-256 private key")]
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
    /// The organization the session acts in, when not the default one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org: Option<String>,
}

/// What kind of key signs new access tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// ECDSA P-256 with SHA-256 (`ES256`): ~128-bit security, a signature in tens of
    /// microseconds.
    Es256,
    /// RSA PKCS#1 v1.5 with SHA-256 (`RS256`), of 2048, 3072 or 4096 bits.
    Rs256(u32),
}

/// A public key as published in the JWKS (RFC 7517/7518): an `RSA` key carries `n` and `e`,
/// an `EC` key `crv`, `x` and `y`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jwk {
    /// `RSA` or `EC`.
    pub kty: String,
    /// Always `sig`.
    #[serde(rename = "use")]
    pub use_: String,
    /// `RS256` for an RSA key, `ES256` for a P-256 key: each key signs with one algorithm.
    pub alg: String,
    /// Key id (RFC 7638 thumbprint).
    pub kid: String,
    /// RSA modulus, base64url.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n: Option<String>,
    /// RSA exponent, base64url.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub e: Option<String>,
    /// EC curve: `P-256`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crv: Option<String>,
    /// EC point x, base64url.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub x: Option<String>,
    /// EC point y, base64url.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub y: Option<String>,
}

impl Jwk {
    /// The algorithm this key verifies and the key to verify with, or `None` for a key this
    /// server would not have published (another type, curve or algorithm, bad encoding).
    fn decoding_key(&self) -> Option<(Algorithm, DecodingKey)> {
        match (self.kty.as_str(), self.alg.as_str()) {
            ("RSA", "RS256") => {
                DecodingKey::from_rsa_components(self.n.as_deref()?, self.e.as_deref()?)
                    .ok()
                    .map(|k| (Algorithm::RS256, k))
            }
            ("EC", "ES256") if self.crv.as_deref() == Some("P-256") => {
                DecodingKey::from_ec_components(self.x.as_deref()?, self.y.as_deref()?)
                    .ok()
                    .map(|k| (Algorithm::ES256, k))
            }
            _ => None,
        }
    }
}

enum Pair {
    Rsa(KeyPair),
    Ec(EcdsaKeyPair),
}

/// A private key that signs access tokens (RSA or P-256). Never printed.
pub struct SigningKey {
    pair: Pair,
    jwk: Jwk,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.jwk.kid)
            .field("alg", &self.jwk.alg)
            .finish_non_exhaustive()
    }
}

/// RFC 7638: SHA-256 over the required members in lexicographic order, base64url.
fn thumbprint(canonical: &str) -> String {
    B64URL.encode(digest::digest(&digest::SHA256, canonical.as_bytes()))
}

impl SigningKey {
    /// Generates a key of `kind`. Returns it with its PKCS#8 encoding, to be sealed before it
    /// is stored.
    pub fn generate(kind: KeyKind) -> Result<(Self, Zeroizing<Vec<u8>>), KeyError> {
        let der = match kind {
            KeyKind::Es256 => {
                let doc = EcdsaKeyPair::generate_pkcs8(
                    &ECDSA_P256_SHA256_FIXED_SIGNING,
                    &aws_lc_rs::rand::SystemRandom::new(),
                )
                .map_err(|_| KeyError::Generate)?;
                Zeroizing::new(doc.as_ref().to_vec())
            }
            KeyKind::Rs256(bits) => {
                let size = match bits {
                    2048 => KeySize::Rsa2048,
                    3072 => KeySize::Rsa3072,
                    4096 => KeySize::Rsa4096,
                    other => return Err(KeyError::Size(other)),
                };
                let pair = KeyPair::generate(size).map_err(|_| KeyError::Generate)?;
                let der = pair.as_der().map_err(|_| KeyError::Generate)?;
                Zeroizing::new(der.as_ref().to_vec())
            }
        };
        Ok((Self::from_pkcs8(&der)?, der))
    }

    /// Loads a stored PKCS#8 key (RSA or P-256) and runs the self-test.
    pub fn from_pkcs8(der: &[u8]) -> Result<Self, KeyError> {
        let pair = match KeyPair::from_pkcs8(der) {
            Ok(rsa) => Pair::Rsa(rsa),
            Err(_) => Pair::Ec(
                EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der)
                    .map_err(|_| KeyError::Parse)?,
            ),
        };
        let jwk = match &pair {
            Pair::Rsa(rsa) => {
                let public = rsa.public_key();
                let n = B64URL.encode(public.modulus().big_endian_without_leading_zero());
                let e = B64URL.encode(public.exponent().big_endian_without_leading_zero());
                Jwk {
                    kty: "RSA".to_owned(),
                    use_: "sig".to_owned(),
                    alg: "RS256".to_owned(),
                    kid: thumbprint(&format!(r#"{{"e":"{e}","kty":"RSA","n":"{n}"}}"#)),
                    n: Some(n),
                    e: Some(e),
                    crv: None,
                    x: None,
                    y: None,
                }
            }
            Pair::Ec(ec) => {
                // The uncompressed point: 0x04 ‖ x ‖ y, 32 bytes each on P-256.
                let point = ec.public_key().as_ref();
                if point.len() != 65 || point[0] != 4 {
                    return Err(KeyError::Parse);
                }
                let x = B64URL.encode(&point[1..33]);
                let y = B64URL.encode(&point[33..]);
                Jwk {
                    kty: "EC".to_owned(),
                    use_: "sig".to_owned(),
                    alg: "ES256".to_owned(),
                    kid: thumbprint(&format!(
                        r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#
                    )),
                    n: None,
                    e: None,
                    crv: Some("P-256".to_owned()),
                    x: Some(x),
                    y: Some(y),
                }
            }
        };
        let key = Self { pair, jwk };
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
            org: None,
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

    /// Signs `claims` into a compact JWT (`RS256` or `ES256`, as the key is).
    pub fn sign(&self, claims: &AccessClaims) -> Result<String, KeyError> {
        #[derive(Serialize)]
        struct Header<'a> {
            alg: &'a str,
            typ: &'static str,
            kid: &'a str,
        }
        let header = serde_json::to_vec(&Header {
            alg: &self.jwk.alg,
            typ: "JWT",
            kid: &self.jwk.kid,
        })
        .map_err(|_| KeyError::Encode)?;
        let payload = serde_json::to_vec(claims).map_err(|_| KeyError::Encode)?;
        let sig_len = match &self.pair {
            Pair::Rsa(rsa) => rsa.public_modulus_len(),
            Pair::Ec(_) => 64,
        };
        let mut token = String::with_capacity((header.len() + payload.len() + sig_len) * 4 / 3 + 8);
        B64URL.encode_string(&header, &mut token);
        token.push('.');
        B64URL.encode_string(&payload, &mut token);
        let rng = aws_lc_rs::rand::SystemRandom::new();
        let sig = match &self.pair {
            Pair::Rsa(rsa) => {
                let mut sig = vec![0u8; sig_len];
                rsa.sign(&RSA_PKCS1_SHA256, &rng, token.as_bytes(), &mut sig)
                    .map_err(|_| KeyError::SelfTest)?;
                sig
            }
            // The fixed-length r ‖ s encoding JWS asks for (RFC 7518 §3.4).
            Pair::Ec(ec) => ec
                .sign(&rng, token.as_bytes())
                .map_err(|_| KeyError::SelfTest)?
                .as_ref()
                .to_vec(),
        };
        token.push('.');
        B64URL.encode_string(&sig, &mut token);
        Ok(token)
    }
}

/// Checks access tokens against the published keys.
pub struct Verifier {
    keys: HashMap<String, (Algorithm, DecodingKey)>,
    /// For RS256 keys and for ES256 keys: `jsonwebtoken` wants every algorithm a validation
    /// names to be of the key's family.
    rs256: Validation,
    es256: Validation,
}

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Verifier")
            .field("kids", &self.keys.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Verifier {
    /// A verifier accepting tokens from `issuer` for `audience` signed by any of `keys`, each
    /// with its own algorithm only.
    pub fn new<'a>(issuer: &str, audience: &str, keys: impl IntoIterator<Item = &'a Jwk>) -> Self {
        let keys = keys
            .into_iter()
            .filter_map(|jwk| jwk.decoding_key().map(|k| (jwk.kid.clone(), k)))
            .collect();
        let validation = |alg| {
            let mut validation = Validation::new(alg);
            // Time is checked below against the caller's clock.
            validation.validate_exp = false;
            validation.validate_nbf = false;
            validation.required_spec_claims.clear();
            validation.set_issuer(&[issuer]);
            validation.set_audience(&[audience]);
            validation
        };
        Self {
            keys,
            rs256: validation(Algorithm::RS256),
            es256: validation(Algorithm::ES256),
        }
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
        if !matches!(header.alg, Algorithm::RS256 | Algorithm::ES256) {
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
        let (alg, key) = header
            .kid
            .as_deref()
            .and_then(|kid| self.keys.get(kid))
            .ok_or(Rejection::UnknownKey)?;
        // A key verifies only the algorithm it was made for: no RS256 header on a P-256 key,
        // no ES256 header on an RSA key.
        if header.alg != *alg {
            return Err(Rejection::Algorithm);
        }
        let validation = if *alg == Algorithm::ES256 {
            &self.es256
        } else {
            &self.rs256
        };
        let data =
            jsonwebtoken::decode::<AccessClaims>(token, key, validation).map_err(|e| {
                match e.kind() {
                    ErrorKind::InvalidSignature => Rejection::Signature,
                    ErrorKind::InvalidIssuer => Rejection::Issuer,
                    ErrorKind::InvalidAudience => Rejection::Audience,
                    ErrorKind::InvalidAlgorithm => Rejection::Algorithm,
                    _ => Rejection::Malformed,
                }
            })?;
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
mod tests;
