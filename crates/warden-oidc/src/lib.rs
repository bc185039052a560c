//! OpenID Connect relying party for Warden's single sign-on. One [`Oidc`] per node caches
//! each provider's discovery document and keys (refetched after an hour, and on an unknown
//! signing key at most once a minute), builds authorization requests (code flow, PKCE S256,
//! `state`, `nonce`) and finishes them: code exchange and ID-token verification by the
//! `openidconnect` crate — signature with the provider's published keys (asymmetric
//! algorithms only: `none` and HMAC are refused), `iss`, `aud`, `exp`, `iat`, `nonce` — and
//! here `azp` (which the crate leaves alone).
//! Every call goes through [`http::Client`]. Ages are counted on the caller's clock. Nothing here keeps state about a person: the
//! caller stores `state`, `nonce` and the PKCE verifier and hands them back.

#![forbid(unsafe_code)]

pub mod http;

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreJwsSigningAlgorithm, CoreProviderMetadata,
};
use openidconnect::{
    AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl, Nonce, OAuth2TokenResponse,
    PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, Scope, TokenResponse,
};

/// How long a discovery document and its keys are used before they are fetched again.
const METADATA_TTL: Duration = Duration::from_secs(3600);
/// An unknown signing key refetches the keys at most this often (per provider).
const REFETCH_EVERY: Duration = Duration::from_secs(60);
/// How far an ID token's `iat` may be ahead of this node's clock.
const CLOCK_SKEW_SECS: i64 = 120;

/// What Warden knows of a provider to talk to it.
#[derive(Clone)]
pub struct Provider {
    /// The issuer URL (discovery is at `<issuer>/.well-known/openid-configuration`).
    pub issuer: String,
    /// The client id.
    pub client_id: String,
    /// The client secret (confidential client), if any.
    pub client_secret: Option<String>,
    /// Scopes beyond `openid`.
    pub scopes: Vec<String>,
    /// Whether the provider may live on private, loopback or link-local addresses.
    pub allow_private_network: bool,
    /// Where the provider sends the browser back.
    pub redirect_uri: String,
}

impl std::fmt::Debug for Provider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Provider")
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

/// An authorization request to send the browser to, and what to keep until the callback.
#[derive(Debug)]
pub struct Begun {
    /// The provider's authorization URL with every parameter.
    pub url: String,
    /// The `state` parameter (compare at the callback).
    pub state: String,
    /// The `nonce` the ID token must carry.
    pub nonce: String,
    /// The PKCE verifier for the code exchange.
    pub pkce_verifier: String,
}

/// Who the provider says signed in, after every check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The issuer (as in the token).
    pub issuer: String,
    /// The subject: with the issuer, the person's stable key.
    pub subject: String,
    /// Their email, as the provider has it.
    pub email: Option<String>,
    /// Whether the provider asserts it verified that email.
    pub email_verified: bool,
    /// Their name.
    pub name: Option<String>,
}

/// Why a sign-in with a provider failed. The text names the reason, never a secret.
#[derive(Debug, thiserror::Error)]
pub enum OidcError {
    /// The provider could not be reached or its documents are unusable (or its address is
    /// refused).
    #[error("provider: {0}")]
    Provider(String),
    /// The provider refused the authorization code (replayed, expired, wrong verifier).
    #[error("code exchange refused: {0}")]
    Exchange(String),
    /// The ID token failed verification.
    #[error("id token refused: {0}")]
    IdToken(String),
}

struct Cached {
    metadata: CoreProviderMetadata,
    /// When fetched, by the caller's clock (Unix seconds).
    fetched_at: i64,
}

/// The node's relying party: outbound clients and the metadata cache.
pub struct Oidc {
    strict: http::Client,
    open: http::Client,
    cache: Mutex<HashMap<String, Cached>>,
    fetches: AtomicU64,
}

