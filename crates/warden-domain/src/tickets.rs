//! Tickets: where a ticket may go next and which permission each move needs, and the limits
//! on what a ticket says. The use cases (`warden-core::tickets`) ask [`transition`] before
//! every change of status.

use serde::Serialize;

use crate::access::Permission;
use crate::tenancy::Invalid;

/// Where a ticket stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TicketStatus {
    /// Written down, not yet approved for work.
    Backlog,
    /// Approved for development.
    ReadyForDevelopment,
    /// An agent session (or a person) works on it.
    InDevelopment,
    /// The work waits for QA.
    ReadyForQa,
    /// Finished.
    Done,
    /// Will not be done.
    Rejected,
}

impl TicketStatus {
    /// Every status, in workflow order.
    pub const ALL: [TicketStatus; 6] = [
        Self::Backlog,
        Self::ReadyForDevelopment,
        Self::InDevelopment,
        Self::ReadyForQa,
        Self::Done,
        Self::Rejected,
    ];

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Backlog => "backlog",
            Self::ReadyForDevelopment => "ready_for_development",
            Self::InDevelopment => "in_development",
            Self::ReadyForQa => "ready_for_qa",
            Self::Done => "done",
            Self::Rejected => "rejected",
        }
    }

    /// The status called `name`.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == name)
    }

    /// Whether work on the ticket is over.
    pub fn is_closed(self) -> bool {
        matches!(self, Self::Done | Self::Rejected)
    }
}

/// A move a ticket may make, and what it needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transition {
    /// The permission the caller must hold in the workspace.
    pub needs: Permission,
    /// Whether the move must say why (rejections and sending work back).
    pub needs_reason: bool,
}

/// Whether a ticket may go from `from` to `to`, and with which permission. `None`: the move
/// does not exist (409).
///
/// | from → to | permission |
/// |---|---|
/// | backlog → ready for development, and back | `tickets.approve_dev` |
/// | ready for development → in development | `tickets.update` |
/// | in development → ready for QA | `tickets.update` |
/// | ready for QA → done | `tickets.approve_qa` |
/// | ready for QA → in development (sent back, with a reason) | `tickets.approve_qa` |
/// | backlog, ready for development, in development → done | `tickets.skip_to_merge` |
/// | backlog, ready for development → rejected (with a reason) | `tickets.approve_dev` |
/// | in development, ready for QA → rejected (with a reason) | `tickets.approve_qa` |
/// | done, rejected → backlog (reopened, with a reason) | `tickets.approve_dev` |
pub fn transition(from: TicketStatus, to: TicketStatus) -> Option<Transition> {
    use TicketStatus::*;
    let (needs, needs_reason) = match (from, to) {
        (Backlog, ReadyForDevelopment) | (ReadyForDevelopment, Backlog) => {
            (Permission::TICKETS_APPROVE_DEV, false)
        }
        (ReadyForDevelopment, InDevelopment) | (InDevelopment, ReadyForQa) => {
            (Permission::TICKETS_UPDATE, false)
        }
        (ReadyForQa, Done) => (Permission::TICKETS_APPROVE_QA, false),
        (ReadyForQa, InDevelopment) => (Permission::TICKETS_APPROVE_QA, true),
        (Backlog | ReadyForDevelopment | InDevelopment, Done) => {
            (Permission::TICKETS_SKIP_TO_MERGE, false)
        }
        (Backlog | ReadyForDevelopment, Rejected) => (Permission::TICKETS_APPROVE_DEV, true),
        (InDevelopment | ReadyForQa, Rejected) => (Permission::TICKETS_APPROVE_QA, true),
        (Done | Rejected, Backlog) => (Permission::TICKETS_APPROVE_DEV, true),
        _ => return None,
    };
    Some(Transition {
        needs,
        needs_reason,
    })
}

/// The longest title, in characters.
pub const TITLE_MAX: usize = 200;
/// The longest body, in bytes.
pub const BODY_MAX: usize = 64 * 1024;
/// The longest reason given for a move, in characters.
pub const REASON_MAX: usize = 2000;
/// Most labels on a ticket.
pub const LABELS_MAX: usize = 20;

fn invalid(field: &'static str, reason: &'static str) -> Invalid {
    Invalid { field, reason }
}

fn has_control(s: &str) -> bool {
    s.chars().any(|c| c.is_control())
}

/// Checks a title: 1 to 200 characters on one line.
pub fn check_title(title: &str) -> Result<String, Invalid> {
    let t = title.trim();
    if t.is_empty() || t.chars().count() > TITLE_MAX || has_control(t) {
        return Err(invalid("title", "must be 1 to 200 characters on one line"));
    }
    Ok(t.to_owned())
}

