//! Audit events written off the request path, in batches: a busy read path (an agent's MCP
//! read tools) records one event per call without paying a durable commit per call. Events
//! wait in a bounded queue (a full queue makes the caller's task wait its turn in the
//! background: none is dropped) and are appended to the chain in one transaction each
//! 5 ms or 512 events, retried until stored.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::mpsc;
use warden_domain::audit::NewEvent;

use crate::Ctx;

/// Events waiting on one node.
const QUEUE: usize = 8_192;
/// Events appended in one transaction.
const BATCH: usize = 512;

/// The queue, held by the node's [`Ctx`].
#[derive(Debug)]
pub struct Batch {
    tx: mpsc::Sender<NewEvent>,
    inbox: Mutex<Option<mpsc::Receiver<NewEvent>>>,
}

impl Default for Batch {
    fn default() -> Self {
        let (tx, rx) = mpsc::channel(QUEUE);
        Self {
            tx,
            inbox: Mutex::new(Some(rx)),
        }
    }
}

impl Batch {
    /// Queues an event.
    pub fn push(&self, event: NewEvent) {
        match self.tx.try_send(event) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(e)) => {
                let tx = self.tx.clone();
                tokio::spawn(async move {
                    let _ = tx.send(e).await;
                });
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                tracing::error!("the audit batch writer has stopped; an event is lost");
            }
        }
    }
}

/// Starts the writer (once per node).
pub fn spawn(ctx: Arc<Ctx>) -> Option<tokio::task::JoinHandle<()>> {
    let mut rx = ctx.audit_batch.inbox.lock().ok()?.take()?;
    Some(tokio::spawn(async move {
        let mut batch = Vec::with_capacity(BATCH);
        loop {
            if rx.recv_many(&mut batch, BATCH).await == 0 {
                return;
            }
            if batch.len() < BATCH {
                tokio::time::sleep(Duration::from_millis(5)).await;
                while batch.len() < BATCH {
                    match rx.try_recv() {
                        Ok(e) => batch.push(e),
                        Err(_) => break,
                    }
                }
            }
            let mut delay = Duration::from_millis(100);
            loop {
                match write(&ctx, &batch).await {
                    Ok(()) => break,
                    Err(e) => {
                        tracing::error!(error = %e, events = batch.len(), "cannot append audit events; retrying");
                        tokio::time::sleep(delay).await;
                        delay = (delay * 2).min(Duration::from_secs(10));
                    }
                }
            }
            batch.clear();
        }
    }))
}

async fn write(ctx: &Ctx, batch: &[NewEvent]) -> Result<(), warden_store::StoreError> {
    let mut tx = ctx.store.begin().await?;
    for e in batch {
        tx.record(&ctx.audit_key, e).await?;
    }
    tx.commit().await
}