impl std::fmt::Debug for Oidc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Oidc")
            .field("fetches", &self.fetches.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl Oidc {
    /// A relying party with an empty cache.
    pub fn new() -> Result<Self, OidcError> {
        let err = |e: http::HttpError| OidcError::Provider(e.to_string());
        Ok(Self {
            strict: http::Client::new(false).map_err(err)?,
            open: http::Client::new(true).map_err(err)?,
            cache: Mutex::new(HashMap::new()),
            fetches: AtomicU64::new(0),
        })
    }

    /// How many discovery fetches (document and keys) this node has made.
    pub fn fetches(&self) -> u64 {
        self.fetches.load(Ordering::Relaxed)
    }

    fn client_for(&self, p: &Provider) -> &http::Client {
        if p.allow_private_network {
            &self.open
        } else {
            &self.strict
        }
    }

    /// Fetches the discovery document and keys (checking the issuer URL first).
    async fn discover(&self, p: &Provider, now: i64) -> Result<CoreProviderMetadata, OidcError> {
        let client = self.client_for(p).clone();
        client
            .check_url(&p.issuer)
            .map_err(|e| OidcError::Provider(e.to_string()))?;
        let issuer =
            IssuerUrl::new(p.issuer.clone()).map_err(|e| OidcError::Provider(e.to_string()))?;
        let call = move |req| {
            let client = client.clone();
            async move { client.call(req).await }
        };
        self.fetches.fetch_add(1, Ordering::Relaxed);
        let metadata = CoreProviderMetadata::discover_async(issuer, &call)
            .await
            .map_err(|e| OidcError::Provider(error_chain(&e)))?;
        if let Ok(mut cache) = self.cache.lock() {
            cache.insert(
                p.issuer.clone(),
                Cached {
                    metadata: metadata.clone(),
                    fetched_at: now,
                },
            );
        }
        Ok(metadata)
    }

    /// The cached metadata, or a fresh fetch when there is none or it is old.
    async fn metadata(&self, p: &Provider, now: i64) -> Result<CoreProviderMetadata, OidcError> {
        let cached = self.cache.lock().ok().and_then(|c| {
            c.get(&p.issuer)
                .filter(|c| age(c.fetched_at, now) < METADATA_TTL)
                .map(|c| c.metadata.clone())
        });
        match cached {
            Some(m) => Ok(m),
            None => self.discover(p, now).await,
        }
    }

    /// Refetches after an unknown key, unless that was done less than a minute ago.
    async fn refetch_for_unknown_key(
        &self,
        p: &Provider,
        now: i64,
    ) -> Result<Option<CoreProviderMetadata>, OidcError> {
        let recent = self.cache.lock().ok().is_some_and(|c| {
            c.get(&p.issuer)
                .is_some_and(|c| age(c.fetched_at, now) < REFETCH_EVERY)
        });
        if recent {
            return Ok(None);
        }
        self.discover(p, now).await.map(Some)
    }

    /// Starts a sign-in at `now_unix`: the authorization URL (code flow, PKCE S256, fresh
    /// `state` and `nonce`) and what the caller keeps for the callback.
    pub async fn begin(&self, p: &Provider, now_unix: i64) -> Result<Begun, OidcError> {
        let metadata = self.metadata(p, now_unix).await?;
        let client = client(p, metadata)?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut request = client
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                CsrfToken::new_random,
                Nonce::new_random,
            )
            .set_pkce_challenge(challenge);
        for scope in p.scopes.iter().filter(|s| *s != "openid") {
            request = request.add_scope(Scope::new(scope.clone()));
        }
        let (url, state, nonce) = request.url();
        Ok(Begun {
            url: url.to_string(),
            state: state.secret().clone(),
            nonce: nonce.secret().clone(),
            pkce_verifier: verifier.secret().clone(),
        })
    }

    /// Finishes a sign-in: exchanges `code` (with the PKCE verifier) and verifies the ID
    /// token against `nonce` at `now_unix`.
    pub async fn finish(
        &self,
        p: &Provider,
        code: &str,
        nonce: &str,
        pkce_verifier: &str,
        now_unix: i64,
    ) -> Result<Identity, OidcError> {
        let mut rp = client(p, self.metadata(p, now_unix).await?)?;
        let http = self.client_for(p).clone();
        let call = move |req| {
            let http = http.clone();
            async move { http.call(req).await }
        };
        let token = rp
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .map_err(|e| OidcError::Provider(e.to_string()))?
            .set_pkce_verifier(PkceCodeVerifier::new(pkce_verifier.to_owned()))
            .request_async(&call)
            .await
            .map_err(|e| OidcError::Exchange(error_chain(&e)))?;
        let id_token = token
            .id_token()
            .ok_or_else(|| OidcError::IdToken("the token response has no id_token".into()))?;
        let mut identity = match verify(p, &rp, id_token, nonce, now_unix) {
            Err(OidcError::IdToken(why)) if why.contains("key") => {
                // Perhaps the provider rotated its keys: look again, at most once a minute.
                match self.refetch_for_unknown_key(p, now_unix).await? {
                    Some(fresh) => {
                        rp = client(p, fresh)?;
                        verify(p, &rp, id_token, nonce, now_unix)
                    }
                    None => Err(OidcError::IdToken(why)),
                }
            }
            other => other,
        }?;
        if identity.email.is_none() {
            // Providers that keep the ID token small put the email in UserInfo; it is
            // accepted only for the subject the ID token named.
            let http = self.client_for(p).clone();
            let call = move |req| {
                let http = http.clone();
                async move { http.call(req).await }
            };
            let subject = openidconnect::SubjectIdentifier::new(identity.subject.clone());
            let info: openidconnect::core::CoreUserInfoClaims = rp
                .user_info(token.access_token().clone(), Some(subject))
                .map_err(|e| OidcError::Provider(e.to_string()))?
                .request_async(&call)
                .await
                .map_err(|e| OidcError::Provider(error_chain(&e)))?;
            identity.email = info.email().map(|e| e.as_str().to_owned());
            identity.email_verified = info.email_verified().unwrap_or(false);
            if identity.name.is_none() {
                identity.name = info
                    .name()
                    .and_then(|n| n.get(None))
                    .map(|n| n.as_str().to_owned());
            }
        }
        Ok(identity)
    }
}

