//! Every column that holds a value sealed by the keyring, for the re-encryption a master-key
//! rotation runs: find the values sealed under another data key version, swap each for its
//! re-encryption only if nobody changed it meanwhile, and count what is left.
//!
//! The SQL is assembled from this module's own table and column names, never from input.
//!
//! The catalogue is closed: a test lists every `sealed*` column in the schema and fails on one
//! missing here. What a value's associated data is (which row, which place) is the core's
//! business; this module hands over each row's identifying columns.

use uuid::Uuid;

use crate::db::on_tx;
use crate::tenancy::set_scope;
use crate::{Store, StoreError, Tx};

/// A column of sealed values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SealedColumn {
    /// `server_secrets.sealed` (the audit keys, the host-ticket key), by name.
    ServerSecrets,
    /// `signing_keys.sealed` (token signing keys), by kid.
    SigningKeys,
    /// `refresh_tokens.sealed_secret` (a rotated refresh token's successor), by id.
    RefreshSuccessors,
    /// `mail_outbox.sealed_body`, by id.
    MailBodies,
    /// `sso_providers.sealed_secret` (OIDC client secrets), by id.
    SsoClientSecrets,
    /// `sso_logins.sealed` (a sign-in's nonce and PKCE verifier), by state hash.
    SsoLogins,
    /// `service_keys.sealed_secret`, by id, in a workspace.
    ServiceKeys,
    /// `event_sources.sealed_secret` (webhook secrets), by id, in a workspace.
    EventSourceSecrets,
    /// `workspace_secrets.sealed` (variables, PATs, provider keys), by kind and name.
    WorkspaceSecrets,
    /// `llm_upstreams.sealed_key` (provider keys), by id, in a workspace.
    LlmUpstreamKeys,
    /// `llm_calls.sealed_content` (captured prompts and responses), by id, in a workspace.
    LlmCallContents,
}

/// How a row of a sealed column is identified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SealedKey {
    /// A text key (`name`, `kid`).
    Name(String),
    /// A UUID key (`id`).
    Id(Uuid),
    /// A byte-string key (`state_hash`).
    Hash(Vec<u8>),
    /// A workspace secret's kind and name.
    Secret {
        /// `variable`, `pat` or `provider`.
        kind: String,
        /// Its name.
        name: String,
    },
}

/// One sealed value and the row it belongs to.
#[derive(Debug, Clone)]
pub struct SealedValue {
    /// The row.
    pub key: SealedKey,
    /// The ciphertext.
    pub sealed: Vec<u8>,
}

#[derive(Clone, Copy)]
enum Shape {
    Name,
    Id,
    Hash,
    Secret,
}

impl SealedColumn {
    /// Every sealed column.
    pub const ALL: [Self; 11] = [
        Self::ServerSecrets,
        Self::SigningKeys,
        Self::RefreshSuccessors,
        Self::MailBodies,
        Self::SsoClientSecrets,
        Self::SsoLogins,
        Self::ServiceKeys,
        Self::EventSourceSecrets,
        Self::WorkspaceSecrets,
        Self::LlmUpstreamKeys,
        Self::LlmCallContents,
    ];

    /// `table.column`.
    pub fn name(self) -> String {
        format!("{}.{}", self.table(), self.column())
    }

