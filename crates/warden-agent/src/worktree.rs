//! Git on the host: one cached bare mirror per workspace, one worktree per session on a branch
//! of its own (`warden/<session-id>`). A personal access token reaches git only through the
//! environment of the git call that needs it (a credential helper that reads it from there):
//! never a file, a remote URL, a log line or an error message.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use tokio::process::Command;
use zeroize::Zeroizing;

/// Where a workspace's repository lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A URL (`https://…`, `ssh://…`, `file://…`).
    Url(String),
    /// A directory on this machine.
    Path(PathBuf),
}

/// A git failure. The message is git's own first line with any secret removed.
#[derive(Debug, thiserror::Error)]
#[error("git {step}: {message}")]
pub struct GitError {
    /// What was being done.
    pub step: &'static str,
    /// What git said.
    pub message: String,
}

/// The environment variable the credential helper reads the token from.
const PAT_VARIABLE: &str = "WARDEN_GIT_PAT";
/// A credential helper that prints the token from the environment; the token itself never
/// appears on a command line or in a file.
const HELPER: &str = "!f() { test \"$1\" = get || exit 0; echo username=x-access-token; \
                      echo \"password=${WARDEN_GIT_PAT}\"; }; f";

fn git(pat: Option<&Zeroizing<String>>) -> Command {
    let mut cmd = Command::new("git");
    // The agent owns these repositories even when their files belong to the sessions' user.
    cmd.args(["-c", "safe.directory=*"])
        .env_remove(PAT_VARIABLE)
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_ASKPASS", "/bin/false")
        .env("GCM_INTERACTIVE", "never")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    if let Some(pat) = pat {
        // An empty helper first: forget any helper from the host's own configuration.
        cmd.args(["-c", "credential.helper=", "-c"])
            .arg(format!("credential.helper={HELPER}"))
            .env(PAT_VARIABLE, pat.as_str());
    }
    cmd
}

async fn run(
    mut cmd: Command,
    step: &'static str,
    pat: Option<&Zeroizing<String>>,
) -> Result<String, GitError> {
    let out = cmd.output().await.map_err(|e| GitError {
        step,
        message: format!("cannot run git: {e}"),
    })?;
    if out.status.success() {
        return Ok(String::from_utf8_lossy(&out.stdout).into_owned());
    }
    let mut message = String::from_utf8_lossy(&out.stderr)
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("failed")
        .to_owned();
    if let Some(pat) = pat
        && !pat.is_empty()
    {
        message = message.replace(pat.as_str(), "[redacted]");
    }
    Err(GitError { step, message })
}

/// The workspace's mirror in `cache`, cloned on first use and fetched after.
pub async fn ensure_mirror(
    cache: &Path,
    workspace: &str,
    source: &Source,
    pat: Option<&Zeroizing<String>>,
) -> Result<PathBuf, GitError> {
    let mirror = cache.join(format!("{workspace}.git"));
    if mirror.join("HEAD").exists() {
        let mut cmd = git(pat);
        // Everything the repository has, pruned as it prunes, except the sessions' own
        // branches: never taken from the repository, never pruned because it lacks them.
        cmd.arg("-C").arg(&mirror).args([
            "fetch",
            "--prune",
            "--no-write-fetch-head",
            // Not on a session's way: housekeeping would run after every fetch.
            "--no-auto-maintenance",
            "origin",
            "+refs/*:refs/*",
            SESSION_BRANCHES_EXCLUDED,
        ]);
        run(cmd, "fetch", pat).await?;
        return Ok(mirror);
    }
    std::fs::create_dir_all(cache).map_err(|e| GitError {
        step: "clone",
        message: format!("cannot create the mirror cache: {e}"),
    })?;
    let mut cmd = git(pat);
    cmd.args(["clone", "--mirror", "--quiet"]);
    match source {
        Source::Url(url) => cmd.arg(url),
        // Through git's transport, never by hard links: the mirror is handed to the session
        // user and written by sessions, and a hard link would hand over and expose the
        // repository's own files. It also arrives packed (a few files, not one per object).
        Source::Path(path) => cmd.arg("--no-local").arg(path),
    };
    cmd.arg(&mirror);
    run(cmd, "clone", pat).await?;
    // The repository's own `warden/…` branches, if any, are not the sessions'.
    let mut cmd = git(None);
    cmd.arg("-C")
        .arg(&mirror)
        .args(["for-each-ref", "--format=%(refname)", "refs/heads/warden/"]);
    for name in run(cmd, "clone", None).await?.lines() {
        let mut cmd = git(None);
        cmd.arg("-C")
            .arg(&mirror)
            .args(["update-ref", "-d", "--no-deref", name]);
        run(cmd, "clone", None).await?;
    }
    Ok(mirror)
}

