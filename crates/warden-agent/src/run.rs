//! Running one session process: confined (see [`crate::sandbox`]), in its worktree, with a
//! clean environment holding only what the session was given (the provider key and workspace
//! variables live in this process's environment and nowhere else on the host), its output
//! streamed in numbered chunks so a client can resume, and its whole process group ended on
//! stop.

use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::process::Command;
use tokio::sync::mpsc;
use zeroize::Zeroizing;

use crate::sandbox::{Confinement, Isolation};

/// Which output stream a chunk came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

/// What a running process reports, in `seq` order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A chunk of output: text that fits one protocol message (see [`wire_pieces`]).
    Output {
        /// Position in the session's stream.
        seq: u64,
        /// Which stream.
        stream: Stream,
        /// The text: the bytes as UTF-8, a character split across reads kept whole, invalid
        /// sequences and NUL (which PostgreSQL text cannot hold) replaced by U+FFFD.
        data: String,
    },
    /// The process ended.
    Exited {
        /// Position in the session's stream.
        seq: u64,
        /// Exit code, when it exited.
        code: Option<i32>,
        /// The signal that ended it, when one did.
        signal: Option<i32>,
    },
}

/// What to run. `Debug` shows the environment's names, never its values.
pub struct Spec {
    /// The `warden-agent` binary, which confines itself and then runs `argv`.
    pub launcher: std::path::PathBuf,
    /// Program and arguments (no shell).
    pub argv: Vec<String>,
    /// Environment beyond the basics (provider key, workspace variables).
    pub env: Vec<(String, Zeroizing<String>)>,
    /// Where it may act.
    pub confinement: Confinement,
}

impl std::fmt::Debug for Spec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Spec")
            .field("argv", &self.argv)
            .field(
                "env",
                &self.env.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(),
            )
            .field("confinement", &self.confinement)
            .finish_non_exhaustive()
    }
}

/// A started process.
#[derive(Debug)]
pub struct Running {
    /// Its process group.
    pub pgid: i32,
    /// The isolation it got.
    pub isolation: Isolation,
    /// Its events; the last one is [`Event::Exited`].
    pub events: mpsc::Receiver<Event>,
}

const CHUNK: usize = 16 * 1024;

/// At most this many bytes of a chunk's text once escaped as JSON: a message with it stays
/// well under the protocol's frame limit, whatever the text (a control character takes six).
pub const WIRE_TEXT_BUDGET: usize = 32 * 1024;

/// How much of `bytes` is whole UTF-8 characters: the end of a character a read cut in two is
/// left for the next read (anything else invalid is replaced when converted).
fn whole_chars(bytes: &[u8]) -> usize {
    let n = bytes.len();
    for back in 1..=n.min(3) {
        let b = bytes[n - back];
        if b & 0xC0 == 0x80 {
            continue;
        }
        let need = match b {
            0xF0.. => 4,
            0xE0.. => 3,
            0xC0.. => 2,
            _ => 1,
        };
        return if need > back { n - back } else { n };
    }
    n
}

/// The text of `bytes`: invalid sequences and NUL become U+FFFD.
fn text_of(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    if text.contains('\0') {
        text.replace('\0', "\u{FFFD}")
    } else {
        text.into_owned()
    }
}

/// Splits `text` at character boundaries into pieces of at most [`WIRE_TEXT_BUDGET`] bytes
/// once escaped as JSON.
pub fn wire_pieces(text: &str) -> Vec<&str> {
    let mut pieces = Vec::new();
    let (mut start, mut size) = (0, 0);
    for (i, c) in text.char_indices() {
        let escaped = match c {
            '"' | '\\' | '\n' | '\r' | '\t' | '\u{8}' | '\u{c}' => 2,
            c if u32::from(c) < 0x20 => 6,
            c => c.len_utf8(),
        };
        if size + escaped > WIRE_TEXT_BUDGET {
            pieces.push(&text[start..i]);
            (start, size) = (i, 0);
        }
        size += escaped;
    }
    if start < text.len() {
        pieces.push(&text[start..]);
    }
    pieces
}

