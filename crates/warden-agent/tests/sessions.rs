//! The host side of sessions, attacked: confined processes (Landlock on this kernel) that try
//! to read or write another session's worktree, the agent's key and data, and `/proc`; the
//! file API against planted symlinks and a traversal list; worktrees and branches that come
//! and go; a token that never reaches the disk or an error.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use warden_agent::files::{FileError, Worktree};
use warden_agent::run::{Event, Spec, start, stop};
use warden_agent::sandbox::{Confinement, Isolation, chown_tree, is_root, lookup_user};
use warden_agent::worktree::{
    Jail, Source, add_worktree, branch, diff, ensure_mirror, ensure_work, remove_orphans,
    remove_worktree,
};
use zeroize::Zeroizing;

fn sh(dir: &Path, script: &str) {
    let ok = Command::new("sh")
        .arg("-c")
        .arg(script)
        .current_dir(dir)
        .status()
        .unwrap()
        .success();
    assert!(ok, "{script}");
}

/// A repository, its mirror, two sessions' worktrees (`s1` and `s10`: sibling prefixes) and
/// the agent's own data directory with its key.
struct Host {
    _root: tempfile::TempDir,
    mirror: PathBuf,
    work: PathBuf,
    jail: Jail,
    worktrees: PathBuf,
    s1: PathBuf,
    s10: PathBuf,
    agent_dir: PathBuf,
    key_file: PathBuf,
    run_as: Option<(u32, u32)>,
}

async fn host() -> Host {
    let root = tempfile::tempdir().unwrap();
    let repo = root.path().join("repo");
    std::fs::create_dir_all(repo.join("src")).unwrap();
    std::fs::write(repo.join("README.md"), "# demo\n").unwrap();
    std::fs::write(repo.join("src/main.rs"), "fn main() {}\n").unwrap();
    sh(
        &repo,
        "git init -q -b main && git add -A && \
         git -c user.name=t -c user.email=t@example.com commit -q -m init",
    );
    // As root, sessions (and the agent's git on what they write) run as nobody, who must get
    // through the test's temporary root (private to root) to its parts.
    sh(root.path(), "chmod 755 .");
    let run_as = is_root().then(|| lookup_user("nobody").expect("a 'nobody' user"));
    let mirror = ensure_mirror(
        &root.path().join("mirrors"),
        "ws-1",
        &Source::Path(repo),
        None,
    )
    .await
    .unwrap();
    let jail = jail(root.path(), run_as);
    let work = root.path().join("work/ws-1.git");
    std::fs::create_dir_all(root.path().join("work")).unwrap();
    ensure_work(&jail, &mirror, &work).await.unwrap();
    let worktrees = root.path().join("worktrees");
    let s1 = add_worktree(&jail, &mirror, &work, &worktrees, "s1", None)
        .await
        .unwrap();
    let s10 = add_worktree(&jail, &mirror, &work, &worktrees, "s10", None)
        .await
        .unwrap();
    std::fs::write(s10.join("secret.txt"), "s10-secret-contents\n").unwrap();
    let agent_dir = root.path().join("agent");
    std::fs::create_dir_all(&agent_dir).unwrap();
    let key_file = agent_dir.join("host.key");
    // World-readable on purpose: only the confinement may stand in the way.
    std::fs::write(&key_file, "whk_0123_agent-key-material\n").unwrap();
    for dir in ["tmp/s1", "tmp/s10"] {
        std::fs::create_dir_all(root.path().join(dir)).unwrap();
    }
    // As root, sessions run as nobody: every session's files belong to that one user, so
    // file permissions do not separate them; only the confinement does.
    if let Some((uid, gid)) = run_as {
        chown_tree(&root.path().join("tmp"), uid, gid).unwrap();
    }
    Host {
        mirror,
        work,
        jail,
        worktrees,
        s1,
        s10,
        agent_dir,
        key_file,
        run_as,
        _root: root,
    }
}

/// How the agent runs git on what sessions write, in a test's root.
fn jail(root: &Path, run_as: Option<(u32, u32)>) -> Jail {
    Jail {
        launcher: PathBuf::from(env!("CARGO_BIN_EXE_warden-agent")),
        run_as,
        tmp: root.join("tmp/git-ws"),
        config: root.join("tmp/git.config"),
    }
}