/// Checks a body: Markdown of at most 64 KiB, without NUL.
pub fn check_body(body: &str) -> Result<(), Invalid> {
    if body.len() > BODY_MAX || body.contains('\0') {
        return Err(invalid(
            "body",
            "must be at most 64 KiB of text, without NUL",
        ));
    }
    Ok(())
}

/// Checks labels: at most 20, each 1 to 50 characters on one line, no duplicates (they are
/// compared and stored as given, trimmed).
pub fn check_labels(labels: &[String]) -> Result<Vec<String>, Invalid> {
    let mut out: Vec<String> = Vec::with_capacity(labels.len());
    for l in labels {
        let l = l.trim();
        if l.is_empty() || l.chars().count() > 50 || has_control(l) || l.contains(',') {
            return Err(invalid(
                "labels",
                "each label is 1 to 50 characters on one line, without commas",
            ));
        }
        if !out.iter().any(|o| o == l) {
            out.push(l.to_owned());
        }
    }
    if out.len() > LABELS_MAX {
        return Err(invalid("labels", "at most 20 labels"));
    }
    Ok(out)
}

/// Checks the reason given for a move.
pub fn check_reason(reason: Option<&str>, needed: bool) -> Result<Option<String>, Invalid> {
    let reason = reason.map(str::trim).filter(|r| !r.is_empty());
    match reason {
        None if needed => Err(invalid("reason", "this move needs a reason")),
        None => Ok(None),
        Some(r) if r.chars().count() > REASON_MAX || r.contains('\0') => {
            Err(invalid("reason", "must be at most 2000 characters"))
        }
        Some(r) => Ok(Some(r.to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use TicketStatus::*;

    #[test]
    fn statuses_round_trip() {
        for s in TicketStatus::ALL {
            assert_eq!(TicketStatus::parse(s.as_str()), Some(s));
        }
        assert_eq!(TicketStatus::parse("Done"), None);
    }

    #[test]
    fn every_move_is_listed_with_its_permission() {
        let mut moves = 0;
        for from in TicketStatus::ALL {
            for to in TicketStatus::ALL {
                let Some(t) = transition(from, to) else {
                    continue;
                };
                moves += 1;
                assert_ne!(from, to);
                let expected = match (from, to) {
                    (ReadyForQa, Done) | (ReadyForQa, InDevelopment) => {
                        Permission::TICKETS_APPROVE_QA
                    }
                    (InDevelopment, Rejected) | (ReadyForQa, Rejected) => {
                        Permission::TICKETS_APPROVE_QA
                    }
                    (_, Done) => Permission::TICKETS_SKIP_TO_MERGE,
                    (ReadyForDevelopment, InDevelopment) | (InDevelopment, ReadyForQa) => {
                        Permission::TICKETS_UPDATE
                    }
                    _ => Permission::TICKETS_APPROVE_DEV,
                };
                assert_eq!(t.needs, expected, "{from:?} → {to:?}");
                assert_eq!(
                    t.needs_reason,
                    to == Rejected || from.is_closed() || (from, to) == (ReadyForQa, InDevelopment),
                    "{from:?} → {to:?}"
                );
            }
        }
        assert_eq!(moves, 15);
        assert_eq!(transition(Done, Rejected), None);
        assert_eq!(transition(Backlog, InDevelopment), None);
        assert_eq!(transition(Backlog, ReadyForQa), None);
    }

    #[test]
    fn text_limits() {
        assert_eq!(check_title("  Fix it ").unwrap(), "Fix it");
        assert!(check_title("").is_err());
        assert!(check_title("a\nb").is_err());
        assert!(check_title(&"x".repeat(201)).is_err());
        assert!(check_body(&"x".repeat(BODY_MAX + 1)).is_err());
        assert!(check_body("a\0").is_err());
        assert_eq!(
            check_labels(&["bug".into(), " bug ".into(), "ui".into()]).unwrap(),
            vec!["bug", "ui"]
        );
        assert!(check_labels(&["a,b".into()]).is_err());
        assert!(check_labels(&(0..21).map(|i| i.to_string()).collect::<Vec<_>>()).is_err());
        assert!(check_reason(None, true).is_err());
        assert!(check_reason(Some("  "), true).is_err());
        assert_eq!(
            check_reason(Some(" ok "), true).unwrap().as_deref(),
            Some("ok")
        );
    }
}
