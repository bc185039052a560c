//! The audit CSV exporter. Invariants: whatever the text in an event, the export is exactly
//! one record of the header's width (no cell breaks out into another row or column), read
//! back every text cell is the original or the original behind one apostrophe, and no cell
//! starts with a character a spreadsheet runs as a formula.
#![no_main]

use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use warden_core::audit::csv::{HEADER, write_row};
use warden_store::audit::Row;

#[derive(Arbitrary, Debug)]
struct Event {
    seq: i64,
    event_id: String,
    occurred_at_us: i64,
    actor_kind: String,
    actor_id: Option<String>,
    workspace_id: Option<String>,
    action: String,
    resource_type: String,
    resource_id: Option<String>,
    outcome: String,
    client_ip: Option<String>,
    user_agent: Option<String>,
    request_id: Option<String>,
    duration_ms: i64,
    summary: String,
    hash: Vec<u8>,
}

const FORMULA: &[char] = &['=', '+', '-', '@', '\t', '\r'];

fuzz_target!(|e: Event| {
    let row = Row {
        seq: e.seq,
        event_id: e.event_id,
        occurred_at_us: e.occurred_at_us,
        actor_kind: e.actor_kind,
        actor_id: e.actor_id,
        workspace_id: e.workspace_id,
        action: e.action,
        resource_type: e.resource_type,
        resource_id: e.resource_id,
        outcome: e.outcome,
        client_ip: e.client_ip,
        user_agent: e.user_agent,
        request_id: e.request_id,
        duration_ms: e.duration_ms,
        summary: e.summary,
        hash: e.hash,
        prev_hash: Vec::new(),
    };
    let mut out = csv::Writer::from_writer(Vec::new());
    write_row(&mut out, &row).expect("written");
    let bytes = out.into_inner().expect("flushed");
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(&bytes[..]);
    let records: Vec<_> = reader
        .records()
        .collect::<Result<_, _>>()
        .expect("reads back");
    assert_eq!(records.len(), 1, "one event, one record");
    let cells = &records[0];
    assert_eq!(cells.len(), HEADER.len());
    let opt = |v: &Option<String>| v.clone().unwrap_or_default();
    let texts = [
        (1, row.event_id.clone()),
        (3, row.actor_kind.clone()),
        (4, opt(&row.actor_id)),
        (5, opt(&row.workspace_id)),
        (6, row.action.clone()),
        (7, row.resource_type.clone()),
        (8, opt(&row.resource_id)),
        (9, row.outcome.clone()),
        (10, opt(&row.client_ip)),
        (11, opt(&row.user_agent)),
        (12, opt(&row.request_id)),
        (14, row.summary.clone()),
    ];
    for (i, original) in texts {
        let cell = &cells[i];
        assert!(
            !cell.starts_with(FORMULA),
            "formula in column {}: {cell:?}",
            HEADER[i]
        );
        assert!(
            cell == original || cell.strip_prefix('\'') == Some(original.as_str()),
            "column {} changed: {original:?} -> {cell:?}",
            HEADER[i]
        );
    }
    // The number columns hold numbers (a spreadsheet shows `-5` as minus five, not a formula).
    assert_eq!(cells[0].parse::<i64>().ok(), Some(row.seq));
    assert_eq!(cells[13].parse::<i64>().ok(), Some(row.duration_ms));
    for (i, cell) in cells.iter().enumerate() {
        assert!(
            i == 0 || i == 13 || !cell.starts_with(FORMULA),
            "formula cell: {cell:?}"
        );
    }
});
