//! Single sign-on in storage: configured OpenID Connect and SAML providers, the (issuer, subject)
//! identities linked to accounts, and sign-ins under way.

use uuid::Uuid;

use crate::db::on_tx;
use crate::{StoreError, Tx};

/// A configured provider.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ProviderRow {
    /// Its id.
    pub id: Uuid,
    /// Short name in URLs (`/api/v1/auth/sso/{slug}/start`).
    pub slug: String,
    /// Shown on the sign-in screen.
    pub display_name: String,
    /// The issuer URL.
    pub issuer: String,
    /// The client id registered with the provider.
    pub client_id: String,
    /// The client secret, sealed by the keyring.
    pub sealed_secret: Option<Vec<u8>>,
    /// Space-separated scopes (always with `openid`).
    pub scopes: String,
    /// Space-separated email domains accepted for linking and provisioning (empty: any).
    pub allowed_domains: String,
    /// Whether unknown people get an account on first sign-in.
    pub jit: bool,
    /// Their platform role.
    pub default_role: String,
    /// Whether an existing account may be linked by (verified) email.
    pub link_by_email: bool,
    /// Whether the provider may live on private, loopback or link-local addresses.
    pub allow_private_network: bool,
    /// Created, µs.
    pub created_at: i64,
    /// Changed, µs.
    pub updated_at: i64,
    /// `oidc` or `saml` (then its settings are a [`crate::saml::SamlRow`]); fixed once created.
    pub protocol: String,
    /// The organization whose people it signs in (multi-tenant mode); `None`: the
    /// installation's. Set by its own route, never by the provider's settings.
    pub organization_id: Option<Uuid>,
}

macro_rules! provider_columns {
    () => {
        "id, slug, display_name, issuer, client_id, sealed_secret, scopes, allowed_domains, jit, \
         default_role, link_by_email, allow_private_network, created_at, updated_at, protocol, \
         organization_id"
    };
}

/// A sign-in under way.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct LoginRow {
    /// The provider.
    pub provider_id: Uuid,
    /// Hash of the browser binding cookie's value.
    pub binding_hash: Vec<u8>,
    /// Nonce and PKCE verifier, sealed.
    pub sealed: Vec<u8>,
    /// Where to go after.
    pub redirect_to: String,
    /// The invitation accepted with this sign-in (hash of its secret), if any.
    pub invitation_hash: Option<Vec<u8>>,
}

impl Tx {
    /// Gives a provider to an organization (`None`: back to the installation). Returns
    /// whether it exists.
    pub async fn set_sso_provider_org(
        &mut self,
        id: Uuid,
        org: Option<Uuid>,
    ) -> Result<bool, StoreError> {
        let n = on_tx!(self, |c| sqlx::query(
            "UPDATE sso_providers SET organization_id = $2 WHERE id = $1"
        )
        .bind(id)
        .bind(org)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(n == 1)
    }

    /// Stores a new provider (its slug must be free).
    pub async fn insert_sso_provider(&mut self, p: &ProviderRow) -> Result<(), StoreError> {
        on_tx!(self, |c| sqlx::query(concat!(
            "INSERT INTO sso_providers (",
            provider_columns!(),
            ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)"
        ))
        .bind(p.id)
        .bind(&p.slug)
        .bind(&p.display_name)
        .bind(&p.issuer)
        .bind(&p.client_id)
        .bind(&p.sealed_secret)
        .bind(&p.scopes)
        .bind(&p.allowed_domains)
        .bind(p.jit)
        .bind(&p.default_role)
        .bind(p.link_by_email)
        .bind(p.allow_private_network)
        .bind(p.created_at)
        .bind(p.updated_at)
        .bind(&p.protocol)
        .bind(p.organization_id)
        .execute(c)
        .await
        .map(drop))?;
        Ok(())
    }