type Client = openidconnect::core::CoreClient<
    openidconnect::EndpointSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointMaybeSet,
    openidconnect::EndpointMaybeSet,
>;

fn client(p: &Provider, metadata: CoreProviderMetadata) -> Result<Client, OidcError> {
    let redirect =
        RedirectUrl::new(p.redirect_uri.clone()).map_err(|e| OidcError::Provider(e.to_string()))?;
    Ok(CoreClient::from_provider_metadata(
        metadata,
        ClientId::new(p.client_id.clone()),
        p.client_secret.clone().map(ClientSecret::new),
    )
    .set_redirect_uri(redirect))
}

/// The asymmetric signature algorithms accepted: never `none`, never HMAC (whose key would
/// be the client secret, or an attacker's choice of "public key").
const ALLOWED_ALGS: [CoreJwsSigningAlgorithm; 9] = [
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha384,
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha512,
    CoreJwsSigningAlgorithm::RsaSsaPssSha256,
    CoreJwsSigningAlgorithm::RsaSsaPssSha384,
    CoreJwsSigningAlgorithm::RsaSsaPssSha512,
    CoreJwsSigningAlgorithm::EcdsaP256Sha256,
    CoreJwsSigningAlgorithm::EcdsaP384Sha384,
    CoreJwsSigningAlgorithm::EdDsa,
];

fn verify(
    p: &Provider,
    client: &Client,
    id_token: &openidconnect::core::CoreIdToken,
    nonce: &str,
    now_unix: i64,
) -> Result<Identity, OidcError> {
    let now = chrono::DateTime::from_timestamp(now_unix, 0).unwrap_or_default();
    let verifier = client
        .id_token_verifier()
        .set_allowed_algs(ALLOWED_ALGS)
        .set_time_fn(move || now)
        .set_issue_time_verifier_fn(move |iat| {
            if iat.timestamp() > now_unix + CLOCK_SKEW_SECS {
                Err("issued in the future".to_owned())
            } else {
                Ok(())
            }
        });
    let claims = id_token
        .claims(&verifier, &Nonce::new(nonce.to_owned()))
        .map_err(|e| OidcError::IdToken(error_chain(&e)))?;
    // The library leaves `azp` alone (and refuses audiences besides ours); present, it must
    // name this client.
    if let Some(azp) = claims.authorized_party()
        && azp.as_str() != p.client_id
    {
        return Err(OidcError::IdToken("azp names another client".to_owned()));
    }
    Ok(Identity {
        issuer: claims.issuer().as_str().to_owned(),
        subject: claims.subject().as_str().to_owned(),
        email: claims.email().map(|e| e.as_str().to_owned()),
        email_verified: claims.email_verified().unwrap_or(false),
        name: claims
            .name()
            .and_then(|n| n.get(None))
            .map(|n| n.as_str().to_owned()),
    })
}

/// How long ago `then` was at `now` (Unix seconds; a clock moved back counts as no time).
fn age(then: i64, now: i64) -> Duration {
    Duration::from_secs(u64::try_from(now - then).unwrap_or(0))
}

/// An error with its causes, which say what failed (a resolver's refusal, a timeout),
/// shortened.
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text.chars().take(500).collect()
}
