//! SAML providers' settings (beside their `sso_providers` row) and the assertions already
//! used (replays are refused until an assertion could no longer be accepted anyway).

use uuid::Uuid;

use crate::db::on_tx;
use crate::{StoreError, Tx};

/// A SAML provider's settings.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SamlRow {
    /// Its `sso_providers` row.
    pub provider_id: Uuid,
    /// The IdP's metadata (XML).
    pub idp_metadata: String,
    /// Where the metadata was fetched from, if it was.
    pub metadata_url: Option<String>,
    /// The IdP's single sign-on URL (HTTP-Redirect), from the metadata.
    pub sso_url: String,
    /// `assertion`, `response` or `either`: what the IdP must sign.
    pub signed: String,
    /// Whether IdP-initiated sign-in is accepted.
    pub idp_initiated: bool,
    /// The attribute carrying the email ('' for the usual names).
    pub email_attribute: String,
    /// The attribute carrying the display name ('' for the usual names).
    pub name_attribute: String,
    /// The attribute carrying group names ('' for the usual names).
    pub groups_attribute: String,
}

impl Tx {
    /// Stores or replaces a provider's SAML settings.
    pub async fn put_saml_provider(&mut self, r: &SamlRow) -> Result<(), StoreError> {
        on_tx!(self, |c| sqlx::query(
            "INSERT INTO saml_providers (provider_id, idp_metadata, metadata_url, sso_url, \
             signed, idp_initiated, email_attribute, name_attribute, groups_attribute) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
             ON CONFLICT (provider_id) DO UPDATE SET idp_metadata = excluded.idp_metadata, \
             metadata_url = excluded.metadata_url, sso_url = excluded.sso_url, \
             signed = excluded.signed, idp_initiated = excluded.idp_initiated, \
             email_attribute = excluded.email_attribute, name_attribute = excluded.name_attribute, \
             groups_attribute = excluded.groups_attribute"
        )
        .bind(r.provider_id)
        .bind(&r.idp_metadata)
        .bind(&r.metadata_url)
        .bind(&r.sso_url)
        .bind(&r.signed)
        .bind(r.idp_initiated)
        .bind(&r.email_attribute)
        .bind(&r.name_attribute)
        .bind(&r.groups_attribute)
        .execute(c)
        .await
        .map(drop))?;
        Ok(())
    }

    /// A provider's SAML settings.
    pub async fn saml_provider(
        &mut self,
        provider_id: Uuid,
    ) -> Result<Option<SamlRow>, StoreError> {
        Ok(on_tx!(self, |c| sqlx::query_as::<_, SamlRow>(
            "SELECT provider_id, idp_metadata, metadata_url, sso_url, signed, idp_initiated, \
             email_attribute, name_attribute, groups_attribute FROM saml_providers \
             WHERE provider_id = $1"
        )
        .bind(provider_id)
        .fetch_optional(c)
        .await)?)
    }

    /// Records that assertion `assertion_id` of `issuer` was used, kept until `expires_at`
    /// (µs). False when it was already used: a replay. Forgets assertions past their expiry.
    pub async fn use_saml_assertion(
        &mut self,
        issuer: &str,
        assertion_id: &str,
        expires_at: i64,
        now: i64,
    ) -> Result<bool, StoreError> {
        on_tx!(self, |c| sqlx::query(
            "DELETE FROM saml_assertions WHERE expires_at < $1"
        )
        .bind(now)
        .execute(c)
        .await
        .map(drop))?;
        let n = on_tx!(self, |c| {
            sqlx::query(
            "INSERT INTO saml_assertions (issuer, assertion_id, expires_at) VALUES ($1, $2, $3) \
             ON CONFLICT (issuer, assertion_id) DO NOTHING"
        )
        .bind(issuer)
        .bind(assertion_id)
        .bind(expires_at)
        .execute(c)
        .await
        .map(|r| r.rows_affected())
        })?;
        Ok(n == 1)
    }
}