    fn table(self) -> &'static str {
        match self {
            Self::ServerSecrets => "server_secrets",
            Self::SigningKeys => "signing_keys",
            Self::RefreshSuccessors => "refresh_tokens",
            Self::MailBodies => "mail_outbox",
            Self::SsoClientSecrets => "sso_providers",
            Self::SsoLogins => "sso_logins",
            Self::ServiceKeys => "service_keys",
            Self::EventSourceSecrets => "event_sources",
            Self::WorkspaceSecrets => "workspace_secrets",
            Self::LlmUpstreamKeys => "llm_upstreams",
            Self::LlmCallContents => "llm_calls",
        }
    }

    fn column(self) -> &'static str {
        match self {
            Self::ServerSecrets | Self::SigningKeys | Self::SsoLogins | Self::WorkspaceSecrets => {
                "sealed"
            }
            Self::RefreshSuccessors
            | Self::SsoClientSecrets
            | Self::ServiceKeys
            | Self::EventSourceSecrets => "sealed_secret",
            Self::MailBodies => "sealed_body",
            Self::LlmUpstreamKeys => "sealed_key",
            Self::LlmCallContents => "sealed_content",
        }
    }

    /// Whether the rows belong to workspaces (under PostgreSQL row-level security: read and
    /// written one workspace at a time, in its scope).
    pub fn in_workspaces(self) -> bool {
        matches!(
            self,
            Self::ServiceKeys
                | Self::EventSourceSecrets
                | Self::WorkspaceSecrets
                | Self::LlmUpstreamKeys
                | Self::LlmCallContents
        )
    }

    fn shape(self) -> Shape {
        match self {
            Self::ServerSecrets | Self::SigningKeys => Shape::Name,
            Self::SsoLogins => Shape::Hash,
            Self::WorkspaceSecrets => Shape::Secret,
            _ => Shape::Id,
        }
    }

    fn key_columns(self) -> &'static str {
        match (self, self.shape()) {
            (Self::ServerSecrets, _) => "name",
            (Self::SigningKeys, _) => "kid",
            (_, Shape::Hash) => "state_hash",
            (_, Shape::Secret) => "kind, name",
            _ => "id",
        }
    }

    /// `WHERE` for values sealed under another version than `$1` (and, in a workspace, `$2`).
    fn stale(self) -> String {
        let col = self.column();
        let ws = if self.in_workspaces() {
            " AND workspace_id = $2"
        } else {
            ""
        };
        format!("{col} IS NOT NULL AND substr({col}, 2, 4) <> $1{ws}")
    }
}

/// The header bytes a ciphertext sealed under `version` carries (see `warden_crypto::keyring`).
fn version_bytes(version: u32) -> Vec<u8> {
    version.to_be_bytes().to_vec()
}

/// How many values one swap statement replaces (3 parameters per value, far below either
/// database's limit).
const SWAP_CHUNK: usize = 100;

/// The statement that swaps `n` values of `column`. Parameters: the workspace (when the
/// column is in one), the kind (workspace secrets: one statement swaps one kind's), then per
/// value its key, its old and its new ciphertext.
///
/// Written so that SQLite, which keeps no statistics here, finds the rows through the primary
/// key: the key is one column compared with a list (`IN`), and the workspace check on a
/// single-key table is an expression (`COALESCE`) so that a `(workspace_id, …)` index does not
/// look better to the planner than the key (measured: it would scan the whole workspace for
/// each statement).
fn swap_sql(column: SealedColumn, n: usize) -> String {
    let (table, col) = (column.table(), column.column());
    let (scope, key, first) = match (column.in_workspaces(), column.shape()) {
        (_, Shape::Secret) => ("workspace_id = $1 AND kind = $2 AND ", "name", 3),
        (true, _) => (
            "COALESCE(workspace_id, workspace_id) = $1 AND ",
            column.key_columns(),
            2,
        ),
        (false, _) => ("", column.key_columns(), 1),
    };
    // Value i: key at `at(i)`, old at `at(i) + 1`, new at `at(i) + 2`.
    let at = |i: usize| first + i * 3;
    let case = |offset: usize| {
        let arms: String = (0..n)
            .map(|i| format!(" WHEN ${} THEN ${}", at(i), at(i) + offset))
            .collect();
        format!("CASE {key}{arms} END")
    };
    let keys = (0..n)
        .map(|i| format!("${}", at(i)))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "UPDATE {table} SET {col} = {new} WHERE {scope}{key} IN ({keys}) AND {col} = {old}",
        new = case(2),
        old = case(1),
    )
}

impl Store {
    /// Every workspace's id, archived ones included (the platform-wide read).
    pub async fn all_workspace_ids(&self) -> Result<Vec<Uuid>, StoreError> {
        let mut tx = self.begin_read().await?;
        let ids = tx.workspace_ids_platform().await?;
        tx.commit().await?;
        Ok(ids)
    }

