//! What this agent reported about its sessions and the server has not yet said it stored
//! (`Recorded`, protocol 3). A node can die between reading a report and committing it; the
//! agent keeps each report until it is confirmed and reports the rest again on its next
//! connection — to whichever node it reaches — where what is already stored is skipped. So a
//! session's start, output and end survive the loss of the node the host was connected to.
//!
//! Bounded: past [`MAX_BYTES`] of output or [`MAX_REPORTS`] reports (a server that stopped
//! confirming), the oldest output is forgotten first, with a warning; the session itself never
//! waits for the server.

use std::collections::VecDeque;

use warden_protocol::AgentMessage;

/// Output kept at most (bytes of text).
pub const MAX_BYTES: usize = 64 * 1024 * 1024;
/// Reports kept at most.
pub const MAX_REPORTS: usize = 200_000;

/// Reports sent and not yet confirmed, in the order they were sent.
#[derive(Debug, Default)]
pub struct Unconfirmed {
    reports: VecDeque<AgentMessage>,
    bytes: usize,
    forgotten: u64,
}

fn session_of(msg: &AgentMessage) -> Option<&str> {
    match msg {
        AgentMessage::SessionStarted { session_id, .. }
        | AgentMessage::SessionOutput { session_id, .. }
        | AgentMessage::SessionEnded { session_id, .. } => Some(session_id),
        _ => None,
    }
}

fn size(msg: &AgentMessage) -> usize {
    match msg {
        AgentMessage::SessionOutput { data, .. } => data.len(),
        _ => 0,
    }
}

impl Unconfirmed {
    /// Keeps a report just sent (session reports only; anything else is not replayed).
    pub fn keep(&mut self, msg: &AgentMessage) {
        if session_of(msg).is_none() {
            return;
        }
        self.bytes += size(msg);
        self.reports.push_back(msg.clone());
        while self.bytes > MAX_BYTES || self.reports.len() > MAX_REPORTS {
            // The oldest output goes first; starts and ends are small and decide a session's
            // status, so they stay while any output is left to drop.
            let at = self
                .reports
                .iter()
                .position(|r| matches!(r, AgentMessage::SessionOutput { .. }))
                .unwrap_or(0);
            if let Some(dropped) = self.reports.remove(at) {
                self.bytes -= size(&dropped);
                self.forgotten += 1;
                if self.forgotten.is_power_of_two() {
                    tracing::warn!(
                        reports = self.forgotten,
                        "the server has not confirmed this host's reports for a while; the oldest \
                         output will not be reported again if the connection is lost"
                    );
                }
            }
        }
    }

    /// The server stored the session's start (`through` `None`, not `ended`), its output up to
    /// `through`, or its end (then nothing of the session is kept).
    pub fn confirm(&mut self, session_id: &str, through: Option<u64>, ended: bool) {
        let mut freed = 0;
        self.reports.retain(|r| {
            if session_of(r) != Some(session_id) {
                return true;
            }
            let gone = ended
                || match r {
                    AgentMessage::SessionStarted { .. } => through.is_none(),
                    AgentMessage::SessionOutput { seq, .. } => through.is_some_and(|t| *seq <= t),
                    _ => false,
                };
            if gone {
                freed += size(r);
            }
            !gone
        });
        self.bytes -= freed;
    }

    /// What to report again, in the order first sent.
    pub fn pending(&self) -> impl Iterator<Item = &AgentMessage> {
        self.reports.iter()
    }

    /// Sessions that ended here but whose end is not confirmed: still the host's to report.
    pub fn ending(&self) -> Vec<String> {
        self.reports
            .iter()
            .filter_map(|r| match r {
                AgentMessage::SessionEnded { session_id, .. } => Some(session_id.clone()),
                _ => None,
            })
            .collect()
    }

    /// How many reports wait for confirmation.
    pub fn len(&self) -> usize {
        self.reports.len()
    }

    /// Whether none does.
    pub fn is_empty(&self) -> bool {
        self.reports.is_empty()
    }

    /// Forgets everything (a server that does not confirm cannot be reported to again).
    pub fn clear(&mut self) {
        self.reports.clear();
        self.bytes = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use warden_protocol::{EndStatus, Stream};

    fn output(session: &str, seq: u64, data: &str) -> AgentMessage {
        AgentMessage::SessionOutput {
            session_id: session.to_owned(),
            seq,
            stream: Stream::Stdout,
            data: data.to_owned(),
        }
    }

    fn ended(session: &str) -> AgentMessage {
        AgentMessage::SessionEnded {
            session_id: session.to_owned(),
            seq: 9,
            status: EndStatus::Done,
            exit_code: Some(0),
            error: None,
        }
    }

    #[test]
    fn confirmed_reports_are_forgotten_and_the_rest_kept_in_order() {
        let mut u = Unconfirmed::default();
        u.keep(&AgentMessage::SessionStarted {
            session_id: "a".into(),
            isolation: "landlock".into(),
        });
        for seq in 0..5 {
            u.keep(&output("a", seq, "x"));
            u.keep(&output("b", seq, "y"));
        }
        u.keep(&ended("b"));
        u.keep(&AgentMessage::Heartbeat {
            state: warden_protocol::AgentState::Idle,
        });
        assert_eq!(u.len(), 12);
        assert_eq!(u.ending(), vec!["b".to_owned()]);
        u.confirm("a", None, false);
        u.confirm("a", Some(2), false);
        let left: Vec<_> = u.pending().cloned().collect();
        assert_eq!(left[0], output("b", 0, "y"));
        assert!(left.contains(&output("a", 3, "x")) && !left.contains(&output("a", 2, "x")));
        u.confirm("b", None, true);
        assert!(u.ending().is_empty());
        assert_eq!(
            u.pending().cloned().collect::<Vec<_>>(),
            vec![output("a", 3, "x"), output("a", 4, "x")]
        );
        assert_eq!(u.bytes, 2);
    }

    #[test]
    fn past_the_bound_the_oldest_output_goes_first_and_ends_stay() {
        let mut u = Unconfirmed::default();
        u.keep(&ended("old"));
        let big = "z".repeat(MAX_BYTES / 4);
        for seq in 0..6 {
            u.keep(&output("a", seq, &big));
        }
        assert!(u.bytes <= MAX_BYTES);
        assert_eq!(u.ending(), vec!["old".to_owned()]);
        let seqs: Vec<u64> = u
            .pending()
            .filter_map(|r| match r {
                AgentMessage::SessionOutput { seq, .. } => Some(*seq),
                _ => None,
            })
            .collect();
        assert_eq!(seqs, vec![2, 3, 4, 5]);
    }
}
