//! Hosts and their keys.

use uuid::Uuid;

use warden_domain::access::Area;

use crate::db::on_tx;
use crate::tenancy::{PlatformGrant, Refusal, set_scope};
use crate::{StoreError, Tx};

/// Names a transaction as host authentication or the platform's host administration, which
/// may see every host (PostgreSQL row-level security shows other transactions only platform
/// hosts and, in a workspace's scope, that workspace's own).
pub(crate) async fn all_hosts_scope(tx: &mut Tx) -> Result<(), StoreError> {
    set_scope(tx, "warden.hosts", "on").await
}

/// A host as stored (without key material).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct HostRow {
    /// Id.
    pub id: Uuid,
    /// Display name.
    pub name: String,
    /// `session` or `deploy`.
    pub kind: String,
    /// `pending`, `approved` or `rejected`.
    pub status: String,
    /// Allowed networks, space-separated (empty: anywhere).
    pub allow_list: String,
    /// The current key's public id.
    pub key_id: String,
    /// The previous key's id, while its grace period lasts.
    pub previous_key_id: Option<String>,
    /// End of that grace period (µs).
    pub previous_key_until: Option<i64>,
    /// Hostname the agent reported.
    pub hostname: Option<String>,
    /// Operating system the agent reported.
    pub os: Option<String>,
    /// Agent version.
    pub agent_version: Option<String>,
    /// Address it last connected from.
    pub last_ip: Option<String>,
    /// The server node holding its live connection, if any.
    pub connected_node: Option<String>,
    /// Last seen (µs).
    pub last_seen_at: Option<i64>,
    /// The workspace it serves alone, for a workspace-bound host.
    pub workspace_id: Option<Uuid>,
    /// Registered by.
    pub created_by: Uuid,
    /// Registered (µs).
    pub created_at: i64,
    /// Approved or rejected by.
    pub decided_by: Option<Uuid>,
    /// When (µs).
    pub decided_at: Option<i64>,
}

const COLUMNS: &str = "id, name, kind, status, allow_list, key_id, previous_key_id, \
     previous_key_until, hostname, os, agent_version, last_ip, connected_node, last_seen_at, workspace_id, \
     created_by, created_at, decided_by, decided_at";

/// A key's stored parts.
#[derive(Debug, Clone, Copy)]
pub struct StoredKey<'a> {
    /// Public id.
    pub key_id: &'a str,
    /// PBKDF2 salt.
    pub salt: &'a [u8],
    /// PBKDF2 hash.
    pub hash: &'a [u8],
}

/// A new host.
#[derive(Debug, Clone, Copy)]
pub struct NewHost<'a> {
    /// Id.
    pub id: Uuid,
    /// Display name.
    pub name: &'a str,
    /// `session` or `deploy`.
    pub kind: &'a str,
    /// Allowed networks, space-separated.
    pub allow_list: &'a str,
    /// Its first key.
    pub key: StoredKey<'a>,
    /// Registered by.
    pub created_by: Uuid,
    /// Now (µs).
    pub now: i64,
}

/// The proof that a host authenticated: minted only here, by a host key that verified
/// ([`HostKeyRow::verify`]) or a session ticket that did ([`crate::Store::host_for_ticket`]).
/// The only way to act as a host on storage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostGrant {
    host_id: Uuid,
    key_id: String,
}

impl HostGrant {
    /// The host.
    pub fn host_id(&self) -> Uuid {
        self.host_id
    }

    /// The key id it proved.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }
}

/// Refuses a platform grant that is not for host administration.
fn hosts_permission(grant: &PlatformGrant) -> Result<(), Refusal> {
    if grant.permission().area() == Area::Hosts {
        Ok(())
    } else {
        Err(Refusal::Forbidden)
    }
}

impl crate::Store {
    /// Every host, platform-wide and workspace-bound (on PostgreSQL the scope that lets the
    /// transaction see them all). Private: a caller reaches it only through a grant.
    pub(crate) async fn begin_hosts(&self) -> Result<Tx, StoreError> {
        let mut tx = self.begin().await?;
        all_hosts_scope(&mut tx).await?;
        Ok(tx)
    }