    /// Replaces a provider's settings (by id). False when there is none.
    pub async fn update_sso_provider(&mut self, p: &ProviderRow) -> Result<bool, StoreError> {
        let n = on_tx!(self, |c| sqlx::query(
            "UPDATE sso_providers SET display_name = $2, issuer = $3, client_id = $4, \
             sealed_secret = $5, scopes = $6, allowed_domains = $7, jit = $8, default_role = $9, \
             link_by_email = $10, allow_private_network = $11, updated_at = $12 WHERE id = $1"
        )
        .bind(p.id)
        .bind(&p.display_name)
        .bind(&p.issuer)
        .bind(&p.client_id)
        .bind(&p.sealed_secret)
        .bind(&p.scopes)
        .bind(&p.allowed_domains)
        .bind(p.jit)
        .bind(&p.default_role)
        .bind(p.link_by_email)
        .bind(p.allow_private_network)
        .bind(p.updated_at)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(n == 1)
    }

    /// Removes a provider, its linked identities, its sign-ins under way and its SAML settings.
    pub async fn delete_sso_provider(&mut self, id: Uuid) -> Result<bool, StoreError> {
        for sql in [
            "DELETE FROM sso_logins WHERE provider_id = $1",
            "DELETE FROM sso_identities WHERE provider_id = $1",
            "DELETE FROM saml_providers WHERE provider_id = $1",
        ] {
            on_tx!(self, |c| sqlx::query(sql)
                .bind(id)
                .execute(c)
                .await
                .map(drop))?;
        }
        let n = on_tx!(self, |c| sqlx::query(
            "DELETE FROM sso_providers WHERE id = $1"
        )
        .bind(id)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(n == 1)
    }

    /// Every provider, by slug.
    pub async fn sso_providers(&mut self) -> Result<Vec<ProviderRow>, StoreError> {
        Ok(on_tx!(self, |c| sqlx::query_as::<_, ProviderRow>(
            concat!(
                "SELECT ",
                provider_columns!(),
                " FROM sso_providers ORDER BY slug"
            )
        )
        .fetch_all(c)
        .await)?)
    }

    /// One provider by slug.
    pub async fn sso_provider(&mut self, slug: &str) -> Result<Option<ProviderRow>, StoreError> {
        Ok(on_tx!(self, |c| sqlx::query_as::<_, ProviderRow>(
            concat!(
                "SELECT ",
                provider_columns!(),
                " FROM sso_providers WHERE slug = $1"
            )
        )
        .bind(slug)
        .fetch_optional(c)
        .await)?)
    }

    /// Stores a sign-in under way.
    pub async fn insert_sso_login(
        &mut self,
        state_hash: &[u8],
        login: &LoginRow,
        now: i64,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        on_tx!(self, |c| sqlx::query(
            "INSERT INTO sso_logins (state_hash, provider_id, binding_hash, sealed, redirect_to, \
             invitation_hash, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
        )
        .bind(state_hash)
        .bind(login.provider_id)
        .bind(&login.binding_hash)
        .bind(&login.sealed)
        .bind(&login.redirect_to)
        .bind(&login.invitation_hash)
        .bind(now)
        .bind(expires_at)
        .execute(c)
        .await
        .map(drop))?;
        Ok(())
    }

    /// The sign-in attempt for `state_hash` if it is still unused and unexpired, without
    /// taking it: the callback checks it and starts the code exchange while
    /// [`Tx::take_sso_login`] takes it, and goes on only if the take succeeded.
    pub async fn sso_login(
        &mut self,
        state_hash: &[u8],
        now: i64,
    ) -> Result<Option<LoginRow>, StoreError> {
        Ok(on_tx!(self, |c| sqlx::query_as::<_, LoginRow>(
            "SELECT provider_id, binding_hash, sealed, redirect_to, invitation_hash \
             FROM sso_logins WHERE state_hash = $1 AND used_at IS NULL AND expires_at > $2"
        )
        .bind(state_hash)
        .bind(now)
        .fetch_optional(c)
        .await)?)
    }

    /// Takes a sign-in under way by its state: once, unexpired.
    pub async fn take_sso_login(
        &mut self,
        state_hash: &[u8],
        now: i64,
    ) -> Result<Option<LoginRow>, StoreError> {
        Ok(on_tx!(self, |c| sqlx::query_as::<_, LoginRow>(
            "UPDATE sso_logins SET used_at = $2 WHERE state_hash = $1 AND used_at IS NULL \
             AND expires_at > $2 \
             RETURNING provider_id, binding_hash, sealed, redirect_to, invitation_hash"
        )
        .bind(state_hash)
        .bind(now)
        .fetch_optional(c)
        .await)?)
    }

    /// The account linked to (issuer, subject), marking it used.
    pub async fn sso_identity(
        &mut self,
        issuer: &str,
        subject: &str,
        now: i64,
    ) -> Result<Option<Uuid>, StoreError> {
        Ok(on_tx!(self, |c| sqlx::query_scalar::<_, Uuid>(
            "UPDATE sso_identities SET last_used_at = $3 WHERE issuer = $1 AND subject = $2 \
             RETURNING user_id"
        )
        .bind(issuer)
        .bind(subject)
        .bind(now)
        .fetch_optional(c)
        .await)?)
    }

    /// The account linked to (issuer, subject), without marking it used (a read).
    pub async fn sso_identity_user(
        &mut self,
        issuer: &str,
        subject: &str,
    ) -> Result<Option<Uuid>, StoreError> {
        Ok(on_tx!(self, |c| sqlx::query_scalar::<_, Uuid>(
            "SELECT user_id FROM sso_identities WHERE issuer = $1 AND subject = $2"
        )
        .bind(issuer)
        .bind(subject)
        .fetch_optional(c)
        .await)?)
    }

    /// Links (issuer, subject) to an account.
    pub async fn link_sso_identity(
        &mut self,
        issuer: &str,
        subject: &str,
        user_id: Uuid,
        provider_id: Uuid,
        now: i64,
    ) -> Result<(), StoreError> {
        on_tx!(self, |c| sqlx::query(
            "INSERT INTO sso_identities (issuer, subject, user_id, provider_id, created_at, \
             last_used_at) VALUES ($1, $2, $3, $4, $5, $5)"
        )
        .bind(issuer)
        .bind(subject)
        .bind(user_id)
        .bind(provider_id)
        .bind(now)
        .execute(c)
        .await
        .map(drop))?;
        Ok(())
    }

    /// Creates an account that signs in only through single sign-on (no password).
    pub async fn create_sso_user(
        &mut self,
        id: Uuid,
        email: &str,
        platform_role: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        on_tx!(self, |c| sqlx::query(
            "INSERT INTO users (id, email, password_hash, platform_role, active, created_at, \
             updated_at) VALUES ($1, $2, NULL, $3, TRUE, $4, $4)"
        )
        .bind(id)
        .bind(email)
        .bind(platform_role)
        .bind(now)
        .execute(c)
        .await
        .map(drop))?;
        Ok(())
    }

    /// How many active administrators can sign in through single sign-on (have a linked
    /// identity).
    pub async fn admins_with_sso(&mut self) -> Result<i64, StoreError> {
        Ok(on_tx!(self, |c| sqlx::query_scalar::<_, i64>(
            "SELECT COUNT(DISTINCT u.id) FROM users u JOIN sso_identities s ON s.user_id = u.id \
             WHERE u.platform_role = 'admin' AND u.active = TRUE"
        )
        .fetch_one(c)
        .await)?)
    }
}
