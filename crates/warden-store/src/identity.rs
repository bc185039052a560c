//! Identity in storage: users, setup links, signing keys, device sessions with their
//! refresh-token lineage and the revocation log (throttles: throttle.rs). Every write takes the
//! caller's transaction so that its audit event commits with it.
//!
//! Times are Unix microseconds. Secrets are never stored: refresh tokens and setup links as
//! SHA-256, passwords as argon2id, signing keys and grace-window successors sealed.

use uuid::Uuid;

use crate::db::on_tx;
use crate::{Store, StoreError, Tx};

/// A user as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct UserRow {
    /// Id.
    pub id: Uuid,
    /// Normalised email.
    pub email: String,
    /// argon2id PHC string; `None` for accounts that cannot sign in with a password.
    pub password_hash: Option<String>,
    /// Platform role name (`admin`, `member`, `auditor` or a custom role).
    pub platform_role: String,
    /// Deactivated users cannot sign in and lose every grant.
    pub active: bool,
    /// Created (µs).
    pub created_at: i64,
}

/// A device session (refresh-token family) as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DeviceRow {
    /// Id (the `sid` claim).
    pub id: Uuid,
    /// Owner.
    pub user_id: Uuid,
    /// Started (µs).
    pub created_at: i64,
    /// Last refreshed (µs).
    pub last_used_at: i64,
    /// Hard end (µs).
    pub absolute_expires_at: i64,
    /// Client user agent at sign-in.
    pub user_agent: Option<String>,
    /// Client address at sign-in.
    pub first_ip: Option<String>,
    /// Client address at the last refresh.
    pub last_ip: Option<String>,
    /// Revoked (µs).
    pub revoked_at: Option<i64>,
    /// Why.
    pub revoked_reason: Option<String>,
    /// Client address of the request that caused the revocation.
    pub revoked_ip: Option<String>,
}

/// A refresh token with its session and owner, as a refresh sees it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RefreshRow {
    /// Token id.
    pub id: Uuid,
    /// Its session.
    pub session_id: Uuid,
    /// Rotated (µs), if it has been.
    pub rotated_at: Option<i64>,
    /// The token that replaced it.
    pub successor_id: Option<Uuid>,
    /// The successor's secret, sealed, during the grace window.
    pub successor_sealed: Option<Vec<u8>>,
    /// When the successor was made (µs).
    pub successor_created_at: Option<i64>,
    /// The address of the client that rotated it.
    pub successor_ip: Option<String>,
    /// The user agent of the client that rotated it.
    pub successor_user_agent: Option<String>,
    /// Session owner.
    pub user_id: Uuid,
    /// Session last used (µs).
    pub last_used_at: i64,
    /// Session hard end (µs).
    pub absolute_expires_at: i64,
    /// Session revoked (µs).
    pub revoked_at: Option<i64>,
    /// Whether the owner is active.
    pub active: bool,
    /// The organization the session acts in (`None`: the default one).
    pub organization_id: Option<Uuid>,
}

/// A stored signing key.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SigningKeyRow {
    /// Key id.
    pub kid: String,
    /// PKCS#8, sealed.
    pub sealed: Vec<u8>,
    /// Public JWK (JSON).
    pub public_jwk: String,
    /// Created (µs).
    pub created_at: i64,
    /// Signs from (µs).
    pub activate_at: i64,
    /// Published until (µs); `None` for the current key.
    pub publish_until: Option<i64>,
}

/// One entry of the revocation log.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct RevocationRow {
    /// Position in the log.
    pub id: i64,
    /// `session`, `user_deactivated` or `user_reactivated`.
    pub kind: String,
    /// The session or user.
    pub subject: Uuid,
    /// When (µs).
    pub at: i64,
}