/// Writes the files the server asked for into the session's private home (owner-only), each
/// at a relative path that passes the worktree path rules; anything else refuses the start.
/// Called once, on the freshly made home, before any process of the session ran (so nothing
/// there is the session's yet) and before the home is handed to the session's user; links
/// are never followed all the same.
pub fn write_home_files(home: &std::path::Path, json: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    let files: std::collections::BTreeMap<String, String> = serde_json::from_str(json)
        .map_err(|_| std::io::Error::other("the session's home files are not a JSON object"))?;
    for (path, content) in files {
        let rel = warden_domain::sessions::WorktreePath::parse(&path)
            .map_err(|r| std::io::Error::other(format!("a home file's path: {r}")))?;
        let parts: Vec<&str> = rel.as_str().split('/').collect();
        let mut dir = home.to_path_buf();
        for part in &parts[..parts.len() - 1] {
            dir.push(part);
            match std::fs::symlink_metadata(&dir) {
                Ok(m) if m.is_dir() && !m.file_type().is_symlink() => {}
                Ok(_) => {
                    return Err(std::io::Error::other(
                        "a home file's folder is not a folder",
                    ));
                }
                Err(_) => std::fs::DirBuilder::new().mode(0o700).create(&dir)?,
            }
        }
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
            .open(dir.join(parts[parts.len() - 1]))?
            .write_all(content.as_bytes())?;
    }
    Ok(())
}

/// Starts `spec`; the first event's `seq` is `first_seq`.
pub fn start(spec: Spec, first_seq: u64) -> std::io::Result<Running> {
    if spec.argv.is_empty() {
        return Err(std::io::Error::other("empty command"));
    }
    let (mut cmd, isolation): (Command, Isolation) =
        crate::sandbox::command(&spec.launcher, &spec.argv, &spec.confinement);
    cmd.current_dir(&spec.confinement.worktree)
        .env_clear()
        .env("HOME", &spec.confinement.tmp)
        .env("TMPDIR", &spec.confinement.tmp)
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .env("LANG", "C.UTF-8")
        .env("GIT_CONFIG_COUNT", "1")
        .env("GIT_CONFIG_KEY_0", "safe.directory")
        .env("GIT_CONFIG_VALUE_0", "*")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    for (k, v) in &spec.env {
        // Written into the home before any process of the session ran (work.rs); no
        // process sees the variable.
        if k != warden_domain::sessions::HOME_FILES_VAR {
            cmd.env(k, v.as_str());
        }
    }
    let mut child = cmd.spawn()?;
    let pgid = child
        .id()
        .and_then(|p| i32::try_from(p).ok())
        .ok_or_else(|| std::io::Error::other("no process id"))?;
    let (tx, events) = mpsc::channel(64);
    // The session's secret values never leave the host in its output.
    let masker = Arc::new(crate::mask::Masker::new(
        spec.env.iter().map(|(_, v)| v.as_str()),
    ));
    // Numbered and sent under one lock, so the numbers follow the order of the channel even
    // with standard output and standard error both busy.
    let seq = Arc::new(tokio::sync::Mutex::new(first_seq));
    let readers: Vec<_> = [
        child.stdout.take().map(|r| {
            (
                Stream::Stdout,
                Box::new(r) as Box<dyn tokio::io::AsyncRead + Send + Unpin>,
            )
        }),
        child.stderr.take().map(|r| {
            (
                Stream::Stderr,
                Box::new(r) as Box<dyn tokio::io::AsyncRead + Send + Unpin>,
            )
        }),
    ]
    .into_iter()
    .flatten()
    .map(|(stream, mut reader)| {
        let tx = tx.clone();
        let seq = seq.clone();
        let mut mask = crate::mask::MaskStream::new(masker.clone());
        tokio::spawn(async move {
            let mut buf = vec![0u8; CHUNK];
            // Read bytes not yet sent: at most the start of one character.
            let mut held: Vec<u8> = Vec::new();
            loop {
                let n = match reader.read(&mut buf).await {
                    Ok(0) | Err(_) => 0,
                    Ok(n) => n,
                };
                let text = if n == 0 {
                    let rest = mask.push(&text_of(&std::mem::take(&mut held)));
                    rest + &mask.finish()
                } else {
                    held.extend_from_slice(&buf[..n]);
                    let whole = whole_chars(&held);
                    let text = text_of(&held[..whole]);
                    held.drain(..whole);
                    mask.push(&text)
                };
                for piece in wire_pieces(&text) {
                    let mut next = seq.lock().await;
                    let event = Event::Output {
                        seq: *next,
                        stream,
                        data: piece.to_owned(),
                    };
                    *next += 1;
                    if tx.send(event).await.is_err() {
                        return;
                    }
                }
                if n == 0 {
                    return;
                }
            }
        })
    })
    .collect();
    tokio::spawn(async move {
        let status = child.wait().await;
        for r in readers {
            let _ = r.await;
        }
        let (code, signal) = match status {
            Ok(s) => (s.code(), std::os::unix::process::ExitStatusExt::signal(&s)),
            Err(_) => (None, None),
        };
        let mut next = seq.lock().await;
        let _ = tx
            .send(Event::Exited {
                seq: *next,
                code,
                signal,
            })
            .await;
        *next += 1;
    });
    Ok(Running {
        pgid,
        isolation,
        events,
    })
}