impl Host {
    fn confinement(&self, session: &str, worktree: &Path) -> Confinement {
        Confinement {
            worktree: worktree.to_path_buf(),
            tmp: self._root.path().join("tmp").join(session),
            mirror: Some(self.work.clone()),
            read_only: vec![self.mirror.clone()],
            run_as: self.run_as,
        }
    }
}

struct Ran {
    code: Option<i32>,
    output: String,
    isolation: Isolation,
}

async fn run_in(host: &Host, argv: &[&str], env: &[(&str, &str)]) -> Ran {
    let spec = Spec {
        launcher: PathBuf::from(env!("CARGO_BIN_EXE_warden-agent")),
        argv: argv.iter().map(|s| (*s).to_owned()).collect(),
        env: env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), Zeroizing::new((*v).to_owned())))
            .collect(),
        confinement: host.confinement("s1", &host.s1),
    };
    let mut running = start(spec, 0).unwrap();
    let mut output = String::new();
    let mut last_seq = None;
    loop {
        let event = tokio::time::timeout(Duration::from_secs(30), running.events.recv())
            .await
            .expect("the process ends")
            .expect("an exit event");
        let seq = match &event {
            Event::Output { seq, .. } | Event::Exited { seq, .. } => *seq,
        };
        assert!(
            last_seq.is_none_or(|l| seq > l),
            "sequence numbers increase"
        );
        last_seq = Some(seq);
        match event {
            Event::Output { data, .. } => output.push_str(&data),
            Event::Exited { code, .. } => {
                return Ran {
                    code,
                    output,
                    isolation: running.isolation,
                };
            }
        }
    }
}

#[tokio::test]
async fn a_session_process_works_in_its_worktree_and_reaches_nothing_else() {
    let host = host().await;
    let own = run_in(
        &host,
        &["sh", "-c", "echo made > own.txt && cat own.txt README.md"],
        &[],
    )
    .await;
    assert_eq!(own.code, Some(0), "{}", own.output);
    assert!(own.output.contains("made") && own.output.contains("# demo"));
    assert_eq!(own.isolation, Isolation::Landlock { full: true });
    // git works inside (the worktree's .git points into the mirror).
    let status = run_in(&host, &["git", "status", "--short"], &[]).await;
    assert_eq!(status.code, Some(0), "{}", status.output);
    assert!(status.output.contains("own.txt"));

    let secret = host.s10.join("secret.txt");
    let proc_environ = format!("/proc/{}/environ", std::process::id());
    let attacks: Vec<Vec<String>> = vec![
        vec!["cat".into(), secret.display().to_string()],
        vec!["cat".into(), "../s10/secret.txt".into()],
        vec!["ls".into(), host.s10.display().to_string()],
        vec![
            "sh".into(),
            "-c".into(),
            format!("echo pwned > {}", host.s10.join("evil.txt").display()),
        ],
        vec!["cat".into(), host.key_file.display().to_string()],
        vec!["ls".into(), host.agent_dir.display().to_string()],
        vec!["cat".into(), proc_environ],
        vec!["cat".into(), "/proc/1/environ".into()],
        vec!["ls".into(), host.worktrees.display().to_string()],
        vec![
            "sh".into(),
            "-c".into(),
            format!("ln -s {} link && cat link/secret.txt", host.s10.display()),
        ],
    ];
    for argv in &attacks {
        let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
        let ran = run_in(&host, &argv, &[]).await;
        assert_ne!(ran.code, Some(0), "{argv:?} succeeded: {}", ran.output);
        assert!(!ran.output.contains("s10-secret"), "{argv:?}");
        assert!(!ran.output.contains("agent-key-material"), "{argv:?}");
    }
    assert!(!host.s10.join("evil.txt").exists());
}

#[tokio::test]
async fn the_provider_key_lives_only_in_the_process_environment() {
    let host = host().await;
    let key = "sk-test-provider-key-7f3a9c";
    let ran = run_in(
        &host,
        &[
            "sh",
            "-c",
            "printf '%s' \"$ANTHROPIC_API_KEY\" | wc -c; env | grep -c WARDEN_ || true",
        ],
        &[("ANTHROPIC_API_KEY", key)],
    )
    .await;
    assert_eq!(ran.code, Some(0), "{}", ran.output);
    let mut lines = ran.output.lines();
    assert_eq!(
        lines.next().map(str::trim),
        Some(key.len().to_string().as_str())
    );
    // Nothing of the agent's own environment leaks in.
    assert_eq!(lines.next().map(str::trim), Some("0"));
    let grep = Command::new("grep")
        .args(["-r", "-l", key])
        .arg(host._root.path())
        .output()
        .unwrap();
    assert!(grep.stdout.is_empty(), "the key was written to disk");
}

