//! Licence signatures: compact JWS (RFC 7515) signed ES256 (ECDSA P-256 with SHA-256, the
//! 64-byte `r || s` form of RFC 7518), so any standard JOSE library verifies a `.lic` file with
//! the operator's public key. The operator's key pair lives in PEM files: the private key as
//! PKCS#8 (`PRIVATE KEY`), the public key as SubjectPublicKeyInfo (`PUBLIC KEY`). A key's `kid`
//! is its RFC 7638 JWK thumbprint.
//!
//! Verification is strict before it is cryptographic: `alg` must be exactly `ES256`, `kid`
//! must name the configured key, and headers that point at or carry keys (`jku`, `jwk`, `x5u`,
//! `x5c`) or mark extensions critical (`crit`) are refused, as is anything over 16 KiB.

use aws_lc_rs::digest;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED, ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _,
    UnparsedPublicKey,
};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use serde_json::{Map, Value, json};
use zeroize::Zeroizing;

/// Largest licence accepted, in bytes.
pub const MAX_LICENSE_BYTES: usize = 16 * 1024;

/// The DER prefix of a P-256 SubjectPublicKeyInfo: SEQUENCE { SEQUENCE { id-ecPublicKey,
/// prime256v1 }, BIT STRING (0 unused bits) }, followed by the 65-byte uncompressed point.
const P256_SPKI_PREFIX: [u8; 26] = [
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a,
    0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];

/// A key that cannot be used, or a file that holds none.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// Not PEM, or PEM of another kind.
    #[error("not a PEM {0} (expected '-----BEGIN {0}-----')")]
    NotPem(&'static str),
    /// PEM of the right kind, but not a P-256 key.
    #[error("not an ECDSA P-256 key")]
    NotP256,
    /// The system could not generate or use a key.
    #[error("the key could not be generated or used")]
    Unusable,
    /// The signed licence would be over [`MAX_LICENSE_BYTES`], so no verifier would accept it.
    #[error(
        "the licence would be larger than {MAX_LICENSE_BYTES} bytes, which no installation accepts"
    )]
    TooLarge,
}

/// Why a licence was refused. Messages name the problem, never the licence's content.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    /// Over [`MAX_LICENSE_BYTES`].
    #[error("the licence file is too large")]
    TooLarge,
    /// Not a compact JWS with a JSON header and payload.
    #[error("not a licence file (expected a compact JWS)")]
    Malformed,
    /// `alg` other than ES256.
    #[error("the licence is not signed ES256")]
    Algorithm,
    /// A header that points at or carries a key, or marks extensions critical.
    #[error("the licence carries a header that is not accepted")]
    Header,
    /// The `kid` names another key.
    #[error("the licence was signed by another key")]
    OtherKey,
    /// The signature does not verify.
    #[error("the licence signature is invalid")]
    Signature,
}

/// The operator's signing key.
pub struct SigningKey {
    pair: EcdsaKeyPair,
    public: PublicKey,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.public.kid)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// A new P-256 key pair, with its private key as PKCS#8 PEM.
    pub fn generate() -> Result<(Self, Zeroizing<String>), KeyError> {
        let doc =
            EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new())
                .map_err(|_| KeyError::Unusable)?;
        let pem = Zeroizing::new(pem::encode(&pem::Pem::new(
            "PRIVATE KEY",
            doc.as_ref().to_vec(),
        )));
        Ok((Self::from_pkcs8(doc.as_ref())?, pem))
    }

    /// Reads a PKCS#8 PEM private key.
    pub fn from_pem(text: &str) -> Result<Self, KeyError> {
        let parsed = pem::parse(text).map_err(|_| KeyError::NotPem("PRIVATE KEY"))?;
        if parsed.tag() != "PRIVATE KEY" {
            return Err(KeyError::NotPem("PRIVATE KEY"));
        }
        let der = Zeroizing::new(parsed.into_contents());
        Self::from_pkcs8(&der)
    }

    fn from_pkcs8(der: &[u8]) -> Result<Self, KeyError> {
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der)
            .map_err(|_| KeyError::NotP256)?;
        let public = PublicKey::from_point(pair.public_key().as_ref())?;
        Ok(Self { pair, public })
    }

    /// The matching public key.
    pub fn public_key(&self) -> &PublicKey {
        &self.public
    }

    /// Signs `claims` as a compact JWS with header `{"alg":"ES256","typ":"JWT","kid":…}`.
    pub fn sign(&self, claims: &Value) -> Result<String, KeyError> {
        let header = json!({"alg": "ES256", "typ": "JWT", "kid": self.public.kid});
        self.sign_raw(&header.to_string(), &claims.to_string())
    }

    /// Signs a header and payload exactly as given (tests build malformed documents).
    fn sign_raw(&self, header: &str, payload: &str) -> Result<String, KeyError> {
        let signing_input = format!("{}.{}", B64URL.encode(header), B64URL.encode(payload));
        let sig = self
            .pair
            .sign(&SystemRandom::new(), signing_input.as_bytes())
            .map_err(|_| KeyError::Unusable)?;
        let token = format!("{signing_input}.{}", B64URL.encode(sig.as_ref()));
        // What is signed must verify: never hand out a licence the verifier refuses unread.
        if token.len() > MAX_LICENSE_BYTES {
            return Err(KeyError::TooLarge);
        }
        Ok(token)
    }
}

