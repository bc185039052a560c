//! The agent↔server protocol decoder, both directions. Invariants: any frame decodes or is
//! refused (no panic); whatever decodes encodes to a frame that decodes to the same message.
#![no_main]

use libfuzzer_sys::fuzz_target;
use warden_protocol::{AgentMessage, ServerMessage};

fuzz_target!(|frame: &str| {
    if let Ok(m) = AgentMessage::decode(frame) {
        let again = AgentMessage::decode(&m.encode()).expect("re-encoded agent message decodes");
        assert_eq!(again, m);
    }
    if let Ok(m) = ServerMessage::decode(frame) {
        let again = ServerMessage::decode(&m.encode()).expect("re-encoded server message decodes");
        assert_eq!(again, m);
    }
});