#[tokio::test]
async fn stopping_a_session_ends_its_whole_process_group() {
    let host = host().await;
    let spec = Spec {
        launcher: PathBuf::from(env!("CARGO_BIN_EXE_warden-agent")),
        argv: vec![
            "sh".into(),
            "-c".into(),
            "sleep 300 & sleep 300 & echo started; wait".into(),
        ],
        env: Vec::new(),
        confinement: host.confinement("s1", &host.s1),
    };
    let mut running = start(spec, 100).unwrap();
    match running.events.recv().await.unwrap() {
        Event::Output { seq, data, .. } => {
            assert_eq!(seq, 100);
            assert!(data.contains("started"));
        }
        other => panic!("{other:?}"),
    }
    stop(running.pgid, Duration::from_millis(200)).await;
    loop {
        match tokio::time::timeout(Duration::from_secs(10), running.events.recv())
            .await
            .unwrap()
        {
            // Killed, or (as root, the first process of its PID namespace, which ignores
            // SIGTERM) ended once its children were: either way, it ends.
            Some(Event::Exited { .. }) => break,
            Some(_) => {}
            None => panic!("no exit event"),
        }
    }
    // Live members of the group (zombies awaiting their reaper do not count).
    let ps = Command::new("ps")
        .args(["-eo", "pgid=,stat=,args="])
        .output()
        .unwrap();
    let alive: Vec<String> = String::from_utf8_lossy(&ps.stdout)
        .lines()
        .filter(|l| {
            let mut f = l.split_whitespace();
            f.next() == Some(running.pgid.to_string().as_str())
                && !f.next().is_some_and(|stat| stat.starts_with('Z'))
        })
        .map(str::to_owned)
        .collect();
    assert!(alive.is_empty(), "processes survived the stop: {alive:?}");
}

#[tokio::test]
async fn the_file_api_refuses_traversal_and_planted_symlinks() {
    let host = host().await;
    let wt = Worktree::open(&host.s1).unwrap();
    std::os::unix::fs::symlink(&host.s10, host.s1.join("sib")).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", host.s1.join("pw")).unwrap();
    std::os::unix::fs::symlink("../s10/secret.txt", host.s1.join("rel")).unwrap();
    std::os::unix::fs::symlink(".git", host.s1.join("gitlink")).unwrap();
    std::fs::create_dir_all(host.s1.join("docs")).unwrap();
    std::os::unix::fs::symlink("../README.md", host.s1.join("docs/readme")).unwrap();

    let p = |raw: &str| Worktree::path(raw).unwrap();
    for raw in ["sib/secret.txt", "pw", "rel"] {
        assert!(
            matches!(wt.read(&p(raw), 1 << 20), Err(FileError::Escape)),
            "read {raw}"
        );
    }
    for raw in ["gitlink", "sib/planted.txt", "docs/readme", "rel"] {
        assert!(
            matches!(wt.write(&p(raw), b"x"), Err(FileError::Escape)),
            "write {raw}"
        );
    }
    assert!(matches!(
        wt.delete(&p("sib/secret.txt")),
        Err(FileError::Escape)
    ));
    assert!(host.s10.join("secret.txt").exists());
    for raw in [
        "../s10/secret.txt",
        "/etc/passwd",
        "%2e%2e/s10/secret.txt",
        ".git/config",
        "src/../../s10/secret.txt",
        "..\\s10\\secret.txt",
        "a\0b",
    ] {
        assert!(
            matches!(Worktree::path(raw), Err(FileError::Refused(_))),
            "{raw:?}"
        );
    }
    // A symlink that stays inside may be read through.
    assert_eq!(wt.read(&p("docs/readme"), 1 << 20).unwrap(), b"# demo\n");
    // Ordinary work.
    wt.write(&p("notes/today/plan.md"), b"plan").unwrap();
    assert_eq!(
        wt.read(&p("notes/today/plan.md"), 1 << 20).unwrap(),
        b"plan"
    );
    assert!(matches!(
        wt.read(&p("notes/today/plan.md"), 2),
        Err(FileError::TooLarge)
    ));
    let names: Vec<String> = wt.list(None).unwrap().into_iter().map(|e| e.name).collect();
    assert!(names.contains(&"README.md".to_owned()) && !names.contains(&".git".to_owned()));
    wt.delete(&p("notes/today/plan.md")).unwrap();
    assert!(matches!(
        wt.read(&p("notes/today/plan.md"), 10),
        Err(FileError::NotFound)
    ));
    std::fs::write(host.s1.join("README.md"), "# demo\nchanged\n").unwrap();
    let d = diff(&host.jail, &host.confinement("s1", &host.s1), "main")
        .await
        .unwrap();
    assert!(d.contains("+changed"), "{d}");
}

