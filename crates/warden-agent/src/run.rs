//! Running one session process: confined (see [`crate::sandbox`]), in its worktree, with a
//! clean environment holding only what the session was given (the provider key and workspace
//! variables live in this process's environment and nowhere else on the host), its output
//! streamed in numbered chunks so a client can resume, and its whole process group ended on
//! stop.

use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
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
    /// A chunk of output (at most 16 KiB).
    Output {
        /// Position in the session's stream.
        seq: u64,
        /// Which stream.
        stream: Stream,
        /// The bytes.
        data: Vec<u8>,
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
        cmd.env(k, v.as_str());
    }
    let mut child = cmd.spawn()?;
    let pgid = child
        .id()
        .and_then(|p| i32::try_from(p).ok())
        .ok_or_else(|| std::io::Error::other("no process id"))?;
    let (tx, events) = mpsc::channel(64);
    let seq = Arc::new(AtomicU64::new(first_seq));
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
        tokio::spawn(async move {
            let mut buf = vec![0u8; CHUNK];
            loop {
                match reader.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        let event = Event::Output {
                            seq: seq.fetch_add(1, Ordering::SeqCst),
                            stream,
                            data: buf[..n].to_vec(),
                        };
                        if tx.send(event).await.is_err() {
                            break;
                        }
                    }
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
        let _ = tx
            .send(Event::Exited {
                seq: seq.fetch_add(1, Ordering::SeqCst),
                code,
                signal,
            })
            .await;
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
                run_as: None,
            },
        };
        let shown = format!("{spec:?}");
        assert!(shown.contains("ANTHROPIC_API_KEY") && !shown.contains("sk-secret-value"));
    }
}
