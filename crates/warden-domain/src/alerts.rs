//! Alerts that reach people: the incidents an administrator must hear about at once, by
//! mail, once per incident — not by reading a log. Each has a stable name (the metrics label,
//! the audit summary, `/readyz`), a subject line and the runbook section that says what to do.

/// What went wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AlertKind {
    /// The audit chain failed verification: an event was edited, deleted, inserted,
    /// reordered or written without the server's seal.
    AuditChainBroken,
    /// The clock moved back past the licence's high-water mark.
    LicenseClockTampered,
    /// The installed licence's signature no longer verifies with this node's keys.
    LicenseSignatureInvalid,
    /// A host's correct key was presented from an address its allow list refuses.
    HostRefusedNetwork,
}

impl AlertKind {
    /// Every kind, in a fixed order.
    pub const ALL: [Self; 4] = [
        Self::AuditChainBroken,
        Self::LicenseClockTampered,
        Self::LicenseSignatureInvalid,
        Self::HostRefusedNetwork,
    ];

    /// The stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AuditChainBroken => "audit_chain_broken",
            Self::LicenseClockTampered => "license_clock_tampered",
            Self::LicenseSignatureInvalid => "license_signature_invalid",
            Self::HostRefusedNetwork => "host_refused_network",
        }
    }

    /// The kind named `s`.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// The mail's subject line.
    pub fn subject(self) -> &'static str {
        match self {
            Self::AuditChainBroken => "Warden alert: the audit chain is broken",
            Self::LicenseClockTampered => {
                "Warden alert: the clock moved back; the licence is suspended"
            }
            Self::LicenseSignatureInvalid => {
                "Warden alert: the licence's signature does not verify"
            }
            Self::HostRefusedNetwork => "Warden alert: a host key was used from a refused network",
        }
    }

    /// What it means and what to do first (the runbook has the rest).
    pub fn advice(self) -> &'static str {
        match self {
            Self::AuditChainBroken => {
                "Someone changed the audit trail outside Warden. Run `warden audit verify` on a \
                 server to see where, keep a copy of the database as it is now, and follow \
                 docs/operations/incident-response.md, \"The audit trail fails its check\"."
            }
            Self::LicenseClockTampered => {
                "This server's clock is more than a day behind the latest time Warden has seen, \
                 so the licence is suspended until the clock passes that time again. Fix the \
                 clock (NTP) and follow docs/operations/incident-response.md, \"A licence problem\"."
            }
            Self::LicenseSignatureInvalid => {
                "The installed licence does not verify with this build's operator keys. Upload \
                 a licence signed for this installation, and follow \
                 docs/operations/incident-response.md, \"A licence problem\"."
            }
            Self::HostRefusedNetwork => {
                "A host's valid key was presented from an address outside its allowed networks: \
                 the key may have leaked. If you did not move the host, rotate its key now \
                 (`warden host rotate-key HOST_ID --grace-minutes 0`) and follow \
                 docs/operations/incident-response.md, \"A host key is compromised\"."
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_stable_and_parse_back() {
        for k in AlertKind::ALL {
            assert_eq!(AlertKind::parse(k.as_str()), Some(k));
            assert!(k.subject().starts_with("Warden alert: "));
        }
        assert_eq!(AlertKind::parse("nope"), None);
    }
}
