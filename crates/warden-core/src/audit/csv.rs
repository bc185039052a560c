//! Audit events as CSV (RFC 4180 quoting by the `csv` crate), with every text cell that a
//! spreadsheet would run as a formula neutralised.

use std::borrow::Cow;

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use warden_store::audit::Row;

/// The header row.
pub const HEADER: [&str; 16] = [
    "seq",
    "event_id",
    "time",
    "actor_kind",
    "actor_id",
    "workspace_id",
    "action",
    "resource_type",
    "resource_id",
    "outcome",
    "client_ip",
    "user_agent",
    "request_id",
    "duration_ms",
    "summary",
    "hash",
];

/// A cell a spreadsheet would treat as a formula (`= + - @`, tab, carriage return) gets a
/// leading apostrophe, so it is shown as text.
pub fn neutralize(cell: &str) -> Cow<'_, str> {
    match cell.as_bytes().first() {
        Some(b'=' | b'+' | b'-' | b'@' | b'\t' | b'\r') => Cow::Owned(format!("'{cell}")),
        _ => Cow::Borrowed(cell),
    }
}

/// Writes the header row.
pub fn write_header<W: std::io::Write>(out: &mut csv::Writer<W>) -> csv::Result<()> {
    out.write_record(HEADER)
}

/// Writes one event.
pub fn write_row<W: std::io::Write>(out: &mut csv::Writer<W>, row: &Row) -> csv::Result<()> {
    let time = OffsetDateTime::from_unix_timestamp_nanos(i128::from(row.occurred_at_us) * 1_000)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_default();
    let text = |v: &Option<String>| neutralize(v.as_deref().unwrap_or("")).into_owned();
    out.write_record([
        row.seq.to_string(),
        neutralize(&row.event_id).into_owned(),
        time,
        neutralize(&row.actor_kind).into_owned(),
        text(&row.actor_id),
        text(&row.workspace_id),
        neutralize(&row.action).into_owned(),
        neutralize(&row.resource_type).into_owned(),
        text(&row.resource_id),
        neutralize(&row.outcome).into_owned(),
        text(&row.client_ip),
        text(&row.user_agent),
        text(&row.request_id),
        row.duration_ms.to_string(),
        neutralize(&row.summary).into_owned(),
        hex_lower(&row.hash),
    ])
}

fn hex_lower(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Streams the CSV export of `filter` in chunks of 256 rows. Rows are read from one
/// snapshot through a bounded channel, so memory stays flat; if the receiver (an HTTP client)
/// goes away, reading stops and the read transaction ends.
/// `rows_done`, when given, counts the rows encoded so far (for a progress bar).
pub fn stream(
    store: warden_store::Store,
    filter: warden_store::audit::Filter,
    rows_done: Option<std::sync::Arc<std::sync::atomic::AtomicU64>>,
) -> impl futures_util::Stream<Item = Result<Vec<u8>, std::io::Error>> + Send + 'static {
    let (rows_tx, mut rows_rx) = tokio::sync::mpsc::channel::<Row>(256);
    let (chunks_tx, chunks_rx) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(4);
    tokio::spawn(async move {
        let export = store.audit_export(&filter, rows_tx);
        let encode = async {
            let mut out = csv::Writer::from_writer(Vec::new());
            let mut written = write_header(&mut out);
            let mut in_chunk = 0usize;
            loop {
                let row = rows_rx.recv().await;
                if let Some(row) = &row {
                    written = written.and_then(|()| write_row(&mut out, row));
                    in_chunk += 1;
                    if let Some(done) = &rows_done {
                        done.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                }
                if written.is_ok() && in_chunk < 256 && row.is_some() {
                    continue;
                }
                let chunk = written
                    .map_err(|e| std::io::Error::other(e.to_string()))
                    .and_then(|()| {
                        out.into_inner()
                            .map_err(|e| std::io::Error::other(e.to_string()))
                    });
                let failed = chunk.is_err();
                if chunks_tx.send(chunk).await.is_err() || failed || row.is_none() {
                    return;
                }
                out = csv::Writer::from_writer(Vec::new());
                written = Ok(());
                in_chunk = 0;
            }
        };
        let (exported, ()) = tokio::join!(export, encode);
        if let Err(e) = exported {
            tracing::error!(error = %e, "audit export failed");
        }
    });
    futures_util::stream::unfold(chunks_rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formula_cells_are_neutralised_and_others_left_alone() {
        for (cell, shown) in [
            ("=HYPERLINK(\"http://x\")", "'=HYPERLINK(\"http://x\")"),
            ("+1+1", "'+1+1"),
            ("-2", "'-2"),
            ("@SUM(A1)", "'@SUM(A1)"),
            ("\tx", "'\tx"),
            ("\rx", "'\rx"),
            ("user.sign_in", "user.sign_in"),
            ("", ""),
        ] {
            assert_eq!(neutralize(cell), shown);
        }
    }
}