    pub(crate) async fn begin_hosts_read(&self) -> Result<Tx, StoreError> {
        let mut tx = self.begin_read().await?;
        all_hosts_scope(&mut tx).await?;
        Ok(tx)
    }

    /// A write transaction for the platform's host administration (it sees every host),
    /// for a caller whose platform role grants a `hosts.*` permission.
    pub async fn hosts_admin(&self, grant: &PlatformGrant) -> Result<Tx, Refusal> {
        hosts_permission(grant)?;
        Ok(self.begin_hosts().await?)
    }

    /// The read-only form of [`Self::hosts_admin`].
    pub async fn hosts_admin_read(&self, grant: &PlatformGrant) -> Result<Tx, Refusal> {
        hosts_permission(grant)?;
        Ok(self.begin_hosts_read().await?)
    }

    /// A write transaction for an authenticated host acting on its own row.
    pub async fn as_host(&self, _grant: &HostGrant) -> Result<Tx, StoreError> {
        self.begin_hosts().await
    }

    /// Warden itself managing hosts, with no principal behind it: start-up registering the
    /// in-process local host. Never reachable from a request; named so it stands out.
    pub async fn hosts_as_system(&self) -> Result<Tx, StoreError> {
        self.begin_hosts().await
    }
}

impl crate::tenancy::WorkspaceTx {
    /// This workspace's own hosts (workspace-bound ones; never platform hosts or another
    /// workspace's).
    pub fn hosts(&mut self) -> Hosts<'_> {
        let workspace = self.workspace().uuid();
        Hosts::of_workspace(self.inner(), workspace)
    }
}

impl Tx {
    /// Every host, platform-wide and workspace-bound. Open the transaction with
    /// [`crate::Store::hosts_admin`]; on another one, PostgreSQL shows only platform hosts.
    pub fn all_hosts(&mut self) -> Hosts<'_> {
        Hosts {
            tx: self,
            workspace: None,
        }
    }
}

/// The hosts a transaction may manage: all of them (platform administration) or one
/// workspace's own (see `WorkspaceTx::hosts`). Every query carries that filter.
#[derive(Debug)]
pub struct Hosts<'a> {
    tx: &'a mut Tx,
    workspace: Option<Uuid>,
}

impl<'a> Hosts<'a> {
    pub(crate) fn of_workspace(tx: &'a mut Tx, workspace: Uuid) -> Self {
        Self {
            tx,
            workspace: Some(workspace),
        }
    }

    /// Registers a host, pending approval; bound to the workspace when this view is one's.
    pub async fn insert(&mut self, h: &NewHost<'_>) -> Result<(), StoreError> {
        let ws = self.workspace;
        on_tx!(self.tx, |c| sqlx::query(
            "INSERT INTO hosts (id, name, kind, status, allow_list, key_id, key_salt, key_hash, \
             workspace_id, created_by, created_at, updated_at) \
             VALUES ($1, $2, $3, 'pending', $4, $5, $6, $7, $8, $9, $10, $10)"
        )
        .bind(h.id)
        .bind(h.name)
        .bind(h.kind)
        .bind(h.allow_list)
        .bind(h.key.key_id)
        .bind(h.key.salt)
        .bind(h.key.hash)
        .bind(ws)
        .bind(h.created_by)
        .bind(h.now)
        .execute(c)
        .await
        .map(drop))?;
        Ok(())
    }

