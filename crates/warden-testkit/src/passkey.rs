//! A software authenticator for attacking the passkey checks: it answers Warden's WebAuthn
//! options as a real authenticator would (ES256, `none` attestation, CBOR authenticator
//! data, a signature over authenticatorData ‖ SHA-256(clientDataJSON)), and each answer can
//! be bent one way — another origin, another ceremony type, the user-presence flag cleared,
//! another RP id, a chosen sign counter, someone else's credential id. (The browser tests
//! use Chromium's own virtual authenticator; this one lets a test change one byte.)

#![allow(clippy::expect_used, clippy::unwrap_used)]

use aws_lc_rs::digest::{SHA256, digest};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64U;
use ciborium::Value as Cbor;
use serde_json::{Value, json};

const UP: u8 = 0x01;
const UV: u8 = 0x04;
const AT: u8 = 0x40;

/// One bend of an answer (all `None`/`false`: an honest answer).
#[derive(Debug, Clone, Default)]
pub struct Bend {
    /// clientData `origin` instead of the authenticator's.
    pub origin: Option<String>,
    /// clientData `type` instead of the ceremony's own.
    pub ceremony_type: Option<String>,
    /// Leave the user-presence flag cleared.
    pub no_user_presence: bool,
    /// Hash this RP id instead of the one in the options.
    pub rp_id: Option<String>,
    /// Report this sign counter instead of the next one.
    pub counter: Option<u32>,
    /// Register under this credential id instead of the authenticator's.
    pub credential_id: Option<Vec<u8>>,
}

/// One credential on a software authenticator.
pub struct SoftPasskey {
    key: EcdsaKeyPair,
    /// The credential id.
    pub credential_id: Vec<u8>,
    /// The user handle the RP gave at registration.
    pub user_handle: Vec<u8>,
    /// The sign counter (incremented by every honest assertion).
    pub counter: u32,
    /// The origin it claims (the page's).
    pub origin: String,
}

impl std::fmt::Debug for SoftPasskey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SoftPasskey")
            .field("credential_id", &B64U.encode(&self.credential_id))
            .finish_non_exhaustive()
    }
}

fn b64(bytes: &[u8]) -> String {
    B64U.encode(bytes)
}

fn unb64(s: &str) -> Vec<u8> {
    B64U.decode(s.trim_end_matches('=')).expect("base64url")
}

fn client_data(kind: &str, challenge: &str, origin: &str) -> Vec<u8> {
    serde_json::to_vec(
        &json!({"type": kind, "challenge": challenge, "origin": origin, "crossOrigin": false}),
    )
    .unwrap()
}

fn cbor(v: &Cbor) -> Vec<u8> {
    let mut out = Vec::new();
    ciborium::into_writer(v, &mut out).unwrap();
    out
}

impl SoftPasskey {
    /// A new credential, answering as a page at `origin`.
    pub fn new(origin: &str) -> Self {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng).unwrap();
        let key =
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref()).unwrap();
        let mut id = vec![0u8; 32];
        aws_lc_rs::rand::fill(&mut id).unwrap();
        Self {
            key,
            credential_id: id,
            user_handle: Vec::new(),
            counter: 0,
            origin: origin.to_owned(),
        }
    }

    fn cose_key(&self) -> Vec<u8> {
        let point = self.key.public_key().as_ref();
        let (x, y) = (&point[1..33], &point[33..65]);
        cbor(&Cbor::Map(vec![
            (Cbor::Integer(1.into()), Cbor::Integer(2.into())),
            (Cbor::Integer(3.into()), Cbor::Integer((-7).into())),
            (Cbor::Integer((-1).into()), Cbor::Integer(1.into())),
            (Cbor::Integer((-2).into()), Cbor::Bytes(x.to_vec())),
            (Cbor::Integer((-3).into()), Cbor::Bytes(y.to_vec())),
        ]))
    }

    fn auth_data(&self, rp_id: &str, flags: u8, counter: u32, attested: Option<&[u8]>) -> Vec<u8> {
        let mut out = digest(&SHA256, rp_id.as_bytes()).as_ref().to_vec();
        out.push(flags);
        out.extend_from_slice(&counter.to_be_bytes());
        if let Some(id) = attested {
            out.extend_from_slice(&[0u8; 16]);
            out.extend_from_slice(&u16::try_from(id.len()).unwrap().to_be_bytes());
            out.extend_from_slice(id);
            out.extend_from_slice(&self.cose_key());
        }
        out
    }

    /// Answers registration `options` (`{"publicKey": …}` as Warden sends them), bent by
    /// `bend`: the `PublicKeyCredential` JSON to send back.
    pub fn register(&mut self, options: &Value, bend: &Bend) -> Value {
        let pk = &options["publicKey"];
        self.user_handle = unb64(pk["user"]["id"].as_str().unwrap());
        let rp_id = bend
            .rp_id
            .clone()
            .unwrap_or_else(|| pk["rp"]["id"].as_str().unwrap().to_owned());
        let origin = bend.origin.clone().unwrap_or_else(|| self.origin.clone());
        let kind = bend.ceremony_type.as_deref().unwrap_or("webauthn.create");
        let cdj = client_data(kind, pk["challenge"].as_str().unwrap(), &origin);
        let flags = if bend.no_user_presence {
            UV | AT
        } else {
            UP | UV | AT
        };
        let id = bend
            .credential_id
            .clone()
            .unwrap_or_else(|| self.credential_id.clone());
        let auth_data = self.auth_data(
            &rp_id,
            flags,
            bend.counter.unwrap_or(self.counter),
            Some(&id),
        );
        let att = cbor(&Cbor::Map(vec![
            (Cbor::Text("fmt".into()), Cbor::Text("none".into())),
            (Cbor::Text("attStmt".into()), Cbor::Map(vec![])),
            (Cbor::Text("authData".into()), Cbor::Bytes(auth_data)),
        ]));
        json!({
            "id": b64(&id), "rawId": b64(&id), "type": "public-key",
            "extensions": {},
            "response": {"attestationObject": b64(&att), "clientDataJSON": b64(&cdj)},
        })
    }

    /// Answers sign-in `options`, bent by `bend`. An honest answer counts the counter up.
    pub fn assert(&mut self, options: &Value, bend: &Bend) -> Value {
        let pk = &options["publicKey"];
        let rp_id = bend
            .rp_id
            .clone()
            .unwrap_or_else(|| pk["rpId"].as_str().unwrap().to_owned());
        let origin = bend.origin.clone().unwrap_or_else(|| self.origin.clone());
        let kind = bend.ceremony_type.as_deref().unwrap_or("webauthn.get");
        let cdj = client_data(kind, pk["challenge"].as_str().unwrap(), &origin);
        let flags = if bend.no_user_presence { UV } else { UP | UV };
        let counter = match bend.counter {
            Some(c) => c,
            None => {
                self.counter += 1;
                self.counter
            }
        };
        let auth_data = self.auth_data(&rp_id, flags, counter, None);
        let mut signed = auth_data.clone();
        signed.extend_from_slice(digest(&SHA256, &cdj).as_ref());
        let sig = self.key.sign(&SystemRandom::new(), &signed).unwrap();
        json!({
            "id": b64(&self.credential_id), "rawId": b64(&self.credential_id), "type": "public-key",
            "extensions": {},
            "response": {
                "authenticatorData": b64(&auth_data), "clientDataJSON": b64(&cdj),
                "signature": b64(sig.as_ref()), "userHandle": b64(&self.user_handle),
            },
        })
    }
}
