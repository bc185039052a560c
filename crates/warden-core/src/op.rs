//! One operation: who acts, from where, and the one clock reading the whole use case uses.
//! A front end builds an [`Op`] per request (or per job run); use cases stamp their audit
//! events and rows from it, so "change → audit → commit" reads the same everywhere.

use std::net::IpAddr;
use std::time::Instant;

use serde_json::Value;
use time::OffsetDateTime;
use warden_domain::audit::{Action, Actor, NewEvent, Outcome};
use warden_domain::clock::Clock;

/// Where an operation came from.
#[derive(Debug, Clone, Default)]
pub struct Origin {
    /// The client's address.
    pub ip: Option<IpAddr>,
    /// The client's user agent.
    pub user_agent: Option<String>,
    /// The request's id, for correlating the audit log with the server log.
    pub request_id: Option<String>,
}

impl Origin {
    /// The client address as text.
    pub fn ip_text(&self) -> Option<String> {
        self.ip.map(|ip| ip.to_string())
    }
}

/// One request or job run.
#[derive(Debug, Clone)]
pub struct Op {
    /// Who acts.
    pub actor: Actor,
    /// From where.
    pub origin: Origin,
    /// When: read once, used for every row and event of the operation.
    pub now: OffsetDateTime,
    started: Instant,
}

impl Op {
    /// An operation by `actor` from `origin`, reading the clock once.
    pub fn new(actor: Actor, origin: Origin, clock: &dyn Clock) -> Self {
        Self::started_at(actor, origin, clock, Instant::now())
    }

    /// As [`Op::new`], timing the operation from `started` (when the request arrived).
    pub fn started_at(actor: Actor, origin: Origin, clock: &dyn Clock, started: Instant) -> Self {
        Self {
            actor,
            origin,
            now: clock.now(),
            started,
        }
    }

    /// The same operation (origin, instant) continued on behalf of `actor` — e.g. what a
    /// sign-in goes on to change for the person who just signed in.
    pub fn acting_as(&self, actor: Actor) -> Self {
        Self {
            actor,
            ..self.clone()
        }
    }

    /// [`Op::now`] in Unix microseconds, as rows store it.
    pub fn now_us(&self) -> i64 {
        unix_us(self.now)
    }

    /// The audit event of a successful change: what was done (`workspace.renamed`), to which
    /// kind of resource and which one, and the redacted summary.
    pub fn event(
        &self,
        action: &'static str,
        resource_type: &'static str,
        resource_id: Option<String>,
        summary: Value,
    ) -> NewEvent {
        self.event_with(
            action,
            resource_type,
            resource_id,
            Outcome::Success,
            summary,
        )
    }

    /// An audit event whose actor is not the operation's (a sign-in acts for the account it
    /// signs into).
    pub fn event_by(
        &self,
        actor: Actor,
        action: &'static str,
        resource_type: &'static str,
        resource_id: Option<String>,
        outcome: Outcome,
        summary: Value,
    ) -> NewEvent {
        NewEvent {
            actor,
            ..self.event_with(action, resource_type, resource_id, outcome, summary)
        }
    }

    /// An audit event with an explicit outcome (a refusal worth recording).
    pub fn event_with(
        &self,
        action: &'static str,
        resource_type: &'static str,
        resource_id: Option<String>,
        outcome: Outcome,
        summary: Value,
    ) -> NewEvent {
        NewEvent {
            at: self.now,
            actor: self.actor.clone(),
            workspace_id: None,
            action: Action::from_static(action),
            resource_type: resource_type.to_owned(),
            resource_id,
            outcome,
            client_ip: self.origin.ip,
            user_agent: self.origin.user_agent.clone(),
            request_id: self.origin.request_id.clone(),
            duration_ms: i64::try_from(self.started.elapsed().as_millis()).unwrap_or(i64::MAX),
            summary,
        }
    }
}

/// A time in Unix microseconds, as rows store it.
pub fn unix_us(at: OffsetDateTime) -> i64 {
    i64::try_from(at.unix_timestamp_nanos() / 1_000).unwrap_or(i64::MAX)
}

/// A time in Unix microseconds as RFC 3339 text (empty if out of range).
pub fn rfc3339(us: i64) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(us) * 1_000)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use warden_domain::clock::ManualClock;

    #[test]
    fn every_event_of_one_operation_carries_its_one_clock_reading() {
        let clock = ManualClock::new(OffsetDateTime::UNIX_EPOCH + time::Duration::days(1));
        let op = Op::new(Actor::system(), Origin::default(), &clock);
        clock.advance(time::Duration::minutes(5));
        let a = op.event("x.one", "x", None, Value::Null);
        let b = op.event("x.two", "x", None, Value::Null);
        assert_eq!(a.at, b.at);
        assert_eq!(op.now_us(), 86_400_000_000);
    }
}