/// A new device session.
#[derive(Debug, Clone)]
pub struct NewDevice<'a> {
    /// Id.
    pub id: Uuid,
    /// Owner.
    pub user_id: Uuid,
    /// Now (µs).
    pub now: i64,
    /// Hard end (µs).
    pub absolute_expires_at: i64,
    /// Client user agent.
    pub user_agent: Option<&'a str>,
    /// Client address.
    pub ip: Option<&'a str>,
}

const REFRESH_ROW_SQL: &str = "SELECT t.id, t.session_id, t.rotated_at, t.successor_id, \
     c.sealed_secret AS successor_sealed, c.created_at AS successor_created_at, \
     c.created_ip AS successor_ip, c.created_user_agent AS successor_user_agent, \
     s.user_id, s.last_used_at, s.absolute_expires_at, s.revoked_at, u.active, \
     s.organization_id \
     FROM refresh_tokens t JOIN sessions s ON s.id = t.session_id \
     JOIN users u ON u.id = s.user_id LEFT JOIN refresh_tokens c ON c.parent_id = t.id \
     WHERE t.hash = $1";

/// The PostgreSQL channel on which revocations are announced.
pub const REVOCATION_CHANNEL: &str = "warden_revocations";

impl Tx {
    /// Number of active platform administrators.
    pub async fn count_admins(&mut self) -> Result<i64, StoreError> {
        Ok(on_tx!(self, |c| sqlx::query_scalar::<_, i64>(
            "SELECT COUNT(*) FROM users WHERE platform_role = 'admin' AND active = TRUE"
        )
        .fetch_one(c)
        .await)?)
    }

    /// Creates a user. Fails with a unique violation if the email is taken.
    pub async fn create_user(
        &mut self,
        id: Uuid,
        email: &str,
        password_hash: &str,
        platform_role: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        on_tx!(self, |c| sqlx::query(
            "INSERT INTO users (id, email, password_hash, platform_role, active, created_at, \
             updated_at) VALUES ($1, $2, $3, $4, TRUE, $5, $5)"
        )
        .bind(id)
        .bind(email)
        .bind(password_hash)
        .bind(platform_role)
        .bind(now)
        .execute(c)
        .await
        .map(drop))?;
        Ok(())
    }

    /// The user with this (normalised) email.
    pub async fn user_by_email(&mut self, email: &str) -> Result<Option<UserRow>, StoreError> {
        Ok(on_tx!(self, |c| sqlx::query_as::<_, UserRow>(
            "SELECT id, email, password_hash, platform_role, active, created_at FROM users \
             WHERE email = $1"
        )
        .bind(email)
        .fetch_optional(c)
        .await)?)
    }

    /// The user with this id.
    pub async fn user_by_id(&mut self, id: Uuid) -> Result<Option<UserRow>, StoreError> {
        Ok(on_tx!(self, |c| sqlx::query_as::<_, UserRow>(
            "SELECT id, email, password_hash, platform_role, active, created_at FROM users \
             WHERE id = $1"
        )
        .bind(id)
        .fetch_optional(c)
        .await)?)
    }

    /// Replaces a user's password hash.
    pub async fn set_password(&mut self, id: Uuid, hash: &str, now: i64) -> Result<(), StoreError> {
        on_tx!(self, |c| sqlx::query(
            "UPDATE users SET password_hash = $2, updated_at = $3 WHERE id = $1"
        )
        .bind(id)
        .bind(hash)
        .bind(now)
        .execute(c)
        .await
        .map(drop))?;
        Ok(())
    }

