//! What the command line prints.

/// Writes to standard output, ignoring a closed pipe: a server whose output reader went
/// away must keep serving.
pub(crate) fn print(text: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{text}").and_then(|()| out.flush());
}
