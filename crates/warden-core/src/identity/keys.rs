//! The signing keys: the newest signs, every published one verifies. Stored sealed by the
//! keyring (bound to its kid), so every node sharing the database shares them; each load
//! runs the key's sign/verify self-test.

use warden_crypto::jwt::{AccessClaims, Jwk, KeyError, Rejection, SigningKey, Verifier};
use warden_crypto::{Context, Keyring};
use warden_domain::audit::NewEvent;
use warden_domain::clock::Clock;
use warden_store::audit::ChainKey;
use warden_store::{Store, StoreError};

use super::{AUDIENCE, now_us};
use crate::settings::AuthConfig;

/// The keys in use: one signs, all verify, all are published.
#[derive(Debug)]
pub struct KeySet {
    signer: SigningKey,
    verifier: Verifier,
    jwks: Vec<Jwk>,
}

impl KeySet {
    /// Signs claims with the current key.
    pub fn sign(&self, claims: &AccessClaims) -> Result<String, KeyError> {
        self.signer.sign(claims)
    }

    /// Verifies a token against every published key.
    pub fn verify(&self, token: &str, now: i64) -> Result<AccessClaims, Rejection> {
        self.verifier.verify(token, now)
    }

    /// The published public keys, newest first.
    pub fn jwks(&self) -> &[Jwk] {
        &self.jwks
    }

    /// The kid that signs.
    pub fn current_kid(&self) -> &str {
        self.signer.kid()
    }

    /// Every published kid.
    pub fn kids(&self) -> Vec<&str> {
        self.jwks.iter().map(|j| j.kid.as_str()).collect()
    }
}

pub(crate) fn context(kid: &str) -> Context {
    Context::new("warden.signing_key").with(kid)
}

/// Loads the published keys, or `None` if there are none yet.
pub(super) async fn load(
    store: &Store,
    keyring: &Keyring,
    clock: &dyn Clock,
    config: &AuthConfig,
) -> Result<Option<KeySet>, StoreError> {
    let mut tx = store.begin_read().await?;
    let rows = tx.signing_keys(now_us(clock)).await?;
    tx.commit().await?;
    let now = now_us(clock);
    let Some(newest) = rows
        .iter()
        .find(|r| r.activate_at <= now)
        .or_else(|| rows.last())
    else {
        return Ok(None);
    };
    let der = keyring.open(&context(&newest.kid), &newest.sealed)?;
    let signer = SigningKey::from_pkcs8(&der).map_err(|e| StoreError::Invalid(e.to_string()))?;
    if signer.kid() != newest.kid {
        return Err(StoreError::Invalid(
            "a stored signing key does not match its kid".to_owned(),
        ));
    }
    let jwks: Vec<Jwk> = rows
        .iter()
        .filter_map(|r| serde_json::from_str(&r.public_jwk).ok())
        .collect();
    let verifier = Verifier::new(&config.issuer, AUDIENCE, jwks.iter());
    Ok(Some(KeySet {
        signer,
        verifier,
        jwks,
    }))
}

/// Loads the keys, creating the first one on a fresh database (before serving: every node
/// sharing the database must see the same first key; P-256 is instant, RSA-3072 ~0.4 s).
pub(super) async fn load_or_create(
    store: &Store,
    keyring: &Keyring,
    clock: &dyn Clock,
    config: &AuthConfig,
) -> Result<KeySet, StoreError> {
    if let Some(keys) = load(store, keyring, clock, config).await? {
        return Ok(keys);
    }
    add_key(store, keyring, clock, config, 0, 0, None).await?;
    load(store, keyring, clock, config)
        .await?
        .ok_or_else(|| StoreError::Invalid("no signing key after creating one".to_owned()))
}

/// Generates a key and stores it sealed; it signs from `activate_in_secs` on, and older keys
/// stay published for `keep_older_secs`. Returns the new kid.
pub async fn add_key(
    store: &Store,
    keyring: &Keyring,
    clock: &dyn Clock,
    config: &AuthConfig,
    activate_in_secs: i64,
    keep_older_secs: i64,
    audit: Option<(&ChainKey, &mut NewEvent)>,
) -> Result<String, StoreError> {
    let kind = config.signing_key;
    let (key, der) = tokio::task::spawn_blocking(move || SigningKey::generate(kind))
        .await
        .map_err(|e| StoreError::Invalid(format!("key generation stopped: {e}")))?
        .map_err(|e| StoreError::Invalid(e.to_string()))?;
    let sealed = keyring.seal(&context(key.kid()), &der)?;
    let jwk = serde_json::to_string(key.jwk()).map_err(|e| StoreError::Invalid(e.to_string()))?;
    let now = now_us(clock);
    let mut tx = store.begin().await?;
    tx.add_signing_key(
        key.kid(),
        &sealed,
        &jwk,
        now,
        now + activate_in_secs * 1_000_000,
        now + keep_older_secs * 1_000_000,
    )
    .await?;
    if let Some((chain, event)) = audit {
        event.resource_id = Some(key.kid().to_owned());
        tx.record(chain, event).await?;
    }
    tx.commit().await?;
    Ok(key.kid().to_owned())
}

