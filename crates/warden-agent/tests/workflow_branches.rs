//! A workflow's steps share one line of work: a session started from an earlier session's
//! branch sees its commits, one started fresh does not, a kept develop session survives its
//! end until archived, and a base that is not a session id never reaches git.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use warden_agent::sandbox::{is_root, lookup_user};
use warden_agent::work::{Job, Runner};
use warden_protocol::{AgentMessage, EndStatus, Mode, Repository};

const A: &str = "0190a000-0000-7000-8000-00000000000a";
const B: &str = "0190a000-0000-7000-8000-00000000000b";
const C: &str = "0190a000-0000-7000-8000-00000000000c";
const D: &str = "0190a000-0000-7000-8000-00000000000d";
const E: &str = "0190a000-0000-7000-8000-00000000000e";

fn sh(dir: &Path, script: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(script)
        .current_dir(dir)
        .status()
        .unwrap()
        .success()
}

struct Setup {
    _root: tempfile::TempDir,
    repo: PathBuf,
    dir: PathBuf,
    runner: Arc<Runner>,
}

fn setup() -> Setup {
    let root = tempfile::tempdir().unwrap();
    assert!(sh(root.path(), "chmod 755 ."));
    let repo = root.path().join("repo");
    std::fs::create_dir_all(&repo).unwrap();
    assert!(sh(
        &repo,
        "git init -q -b main && echo hi > README.md && git add -A && \
         git -c user.name=t -c user.email=t@example.com commit -q -m init"
    ));
    let run_as = is_root().then(|| lookup_user("nobody").expect("a 'nobody' user"));
    let dir = root.path().join("agent");
    let runner = Arc::new(Runner::new(
        dir.clone(),
        PathBuf::from(env!("CARGO_BIN_EXE_warden-agent")),
        run_as,
    ));
    Setup {
        _root: root,
        repo,
        dir,
        runner,
    }
}

/// Runs one session to its end: its status and error.
async fn run(
    s: &Setup,
    id: &str,
    script: &str,
    base: Option<&str>,
    keep: bool,
) -> (EndStatus, Option<String>) {
    let (out, mut reports) = tokio::sync::mpsc::channel(64);
    s.runner.start(
        Job {
            session_id: id.into(),
            workspace_id: "ws".into(),
            repository: Repository::Path(s.repo.display().to_string()),
            mode: Mode::Develop,
            argv: vec!["sh".into(), "-c".into(), script.into()],
            env: Vec::new(),
            pat: None,
            hooks_pre: Vec::new(),
            hooks_post: Vec::new(),
            base_session: base.map(str::to_owned),
            keep_worktree: keep,
        },
        out,
    );
    loop {
        if let AgentMessage::SessionEnded { status, error, .. } =
            tokio::time::timeout(Duration::from_secs(60), reports.recv())
                .await
                .unwrap()
                .unwrap()
        {
            return (status, error);
        }
    }
}

fn branch_exists(s: &Setup, session: &str) -> bool {
    sh(
        &s.dir,
        &format!(
            "git -c safe.directory='*' -C work/ws.git rev-parse -q --verify \
             refs/heads/warden/{session} >/dev/null"
        ),
    )
}

fn worktree(s: &Setup, session: &str) -> PathBuf {
    s.dir.join("worktrees").join("ws").join(session)
}

#[tokio::test]
async fn a_later_step_starts_from_the_branch_the_step_before_it_left() {
    let s = setup();
    // Step one commits, and — kept for the run — its worktree and branch outlive it.
    let (status, error) = run(
        &s,
        A,
        "echo made > made.txt && git add made.txt && \
         git -c user.name=t -c user.email=t@example.com commit -q -m made",
        None,
        true,
    )
    .await;
    assert_eq!(status, EndStatus::Done, "{error:?}");
    assert!(branch_exists(&s, A) && worktree(&s, A).exists());

    // Step two, started from step one's branch, finds the commit; not kept, it goes at its end.
    let (status, error) = run(&s, B, "test -f made.txt", Some(A), false).await;
    assert_eq!(status, EndStatus::Done, "{error:?}");
    // (Removed just after the end is reported.)
    let gone = async {
        while branch_exists(&s, B) || worktree(&s, B).exists() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(20), gone)
        .await
        .unwrap();

    assert!(branch_exists(&s, A), "the base stays");
    // A session started afresh is on the repository's HEAD: no such file.
    let (status, _) = run(&s, C, "test -f made.txt", None, false).await;
    assert_eq!(status, EndStatus::Failed);

    // A base that is not a session id never reaches git; one with no branch fails plainly.
    let (status, error) = run(&s, D, "true", Some("../../HEAD"), false).await;
    assert_eq!(status, EndStatus::Failed);
    assert!(
        error
            .as_deref()
            .unwrap_or_default()
            .contains("not a session id"),
        "{error:?}"
    );
    let (status, _) = run(
        &s,
        E,
        "true",
        Some("0190a000-0000-7000-8000-0000000000ff"),
        false,
    )
    .await;
    assert_eq!(status, EndStatus::Failed);
    assert!(!worktree(&s, E).exists(), "a failed start leaves nothing");

    // Archived once the run is over: the kept worktree and branch go.
    s.runner.archive("ws", A).await;
    assert!(!branch_exists(&s, A) && !worktree(&s, A).exists());
}