    /// A write transaction over sealed values: platform tables, or one workspace's.
    pub async fn begin_sealed(&self, workspace: Option<Uuid>) -> Result<Tx, StoreError> {
        let mut tx = self.begin().await?;
        if let Some(ws) = workspace {
            tx.enter_workspace_scope(ws).await?;
        }
        Ok(tx)
    }

    /// The read-only form of [`Self::begin_sealed`] (blocks no writer).
    pub async fn begin_sealed_read(&self, workspace: Option<Uuid>) -> Result<Tx, StoreError> {
        let mut tx = self.begin_read().await?;
        if let Some(ws) = workspace {
            tx.enter_workspace_scope(ws).await?;
        }
        Ok(tx)
    }
}

impl Tx {
    /// Every workspace's id, archived ones included; turns on the platform-wide read for the
    /// rest of the transaction.
    pub async fn workspace_ids_platform(&mut self) -> Result<Vec<Uuid>, StoreError> {
        set_scope(self, "warden.platform", "on").await?;
        Ok(on_tx!(self, |c| sqlx::query_scalar::<_, Uuid>(
            "SELECT id FROM workspaces ORDER BY id"
        )
        .fetch_all(c)
        .await)?)
    }

    /// Confines the rest of the transaction's workspace tables to `workspace`.
    pub async fn enter_workspace_scope(&mut self, workspace: Uuid) -> Result<(), StoreError> {
        set_scope(self, "warden.workspace_id", &workspace.to_string()).await
    }

    /// Up to `limit` values of `column` sealed under another version than `version`, in key
    /// order after `after` (a page of a sweep: each page starts where the last ended, through
    /// the primary key's index).
    pub async fn sealed_not_under(
        &mut self,
        column: SealedColumn,
        workspace: Option<Uuid>,
        version: u32,
        after: Option<&SealedKey>,
        limit: i64,
    ) -> Result<Vec<SealedValue>, StoreError> {
        let next = if column.in_workspaces() { 3 } else { 2 };
        let cursor = match after {
            None => String::new(),
            Some(SealedKey::Secret { .. }) => {
                format!(" AND (kind, name) > (${next}, ${})", next + 1)
            }
            Some(_) => format!(" AND {} > ${next}", column.key_columns()),
        };
        let sql = format!(
            "SELECT {keys}, {col} FROM {table} WHERE {stale}{cursor} ORDER BY {keys} \
             LIMIT {limit}",
            keys = column.key_columns(),
            col = column.column(),
            table = column.table(),
            stale = column.stale(),
        );
        let v = version_bytes(version);
        let ws = workspace.unwrap_or_default();
        macro_rules! fetch {
            ($ty:ty, $map:expr) => {{
                let rows = on_tx!(self, |c| {
                    let q = sqlx::query_as::<_, $ty>(sqlx::AssertSqlSafe(sql.as_str())).bind(&v);
                    let q = if column.in_workspaces() {
                        q.bind(ws)
                    } else {
                        q
                    };
                    let q = match after {
                        None => q,
                        Some(SealedKey::Name(k)) => q.bind(k.as_str()),
                        Some(SealedKey::Id(k)) => q.bind(*k),
                        Some(SealedKey::Hash(k)) => q.bind(k.as_slice()),
                        Some(SealedKey::Secret { kind, name }) => {
                            q.bind(kind.as_str()).bind(name.as_str())
                        }
                    };
                    q.fetch_all(c).await
                })?;
                rows.into_iter().map($map).collect()
            }};
        }
        Ok(match column.shape() {
            Shape::Name => fetch!((String, Vec<u8>), |(k, sealed)| SealedValue {
                key: SealedKey::Name(k),
                sealed
            }),
            Shape::Id => fetch!((Uuid, Vec<u8>), |(k, sealed)| SealedValue {
                key: SealedKey::Id(k),
                sealed
            }),
            Shape::Hash => fetch!((Vec<u8>, Vec<u8>), |(k, sealed)| SealedValue {
                key: SealedKey::Hash(k),
                sealed
            }),
            Shape::Secret => fetch!((String, String, Vec<u8>), |(kind, name, sealed)| {
                SealedValue {
                    key: SealedKey::Secret { kind, name },
                    sealed,
                }
            }),
        })
    }