#[tokio::test]
async fn worktrees_and_branches_come_and_go_and_orphans_are_cleaned_up() {
    let host = host().await;
    let branches = |mirror: &Path| -> Vec<String> {
        String::from_utf8(
            Command::new("git")
                .arg("-C")
                .arg(mirror)
                .args([
                    "-c",
                    "safe.directory=*",
                    "branch",
                    "--list",
                    "--format=%(refname:short)",
                    "warden/*",
                ])
                .output()
                .unwrap()
                .stdout,
        )
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
    };
    assert_eq!(branches(&host.work), [branch("s1"), branch("s10")]);
    assert!(
        branches(&host.mirror).is_empty(),
        "the mirror holds no session's branch"
    );
    remove_worktree(&host.jail, &host.mirror, &host.work, &host.s1, "s1")
        .await
        .unwrap();
    assert!(!host.s1.exists());
    assert_eq!(branches(&host.work), [branch("s10")]);
    // After a restart only s10 is known... and it is not: it is cleaned up as an orphan.
    let live: HashSet<String> = HashSet::new();
    let removed = remove_orphans(&host.jail, &host.mirror, &host.work, &host.worktrees, &live)
        .await
        .unwrap();
    assert_eq!(removed, ["s10"]);
    assert!(!host.s10.exists());
    assert!(branches(&host.work).is_empty());
}