    /// Activates or deactivates a user. Returns whether the user exists and changed.
    pub async fn set_active(
        &mut self,
        id: Uuid,
        active: bool,
        now: i64,
    ) -> Result<bool, StoreError> {
        let n = on_tx!(self, |c| sqlx::query(
            "UPDATE users SET active = $2, updated_at = $3 WHERE id = $1 AND active <> $2"
        )
        .bind(id)
        .bind(active)
        .bind(now)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(n == 1)
    }

    /// Stores a setup link's hash.
    pub async fn insert_setup_token(
        &mut self,
        hash: &[u8],
        now: i64,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        on_tx!(self, |c| sqlx::query(
            "INSERT INTO setup_tokens (hash, created_at, expires_at) VALUES ($1, $2, $3)"
        )
        .bind(hash)
        .bind(now)
        .bind(expires_at)
        .execute(c)
        .await
        .map(drop))?;
        Ok(())
    }

    /// Uses up a setup link. True only for an unused, unexpired link, and only once.
    pub async fn claim_setup_token(&mut self, hash: &[u8], now: i64) -> Result<bool, StoreError> {
        let n = on_tx!(self, |c| sqlx::query(
            "UPDATE setup_tokens SET used_at = $2 WHERE hash = $1 AND used_at IS NULL \
             AND expires_at > $2"
        )
        .bind(hash)
        .bind(now)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(n == 1)
    }

    /// Stores a new signing key and schedules every older published key to be withdrawn at
    /// `older_publish_until`.
    pub async fn add_signing_key(
        &mut self,
        kid: &str,
        sealed: &[u8],
        public_jwk: &str,
        now: i64,
        activate_at: i64,
        older_publish_until: i64,
    ) -> Result<(), StoreError> {
        on_tx!(self, |c| sqlx::query(
            "UPDATE signing_keys SET publish_until = $1 WHERE publish_until IS NULL"
        )
        .bind(older_publish_until)
        .execute(c)
        .await
        .map(drop))?;
        on_tx!(self, |c| sqlx::query(
            "INSERT INTO signing_keys (kid, sealed, public_jwk, created_at, activate_at) \
             VALUES ($1, $2, $3, $4, $5)"
        )
        .bind(kid)
        .bind(sealed)
        .bind(public_jwk)
        .bind(now)
        .bind(activate_at)
        .execute(c)
        .await
        .map(drop))?;
        Ok(())
    }

    /// Withdraws a published signing key at once (an emergency revocation). Returns whether
    /// it was published.
    pub async fn withdraw_signing_key(&mut self, kid: &str, now: i64) -> Result<bool, StoreError> {
        let n = on_tx!(self, |c| sqlx::query(
            "UPDATE signing_keys SET publish_until = $2 \
             WHERE kid = $1 AND (publish_until IS NULL OR publish_until > $2)"
        )
        .bind(kid)
        .bind(now)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(n == 1)
    }

    /// Signing keys still published at `now`, newest first.
    pub async fn signing_keys(&mut self, now: i64) -> Result<Vec<SigningKeyRow>, StoreError> {
        Ok(on_tx!(self, |c| {
            sqlx::query_as::<_, SigningKeyRow>(
            "SELECT kid, sealed, public_jwk, created_at, activate_at, publish_until FROM signing_keys \
             WHERE publish_until IS NULL OR publish_until > $1 ORDER BY activate_at DESC, created_at DESC, kid"
        )
        .bind(now)
        .fetch_all(c)
        .await
        })?)
    }

    /// Starts a device session.
    pub async fn create_device(&mut self, s: &NewDevice<'_>) -> Result<(), StoreError> {
        on_tx!(self, |c| sqlx::query(
            "INSERT INTO sessions (id, user_id, created_at, last_used_at, absolute_expires_at, \
             user_agent, first_ip, last_ip) VALUES ($1, $2, $3, $3, $4, $5, $6, $6)"
        )
        .bind(s.id)
        .bind(s.user_id)
        .bind(s.now)
        .bind(s.absolute_expires_at)
        .bind(s.user_agent)
        .bind(s.ip)
        .execute(c)
        .await
        .map(drop))?;
        Ok(())
    }

    /// One session.
    pub async fn device(&mut self, id: Uuid) -> Result<Option<DeviceRow>, StoreError> {
        Ok(on_tx!(self, |c| sqlx::query_as::<_, DeviceRow>(
            "SELECT id, user_id, created_at, last_used_at, absolute_expires_at, user_agent, \
             first_ip, last_ip, revoked_at, revoked_reason, revoked_ip FROM sessions WHERE id = $1"
        )
        .bind(id)
        .fetch_optional(c)
        .await)?)
    }

    /// Sessions not revoked and not past their hard end, of one user or of everyone,
    /// most recently used first.
    pub async fn active_devices(
        &mut self,
        user: Option<Uuid>,
        now: i64,
        idle_cutoff: i64,
    ) -> Result<Vec<DeviceRow>, StoreError> {
        Ok(on_tx!(self, |c| sqlx::query_as::<_, DeviceRow>(
            "SELECT id, user_id, created_at, last_used_at, absolute_expires_at, user_agent, \
             first_ip, last_ip, revoked_at, revoked_reason, revoked_ip FROM sessions \
             WHERE revoked_at IS NULL AND absolute_expires_at > $2 AND last_used_at > $3 \
             AND ($1 IS NULL OR user_id = $1) ORDER BY last_used_at DESC LIMIT 1000"
        )
        .bind(user)
        .bind(now)
        .bind(idle_cutoff)
        .fetch_all(c)
        .await)?)
    }

    /// Revokes the given sessions that are not yet revoked and logs each revocation. Returns
    /// the ids actually revoked and the last log position written.
    pub async fn revoke_devices(
        &mut self,
        ids: &[Uuid],
        now: i64,
        reason: &str,
        ip: Option<&str>,
    ) -> Result<(Vec<Uuid>, Option<i64>), StoreError> {
        let mut revoked = Vec::new();
        let mut last = None;
        for id in ids {
            let n = on_tx!(self, |c| sqlx::query(
                "UPDATE sessions SET revoked_at = $2, revoked_reason = $3, revoked_ip = $4 \
                 WHERE id = $1 AND revoked_at IS NULL"
            )
            .bind(id)
            .bind(now)
            .bind(reason)
            .bind(ip)
            .execute(c)
            .await
            .map(|r| r.rows_affected()))?;
            if n == 1 {
                revoked.push(*id);
                last = Some(self.log_revocation("session", *id, now).await?);
            }
        }
        Ok((revoked, last))
    }

    /// Ids of a user's sessions that are not revoked, except `keep`.
    pub async fn live_device_ids(
        &mut self,
        user: Uuid,
        keep: Option<Uuid>,
    ) -> Result<Vec<Uuid>, StoreError> {
        Ok(on_tx!(self, |c| sqlx::query_scalar::<_, Uuid>(
            "SELECT id FROM sessions WHERE user_id = $1 AND revoked_at IS NULL \
             AND ($2 IS NULL OR id <> $2)"
        )
        .bind(user)
        .bind(keep)
        .fetch_all(c)
        .await)?)
    }

    /// Appends to the revocation log (and, on PostgreSQL, announces it to other nodes when
    /// the transaction commits). Returns the log position.
    pub async fn log_revocation(
        &mut self,
        kind: &str,
        subject: Uuid,
        now: i64,
    ) -> Result<i64, StoreError> {
        let id = on_tx!(self, |c| sqlx::query_scalar::<_, i64>(
            "INSERT INTO revocations (kind, subject, at) VALUES ($1, $2, $3) RETURNING id"
        )
        .bind(kind)
        .bind(subject)
        .bind(now)
        .fetch_one(c)
        .await)?;
        if let crate::db::TxInner::Postgres(t) = &mut self.inner {
            sqlx::query("SELECT pg_notify($1, $2)")
                .bind(REVOCATION_CHANNEL)
                .bind(id.to_string())
                .execute(&mut **t)
                .await?;
        }
        Ok(id)
    }

    /// Stores the first refresh token of a session.
    pub async fn insert_refresh_token(
        &mut self,
        id: Uuid,
        session_id: Uuid,
        hash: &[u8],
        now: i64,
        ip: Option<&str>,
    ) -> Result<(), StoreError> {
        on_tx!(self, |c| sqlx::query(
            "INSERT INTO refresh_tokens (id, session_id, hash, created_at, created_ip) \
             VALUES ($1, $2, $3, $4, $5)"
        )
        .bind(id)
        .bind(session_id)
        .bind(hash)
        .bind(now)
        .bind(ip)
        .execute(c)
        .await
        .map(drop))?;
        Ok(())
    }
}

impl Store {
    /// Revocation log entries after position `after`, in order.
    pub async fn revocations_after(&self, after: i64) -> Result<Vec<RevocationRow>, StoreError> {
        let mut tx = self.begin_read().await?;
        let rows = on_tx!(tx, |c| {
            sqlx::query_as::<_, RevocationRow>(
            "SELECT id, kind, subject, at FROM revocations WHERE id > $1 ORDER BY id LIMIT 10000"
        )
        .bind(after)
        .fetch_all(c)
        .await
        })?;
        tx.commit().await?;
        Ok(rows)
    }

    /// What a node needs at start: sessions revoked since `since` (µs), deactivated users,
    /// and the revocation log's last position.
    pub async fn revocation_snapshot(
        &self,
        since: i64,
    ) -> Result<(Vec<(Uuid, i64)>, Vec<Uuid>, i64), StoreError> {
        let mut tx = self.begin_read().await?;
        let sessions = on_tx!(tx, |c| {
            sqlx::query_as::<_, (Uuid, i64)>(
            "SELECT id, revoked_at FROM sessions WHERE revoked_at IS NOT NULL AND revoked_at > $1"
        )
        .bind(since)
        .fetch_all(c)
        .await
        })?;
        let users = on_tx!(tx, |c| sqlx::query_scalar::<_, Uuid>(
            "SELECT id FROM users WHERE active = FALSE"
        )
        .fetch_all(c)
        .await)?;
        let last = on_tx!(tx, |c| sqlx::query_scalar::<_, Option<i64>>(
            "SELECT MAX(id) FROM revocations"
        )
        .fetch_one(c)
        .await)?
        .unwrap_or(0);
        tx.commit().await?;
        Ok((sessions, users, last))
    }

    /// Records that node `id` is alive and has applied the log up to `applied`.
    pub async fn node_heartbeat(&self, id: Uuid, applied: i64, now: i64) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        on_tx!(tx, |c| sqlx::query(
            "INSERT INTO nodes (id, heartbeat_at, applied_revocation) VALUES ($1, $2, $3) \
             ON CONFLICT (id) DO UPDATE SET heartbeat_at = $2, applied_revocation = $3"
        )
        .bind(id)
        .bind(now)
        .bind(applied)
        .execute(c)
        .await
        .map(drop))?;
        tx.commit().await
    }

    /// Removes a node that is shutting down.
    pub async fn node_leave(&self, id: Uuid) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        on_tx!(tx, |c| sqlx::query("DELETE FROM nodes WHERE id = $1")
            .bind(id)
            .execute(c)
            .await
            .map(drop))?;
        tx.commit().await
    }

    /// How many live nodes (heartbeat after `alive_since`) have not applied the log up to
    /// `position`.
    pub async fn nodes_behind(&self, position: i64, alive_since: i64) -> Result<i64, StoreError> {
        let mut tx = self.begin_read().await?;
        let n = on_tx!(tx, |c| sqlx::query_scalar::<_, i64>(
            "SELECT COUNT(*) FROM nodes WHERE heartbeat_at > $2 AND applied_revocation < $1"
        )
        .bind(position)
        .bind(alive_since)
        .fetch_one(c)
        .await)?;
        tx.commit().await?;
        Ok(n)
    }

    /// A PostgreSQL listener on the revocation channel; `None` on SQLite.
    pub async fn revocation_listener(
        &self,
    ) -> Result<Option<sqlx::postgres::PgListener>, StoreError> {
        match self.pool_postgres() {
            None => Ok(None),
            Some(pool) => {
                let mut l = sqlx::postgres::PgListener::connect_with(pool).await?;
                l.listen(REVOCATION_CHANNEL).await?;
                Ok(Some(l))
            }
        }
    }
}

impl Store {
    /// Drops the sealed successor secrets of tokens rotated before `before` (µs): past the
    /// grace window they are never handed out again.
    pub async fn forget_successors(&self, before: i64) -> Result<u64, StoreError> {
        let mut tx = self.begin().await?;
        let n = on_tx!(tx, |c| sqlx::query(
            "UPDATE refresh_tokens SET sealed_secret = NULL \
             WHERE sealed_secret IS NOT NULL AND created_at < $1"
        )
        .bind(before)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
        tx.commit().await?;
        Ok(n)
    }

    /// The refresh token with this hash, with its session and owner: one statement, no
    /// transaction (the hot path of every refresh).
    pub async fn refresh_token(&self, hash: &[u8]) -> Result<Option<RefreshRow>, StoreError> {
        macro_rules! fetch {
            ($pool:expr) => {
                sqlx::query_as::<_, RefreshRow>(REFRESH_ROW_SQL)
                    .bind(hash)
                    .fetch_optional($pool)
                    .await?
            };
        }
        Ok(match (self.pool_sqlite(), self.pool_postgres()) {
            (Some(p), _) => fetch!(p),
            (_, Some(p)) => fetch!(p),
            _ => None,
        })
    }

    /// The hot path of a refresh, in one statement: finds the presented token, and if it is
    /// unrotated, its session live (not revoked, not past its hard end, not idle) and its
    /// owner active, inserts its successor (the trigger marks it rotated) and returns what the
    /// access token needs. `None` in every other case, including a lost race; the caller then
    /// looks closer (grace window, reuse, or simply invalid).
    pub async fn rotate_refresh_by_hash(
        &self,
        r: &RotationByHash<'_>,
    ) -> Result<Option<Rotated>, StoreError> {
        const SQL: &str = "INSERT INTO refresh_tokens (id, session_id, parent_id, hash, \
             created_at, created_ip, sealed_secret, created_user_agent) \
             SELECT $1, p.session_id, p.id, $2, $3, $4, $5, $8 FROM refresh_tokens p \
             JOIN sessions s ON s.id = p.session_id JOIN users u ON u.id = s.user_id \
             WHERE p.hash = $6 AND p.rotated_at IS NULL AND s.revoked_at IS NULL \
             AND u.active = TRUE AND s.absolute_expires_at > $3 AND s.last_used_at > $7 \
             RETURNING session_id, \
             (SELECT s2.user_id FROM sessions s2 WHERE s2.id = refresh_tokens.session_id) \
                 AS user_id, \
             (SELECT s4.absolute_expires_at FROM sessions s4 \
                 WHERE s4.id = refresh_tokens.session_id) AS absolute_expires_at, \
             (SELECT s5.organization_id FROM sessions s5 \
                 WHERE s5.id = refresh_tokens.session_id) AS organization_id";
        macro_rules! run {
            ($pool:expr) => {
                sqlx::query_as::<_, Rotated>(SQL)
                    .bind(r.id)
                    .bind(r.hash)
                    .bind(r.now)
                    .bind(r.ip)
                    .bind(r.sealed_secret)
                    .bind(r.parent_hash)
                    .bind(r.idle_cutoff)
                    .bind(r.user_agent)
                    .fetch_optional($pool)
                    .await
            };
        }
        let _turn = self.write_turn().await?;
        let result = match (self.pool_sqlite(), self.pool_postgres()) {
            (Some(p), _) => run!(p),
            (_, Some(p)) => run!(p),
            _ => return Ok(None),
        };
        match result {
            Ok(row) => Ok(row),
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Rotates refresh token `parent` to a new child in one statement: it succeeds only if
    /// the parent has not been rotated, its session is not revoked and its owner is active
    /// (the unique parent makes a concurrent second rotation fail). A trigger marks the
    /// parent rotated and the session used. Returns whether this call rotated it.
    pub async fn rotate_refresh_token(&self, r: &Rotation<'_>) -> Result<bool, StoreError> {
        const SQL: &str = "INSERT INTO refresh_tokens (id, session_id, parent_id, hash, \
             created_at, created_ip, sealed_secret, created_user_agent) \
             SELECT $1, $2, $3, $4, $5, $6, $7, $8 \
             WHERE EXISTS (SELECT 1 FROM refresh_tokens p JOIN sessions s ON s.id = p.session_id \
             JOIN users u ON u.id = s.user_id WHERE p.id = $3 AND p.rotated_at IS NULL \
             AND s.revoked_at IS NULL AND u.active = TRUE)";
        macro_rules! run {
            ($pool:expr) => {
                sqlx::query(SQL)
                    .bind(r.id)
                    .bind(r.session_id)
                    .bind(r.parent_id)
                    .bind(r.hash)
                    .bind(r.now)
                    .bind(r.ip)
                    .bind(r.sealed_secret)
                    .bind(r.user_agent)
                    .execute($pool)
                    .await
                    .map(|res| res.rows_affected())
            };
        }
        let _turn = self.write_turn().await?;
        let result = match (self.pool_sqlite(), self.pool_postgres()) {
            (Some(p), _) => run!(p),
            (_, Some(p)) => run!(p),
            _ => return Ok(false),
        };
        match result {
            Ok(n) => Ok(n == 1),
            // Another rotation of the same parent won the race (PostgreSQL).
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => Ok(false),
            Err(e) => Err(e.into()),
        }
    }
}

/// What a rotation by presented token returns: enough to sign the new access token.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Rotated {
    /// The session.
    pub session_id: Uuid,
    /// Its owner.
    pub user_id: Uuid,
    /// The session's hard end (µs).
    pub absolute_expires_at: i64,
    /// The organization the session acts in (`None`: the default one).
    pub organization_id: Option<Uuid>,
}

/// A rotation of the token whose hash is known, the common case in one statement.
#[derive(Debug)]
pub struct RotationByHash<'a> {
    /// The new token's id.
    pub id: Uuid,
    /// The presented token's hash.
    pub parent_hash: &'a [u8],
    /// The new token's hash.
    pub hash: &'a [u8],
    /// Now (µs).
    pub now: i64,
    /// Sessions last used before this (µs) have gone idle.
    pub idle_cutoff: i64,
    /// Client address.
    pub ip: Option<&'a str>,
    /// Client user agent.
    pub user_agent: Option<&'a str>,
    /// The new token's secret, sealed, for the grace window.
    pub sealed_secret: &'a [u8],
}

/// One refresh-token rotation.
#[derive(Debug)]
pub struct Rotation<'a> {
    /// The new token's id.
    pub id: Uuid,
    /// Its session.
    pub session_id: Uuid,
    /// The token it replaces.
    pub parent_id: Uuid,
    /// Its SHA-256.
    pub hash: &'a [u8],
    /// Now (µs).
    pub now: i64,
    /// Client address.
    pub ip: Option<&'a str>,
    /// Client user agent.
    pub user_agent: Option<&'a str>,
    /// Its secret, sealed, for the grace window.
    pub sealed_secret: &'a [u8],
}

impl Store {
    /// Housekeeping: forgets throttle counters whose window and block are over, and nodes
    /// silent for a day. Returns the rows removed.
    pub async fn prune_identity(&self, now: i64, throttle_window: i64) -> Result<u64, StoreError> {
        let mut tx = self.begin().await?;
        let a = on_tx!(tx, |c| sqlx::query(
            "DELETE FROM sign_in_throttle WHERE blocked_until < $1 AND window_started_at < $2"
        )
        .bind(now)
        .bind(now - throttle_window)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
        let b = on_tx!(tx, |c| sqlx::query(
            "DELETE FROM nodes WHERE heartbeat_at < $1"
        )
        .bind(now - 86_400_000_000)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
        tx.commit().await?;
        Ok(a + b)
    }
}