/// How long after a rotation the new key starts signing: every node reloads keys at least
/// every [`RELOAD_SECS`], so by then all of them publish and accept it.
pub const ACTIVATION_DELAY_SECS: i64 = 2 * RELOAD_SECS;
/// How often each node reloads the signing keys.
pub const RELOAD_SECS: i64 = 30;

/// `warden keys rotate-signing`: a new signing key, audited. It is published at once and
/// signs after [`ACTIVATION_DELAY_SECS`]; the previous keys stay published until every
/// token they may still sign has expired.
pub async fn rotate(
    store: &Store,
    keyring: &Keyring,
    chain: &ChainKey,
    config: &AuthConfig,
    clock: &dyn Clock,
) -> Result<String, StoreError> {
    let ttl = i64::try_from(config.access_token_ttl.as_secs()).unwrap_or(3600);
    let keep = ACTIVATION_DELAY_SECS + RELOAD_SECS + ttl + 2 * warden_crypto::jwt::LEEWAY_SECS;
    let mut event = crate::Op::new(
        warden_domain::audit::Actor::system(),
        crate::Origin::default(),
        clock,
    )
    .event_with(
        "auth.signing_key_rotated",
        "signing_key",
        None,
        warden_domain::audit::Outcome::Success,
        serde_json::json!({
            "signs_after_secs": ACTIVATION_DELAY_SECS,
            "old_keys_published_for_secs": keep,
        }),
    );
    add_key(
        store,
        keyring,
        clock,
        config,
        ACTIVATION_DELAY_SECS,
        keep,
        Some((chain, &mut event)),
    )
    .await
}

/// What `warden keys revoke-signing` did.
#[derive(Debug)]
pub struct Revoked {
    /// A key made to sign in its place (when the revoked key was the one signing).
    pub replacement: Option<String>,
    /// Whether every live node applied it before the wait ran out.
    pub applied_everywhere: bool,
}

/// `warden keys revoke-signing KID`: withdraws a key at once (it leaves the JWKS, no node
/// verifies with it, every node drops its cached verifications) and, when it was the key
/// signing, makes a new one that signs at once. Waits until every live node applied it, so
/// each token the key signed is refused on its next request anywhere.
pub async fn revoke(
    store: &Store,
    keyring: &Keyring,
    chain: &ChainKey,
    config: &AuthConfig,
    clock: &dyn Clock,
    kid: &str,
) -> Result<Option<Revoked>, StoreError> {
    let now = now_us(clock);
    let mut tx = store.begin_read().await?;
    let published = tx.signing_keys(now).await?;
    tx.commit().await?;
    let Some(target) = published.iter().find(|k| k.kid == kid) else {
        return Ok(None);
    };
    let signing = published.iter().find(|r| r.activate_at <= now);
    let signs_now = signing.is_none_or(|s| s.kid == target.kid);
    let others_left = published.iter().any(|k| k.kid != target.kid);
    let replacement = if signs_now || !others_left {
        let ttl = i64::try_from(config.access_token_ttl.as_secs()).unwrap_or(3600);
        let keep = ttl + 2 * warden_crypto::jwt::LEEWAY_SECS;
        Some(add_key(store, keyring, clock, config, 0, keep, None).await?)
    } else {
        None
    };
    let mut tx = store.begin().await?;
    if !tx.withdraw_signing_key(kid, now).await? {
        tx.rollback().await?;
        return Ok(None);
    }
    let position = tx
        .log_revocation("signing_key", uuid::Uuid::now_v7(), now)
        .await?;
    let event = crate::Op::new(
        warden_domain::audit::Actor::system(),
        crate::Origin::default(),
        clock,
    )
    .event_with(
        "auth.signing_key_revoked",
        "signing_key",
        Some(kid.to_owned()),
        warden_domain::audit::Outcome::Success,
        serde_json::json!({ "replacement": replacement }),
    );
    tx.record(chain, &event).await?;
    tx.commit().await?;
    let applied_everywhere = super::wait_for_nodes(store, clock, position).await;
    Ok(Some(Revoked {
        replacement,
        applied_everywhere,
    }))
}