/// The operator's public key, which verifies licences.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey {
    point: Vec<u8>,
    kid: String,
}

impl PublicKey {
    fn from_point(point: &[u8]) -> Result<Self, KeyError> {
        if point.len() != 65 || point[0] != 0x04 {
            return Err(KeyError::NotP256);
        }
        // RFC 7638: SHA-256 over the required members in lexicographic order, no whitespace.
        let thumbprint_input = format!(
            r#"{{"crv":"P-256","kty":"EC","x":"{}","y":"{}"}}"#,
            B64URL.encode(&point[1..33]),
            B64URL.encode(&point[33..65])
        );
        let kid = B64URL.encode(digest::digest(&digest::SHA256, thumbprint_input.as_bytes()));
        Ok(Self {
            point: point.to_vec(),
            kid,
        })
    }

    /// Reads a SubjectPublicKeyInfo PEM (`-----BEGIN PUBLIC KEY-----`) holding a P-256 key.
    pub fn from_pem(text: &str) -> Result<Self, KeyError> {
        let parsed = pem::parse(text).map_err(|_| KeyError::NotPem("PUBLIC KEY"))?;
        Self::from_parsed(&parsed)
    }

    /// Reads every key of a PEM bundle (several `PUBLIC KEY` blocks); empty text is no key.
    pub fn all_from_pem(text: &str) -> Result<Vec<Self>, KeyError> {
        let blocks = pem::parse_many(text).map_err(|_| KeyError::NotPem("PUBLIC KEY"))?;
        blocks.iter().map(Self::from_parsed).collect()
    }

    fn from_parsed(parsed: &pem::Pem) -> Result<Self, KeyError> {
        if parsed.tag() != "PUBLIC KEY" {
            return Err(KeyError::NotPem("PUBLIC KEY"));
        }
        let der = parsed.contents();
        let point = der
            .strip_prefix(&P256_SPKI_PREFIX[..])
            .ok_or(KeyError::NotP256)?;
        Self::from_point(point)
    }

    /// As SubjectPublicKeyInfo PEM.
    pub fn to_pem(&self) -> String {
        let mut der = P256_SPKI_PREFIX.to_vec();
        der.extend_from_slice(&self.point);
        pem::encode(&pem::Pem::new("PUBLIC KEY", der))
    }

    /// The key id: its RFC 7638 JWK thumbprint (base64url SHA-256).
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// Checks a licence's header and signature; returns its payload (JSON object).
    pub fn verify(&self, token: &str) -> Result<Map<String, Value>, Rejection> {
        let token = token.trim();
        if token.len() > MAX_LICENSE_BYTES {
            return Err(Rejection::TooLarge);
        }
        let mut parts = token.split('.');
        let (Some(h), Some(p), Some(s), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(Rejection::Malformed);
        };
        // Repeated members are refused: another reader could keep a different one.
        let header = B64URL
            .decode(h)
            .ok()
            .and_then(|b| crate::strict_json::object(&b))
            .ok_or(Rejection::Malformed)?;
        if header.get("alg").and_then(Value::as_str) != Some("ES256") {
            return Err(Rejection::Algorithm);
        }
        if ["jku", "jwk", "x5u", "x5c", "crit"]
            .iter()
            .any(|k| header.contains_key(*k))
        {
            return Err(Rejection::Header);
        }
        if header.get("kid").and_then(Value::as_str) != Some(self.kid.as_str()) {
            return Err(Rejection::OtherKey);
        }
        let sig = B64URL.decode(s).map_err(|_| Rejection::Malformed)?;
        if sig.len() != 64 {
            return Err(Rejection::Signature);
        }
        let signing_input = &token[..h.len() + 1 + p.len()];
        UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, &self.point)
            .verify(signing_input.as_bytes(), &sig)
            .map_err(|_| Rejection::Signature)?;
        B64URL
            .decode(p)
            .ok()
            .and_then(|b| crate::strict_json::object(&b))
            .ok_or(Rejection::Malformed)
    }
}

/// The operator keys a build or an installation trusts: a licence verifies if any of them
/// signed it (the one its `kid` names).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OperatorKeys(Vec<PublicKey>);

