//! Nodes finding each other: where each node is reached, and which node holds a host's
//! connection.

use uuid::Uuid;

use crate::db::on_tx;
use crate::{Store, StoreError};

impl Store {
    /// Records (or updates) where node `node` is reached by the others.
    pub async fn set_node_address(
        &self,
        node: &str,
        address: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        on_tx!(tx, |c| sqlx::query(
            "INSERT INTO node_addresses (node_id, address, updated_at) VALUES ($1, $2, $3) \
             ON CONFLICT (node_id) DO UPDATE SET address = $2, updated_at = $3"
        )
        .bind(node)
        .bind(address)
        .bind(now)
        .execute(c)
        .await
        .map(drop))?;
        tx.commit().await
    }

    /// The node holding `host`'s connection (its id, as `hosts.connected_node` names it) and
    /// where that node is reached, when the host is connected somewhere.
    pub async fn host_node(
        &self,
        host: Uuid,
    ) -> Result<Option<(String, Option<String>)>, StoreError> {
        let mut tx = self.begin_hosts_read().await?;
        let connected = on_tx!(tx, |c| sqlx::query_scalar::<_, Option<String>>(
            "SELECT connected_node FROM hosts WHERE id = $1"
        )
        .bind(host)
        .fetch_optional(c)
        .await)?
        .flatten();
        let Some(connected) = connected else {
            tx.commit().await?;
            return Ok(None);
        };
        let node = connected.split('/').next().unwrap_or_default().to_owned();
        let address = on_tx!(tx, |c| sqlx::query_scalar::<_, String>(
            "SELECT address FROM node_addresses WHERE node_id = $1"
        )
        .bind(&node)
        .fetch_optional(c)
        .await)?;
        tx.commit().await?;
        Ok(Some((node, address)))
    }
}