/// Ends process group `pgid`: SIGTERM, then SIGKILL after `grace`.
pub async fn stop(pgid: i32, grace: Duration) {
    use rustix::process::{Pid, Signal, kill_process_group};
    let Some(pid) = Pid::from_raw(pgid) else {
        return;
    };
    let _ = kill_process_group(pid, Signal::TERM);
    tokio::time::sleep(grace).await;
    let _ = kill_process_group(pid, Signal::KILL);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_character_cut_by_a_read_waits_for_the_rest() {
        let crab = "🦀".as_bytes();
        for cut in 1..crab.len() {
            let mut bytes = b"ab".to_vec();
            bytes.extend_from_slice(&crab[..cut]);
            assert_eq!(whole_chars(&bytes), 2, "cut after {cut} bytes");
        }
        assert_eq!(whole_chars("ab🦀".as_bytes()), 6);
        assert_eq!(whole_chars("é".as_bytes()), 2);
        assert_eq!(whole_chars(b""), 0);
        // Not the start of a character: nothing to wait for, it is replaced.
        assert_eq!(whole_chars(&[b'a', 0x80, 0x80, 0x80]), 4);
        assert_eq!(text_of(&[b'a', 0, 0xFF]), "a\u{FFFD}\u{FFFD}");
    }

    #[test]
    fn every_piece_fits_a_message_once_escaped() {
        let wild: String = "\u{1}\0\"\\\n🦀x".repeat(20_000);
        let pieces = wire_pieces(&wild);
        assert!(pieces.len() > 1);
        assert_eq!(pieces.concat(), wild);
        for p in &pieces {
            let json = serde_json::to_string(p).unwrap();
            assert!(json.len() <= WIRE_TEXT_BUDGET + 2, "{}", json.len());
        }
        assert!(wire_pieces("").is_empty());
        assert_eq!(wire_pieces("short"), ["short"]);
    }

    #[test]
    fn a_spec_never_prints_its_environment_values() {
        let spec = Spec {
            launcher: "/bin/true".into(),
            argv: vec!["claude".into()],
            env: vec![(
                "ANTHROPIC_API_KEY".into(),
                Zeroizing::new("sk-secret-value".into()),
            )],
            confinement: Confinement {
                worktree: "/w".into(),
                tmp: "/t".into(),
                mirror: None,
                read_only: Vec::new(),
                run_as: None,
            },
        };
        let shown = format!("{spec:?}");
        assert!(shown.contains("ANTHROPIC_API_KEY") && !shown.contains("sk-secret-value"));
    }

    #[test]
    fn home_files_land_in_the_private_home_and_stay_inside_it() {
        let home = tempfile::tempdir().unwrap();
        write_home_files(
            home.path(),
            r#"{".gemini/settings.json": "{\"mcpServers\": {}}"}"#,
        )
        .unwrap();
        let written = home.path().join(".gemini/settings.json");
        assert_eq!(
            std::fs::read_to_string(&written).unwrap(),
            r#"{"mcpServers": {}}"#
        );
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&written).unwrap().permissions().mode() & 0o777,
            0o600
        );
        for bad in [
            r#"{"../escape": "x"}"#,
            r#"{"/etc/passwd": "x"}"#,
            r#"{"a/../../b": "x"}"#,
            r#"["not", "a", "map"]"#,
        ] {
            assert!(write_home_files(home.path(), bad).is_err(), "{bad}");
        }
        assert!(!home.path().parent().unwrap().join("escape").exists());
        // Never through a link, never over a file that is there.
        let elsewhere = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(elsewhere.path(), home.path().join(".qwen")).unwrap();
        assert!(write_home_files(home.path(), r#"{".qwen/settings.json": "x"}"#).is_err());
        assert!(!elsewhere.path().join("settings.json").exists());
        std::os::unix::fs::symlink("/etc/hostname", home.path().join("link.json")).unwrap();
        assert!(write_home_files(home.path(), r#"{"link.json": "x"}"#).is_err());
        assert!(write_home_files(home.path(), r#"{".gemini/settings.json": "again"}"#).is_err());
    }
}