impl OperatorKeys {
    /// These keys (duplicates dropped).
    pub fn new(keys: impl IntoIterator<Item = PublicKey>) -> Self {
        let mut out: Vec<PublicKey> = Vec::new();
        for k in keys {
            if !out.contains(&k) {
                out.push(k);
            }
        }
        Self(out)
    }

    /// Whether there is no key at all.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// How many keys.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// The key ids.
    pub fn kids(&self) -> Vec<&str> {
        self.0.iter().map(PublicKey::kid).collect()
    }

    /// Verifies with the key the licence names; [`Rejection::OtherKey`] when none is ours.
    pub fn verify(&self, token: &str) -> Result<Map<String, Value>, Rejection> {
        for key in &self.0 {
            match key.verify(token) {
                Err(Rejection::OtherKey) => continue,
                result => return result,
            }
        }
        // No key of ours is named: report what checking against any key says (a malformed
        // or oversized token says so rather than "other key").
        match self.0.first().map(|k| k.verify(token)) {
            Some(Err(e)) => Err(e),
            _ => Err(Rejection::OtherKey),
        }
    }
}

/// A licence's payload, read without verifying anything: for display only (`warden license
/// inspect`, the status of a stored licence that no longer verifies).
pub fn unverified_payload(token: &str) -> Option<Map<String, Value>> {
    let payload = token.trim().split('.').nth(1)?;
    let bytes = B64URL.decode(payload).ok()?;
    serde_json::from_slice(&bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flip(token: &str, index: usize) -> String {
        let mut bytes = token.as_bytes().to_vec();
        bytes[index] = if bytes[index] == b'A' { b'B' } else { b'A' };
        String::from_utf8(bytes).unwrap()
    }

    #[test]
    fn a_signed_licence_verifies_and_any_change_or_other_key_is_refused() {
        let (key, pem) = SigningKey::generate().unwrap();
        assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----"));
        let again = SigningKey::from_pem(&pem).unwrap();
        assert_eq!(again.public_key(), key.public_key());
        let public = PublicKey::from_pem(&key.public_key().to_pem()).unwrap();
        assert_eq!(&public, key.public_key());

        let claims = json!({"jti": "lic-1", "customer": "Acme", "exp": 2_000_000_000});
        let token = key.sign(&claims).unwrap();
        let got = public.verify(&token).unwrap();
        assert_eq!(Value::Object(got), claims);

        // Every byte of the payload and of the signature matters.
        let dots: Vec<usize> = token.match_indices('.').map(|(i, _)| i).collect();
        for i in (dots[0] + 1..dots[1]).chain(dots[1] + 1..token.len() - 1) {
            let tampered = flip(&token, i);
            if tampered != token {
                assert!(public.verify(&tampered).is_err(), "byte {i}");
            }
        }
        let (other, _) = SigningKey::generate().unwrap();
        assert_eq!(
            public.verify(&other.sign(&claims).unwrap()),
            Err(Rejection::OtherKey)
        );
        // Another key claiming our kid still fails on the signature.
        let forged = other.sign(&claims).unwrap();
        let forged_header =
            B64URL.encode(json!({"alg": "ES256", "typ": "JWT", "kid": public.kid()}).to_string());
        let rest = forged.split_once('.').unwrap().1;
        assert_eq!(
            public.verify(&format!("{forged_header}.{rest}")),
            Err(Rejection::Signature)
        );
    }

    /// Found by the licence fuzz target: JSON numbers read with serde_json's default (fast,
    /// not always exact) float parser came back one unit in the last place off, so a signed
    /// licence's claims did not verify to the claims signed.
    #[test]
    fn claims_with_any_number_verify_to_exactly_what_was_signed() {
        let (key, _) = SigningKey::generate().unwrap();
        for n in [
            4.101_111_111_111_111e38,
            0.1,
            f64::MAX,
            5e-324,
            -0.0,
            1e23,
            7.0,
        ] {
            let claims = json!({ "n": n, "seats": 7 });
            let got = key
                .public_key()
                .verify(&key.sign(&claims).unwrap())
                .unwrap();
            assert_eq!(got["n"].as_f64(), Some(n), "{n:e}");
            assert_eq!(Value::Object(got), claims);
        }
    }

    #[test]
    fn other_algorithms_and_key_carrying_headers_are_refused() {
        let (key, _) = SigningKey::generate().unwrap();
        let public = key.public_key().clone();
        let payload = B64URL.encode(json!({"jti": "x"}).to_string());
        let kid = public.kid().to_owned();
        for (header, expected) in [
            (json!({"alg": "none", "kid": kid}), Rejection::Algorithm),
            (json!({"alg": "HS256", "kid": kid}), Rejection::Algorithm),
            (json!({"alg": "RS256", "kid": kid}), Rejection::Algorithm),
            (json!({"alg": "ES384", "kid": kid}), Rejection::Algorithm),
            (json!({"alg": "es256", "kid": kid}), Rejection::Algorithm),
            (json!({"kid": kid}), Rejection::Algorithm),
            (
                json!({"alg": "ES256", "kid": kid, "jwk": {}}),
                Rejection::Header,
            ),
            (
                json!({"alg": "ES256", "kid": kid, "jku": "http://127.0.0.1/k"}),
                Rejection::Header,
            ),
            (
                json!({"alg": "ES256", "kid": kid, "crit": ["exp"]}),
                Rejection::Header,
            ),
            (json!({"alg": "ES256"}), Rejection::OtherKey),
        ] {
            let h = B64URL.encode(header.to_string());
            for sig in ["", "AAAA"] {
                assert_eq!(
                    public.verify(&format!("{h}.{payload}.{sig}")),
                    Err(expected),
                    "{header}"
                );
            }
        }
        for bad in ["", "a.b", "a.b.c.d", "!!.!!.!!"] {
            assert_eq!(public.verify(bad), Err(Rejection::Malformed), "{bad}");
        }
        assert_eq!(
            public.verify(&"a".repeat(MAX_LICENSE_BYTES + 1)),
            Err(Rejection::TooLarge)
        );
    }

    #[test]
    fn the_signer_refuses_a_licence_the_verifier_would_refuse_as_too_large() {
        // Found by the `license` fuzz target: a signed licence over the verifier's limit.
        let (key, _) = SigningKey::generate().unwrap();
        let big = json!({ "sub": "x".repeat(MAX_LICENSE_BYTES) });
        assert_eq!(key.sign(&big), Err(KeyError::TooLarge));
        let fits = json!({ "sub": "x".repeat(MAX_LICENSE_BYTES / 2) });
        let token = key.sign(&fits).unwrap();
        assert!(key.public_key().verify(&token).is_ok());
    }

    #[test]
    fn a_repeated_member_in_the_header_or_payload_is_refused_even_when_signed() {
        let (key, _) = SigningKey::generate().unwrap();
        let public = key.public_key().clone();
        let kid = public.kid().to_owned();
        let header = format!(r#"{{"alg":"ES256","typ":"JWT","kid":"{kid}"}}"#);
        let good = key.sign_raw(&header, r#"{"jti":"l","exp":1}"#).unwrap();
        assert!(public.verify(&good).is_ok());
        for payload in [
            r#"{"jti":"l","exp":1,"exp":4000000000}"#,
            r#"{"jti":"l","features":["a"],"features":["a","b"]}"#,
            r#"{"jti":"l","caps":{"hosts":1,"hosts":9}}"#,
        ] {
            let token = key.sign_raw(&header, payload).unwrap();
            assert_eq!(
                public.verify(&token),
                Err(Rejection::Malformed),
                "{payload}"
            );
        }
        let twice = format!(r#"{{"alg":"ES256","alg":"ES256","kid":"{kid}"}}"#);
        let token = key.sign_raw(&twice, r#"{"jti":"l"}"#).unwrap();
        assert_eq!(public.verify(&token), Err(Rejection::Malformed));
    }

    #[test]
    fn a_bundle_of_operator_keys_verifies_licences_from_any_of_them() {
        let (a, _) = SigningKey::generate().unwrap();
        let (b, _) = SigningKey::generate().unwrap();
        let (c, _) = SigningKey::generate().unwrap();
        let bundle = format!("{}\n{}", a.public_key().to_pem(), b.public_key().to_pem());
        let keys = OperatorKeys::new(PublicKey::all_from_pem(&bundle).unwrap());
        assert_eq!(keys.len(), 2);
        let claims = json!({"jti": "x"});
        assert!(keys.verify(&a.sign(&claims).unwrap()).is_ok());
        assert!(keys.verify(&b.sign(&claims).unwrap()).is_ok());
        assert_eq!(
            keys.verify(&c.sign(&claims).unwrap()),
            Err(Rejection::OtherKey)
        );
        assert!(PublicKey::all_from_pem("").unwrap().is_empty());
        assert!(
            PublicKey::all_from_pem("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----")
                .is_err()
        );
    }

    #[test]
    fn only_p256_keys_in_the_right_pem_are_accepted() {
        let (key, private) = SigningKey::generate().unwrap();
        assert_eq!(
            PublicKey::from_pem(&private),
            Err(KeyError::NotPem("PUBLIC KEY"))
        );
        assert!(SigningKey::from_pem(&key.public_key().to_pem()).is_err());
        assert_eq!(
            PublicKey::from_pem("not pem"),
            Err(KeyError::NotPem("PUBLIC KEY"))
        );
        let bogus = pem::encode(&pem::Pem::new(
            "PUBLIC KEY",
            vec![0x30, 0x03, 0x02, 0x01, 0x01],
        ));
        assert_eq!(PublicKey::from_pem(&bogus), Err(KeyError::NotP256));
    }
}