/// The branch a session works on.
pub fn branch(session: &str) -> String {
    format!("warden/{session}")
}

/// A negative refspec: the sessions' branches (`refs/heads/warden/…`) belong to this mirror.
const SESSION_BRANCHES_EXCLUDED: &str = "^refs/heads/warden/*";

/// Adds the session's worktree under `root` on a new branch from `base` (default: the
/// mirror's HEAD). With `owner`, git runs as that user, so the files are the session user's
/// from the start (no pass over them afterwards); the mirror and `root` must be theirs.
pub async fn add_worktree(
    mirror: &Path,
    root: &Path,
    session: &str,
    base: Option<&str>,
    owner: Option<(u32, u32)>,
) -> Result<PathBuf, GitError> {
    let dir = root.join(session);
    std::fs::create_dir_all(root).map_err(|e| GitError {
        step: "worktree add",
        message: format!("cannot create the worktree root: {e}"),
    })?;
    let mut cmd = git(None);
    if let Some((uid, gid)) = owner {
        std::os::unix::fs::chown(root, Some(uid), Some(gid)).map_err(|e| GitError {
            step: "worktree add",
            message: format!("cannot hand the worktree root to the session user: {e}"),
        })?;
        cmd.uid(uid).gid(gid);
    }
    cmd.arg("-C")
        .arg(mirror)
        .args(["worktree", "add", "--quiet", "-b"])
        .arg(branch(session))
        .arg(&dir)
        .arg(base.unwrap_or("HEAD"));
    run(cmd, "worktree add", None).await?;
    Ok(dir)
}

/// Removes a session's worktree and its branch (ephemeral sessions, orphans).
pub async fn remove_worktree(mirror: &Path, dir: &Path, session: &str) -> Result<(), GitError> {
    let mut cmd = git(None);
    cmd.arg("-C")
        .arg(mirror)
        .args(["worktree", "remove", "--force"])
        .arg(dir);
    let removed = run(cmd, "worktree remove", None).await;
    if removed.is_err() && dir.exists() {
        let _ = std::fs::remove_dir_all(dir);
        let mut prune = git(None);
        prune.arg("-C").arg(mirror).args(["worktree", "prune"]);
        run(prune, "worktree prune", None).await?;
    }
    let mut cmd = git(None);
    cmd.arg("-C")
        .arg(mirror)
        .args(["branch", "-D", "--quiet"])
        .arg(branch(session));
    run(cmd, "branch delete", None).await.map(drop)
}

/// Removes worktrees under `root` whose session is not in `live` (after a restart): returns
/// the sessions cleaned up.
pub async fn remove_orphans(
    mirror: &Path,
    root: &Path,
    live: &std::collections::HashSet<String>,
) -> Result<Vec<String>, GitError> {
    let mut removed = Vec::new();
    let Ok(entries) = std::fs::read_dir(root) else {
        return Ok(removed);
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !live.contains(&name) && entry.path().is_dir() {
            remove_worktree(mirror, &entry.path(), &name).await?;
            removed.push(name);
        }
    }
    Ok(removed)
}

/// The diff of the worktree (committed and not) against `base`.
pub async fn diff(dir: &Path, base: &str) -> Result<String, GitError> {
    let mut cmd = git(None);
    cmd.arg("-C")
        .arg(dir)
        .args(["diff", "--no-color", "--no-ext-diff"])
        .arg(base);
    run(cmd, "diff", None).await
}
