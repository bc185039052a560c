//! A hostile OpenID provider for the ID-token attack tests and the callback benchmark.

#![allow(clippy::unwrap_used)]

use std::sync::{Arc, Mutex};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
use axum::extract::State;
use axum::routing::{get, post};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use serde_json::{Value, json};
use warden_crypto::jwt::SigningKey;

/// A hostile OpenID provider at the network boundary: it serves discovery and keys in the
/// documented wire format and answers every code with the ID token the test put in `next`.
#[derive(Clone, Debug)]
pub struct Forger {
    /// Its issuer URL.
    pub base: String,
    /// The ID token the token endpoint hands out next.
    pub next: Arc<Mutex<String>>,
    /// The keys it publishes (replace them to rotate).
    pub jwks: Arc<Mutex<Value>>,
}

async fn discovery(State(f): State<Forger>) -> axum::Json<Value> {
    axum::Json(json!({
        "issuer": f.base,
        "authorization_endpoint": format!("{}/authorize", f.base),
        "token_endpoint": format!("{}/token", f.base),
        "jwks_uri": format!("{}/jwks", f.base),
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
    }))
}

/// Starts a forger publishing `jwks`.
pub async fn start_forger(jwks: Value) -> Forger {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let forger = Forger {
        base,
        next: Arc::default(),
        jwks: Arc::new(Mutex::new(jwks)),
    };
    let app = axum::Router::new()
        .route("/.well-known/openid-configuration", get(discovery))
        .route(
            "/jwks",
            get(
                |State(f): State<Forger>| async move { axum::Json(f.jwks.lock().unwrap().clone()) },
            ),
        )
        .route(
            "/token",
            post(|State(f): State<Forger>| async move {
                let id_token = f.next.lock().unwrap().clone();
                axum::Json(json!({"access_token": "at", "token_type": "Bearer",
                                  "expires_in": 60, "id_token": id_token}))
            }),
        )
        .with_state(forger.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    forger
}

/// An RSA key to sign ID tokens with, and its public JWK.
#[derive(Debug)]
pub struct Keys {
    /// The key pair.
    pub pair: RsaKeyPair,
    /// Its public key.
    pub jwk: warden_crypto::jwt::Jwk,
}

/// A fresh 2048-bit key.
pub fn keys() -> Keys {
    let (key, der) = SigningKey::generate(warden_crypto::jwt::KeyKind::Rs256(2048)).unwrap();
    Keys {
        pair: RsaKeyPair::from_pkcs8(&der).unwrap(),
        jwk: key.jwk().clone(),
    }
}

/// `claims` signed RS256 with `k`, under key id `kid`.
pub fn rs256(k: &Keys, kid: &str, claims: &Value) -> String {
    let header = json!({"alg": "RS256", "typ": "JWT", "kid": kid});
    let input = format!(
        "{}.{}",
        B64.encode(header.to_string()),
        B64.encode(claims.to_string())
    );
    let mut sig = vec![0; k.pair.public_modulus_len()];
    k.pair
        .sign(
            &RSA_PKCS1_SHA256,
            &SystemRandom::new(),
            input.as_bytes(),
            &mut sig,
        )
        .unwrap();
    format!("{input}.{}", B64.encode(sig))
}

/// `claims` with `alg: none`, or HMAC-signed (`HS256`) with `key`.
pub fn unsigned(alg: &str, kid: &str, claims: &Value, key: &[u8]) -> String {
    let header = json!({"alg": alg, "typ": "JWT", "kid": kid});
    let input = format!(
        "{}.{}",
        B64.encode(header.to_string()),
        B64.encode(claims.to_string())
    );
    match alg {
        "none" => format!("{input}."),
        _ => {
            let k = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, key);
            let tag = aws_lc_rs::hmac::sign(&k, input.as_bytes());
            format!("{input}.{}", B64.encode(tag.as_ref()))
        }
    }
}