    /// Every host in view, by name.
    pub async fn list(&mut self) -> Result<Vec<HostRow>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM hosts WHERE ($1 IS NULL OR workspace_id = $1) ORDER BY name, id"
        );
        let ws = self.workspace;
        Ok(on_tx!(self.tx, |c| sqlx::query_as::<_, HostRow>(
            sqlx::AssertSqlSafe(sql)
        )
        .bind(ws)
        .fetch_all(c)
        .await)?)
    }

    /// One host, if in view.
    pub async fn get(&mut self, id: Uuid) -> Result<Option<HostRow>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM hosts WHERE id = $1 AND ($2 IS NULL OR workspace_id = $2)"
        );
        let ws = self.workspace;
        Ok(on_tx!(self.tx, |c| sqlx::query_as::<_, HostRow>(
            sqlx::AssertSqlSafe(sql)
        )
        .bind(id)
        .bind(ws)
        .fetch_optional(c)
        .await)?)
    }

    /// Approves or rejects a host. Returns whether it exists (in view).
    pub async fn decide(
        &mut self,
        id: Uuid,
        status: &str,
        by: Uuid,
        now: i64,
    ) -> Result<bool, StoreError> {
        let ws = self.workspace;
        let n = on_tx!(self.tx, |c| sqlx::query(
            "UPDATE hosts SET status = $2, decided_by = $3, decided_at = $4, updated_at = $4 \
             WHERE id = $1 AND ($5 IS NULL OR workspace_id = $5)"
        )
        .bind(id)
        .bind(status)
        .bind(by)
        .bind(now)
        .bind(ws)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(n == 1)
    }

    /// Replaces a host's key; the current one stays valid until `previous_until` (µs), any
    /// older one ends now. Returns whether the host exists (in view).
    pub async fn rotate_key(
        &mut self,
        id: Uuid,
        key: StoredKey<'_>,
        previous_until: i64,
        now: i64,
    ) -> Result<bool, StoreError> {
        let ws = self.workspace;
        let n = on_tx!(self.tx, |c| sqlx::query(
            "UPDATE hosts SET previous_key_id = key_id, previous_key_salt = key_salt, \
             previous_key_hash = key_hash, previous_key_until = $5, key_id = $2, \
             key_salt = $3, key_hash = $4, updated_at = $6 \
             WHERE id = $1 AND ($7 IS NULL OR workspace_id = $7)"
        )
        .bind(id)
        .bind(key.key_id)
        .bind(key.salt)
        .bind(key.hash)
        .bind(previous_until)
        .bind(now)
        .bind(ws)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(n == 1)
    }

    /// Replaces a host's allow-list. Returns whether it exists (in view).
    pub async fn set_allow_list(
        &mut self,
        id: Uuid,
        allow_list: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        let ws = self.workspace;
        let n = on_tx!(self.tx, |c| sqlx::query(
            "UPDATE hosts SET allow_list = $2, updated_at = $3 \
             WHERE id = $1 AND ($4 IS NULL OR workspace_id = $4)"
        )
        .bind(id)
        .bind(allow_list)
        .bind(now)
        .bind(ws)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(n == 1)
    }

    /// Restricts a platform host to `workspaces` (empty: all). `Ok(None)` when there is no
    /// such platform host (in view), `Ok(Some(false))` when a workspace does not exist.
    pub async fn set_workspaces(
        &mut self,
        id: Uuid,
        workspaces: &[Uuid],
    ) -> Result<Option<bool>, StoreError> {
        let ws = self.workspace;
        let platform = on_tx!(self.tx, |c| sqlx::query_scalar::<_, i64>(
            "SELECT COUNT(*) FROM hosts WHERE id = $1 AND workspace_id IS NULL \
             AND ($2 IS NULL OR workspace_id = $2)"
        )
        .bind(id)
        .bind(ws)
        .fetch_one(c)
        .await)?;
        if platform != 1 {
            return Ok(None);
        }
        on_tx!(self.tx, |c| sqlx::query(
            "DELETE FROM host_workspaces WHERE host_id = $1"
        )
        .bind(id)
        .execute(c)
        .await
        .map(drop))?;
        for w in workspaces {
            let inserted = on_tx!(self.tx, |c| sqlx::query(
                "INSERT INTO host_workspaces (host_id, workspace_id) VALUES ($1, $2) \
                 ON CONFLICT DO NOTHING"
            )
            .bind(id)
            .bind(*w)
            .execute(c)
            .await
            .map(drop));
            match inserted {
                Ok(()) => {}
                Err(sqlx::Error::Database(e)) if e.is_foreign_key_violation() => {
                    return Ok(Some(false));
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok(Some(true))
    }

    /// The workspaces a platform host is restricted to (empty: all).
    pub async fn workspaces_of(&mut self, id: Uuid) -> Result<Vec<Uuid>, StoreError> {
        Ok(on_tx!(self.tx, |c| sqlx::query_scalar::<_, Uuid>(
            "SELECT workspace_id FROM host_workspaces WHERE host_id = $1 ORDER BY workspace_id"
        )
        .bind(id)
        .fetch_all(c)
        .await)?)
    }

    /// Deletes a host and every key it had. Returns whether it existed (in view).
    pub async fn delete(&mut self, id: Uuid) -> Result<bool, StoreError> {
        let ws = self.workspace;
        let n = on_tx!(self.tx, |c| sqlx::query(
            "DELETE FROM hosts WHERE id = $1 AND ($2 IS NULL OR workspace_id = $2)"
        )
        .bind(id)
        .bind(ws)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(n == 1)
    }
}

/// What authenticating a host needs, found by the presented key id (current key, or the
/// previous one while its grace period lasts).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct HostKeyRow {
    /// The host.
    pub id: Uuid,
    /// `session` or `deploy`.
    pub kind: String,
    /// `pending`, `approved` or `rejected`.
    pub status: String,
    /// Allowed networks, space-separated.
    pub allow_list: String,
    /// The matching key's salt.
    pub salt: Vec<u8>,
    /// The matching key's hash.
    pub hash: Vec<u8>,
}

impl HostKeyRow {
    /// Checks the presented key against this row's hash (PBKDF2: run it off the async
    /// threads); the host's grant when it matches.
    pub fn verify(&self, presented: &str) -> Option<HostGrant> {
        let key = warden_crypto::host_key::parse(presented)?;
        warden_crypto::host_key::verify(&key, &self.salt, &self.hash).then(|| HostGrant {
            host_id: self.id,
            key_id: key.key_id.to_owned(),
        })
    }
}

impl crate::Store {
    /// The host whose current key, or previous key still within its grace period at `now`
    /// (µs), has this id. One indexed lookup, however many hosts there are.
    pub async fn host_by_key_id(
        &self,
        key_id: &str,
        now: i64,
    ) -> Result<Option<HostKeyRow>, StoreError> {
        let mut tx = self.begin_hosts_read().await?;
        let row = on_tx!(tx, |c| sqlx::query_as::<_, HostKeyRow>(
            "SELECT id, kind, status, allow_list, key_salt AS salt, key_hash AS hash \
             FROM hosts WHERE key_id = $1 \
             UNION ALL \
             SELECT id, kind, status, allow_list, previous_key_salt AS salt, \
             previous_key_hash AS hash FROM hosts \
             WHERE previous_key_id = $1 AND previous_key_until > $2"
        )
        .bind(key_id)
        .bind(now)
        .fetch_optional(c)
        .await)?;
        tx.commit().await?;
        Ok(row)
    }
}

/// What an agent reports when it connects.
#[derive(Debug, Clone, Copy)]
pub struct Hello<'a> {
    /// Hostname.
    pub hostname: &'a str,
    /// Operating system.
    pub os: &'a str,
    /// Agent version.
    pub agent_version: &'a str,
    /// The address it connected from.
    pub ip: &'a str,
    /// Now (µs).
    pub now: i64,
    /// The connection (`node/number`) that now holds the host, when the hello also claims it
    /// (see [`Tx::host_cap_reached`]).
    pub connection: Option<&'a str>,
}

impl Tx {
    /// Records what a connecting agent reported and when it was last seen, and marks the
    /// host held by `h.connection` when one is given.
    pub async fn record_hello(
        &mut self,
        host: &HostGrant,
        h: &Hello<'_>,
    ) -> Result<bool, StoreError> {
        let id = host.host_id;
        let n = on_tx!(self, |c| sqlx::query(
            "UPDATE hosts SET hostname = $2, os = $3, agent_version = $4, last_ip = $5, \
             last_seen_at = $6, connected_node = COALESCE($7, connected_node) WHERE id = $1"
        )
        .bind(id)
        .bind(h.hostname)
        .bind(h.os)
        .bind(h.agent_version)
        .bind(h.ip)
        .bind(h.now)
        .bind(h.connection)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(n == 1)
    }
}

/// A host as a ticket check needs it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct TicketHostRow {
    /// The host.
    pub id: Uuid,
    /// `session` or `deploy`.
    pub kind: String,
    /// `pending`, `approved` or `rejected`.
    pub status: String,
    /// Allowed networks, space-separated.
    pub allow_list: String,
}

/// What a ticket check found.
#[derive(Debug)]
pub enum TicketCheck {
    /// Forged, malformed or expired.
    Invalid,
    /// For a deleted host or a retired key.
    Retired,
    /// Valid: the host and its grant.
    Valid(TicketHostRow, HostGrant),
}

impl crate::Store {
    /// Checks a session ticket (its tag and expiry at `now`, µs), then that the host it names
    /// still exists and the ticket's key id is still its current key, or its previous one
    /// within the grace period. No key material.
    pub async fn host_for_ticket(
        &self,
        tickets: &warden_crypto::host_ticket::TicketKey,
        text: &str,
        now: i64,
    ) -> Result<TicketCheck, StoreError> {
        let Some(ticket) = warden_crypto::host_ticket::verify(tickets, text, now) else {
            return Ok(TicketCheck::Invalid);
        };
        let (id, key_id) = (Uuid::from_bytes(ticket.host_id), ticket.key_id.as_str());
        let mut tx = self.begin_hosts_read().await?;
        let row = on_tx!(tx, |c| sqlx::query_as::<_, TicketHostRow>(
            "SELECT id, kind, status, allow_list FROM hosts WHERE id = $1 \
             AND (key_id = $2 OR (previous_key_id = $2 AND previous_key_until > $3))"
        )
        .bind(id)
        .bind(key_id)
        .bind(now)
        .fetch_optional(c)
        .await)?;
        tx.commit().await?;
        Ok(match row {
            None => TicketCheck::Retired,
            Some(row) => {
                let grant = HostGrant {
                    host_id: row.id,
                    key_id: ticket.key_id,
                };
                TicketCheck::Valid(row, grant)
            }
        })
    }
}

impl crate::Store {
    /// Forgets the connections a copy of the database recorded (a backup, a restore): no
    /// node of the copy runs, and none of its hosts is connected. Without this a restored
    /// host looks online until its heartbeats lapse, and work sent to it fails.
    pub async fn forget_live_connections(&self) -> Result<(), StoreError> {
        let mut tx = self.begin_hosts().await?;
        on_tx!(tx, |c| sqlx::query(
            "UPDATE hosts SET connected_node = NULL WHERE connected_node IS NOT NULL"
        )
        .execute(c)
        .await
        .map(drop))?;
        on_tx!(tx, |c| sqlx::query("DELETE FROM nodes")
            .execute(c)
            .await
            .map(drop))?;
        tx.commit().await
    }

    /// Marks a host disconnected from `node` (unless another node has taken it over).
    pub async fn host_disconnected(
        &self,
        host: &HostGrant,
        node: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        let id = host.host_id;
        let mut tx = self.begin_hosts().await?;
        on_tx!(tx, |c| sqlx::query(
            "UPDATE hosts SET connected_node = NULL, last_seen_at = $3 \
             WHERE id = $1 AND connected_node = $2"
        )
        .bind(id)
        .bind(node)
        .bind(now)
        .execute(c)
        .await
        .map(drop))?;
        tx.commit().await
    }
}

impl Tx {
    /// Whether `cap` hosts of `kind` other than `host` are connected already (to any node,
    /// seen after `fresh_after`, µs): asked in the transaction that then marks the host
    /// connected, so the host's own earlier connection never counts and a reconnect is never
    /// counted twice. Claims take turns per kind across nodes (an advisory lock on
    /// PostgreSQL, the write lock on SQLite), so two nodes cannot both admit the last free
    /// place. Ask it before the hello's update: the turn comes before the host's row.
    pub async fn host_cap_reached(
        &mut self,
        host: &HostGrant,
        kind: &str,
        fresh_after: i64,
        cap: u32,
    ) -> Result<bool, StoreError> {
        if let crate::db::TxInner::Postgres(t) = &mut self.inner {
            sqlx::query("SELECT pg_advisory_xact_lock(hashtext('warden.host_cap.' || $1)::bigint)")
                .bind(kind)
                .execute(&mut **t)
                .await?;
        }
        let others = on_tx!(self, |c| sqlx::query_scalar::<_, i64>(
            "SELECT COUNT(*) FROM hosts WHERE kind = $1 AND id <> $2 \
             AND connected_node IS NOT NULL AND last_seen_at > $3"
        )
        .bind(kind)
        .bind(host.host_id)
        .bind(fresh_after)
        .fetch_one(c)
        .await)?;
        Ok(others >= i64::from(cap))
    }
}

impl crate::Store {
    /// A heartbeat on connection `conn`: refreshes last-seen if `conn` still holds the host.
    /// Returns the host's status and the connection that holds it (another one when this one
    /// was replaced, possibly on another node), or `None` when the host no longer exists.
    pub async fn host_heartbeat(
        &self,
        host: &HostGrant,
        conn: &str,
        now: i64,
    ) -> Result<Option<(String, Option<String>)>, StoreError> {
        let id = host.host_id;
        let mut tx = self.begin_hosts().await?;
        let row = on_tx!(tx, |c| sqlx::query_as::<_, (String, Option<String>)>(
            "UPDATE hosts SET last_seen_at = CASE WHEN connected_node = $2 THEN $3 \
             ELSE last_seen_at END WHERE id = $1 RETURNING status, connected_node"
        )
        .bind(id)
        .bind(conn)
        .bind(now)
        .fetch_optional(c)
        .await)?;
        tx.commit().await?;
        Ok(row)
    }
}

/// Tells this node which hosts may have lost the right to their connection on it (deleted,
/// rejected, or connected anew elsewhere), as other nodes change them. PostgreSQL only: an
/// embedded SQLite database has one node, which hears its own changes directly.
pub struct HostChanges {
    listener: sqlx::postgres::PgListener,
}

impl std::fmt::Debug for HostChanges {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostChanges").finish_non_exhaustive()
    }
}

impl HostChanges {
    /// The next changed host, and the connection (`node/number`) that took it over when that
    /// is the change. Reconnects by itself after a lost connection (changes made meanwhile are
    /// missed; the heartbeat check still catches them).
    pub async fn next(&mut self) -> Result<(Uuid, Option<String>), StoreError> {
        loop {
            let n = self.listener.recv().await?;
            let mut parts = n.payload().splitn(2, ' ');
            if let Some(Ok(id)) = parts.next().map(str::parse) {
                return Ok((id, parts.next().map(str::to_owned)));
            }
        }
    }
}

impl crate::Store {
    /// Subscribes to host changes from every node; `None` on SQLite.
    pub async fn host_changes(&self) -> Result<Option<HostChanges>, StoreError> {
        let Some(pool) = self.pool_postgres() else {
            return Ok(None);
        };
        let mut listener = sqlx::postgres::PgListener::connect_with(pool).await?;
        listener.listen("warden_hosts").await?;
        Ok(Some(HostChanges { listener }))
    }
}

impl crate::Store {
    /// Hosts of `kind` connected to any node and seen after `fresh_after` (µs).
    pub async fn connected_hosts(&self, kind: &str, fresh_after: i64) -> Result<i64, StoreError> {
        let mut tx = self.begin_hosts_read().await?;
        let n = on_tx!(tx, |c| sqlx::query_scalar::<_, i64>(
            "SELECT COUNT(*) FROM hosts WHERE kind = $1 AND connected_node IS NOT NULL \
             AND last_seen_at > $2"
        )
        .bind(kind)
        .bind(fresh_after)
        .fetch_one(c)
        .await)?;
        tx.commit().await?;
        Ok(n)
    }
}
