//! Unfamiliar sign-in alerts: every sign-in, whatever the method, notes the network (/24,
//! /48) and user-agent family it came from. One from a pair never seen for an account that
//! has signed in before mails the account's owner and records `auth.unfamiliar_sign_in`
//! (administrators list them in the audit log); the very first sign-in alerts nobody.

use serde_json::json;
use warden_domain::audit::Outcome;
use warden_domain::identity::{agent_family, sign_in_network};
use warden_store::Tx;
use warden_store::identity::UserRow;
use warden_store::sign_in::SeenBefore;

use super::flows::actor_for;
use crate::mail::{self, Outgoing};
use crate::{CoreResult, Ctx, Op};

/// Notes where `user` signs in from, in the sign-in's transaction; queues the alert when it
/// is unfamiliar. Returns whether it was (the caller wakes the mail sender after commit).
pub async fn note(ctx: &Ctx, op: &Op, tx: &mut Tx, user: &UserRow) -> CoreResult<bool> {
    let network = op
        .origin
        .ip
        .map_or_else(|| "unknown".to_owned(), sign_in_network);
    let family = agent_family(op.origin.user_agent.as_deref());
    let now = op.now_us();
    if tx
        .note_sign_in_origin(user.id, &network, &family, now)
        .await?
        != SeenBefore::No
    {
        return Ok(false);
    }
    let when = crate::op::rfc3339(now);
    let address = op
        .origin
        .ip_text()
        .unwrap_or_else(|| "an unknown address".into());
    let body = format!(
        "Your Warden account {} was signed in to from somewhere it has not been before:\n\n\
         when: {when}\naddress: {address} (network {network})\nbrowser or client: {family}\n\n\
         If this was you, there is nothing to do. If not, change your password at once and \
         sign out your other devices (Profile → Devices, or DELETE /api/v1/me/devices/…), \
         and tell your administrator.\n",
        user.email
    );
    let m = Outgoing {
        kind: "unfamiliar_sign_in",
        to: &user.email,
        subject: "New sign-in to your Warden account",
        body: &body,
    };
    mail::queue(ctx, tx, &m, now).await?;
    let event = op.event_by(
        actor_for(Some(user.id)),
        "auth.unfamiliar_sign_in",
        "user",
        Some(user.id.to_string()),
        Outcome::Success,
        json!({"email": user.email, "network": network, "agent_family": family}),
    );
    tx.record(&ctx.audit_key, &event).await?;
    Ok(true)
}