#[tokio::test]
async fn a_token_never_reaches_the_mirror_config_or_an_error() {
    let root = tempfile::tempdir().unwrap();
    let pat = Zeroizing::new("ghp_supersecrettoken1234567890".to_owned());
    // Nothing listens on port 9 of the loopback: the clone fails, and says so without the token.
    let err = ensure_mirror(
        root.path(),
        "ws-2",
        &Source::Url("https://127.0.0.1:9/acme/repo.git".to_owned()),
        Some(&pat),
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(!err.contains(pat.as_str()), "{err}");
    assert!(err.starts_with("git clone"), "{err}");
    let grep = Command::new("grep")
        .args(["-r", "-l", pat.as_str()])
        .arg(root.path())
        .output()
        .unwrap();
    assert!(grep.stdout.is_empty());
}

/// The next session's fetch keeps the mirror up to date (new and deleted branches of the
/// repository) without pruning the branches of sessions that keep theirs, and a branch of the
/// repository named like a session's never overwrites it.
#[tokio::test]
async fn fetching_the_mirror_keeps_every_session_branch() {
    let root = tempfile::tempdir().unwrap();
    let repo = root.path().join("repo");
    std::fs::create_dir_all(&repo).unwrap();
    std::fs::write(repo.join("README.md"), "# one\n").unwrap();
    sh(
        &repo,
        "git init -q -b main && git add -A && \
         git -c user.name=t -c user.email=t@example.com commit -q -m one && \
         git branch feature && git branch warden/s98",
    );
    sh(root.path(), "chmod 755 .");
    let run_as = is_root().then(|| lookup_user("nobody").expect("a 'nobody' user"));
    let jail = jail(root.path(), run_as);
    let source = Source::Path(repo.clone());
    let cache = root.path().join("mirrors");
    let mirror = ensure_mirror(&cache, "ws", &source, None).await.unwrap();
    let work_repo = root.path().join("work/ws.git");
    std::fs::create_dir_all(root.path().join("work")).unwrap();
    ensure_work(&jail, &mirror, &work_repo).await.unwrap();
    let worktrees = root.path().join("worktrees");
    let s1 = add_worktree(&jail, &mirror, &work_repo, &worktrees, "s1", None)
        .await
        .unwrap();
    std::fs::write(s1.join("work.txt"), "the session's work\n").unwrap();
    // A session named like the repository's branch still gets a branch of its own.
    add_worktree(&jail, &mirror, &work_repo, &worktrees, "s98", None)
        .await
        .unwrap();
    sh(
        &s1,
        "git -c safe.directory=* add -A && \
         git -c safe.directory=* -c user.name=a -c user.email=a@example.com commit -q -m work",
    );
    let rev_in = |repo: &Path, r: &str| {
        let out = Command::new("git")
            .arg("-C")
            .arg(repo)
            .args(["-c", "safe.directory=*", "rev-parse", "--verify", "-q", r])
            .output()
            .unwrap();
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    };
    let rev = |r: &str| rev_in(&work_repo, r);
    let work = rev("refs/heads/warden/s1");
    assert!(!work.is_empty());
    // Upstream moves on: a new commit, a branch deleted, a branch named like the session's.
    sh(
        &repo,
        "echo two > README.md && git -c user.name=t -c user.email=t@example.com commit -qam two \
         && git branch -D -q feature && git branch warden/s1 main~1 && git branch warden/s99",
    );
    let again = ensure_mirror(&cache, "ws", &source, None).await.unwrap();
    ensure_work(&jail, &mirror, &work_repo).await.unwrap();
    // Nothing in the mirror is a hard link to the repository's files (they would be handed
    // to the session user with the mirror).
    let mut stack = vec![mirror.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let entry = entry.unwrap();
            let meta = std::fs::symlink_metadata(entry.path()).unwrap();
            if meta.is_dir() {
                stack.push(entry.path());
            } else {
                use std::os::unix::fs::MetadataExt;
                assert_eq!(meta.nlink(), 1, "{} is a hard link", entry.path().display());
            }
        }
    }
    assert_eq!(again, mirror);
    assert_eq!(rev("refs/heads/main"), {
        let out = Command::new("git")
            .arg("-C")
            .arg(&repo)
            .args(["rev-parse", "main"])
            .output()
            .unwrap();
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    });
    assert_eq!(
        rev("refs/heads/feature"),
        "",
        "deleted upstream, pruned here"
    );
    assert_eq!(
        rev("refs/heads/warden/s1"),
        work,
        "the session's branch is kept"
    );
    assert_eq!(
        rev("refs/heads/warden/s99"),
        "",
        "not taken from the repository"
    );
    assert_eq!(rev_in(&mirror, "refs/heads/warden/s99"), "");
    assert_eq!(
        rev_in(&mirror, "refs/heads/warden/s1"),
        "",
        "sessions never write the mirror"
    );
    // The kept session still diffs against its base and commits on its branch.
    let confinement = Confinement {
        worktree: s1.clone(),
        tmp: jail.tmp.clone(),
        mirror: Some(work_repo.clone()),
        read_only: vec![mirror.clone()],
        run_as,
    };
    assert!(
        diff(&jail, &confinement, "main~1")
            .await
            .unwrap()
            .contains("the session's work")
    );
}

/// Two runners on one data directory: the second is refused before it touches anything (it
/// would end the first one's sessions as leftovers).
#[tokio::test]
async fn a_data_directory_serves_one_runner_at_a_time() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("agent");
    let first = warden_agent::work::Runner::new(dir.clone(), "/bin/true".into(), None);
    first.recover().await.unwrap();
    let second = warden_agent::work::Runner::new(dir.clone(), "/bin/true".into(), None);
    let err = second.recover().await.unwrap_err();
    assert!(err.to_string().contains("another agent is using"), "{err}");
    drop(first);
    // Once the first is gone the directory is free (a process another test is starting may
    // hold a copy of the descriptor for a moment, until it executes its program).
    let mut claimed = second.recover().await;
    for _ in 0..40 {
        if claimed.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        claimed = second.recover().await;
    }
    claimed.unwrap();
}

/// The process whose command line is exactly `args`, if one runs.
fn process_with_args(args: &[&str]) -> Option<u32> {
    let wanted: Vec<u8> = args
        .iter()
        .flat_map(|a| [a.as_bytes(), b"\0"].concat())
        .collect();
    std::fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
        let pid: u32 = e.file_name().to_str()?.parse().ok()?;
        (std::fs::read(e.path().join("cmdline")).ok()? == wanted).then_some(pid)
    })
}

