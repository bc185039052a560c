//! Git on the host. Per workspace, two repositories:
//!
//! - the **mirror** (`mirrors/<workspace>.git`): cloned and fetched from the workspace's
//!   repository by the agent itself (as root when it runs as root), and written by nothing
//!   else: sessions may only read it;
//! - the **work repository** (`work/<workspace>.git`): borrows the mirror's objects (git
//!   alternates), takes its branches from it, and holds one worktree per session on a branch of
//!   its own (`warden/<session-id>`). Sessions write it (their commits), so the agent never
//!   runs git on it or in a worktree unconfined: every such call goes through the same
//!   launcher as a session process, as the session user, under Landlock (write: that
//!   repository and the worktree at hand; read: the mirror). A hook or configuration a
//!   session planted there runs with no more than the session's own reach.
//!
//! A personal access token reaches git only through the environment of the fetch that needs it
//! (a credential helper that reads it from there): never a file, a remote URL, a log line or an
//! error message; and only the agent's own repository (the mirror) is configured for that
//! fetch.

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
    cmd: Command,
    step: &'static str,
    pat: Option<&Zeroizing<String>>,
) -> Result<String, GitError> {
    run_both(cmd, step, pat).await.map(|(out, _)| out)
}

/// Runs `cmd`: its standard output and whether it wrote anything on standard error.
async fn run_both(
    mut cmd: Command,
    step: &'static str,
    pat: Option<&Zeroizing<String>>,
) -> Result<(String, bool), GitError> {
    let out = cmd.output().await.map_err(|e| GitError {
        step,
        message: format!("cannot run git: {e}"),
    })?;
    if out.status.success() {
        return Ok((
            String::from_utf8_lossy(&out.stdout).into_owned(),
            !out.stderr.is_empty(),
        ));
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

/// How the agent runs git on what sessions can write: through `launcher` (the `warden-agent`
/// binary, which confines itself), as `run_as`, with `tmp` (private to the workspace) as home.
#[derive(Debug, Clone)]
pub struct Jail {
    /// The launcher.
    pub launcher: PathBuf,
    /// The session user (when the agent is root).
    pub run_as: Option<(u32, u32)>,
    /// Home and temporary directory of these git calls (one per workspace).
    pub tmp: PathBuf,
    /// Git's global configuration for these calls, in a directory only the agent writes.
    pub config: PathBuf,
}

/// What every confined git call is configured with: it works on repositories that belong to
/// another user than its own (the mirror, the work repository), by design.
const JAIL_CONFIG: &str = "[safe]\n\tdirectory = *\n";

impl Jail {
    /// Runs `git ARGS` confined to writing `writable` (and `repo`, the work repository),
    /// reading `mirror`.
    async fn git(
        &self,
        step: &'static str,
        repo: &Path,
        writable: &Path,
        mirror: &Path,
        args: &[&std::ffi::OsStr],
    ) -> Result<String, GitError> {
        let c = crate::sandbox::Confinement {
            worktree: writable.to_path_buf(),
            tmp: self.tmp.clone(),
            mirror: Some(repo.to_path_buf()),
            read_only: vec![mirror.to_path_buf()],
            run_as: self.run_as,
        };
        self.run(step, &c, args).await
    }

    /// Runs `git ARGS` under confinement `c` (a session's own, for its diff).
    pub async fn run(
        &self,
        step: &'static str,
        c: &crate::sandbox::Confinement,
        args: &[&std::ffi::OsStr],
    ) -> Result<String, GitError> {
        let prepared = own_dir(&self.tmp, self.run_as).and_then(|()| {
            if std::fs::read(&self.config).is_ok_and(|c| c == JAIL_CONFIG.as_bytes()) {
                return Ok(());
            }
            std::fs::write(&self.config, JAIL_CONFIG)
        });
        prepared.map_err(|e| GitError {
            step,
            message: format!("cannot prepare git's home: {e}"),
        })?;
        let mut c = c.clone();
        c.read_only.push(self.config.clone());
        let mut argv = vec![
            "git".to_owned(),
            "-c".to_owned(),
            "safe.directory=*".to_owned(),
        ];
        argv.extend(args.iter().map(|a| a.to_string_lossy().into_owned()));
        let (mut cmd, _) = crate::sandbox::command(&self.launcher, &argv, &c);
        cmd.current_dir(&c.tmp)
            .env_clear()
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .env("HOME", &c.tmp)
            .env("TMPDIR", &c.tmp)
            .env("LANG", "C.UTF-8")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", &self.config)
            .env("GIT_TERMINAL_PROMPT", "0")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        run(cmd, step, None).await
    }
}

/// Creates `dir` (if missing) belonging to `owner`.
fn own_dir(dir: &Path, owner: Option<(u32, u32)>) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    if let Some((uid, gid)) = owner {
        std::os::unix::fs::lchown(dir, Some(uid), Some(gid))?;
    }
    Ok(())
}

/// The workspace's mirror in `cache`, cloned on first use and fetched after. Only the agent
/// writes it; one it does not own (made by an older agent, which handed it to sessions) is
/// cloned again.
pub async fn ensure_mirror(
    cache: &Path,
    workspace: &str,
    source: &Source,
    pat: Option<&Zeroizing<String>>,
) -> Result<PathBuf, GitError> {
    refresh_mirror(cache, workspace, source, pat)
        .await
        .map(|(mirror, _)| mirror)
}

/// As [`ensure_mirror`], also saying whether anything changed (a clone, or a fetch that
/// updated a branch: git reports those, and is silent otherwise).
pub async fn refresh_mirror(
    cache: &Path,
    workspace: &str,
    source: &Source,
    pat: Option<&Zeroizing<String>>,
) -> Result<(PathBuf, bool), GitError> {
    let mirror = cache.join(format!("{workspace}.git"));
    if let Ok(meta) = std::fs::symlink_metadata(&mirror) {
        use std::os::unix::fs::MetadataExt;
        if !meta.is_dir() || meta.uid() != rustix::process::geteuid().as_raw() {
            let _ = std::fs::remove_dir_all(&mirror);
            let _ = std::fs::remove_file(&mirror);
        }
    }
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
        let (_, reported) = run_both(cmd, "fetch", pat).await?;
        return Ok((mirror, reported));
    }
    std::fs::create_dir_all(cache).map_err(|e| GitError {
        step: "clone",
        message: format!("cannot create the mirror cache: {e}"),
    })?;
    let mut cmd = git(pat);
    cmd.args(["clone", "--mirror", "--quiet"]);
    match source {
        Source::Url(url) => cmd.arg(url),
        // Through git's transport, never by hard links (which would share the repository's
        // own files with the mirror). It also arrives packed: a few files, not one per object.
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
    Ok((mirror, true))
}

/// The branch a session works on.
pub fn branch(session: &str) -> String {
    format!("warden/{session}")
}

/// A negative refspec: the sessions' branches (`refs/heads/warden/…`) belong to this mirror.
const SESSION_BRANCHES_EXCLUDED: &str = "^refs/heads/warden/*";

/// The workspace's work repository at `work`, borrowing `mirror`'s objects: created on first
/// use, then given the mirror's branches (never the sessions' own). Confined; see the module
/// documentation.
pub async fn ensure_work(jail: &Jail, mirror: &Path, work: &Path) -> Result<(), GitError> {
    let fail = |e: std::io::Error| GitError {
        step: "work repository",
        message: format!("cannot create the work repository: {e}"),
    };
    if !work.join("HEAD").exists() {
        // Clones into an empty directory that already belongs to the session user.
        if work.exists() {
            std::fs::remove_dir_all(work).map_err(fail)?;
        }
        own_dir(work, jail.run_as).map_err(fail)?;
        return jail
            .git(
                "work repository",
                work,
                work,
                mirror,
                &[
                    "clone".as_ref(),
                    "--mirror".as_ref(),
                    "--shared".as_ref(),
                    "--quiet".as_ref(),
                    mirror.as_os_str(),
                    work.as_os_str(),
                ],
            )
            .await
            .map(drop);
    }
    jail.git(
        "work repository",
        work,
        work,
        mirror,
        &[
            "-C".as_ref(),
            work.as_os_str(),
            "fetch".as_ref(),
            "--prune".as_ref(),
            "--quiet".as_ref(),
            "--no-write-fetch-head".as_ref(),
            "--no-auto-maintenance".as_ref(),
            "origin".as_ref(),
            "+refs/*:refs/*".as_ref(),
            SESSION_BRANCHES_EXCLUDED.as_ref(),
        ],
    )
    .await
    .map(drop)
}

/// Adds the session's worktree under `root` on a new branch from `base` (default: HEAD) of the
/// work repository `work`, confined to that worktree and repository.
pub async fn add_worktree(
    jail: &Jail,
    mirror: &Path,
    work: &Path,
    root: &Path,
    session: &str,
    base: Option<&str>,
) -> Result<PathBuf, GitError> {
    let dir = root.join(session);
    let fail = |e: std::io::Error| GitError {
        step: "worktree add",
        message: format!("cannot create the worktree's directory: {e}"),
    };
    own_dir(root, jail.run_as).map_err(fail)?;
    // A new directory, never one that is there already (sessions of the workspace can write
    // `root`: a link planted there would lead the confined git elsewhere).
    std::fs::create_dir(&dir).map_err(fail)?;
    if let Some((uid, gid)) = jail.run_as {
        std::os::unix::fs::lchown(&dir, Some(uid), Some(gid)).map_err(fail)?;
    }
    let branch = branch(session);
    jail.git(
        "worktree add",
        work,
        &dir,
        mirror,
        &[
            "-C".as_ref(),
            work.as_os_str(),
            "worktree".as_ref(),
            "add".as_ref(),
            "--quiet".as_ref(),
            "--no-track".as_ref(),
            "-b".as_ref(),
            branch.as_ref(),
            dir.as_os_str(),
            base.unwrap_or("HEAD").as_ref(),
        ],
    )
    .await
    .inspect_err(|_| {
        // Nothing is left of a worktree git did not make (a base with no branch).
        let _ = std::fs::remove_dir_all(&dir);
    })?;
    Ok(dir)
}

/// Removes a session's worktree and its branch (ephemeral sessions, orphans).
pub async fn remove_worktree(
    jail: &Jail,
    mirror: &Path,
    work: &Path,
    dir: &Path,
    session: &str,
) -> Result<(), GitError> {
    let removed = jail
        .git(
            "worktree remove",
            work,
            dir,
            mirror,
            &[
                "-C".as_ref(),
                work.as_os_str(),
                "worktree".as_ref(),
                "remove".as_ref(),
                "--force".as_ref(),
                dir.as_os_str(),
            ],
        )
        .await;
    if removed.is_err() && dir.exists() {
        // Plain file removal (never follows a planted link), then git forgets it.
        let _ = std::fs::remove_dir_all(dir);
        jail.git(
            "worktree prune",
            work,
            work,
            mirror,
            &[
                "-C".as_ref(),
                work.as_os_str(),
                "worktree".as_ref(),
                "prune".as_ref(),
            ],
        )
        .await?;
    }
    let branch = branch(session);
    jail.git(
        "branch delete",
        work,
        work,
        mirror,
        &[
            "-C".as_ref(),
            work.as_os_str(),
            "branch".as_ref(),
            "-D".as_ref(),
            "--quiet".as_ref(),
            branch.as_ref(),
        ],
    )
    .await
    .map(drop)
}

/// Removes worktrees under `root` whose session is not in `live` (after a restart): returns
/// the sessions cleaned up.
pub async fn remove_orphans(
    jail: &Jail,
    mirror: &Path,
    work: &Path,
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
            remove_worktree(jail, mirror, work, &entry.path(), &name).await?;
            removed.push(name);
        }
    }
    Ok(removed)
}

/// The diff of a session's worktree (committed and not) against `base`, run under the
/// session's own confinement `c`.
pub async fn diff(
    jail: &Jail,
    c: &crate::sandbox::Confinement,
    base: &str,
) -> Result<String, GitError> {
    jail.run(
        "diff",
        c,
        &[
            "-C".as_ref(),
            c.worktree.as_os_str(),
            "diff".as_ref(),
            "--no-color".as_ref(),
            "--no-ext-diff".as_ref(),
            base.as_ref(),
        ],
    )
    .await
}