    /// Replaces values with their re-encryptions — `(row, old, new)` — each only if it still
    /// holds `old` (a value changed meanwhile is left to the next pass). Returns how many
    /// were replaced.
    ///
    /// One statement per [`SWAP_CHUNK`] values (see [`swap_sql`]): the rows are found through
    /// the primary key and each gets its own new value only where it still holds its own old
    /// one (`CASE` per row). Measured on SQLite: one statement per value spends most of its
    /// time on the round trip to the database thread, and `UPDATE … FROM (VALUES …)` is
    /// planned as a scan of the table.
    pub async fn replace_sealed(
        &mut self,
        column: SealedColumn,
        workspace: Option<Uuid>,
        swaps: &[(SealedKey, Vec<u8>, Vec<u8>)],
    ) -> Result<u64, StoreError> {
        let mut replaced = 0;
        let workspace = workspace.unwrap_or_default();
        // Workspace secrets are keyed by kind and name: one statement per kind.
        let kind_of = |key: &SealedKey| match key {
            SealedKey::Secret { kind, .. } => Some(kind.clone()),
            _ => None,
        };
        let mut rest = swaps;
        while let Some((first, _, _)) = rest.first() {
            let kind = kind_of(first);
            let run = rest
                .iter()
                .take(SWAP_CHUNK)
                .take_while(|(k, _, _)| kind_of(k) == kind)
                .count();
            let (chunk, next) = rest.split_at(run);
            rest = next;
            let sql = swap_sql(column, chunk.len());
            replaced += on_tx!(self, |c| {
                let mut q = sqlx::query(sqlx::AssertSqlSafe(sql.as_str()));
                if column.in_workspaces() {
                    q = q.bind(workspace);
                }
                if let Some(kind) = &kind {
                    q = q.bind(kind.as_str());
                }
                for (key, old, new) in chunk {
                    q = match key {
                        SealedKey::Name(k) => q.bind(k.as_str()),
                        SealedKey::Id(k) => q.bind(*k),
                        SealedKey::Hash(k) => q.bind(k.as_slice()),
                        SealedKey::Secret { name, .. } => q.bind(name.as_str()),
                    };
                    q = q.bind(old.as_slice()).bind(new.as_slice());
                }
                q.execute(c).await.map(|r| r.rows_affected())
            })?;
        }
        Ok(replaced)
    }

    /// How many values of `column` are sealed under another version than `version`.
    pub async fn count_sealed_not_under(
        &mut self,
        column: SealedColumn,
        workspace: Option<Uuid>,
        version: u32,
    ) -> Result<i64, StoreError> {
        let sql = format!(
            "SELECT COUNT(*) FROM {table} WHERE {stale}",
            table = column.table(),
            stale = column.stale(),
        );
        let v = version_bytes(version);
        let ws = workspace.unwrap_or_default();
        Ok(on_tx!(self, |c| {
            let q = sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(sql.as_str())).bind(&v);
            let q = if column.in_workspaces() {
                q.bind(ws)
            } else {
                q
            };
            q.fetch_one(c).await
        })?)
    }

    /// Every `sealed*` column the schema holds, as `table.column` (SQLite only: for the test
    /// that keeps the catalogue complete).
    pub async fn schema_sealed_columns(&mut self) -> Result<Vec<String>, StoreError> {
        Ok(on_tx!(self, |c| sqlx::query_scalar::<_, String>(
            "SELECT m.name || '.' || p.name FROM sqlite_master m, pragma_table_info(m.name) p \
             WHERE m.type = 'table' AND p.name LIKE 'sealed%' ORDER BY 1"
        )
        .fetch_all(c)
        .await)?)
    }
}
