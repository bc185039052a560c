//! Session start-up on the host (BENCHMARKS.md, sessions): from "run this session" to "the
//! provider process started" (fetch the cached mirror, add the worktree on its branch, hand it
//! to the session user when root, confine, exec), against a bare `git worktree add` of the
//! same repository, on a repository of N files. Also the rate at which a session's output is
//! read and numbered on the host.
//!
//! `cargo run --release -p warden-agent --example session_start -- [FILES] [RUNS]`
#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use warden_agent::sandbox::{is_root, lookup_user};
use warden_agent::work::{Job, Runner};
use warden_protocol::{AgentMessage, Repository};

fn sh(dir: &Path, script: &str) {
    assert!(
        std::process::Command::new("sh")
            .arg("-c")
            .arg(script)
            .current_dir(dir)
            .status()
            .unwrap()
            .success(),
        "{script}"
    );
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let files: usize = args.next().map_or(10_000, |a| a.parse().unwrap());
    let runs: usize = args.next().map_or(7, |a| a.parse().unwrap());
    let launcher = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../target/release/warden-agent")
        .canonicalize()
        .or_else(|_| std::env::current_exe().map(|e| e.with_file_name("../warden-agent")))
        .unwrap();
    let root = tempfile::tempdir().unwrap();
    let repo = root.path().join("repo");
    for i in 0..files {
        let dir = repo.join(format!("src/m{:03}", i % 100));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join(format!("f{i}.rs")),
            format!("pub fn f{i}() -> u32 {{ {i} }}\n"),
        )
        .unwrap();
    }
    sh(
        &repo,
        "git init -q -b main && git add -A && \
         git -c user.name=t -c user.email=t@example.com commit -q -m init",
    );
    let run_as = is_root().then(|| lookup_user("nobody").unwrap());
    let runner = Arc::new(Runner::new(root.path().join("agent"), launcher, run_as));
    let (out, mut reports) = mpsc::channel(1024);
    let job = |n: usize, argv: Vec<String>| Job {
        session_id: format!("s{n}"),
        workspace_id: "ws".into(),
        repository: Repository::Path(repo.display().to_string()),
        mode: warden_protocol::Mode::Chat,
        argv,
        env: Vec::new(),
        pat: None,
        hooks_pre: Vec::new(),
        hooks_post: Vec::new(),
        base_session: None,
        keep_worktree: false,
    };
    // Warm the mirror (the first session of a workspace clones it).
    let started = Instant::now();
    runner.start(job(0, vec!["true".into()]), out.clone());
    let clone_ms = loop {
        if let Some(AgentMessage::SessionEnded { .. }) = reports.recv().await {
            break started.elapsed().as_secs_f64() * 1000.0;
        }
    };

    // Sessions and bare adds alternate, so both see the same machine (the disk's speed here
    // drifts by several times over a minute).
    let mirror = root.path().join("agent/mirrors/ws.git");
    let mut session_ms = Vec::new();
    let mut bare_ms = Vec::new();
    for n in 1..=runs {
        let t = Instant::now();
        runner.start(job(n, vec!["true".into()]), out.clone());
        loop {
            match reports.recv().await.unwrap() {
                AgentMessage::SessionStarted { .. } => {
                    session_ms.push(t.elapsed().as_secs_f64() * 1000.0)
                }
                AgentMessage::SessionEnded { status, error, .. } => {
                    assert_eq!(status, warden_protocol::EndStatus::Done, "{error:?}");
                    break;
                }
                _ => {}
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        let dir = root.path().join(format!("bare-{n}"));
        let t = Instant::now();
        sh(
            &mirror,
            &format!(
                "git -c safe.directory='*' worktree add -q -b bare/{n} {} HEAD",
                dir.display()
            ),
        );
        bare_ms.push(t.elapsed().as_secs_f64() * 1000.0);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (s, b) = (median(session_ms.clone()), median(bare_ms.clone()));
    println!("repository of {files} files, {runs} runs each (release, this machine):");
    println!("  first session (clones the mirror):       {clone_ms:8.1} ms");
    println!("  session: request -> provider started     {s:8.1} ms median  {session_ms:.1?}");
    println!("  bare `git worktree add`                  {b:8.1} ms median  {bare_ms:.1?}");
    println!("  ratio                                    {:8.2}x", s / b);

    // Output on the host: a provider writing 256 MiB as fast as it can.
    let t = Instant::now();
    runner.start(
        job(
            1000,
            vec![
                "sh".into(),
                "-c".into(),
                "head -c 268435456 /dev/zero | tr '\\0' 'x'".into(),
            ],
        ),
        out.clone(),
    );
    let mut bytes = 0usize;
    loop {
        match reports.recv().await.unwrap() {
            AgentMessage::SessionOutput { data, .. } => bytes += data.len(),
            AgentMessage::SessionEnded { .. } => break,
            _ => {}
        }
    }
    let secs = t.elapsed().as_secs_f64();
    println!(
        "  host-side output: {:.1} MB in {secs:.2} s = {:.0} MB/s",
        bytes as f64 / 1e6,
        bytes as f64 / 1e6 / secs
    );
}
