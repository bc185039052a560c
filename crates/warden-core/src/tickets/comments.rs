//! Comments on tickets: written by members here, or imported from the tracker a synced
//! ticket mirrors. Bodies are Markdown, rendered like ticket bodies (raw HTML shown as
//! text). A comment written here on a synced ticket goes to the tracker on the next sync.

use serde::Serialize;
use serde_json::json;
use uuid::Uuid;
use warden_domain::tickets::check_body;
use warden_store::tenancy::WorkspaceGrant;
use warden_store::ticket_sync::{CommentRow, NewComment};

use super::markdown;
use crate::{CoreError, CoreResult, Ctx, Op};

/// A comment as the API and the console show it.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TicketComment {
    /// Id.
    pub id: Uuid,
    /// The ticket.
    pub ticket_id: Uuid,
    /// Markdown body, as written.
    pub body: String,
    /// The body as safe HTML.
    pub body_html: String,
    /// The member who wrote it; `None` for a comment imported from the tracker.
    pub author_id: Option<Uuid>,
    /// The author as shown: a member's email, or the tracker account's login.
    pub author_name: String,
    /// Whether it came from the tracker.
    pub from_tracker: bool,
    /// Whether the tracker has it (imported, or sent there by a sync).
    pub in_tracker: bool,
    /// Written (RFC 3339).
    pub created_at: String,
}

impl TicketComment {
    pub(crate) fn from_row(row: CommentRow) -> Self {
        Self {
            id: row.id,
            ticket_id: row.ticket_id,
            body_html: markdown::render(strip_marker(&row.body)),
            body: row.body,
            from_tracker: row.author_id.is_none(),
            in_tracker: row.external_id.is_some(),
            author_id: row.author_id,
            author_name: row.author_name,
            created_at: crate::op::rfc3339(row.created_at),
        }
    }
}

/// What a comment written here carries when it goes to a tracker, so that reading it back
/// finds the comment it came from (and does not import it twice).
pub(crate) fn marker(id: Uuid) -> String {
    format!("<!-- warden-comment:{id} -->")
}

/// The comment id in a marker at the end of `body`, if any.
pub(crate) fn marked_id(body: &str) -> Option<Uuid> {
    let start = body.rfind("<!-- warden-comment:")?;
    let rest = &body[start + "<!-- warden-comment:".len()..];
    rest.split_once(" -->")?.0.parse().ok()
}

fn strip_marker(body: &str) -> &str {
    match body.rfind("<!-- warden-comment:") {
        Some(i) if marked_id(body).is_some() => body[..i].trim_end(),
        _ => body,
    }
}

/// A ticket's comments, oldest first.
pub async fn list(
    ctx: &Ctx,
    grant: &WorkspaceGrant,
    reference: &str,
) -> CoreResult<Vec<TicketComment>> {
    let mut tx = ctx.store.scoped(grant).await?;
    let ticket = super::find(&mut tx, reference).await?;
    let rows = tx.ticket_comments(ticket.id).await?;
    tx.commit().await?;
    Ok(rows.into_iter().map(TicketComment::from_row).collect())
}

/// Writes a comment on a ticket (1 byte to 64 KiB of Markdown).
pub async fn add(
    ctx: &Ctx,
    op: &Op,
    grant: &WorkspaceGrant,
    reference: &str,
    body: &str,
) -> CoreResult<TicketComment> {
    let mut tx = ctx.store.scoped(grant).await?;
    let ticket = super::find(&mut tx, reference).await?;
    if body.trim().is_empty() {
        return Err(CoreError::invalid("body", "must not be empty"));
    }
    check_body(body)?;
    let author = grant.user_id();
    let name = match tx.member(author).await? {
        Some(m) => m.email,
        None => "a platform administrator".to_owned(),
    };
    let id = tx
        .insert_comment(&NewComment {
            ticket_id: ticket.id,
            body,
            author_id: Some(author),
            author_name: &name,
            external_id: None,
            created_at: op.now_us(),
        })
        .await?
        .ok_or_else(|| CoreError::internal(&"a new comment collided"))?;
    let event = op.event(
        "ticket.commented",
        "ticket",
        Some(ticket.id.to_string()),
        json!({ "number": ticket.number, "comment_id": id.to_string(),
                "body_bytes": body.len() }),
    );
    tx.record(&ctx.audit_key, event).await?;
    let row = tx
        .ticket_comments(ticket.id)
        .await?
        .into_iter()
        .find(|c| c.id == id)
        .ok_or_else(|| CoreError::internal(&"a new comment vanished"))?;
    tx.commit().await?;
    Ok(TicketComment::from_row(row))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_marker_names_the_comment_and_is_not_shown() {
        let id = Uuid::now_v7();
        let body = format!("Looks good.\n\n{}", marker(id));
        assert_eq!(marked_id(&body), Some(id));
        assert_eq!(strip_marker(&body), "Looks good.");
        assert_eq!(marked_id("<!-- warden-comment:nope -->"), None);
        assert_eq!(strip_marker("plain"), "plain");
    }
}