/// Sessions run as one user when the agent is root, so only the confinement keeps one session
/// from signalling another's processes: Landlock's signal scope (this kernel has it).
#[tokio::test]
async fn a_session_cannot_signal_another_sessions_processes() {
    let host = host().await;
    let victim = Spec {
        launcher: PathBuf::from(env!("CARGO_BIN_EXE_warden-agent")),
        argv: vec!["sh".into(), "-c".into(), "echo up; exec sleep 31".into()],
        env: Vec::new(),
        confinement: host.confinement("s10", &host.s10),
    };
    let mut victim = start(victim, 0).unwrap();
    assert!(matches!(
        victim.events.recv().await,
        Some(Event::Output { .. })
    ));
    // Its process id as this machine sees it (a session may see its own numbering).
    let mut pid = None;
    for _ in 0..100 {
        pid = process_with_args(&["sleep", "31"]);
        if pid.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let pid = pid.expect("the victim sleeps");
    for signal in ["KILL", "TERM", "STOP"] {
        let ran = run_in(
            &host,
            &[
                "sh",
                "-c",
                &format!("kill -{signal} {pid} && echo delivered"),
            ],
            &[],
        )
        .await;
        assert_ne!(ran.code, Some(0), "SIG{signal}: {}", ran.output);
        assert!(!ran.output.contains("delivered"), "SIG{signal}");
    }
    // Still asleep, not stopped or ended.
    let state = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    assert!(state.contains(") S "), "{state}");
    stop(victim.pgid, Duration::from_millis(100)).await;
}

/// A session can write its workspace's git repository (its commits go there), so it can plant
/// hooks and configuration in it. The agent's own git calls on that repository (updating it,
/// adding and removing worktrees, a diff) run them, if at all, with no more than the session's
/// reach: never as the agent, never outside the confinement.
#[tokio::test]
async fn hooks_and_configuration_a_session_plants_never_run_as_the_agent() {
    let host = host().await;
    let marker = host.agent_dir.join("pwned");
    let ran = host.work.join("hook-ran");
    let script = format!(
        "#!/bin/sh\necho ran >> {ran}\n(id -u > {marker}) 2>/dev/null\nexit 0\n",
        ran = ran.display(),
        marker = marker.display()
    );
    let hook = host.work.join("hooks/reference-transaction");
    let monitor = host.work.join("monitor.sh");
    let plant = format!(
        "printf '%s' '{script}' > {hook} && chmod +x {hook} && \
         printf '%s' '{script}' > {monitor} && chmod +x {monitor} && \
         git config -f {config} core.fsmonitor {monitor} && \
         git config -f {config} core.alternateRefsCommand {monitor}",
        hook = hook.display(),
        monitor = monitor.display(),
        config = host.work.join("config").display(),
    );
    let planted = run_in(&host, &["sh", "-c", &plant], &[]).await;
    assert_eq!(planted.code, Some(0), "{}", planted.output);

    // The agent at work: the repository moves on, a session starts, is diffed, ends.
    sh(
        &host._root.path().join("repo"),
        "echo more >> README.md && git -c user.name=t -c user.email=t@example.com commit -qam more",
    );
    let again = ensure_mirror(
        &host._root.path().join("mirrors"),
        "ws-1",
        &Source::Path(host._root.path().join("repo")),
        None,
    )
    .await
    .unwrap();
    assert_eq!(again, host.mirror);
    ensure_work(&host.jail, &host.mirror, &host.work)
        .await
        .unwrap();
    let s2 = add_worktree(
        &host.jail,
        &host.mirror,
        &host.work,
        &host.worktrees,
        "s2",
        None,
    )
    .await
    .unwrap();
    let _ = diff(&host.jail, &host.confinement("s1", &host.s1), "main").await;
    remove_worktree(&host.jail, &host.mirror, &host.work, &s2, "s2")
        .await
        .unwrap();

    assert!(
        std::fs::read_to_string(&ran).is_ok_and(|r| r.contains("ran")),
        "the planted hook ran (confined), so this test means something"
    );
    assert!(
        !marker.exists(),
        "a planted hook wrote to the agent's data: {:?}",
        std::fs::read_to_string(&marker)
    );
}

/// A session can make a named pipe in its worktree; the file API, which runs as the agent,
/// answers at once instead of waiting forever for a writer or reader on the other end.
#[tokio::test]
async fn a_planted_named_pipe_never_blocks_the_file_api() {
    let host = host().await;
    let ran = run_in(&host, &["mkfifo", "pipe"], &[]).await;
    assert_eq!(ran.code, Some(0), "{}", ran.output);
    let s1 = host.s1.clone();
    let (tx, rx) = std::sync::mpsc::channel();
    // A thread of its own: if the API blocks, the test fails instead of hanging.
    std::thread::spawn(move || {
        let wt = Worktree::open(&s1).unwrap();
        let p = Worktree::path("pipe").unwrap();
        let read = wt.read(&p, 100);
        let written = wt.write(&p, b"x");
        let _ = tx.send((matches!(read, Err(FileError::NotAFile)), written.is_err()));
    });
    let answered = rx
        .recv_timeout(Duration::from_secs(5))
        .expect("the file API answered within 5 s");
    assert_eq!(answered, (true, true));
}

/// A socket or a named pipe in the worktree is "not a file" (409 through the API), never an
/// I/O failure (500 and an error line per request); and the worktree's `.git` pointer file,
/// which names the host's work repository, cannot be read under another name.
#[tokio::test]
async fn special_files_and_aliases_of_the_git_pointer_are_refused() {
    let host = host().await;
    let ran = run_in(&host, &["mkfifo", "pipe"], &[]).await;
    assert_eq!(ran.code, Some(0), "{}", ran.output);
    let _socket = std::os::unix::net::UnixListener::bind(host.s1.join("sock")).unwrap();
    assert!(
        std::fs::read_to_string(host.s1.join(".git"))
            .unwrap()
            .starts_with("gitdir:"),
        "the worktree's .git is a pointer file, so this test means something"
    );
    std::os::unix::fs::symlink(".git", host.s1.join("gitlink")).unwrap();
    std::fs::create_dir(host.s1.join("sub")).unwrap();
    std::os::unix::fs::symlink("../.git", host.s1.join("sub/up")).unwrap();
    std::fs::hard_link(host.s1.join(".git"), host.s1.join("hard")).unwrap();
    let wt = Worktree::open(&host.s1).unwrap();
    for name in ["pipe", "sock"] {
        let p = Worktree::path(name).unwrap();
        assert!(
            matches!(wt.read(&p, 100), Err(FileError::NotAFile)),
            "read {name}"
        );
        assert!(
            matches!(wt.write(&p, b"x"), Err(FileError::NotAFile)),
            "write {name}"
        );
    }
    for alias in ["gitlink", "sub/up", "hard"] {
        let p = Worktree::path(alias).unwrap();
        assert!(
            matches!(wt.read(&p, 4096), Err(FileError::Refused(_))),
            "read {alias}"
        );
    }
    // A writable hard link would let a write replace the pointer: refused too (symlinks are
    // refused for writes already).
    let p = Worktree::path("hard").unwrap();
    assert!(matches!(
        wt.write(&p, b"gitdir: /"),
        Err(FileError::Refused(_))
    ));
    assert!(
        std::fs::read_to_string(host.s1.join(".git"))
            .unwrap()
            .starts_with("gitdir:")
    );
    // Ordinary files are unaffected.
    let p = Worktree::path("plain.txt").unwrap();
    wt.write(&p, b"hello").unwrap();
    assert_eq!(wt.read(&p, 100).unwrap(), b"hello");
}

/// A session whose preparation fails (here: its repository is gone) is still on record, so the
/// next agent on this directory cleans up whatever it had made.
#[tokio::test]
async fn a_session_that_failed_to_prepare_is_cleaned_up_by_the_next_agent() {
    use warden_agent::work::{Job, Runner};
    use warden_protocol::{AgentMessage, Repository};
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("agent");
    let launcher = PathBuf::from(env!("CARGO_BIN_EXE_warden-agent"));
    let first = std::sync::Arc::new(Runner::new(dir.clone(), launcher.clone(), None));
    let (out, mut reports) = tokio::sync::mpsc::channel(16);
    first.start(
        Job {
            session_id: "s-broken".into(),
            workspace_id: "ws".into(),
            repository: Repository::Path(root.path().join("gone").display().to_string()),
            mode: warden_protocol::Mode::Develop,
            argv: vec!["true".into()],
            env: Vec::new(),
            pat: None,
            hooks_pre: Vec::new(),
            hooks_post: Vec::new(),
            base_session: None,
            keep_worktree: false,
        },
        out,
    );
    loop {
        match tokio::time::timeout(Duration::from_secs(30), reports.recv())
            .await
            .unwrap()
            .unwrap()
        {
            AgentMessage::SessionEnded { status, .. } => {
                assert_eq!(status, warden_protocol::EndStatus::Failed);
                break;
            }
            _ => continue,
        }
    }
    drop(first);
    let next = Runner::new(dir, launcher, None);
    assert_eq!(next.recover().await.unwrap(), ["s-broken"]);
    assert!(next.recover().await.unwrap().is_empty(), "once");
}

/// As root, each session command runs in a PID namespace of its own: what it started and sent
/// out of its process group (`setsid`) ends with it, and with a stop.
#[tokio::test]
async fn processes_that_leave_the_process_group_end_with_the_session() {
    if !is_root() {
        // Without root there is no PID namespace (and sessions run as the agent's own user).
        return;
    }
    let host = host().await;
    let alive = |marker: &str| process_with_args(&["sleep", marker]).is_some();
    // Ends by itself, leaving a detached sleeper behind.
    let ran = run_in(
        &host,
        &["sh", "-c", "setsid sleep 313 & sleep 0.3; echo left"],
        &[],
    )
    .await;
    assert_eq!(ran.code, Some(0), "{}", ran.output);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!alive("313"), "the detached process outlived its session");

    // Stopped: its detached sleeper goes too.
    let spec = Spec {
        launcher: PathBuf::from(env!("CARGO_BIN_EXE_warden-agent")),
        argv: vec![
            "sh".into(),
            "-c".into(),
            "setsid sleep 317 & echo started; sleep 300".into(),
        ],
        env: Vec::new(),
        confinement: host.confinement("s1", &host.s1),
    };
    let mut running = start(spec, 0).unwrap();
    assert!(matches!(
        running.events.recv().await,
        Some(Event::Output { .. })
    ));
    let mut up = false;
    for _ in 0..100 {
        up = alive("317");
        if up {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(up, "the detached sleeper started");
    stop(running.pgid, Duration::from_millis(300)).await;
    while running.events.recv().await.is_some() {}
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!alive("317"), "the detached process outlived the stop");
}

/// A session that fails while its host prepares it says why, without the host's own paths.
#[tokio::test]
async fn a_preparation_error_does_not_show_the_hosts_paths() {
    use warden_agent::work::{Job, Runner};
    use warden_protocol::{AgentMessage, Repository};
    let root = tempfile::tempdir().unwrap();
    sh(root.path(), "chmod 755 .");
    let repo = root.path().join("repo");
    std::fs::create_dir_all(&repo).unwrap();
    sh(
        &repo,
        "git init -q -b main && echo x > x && git add -A && \
         git -c user.name=t -c user.email=t@example.com commit -q -m x",
    );
    let dir = root.path().join("agent");
    // A work repository whose origin is a mirror that is not there: git names its path.
    std::fs::create_dir_all(dir.join("work")).unwrap();
    sh(
        &dir.join("work"),
        &format!(
            "git init -q --bare ws.git && git -C ws.git remote add origin {}",
            dir.join("mirrors/elsewhere.git").display()
        ),
    );
    let run_as = is_root().then(|| lookup_user("nobody").expect("a 'nobody' user"));
    if let Some((uid, gid)) = run_as {
        chown_tree(&dir.join("work"), uid, gid).unwrap();
    }
    let runner = std::sync::Arc::new(Runner::new(
        dir.clone(),
        PathBuf::from(env!("CARGO_BIN_EXE_warden-agent")),
        run_as,
    ));
    let (out, mut reports) = tokio::sync::mpsc::channel(16);
    runner.start(
        Job {
            session_id: "s-1".into(),
            workspace_id: "ws".into(),
            repository: Repository::Path(repo.display().to_string()),
            mode: warden_protocol::Mode::Develop,
            argv: vec!["true".into()],
            env: Vec::new(),
            pat: None,
            hooks_pre: Vec::new(),
            hooks_post: Vec::new(),
            base_session: None,
            keep_worktree: false,
        },
        out,
    );
    let error = loop {
        if let AgentMessage::SessionEnded { status, error, .. } =
            tokio::time::timeout(Duration::from_secs(30), reports.recv())
                .await
                .unwrap()
                .unwrap()
        {
            assert_eq!(status, warden_protocol::EndStatus::Failed);
            break error.unwrap_or_default();
        }
    };
    assert!(error.contains("[host data directory]"), "{error}");
    assert!(!error.contains(&dir.display().to_string()), "{error}");
}
