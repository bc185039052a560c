//! The sessions this host runs: prepare the worktree (the workspace's mirror, fetched; a
//! worktree on `warden/<session>`), run the command confined, report start, output and end to
//! the server, stop on request, and delete the worktree of an ephemeral (develop) session
//! when it ends.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::mpsc;
use warden_protocol::{AgentMessage, EndStatus, Mode, Repository, Secret};
use zeroize::Zeroizing;

use crate::run::{Event, Spec, Stream, start, stop};
use crate::sandbox::{Confinement, chown_tree};
use crate::worktree::{Jail, Source, add_worktree, ensure_work, refresh_mirror, remove_worktree};

/// A session to run, as the server sent it.
#[derive(Debug)]
pub struct Job {
    /// The session.
    pub session_id: String,
    /// Its workspace.
    pub workspace_id: String,
    /// The repository.
    pub repository: Repository,
    /// `chat`, `develop` or `bot`.
    pub mode: Mode,
    /// Program and arguments.
    pub argv: Vec<String>,
    /// Environment for the process only.
    pub env: Vec<(String, Secret)>,
    /// The access token, for git only.
    pub pat: Option<Secret>,
    /// Shell commands before the provider.
    pub hooks_pre: Vec<String>,
    /// Shell commands after it.
    pub hooks_post: Vec<String>,
    /// An earlier session whose branch the worktree starts from.
    pub base_session: Option<String>,
    /// Keep the worktree and branch at the end whatever the mode (until archived).
    pub keep_worktree: bool,
}

/// This host's session runner.
#[derive(Debug)]
pub struct Runner {
    data_dir: PathBuf,
    launcher: PathBuf,
    run_as: Option<(u32, u32)>,
    running: Mutex<HashMap<String, Running>>,
    mirrors: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// Workspaces whose work repository has every branch of their mirror.
    in_sync: Mutex<std::collections::HashSet<String>>,
    /// The data directory's lock, held from [`Runner::recover`] on.
    claim: Mutex<Option<std::fs::File>>,
}

/// Another agent holds this data directory.
#[derive(Debug, thiserror::Error)]
pub enum ClaimError {
    /// Its lock is taken.
    #[error(
        "another agent is using {0} (its lock file is held); give each agent a data directory of its own"
    )]
    Taken(PathBuf),
    /// The lock file could not be opened.
    #[error("cannot lock {path}: {source}")]
    Io {
        /// The lock file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

#[derive(Debug, Clone, Copy)]
struct Running {
    pgid: Option<i32>,
    stopping: bool,
}

fn safe_name(s: &str) -> bool {
    !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

impl Runner {
    /// A runner keeping mirrors, worktrees and temporary directories under `data_dir`,
    /// confining sessions through `launcher` (this binary), as `run_as` when given.
    pub fn new(data_dir: PathBuf, launcher: PathBuf, run_as: Option<(u32, u32)>) -> Self {
        Self {
            data_dir,
            launcher,
            run_as,
            running: Mutex::new(HashMap::new()),
            mirrors: Mutex::new(HashMap::new()),
            in_sync: Mutex::new(std::collections::HashSet::new()),
            claim: Mutex::new(None),
        }
    }

    /// Starts `job`; reports go to `out`.
    pub fn start(self: &Arc<Self>, job: Job, out: mpsc::Sender<AgentMessage>) {
        if !safe_name(&job.session_id) || !safe_name(&job.workspace_id) {
            return;
        }
        if let Ok(mut r) = self.running.lock() {
            if r.contains_key(&job.session_id) {
                return;
            }
            r.insert(
                job.session_id.clone(),
                Running {
                    pgid: None,
                    stopping: false,
                },
            );
        }
        let me = self.clone();
        tokio::spawn(async move {
            let id = job.session_id.clone();
            let ended = me.execute(job, &out).await;
            if let Err(error) = ended {
                // Workspace members read this: the host's own layout is not theirs to see.
                let error =
                    error.replace(&me.data_dir.display().to_string(), "[host data directory]");
                let _ = out
                    .send(AgentMessage::SessionEnded {
                        session_id: id.clone(),
                        seq: 0,
                        status: EndStatus::Failed,
                        exit_code: None,
                        error: Some(error),
                    })
                    .await;
            }
            if let Ok(mut r) = me.running.lock() {
                r.remove(&id);
            }
        });
    }

    fn record_path(&self, session: &str) -> PathBuf {
        self.data_dir
            .join("sessions")
            .join(format!("{session}.json"))
    }

    /// Notes on disk which session runs, where, and its current process group, so that an
    /// agent started after a crash can end what this one leaves behind.
    fn record(&self, job: &Job, pgid: Option<i32>) {
        let dir = self.data_dir.join("sessions");
        let _ = std::fs::create_dir_all(&dir);
        let note = serde_json::json!({
            "workspace_id": job.workspace_id, "mode": job.mode.as_str(), "pgid": pgid,
        });
        let _ = std::fs::write(self.record_path(&job.session_id), note.to_string());
    }

    /// At start: claims the data directory (an exclusive lock held as long as this runner
    /// lives: a second agent on the same directory would end this one's sessions), then ends
    /// the processes and removes the develop worktrees of sessions a previous agent left
    /// running (it crashed or was killed). Chat and bot worktrees stay. Returns the sessions
    /// cleaned up.
    pub async fn recover(&self) -> Result<Vec<String>, ClaimError> {
        if self.claim.lock().is_ok_and(|c| c.is_some()) {
            return Ok(self.end_leftovers().await);
        }
        let path = self.data_dir.join("agent.lock");
        let io = |source| ClaimError::Io {
            path: path.clone(),
            source,
        };
        std::fs::create_dir_all(&self.data_dir).map_err(io)?;
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(io)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(ClaimError::Taken(self.data_dir.clone()));
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(io(e)),
        }
        if let Ok(mut claim) = self.claim.lock() {
            *claim = Some(file);
        }
        Ok(self.end_leftovers().await)
    }

    async fn end_leftovers(&self) -> Vec<String> {
        let mut cleaned = Vec::new();
        let Ok(entries) = std::fs::read_dir(self.data_dir.join("sessions")) else {
            return cleaned;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let Some(session) = path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .filter(|s| safe_name(s))
            else {
                continue;
            };
            let note: serde_json::Value = std::fs::read_to_string(&path)
                .ok()
                .and_then(|t| serde_json::from_str(&t).ok())
                .unwrap_or_default();
            let workspace = note["workspace_id"].as_str().unwrap_or_default().to_owned();
            if !safe_name(&workspace) {
                let _ = std::fs::remove_file(&path);
                continue;
            }
            let worktree = self
                .data_dir
                .join("worktrees")
                .join(&workspace)
                .join(&session);
            // Only a process group still working in that worktree is ours to end (process ids
            // are reused).
            if let Some(pgid) = note["pgid"].as_i64().and_then(|p| i32::try_from(p).ok())
                && std::fs::read_link(format!("/proc/{pgid}/cwd"))
                    .is_ok_and(|cwd| cwd.starts_with(&worktree))
                && let Some(pid) = rustix::process::Pid::from_raw(pgid)
            {
                let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
            }
            let _ = std::fs::remove_dir_all(self.data_dir.join("tmp").join(&session));
            if note["mode"] == "develop" {
                let (mirror, work) = self.repositories(&workspace);
                let _ =
                    remove_worktree(&self.jail(&workspace), &mirror, &work, &worktree, &session)
                        .await;
            }
            let _ = std::fs::remove_file(&path);
            cleaned.push(session);
        }
        cleaned
    }

    /// Removes a closed session's worktree and branch (not while it runs).
    pub async fn archive(&self, workspace: &str, session: &str) {
        if !safe_name(workspace)
            || !safe_name(session)
            || self.running().iter().any(|s| s == session)
        {
            return;
        }
        let worktree = self
            .data_dir
            .join("worktrees")
            .join(workspace)
            .join(session);
        if !worktree.exists() {
            return;
        }
        let (mirror, work) = self.repositories(workspace);
        let lock = self.mirror_lock(workspace);
        let _guard = lock.lock().await;
        let _ = remove_worktree(&self.jail(workspace), &mirror, &work, &worktree, session).await;
    }

    /// The workspace's mirror (the agent's own) and work repository (shared with its sessions).
    fn repositories(&self, workspace: &str) -> (PathBuf, PathBuf) {
        (
            self.data_dir
                .join("mirrors")
                .join(format!("{workspace}.git")),
            self.data_dir.join("work").join(format!("{workspace}.git")),
        )
    }

    /// How git runs on what the workspace's sessions can write.
    fn jail(&self, workspace: &str) -> Jail {
        Jail {
            launcher: self.launcher.clone(),
            run_as: self.run_as,
            tmp: self.data_dir.join("tmp").join(format!("git-{workspace}")),
            config: self.data_dir.join("tmp").join("git.config"),
        }
    }

    /// The sessions running now.
    pub fn running(&self) -> Vec<String> {
        self.running
            .lock()
            .map(|r| r.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// Stops a session's process group (it then reports `canceled`).
    pub fn stop(self: &Arc<Self>, session_id: &str) {
        let pgid = self.running.lock().ok().and_then(|mut r| {
            r.get_mut(session_id).and_then(|s| {
                s.stopping = true;
                s.pgid
            })
        });
        if let Some(pgid) = pgid {
            tokio::spawn(stop(pgid, Duration::from_secs(5)));
        }
    }

    fn mirror_lock(&self, workspace: &str) -> Arc<tokio::sync::Mutex<()>> {
        self.mirrors
            .lock()
            .map(|mut m| m.entry(workspace.to_owned()).or_default().clone())
            .unwrap_or_default()
    }

    /// The mirror (fetched), the work repository (updated from it), the session's worktree and
    /// its temporary directory.
    async fn prepare(&self, job: &Job) -> Result<(PathBuf, PathBuf, PathBuf, PathBuf), String> {
        let lock = self.mirror_lock(&job.workspace_id);
        let _guard = lock.lock().await;
        let source = match &job.repository {
            Repository::Url(u) => Source::Url(u.clone()),
            Repository::Path(p) => Source::Path(PathBuf::from(p)),
        };
        let pat = job.pat.as_ref().map(|p| Zeroizing::new(p.0.clone()));
        let (mirror, changed) = refresh_mirror(
            &self.data_dir.join("mirrors"),
            &job.workspace_id,
            &source,
            pat.as_ref(),
        )
        .await
        .map_err(|e| e.to_string())?;
        let (_, work) = self.repositories(&job.workspace_id);
        let jail = self.jail(&job.workspace_id);
        // The work repository takes the mirror's branches when they changed (or this agent
        // has not yet brought it up to date since it started).
        let in_sync = !changed
            && work.join("HEAD").exists()
            && self
                .in_sync
                .lock()
                .is_ok_and(|s| s.contains(&job.workspace_id));
        if !in_sync {
            if let Ok(mut s) = self.in_sync.lock() {
                s.remove(&job.workspace_id);
            }
            ensure_work(&jail, &mirror, &work)
                .await
                .map_err(|e| e.to_string())?;
            if let Ok(mut s) = self.in_sync.lock() {
                s.insert(job.workspace_id.clone());
            }
        }
        let worktrees = self.data_dir.join("worktrees").join(&job.workspace_id);
        // A later step of a workflow goes on from the branch the step before it left.
        let base = match &job.base_session {
            Some(b) if safe_name(b) => Some(crate::worktree::branch(b)),
            Some(_) => return Err("the session to start from is not a session id".to_owned()),
            None => None,
        };
        let worktree = add_worktree(
            &jail,
            &mirror,
            &work,
            &worktrees,
            &job.session_id,
            base.as_deref(),
        )
        .await
        .map_err(|e| e.to_string())?;
        let tmp = self.data_dir.join("tmp").join(&job.session_id);
        std::fs::create_dir_all(&tmp)
            .map_err(|_| "cannot create the session's temporary directory")?;
        // Files the server asked for in the home (a provider's settings), written while the
        // directory is still the agent's alone.
        if let Some((_, files)) = job
            .env
            .iter()
            .find(|(k, _)| k == warden_domain::sessions::HOME_FILES_VAR)
        {
            crate::run::write_home_files(&tmp, &files.0)
                .map_err(|_| "cannot write the session's settings files")?;
        }
        if let Some((uid, gid)) = self.run_as {
            chown_tree(&tmp, uid, gid)
                .map_err(|_| "cannot hand the temporary directory to the session user")?;
        }
        Ok((mirror, work, worktree, tmp))
    }

    fn stopping(&self, session: &str) -> bool {
        self.running
            .lock()
            .ok()
            .and_then(|r| r.get(session).map(|s| s.stopping))
            .unwrap_or(false)
    }

    /// Runs one command of the session (a hook or the provider), forwarding its output from
    /// `seq`. Returns the next free sequence number, the exit code and the isolation.
    async fn run_one(
        &self,
        job: &Job,
        argv: Vec<String>,
        confinement: &Confinement,
        seq: u64,
        out: &mpsc::Sender<AgentMessage>,
        started: &mut bool,
    ) -> Result<(u64, Option<i32>), String> {
        let spec = Spec {
            launcher: self.launcher.clone(),
            argv,
            env: job
                .env
                .iter()
                .map(|(k, v)| (k.clone(), Zeroizing::new(v.0.clone())))
                .collect(),
            confinement: confinement.clone(),
        };
        let mut running = start(spec, seq).map_err(|_| "a session process could not start")?;
        self.record(job, Some(running.pgid));
        if let Ok(mut r) = self.running.lock()
            && let Some(s) = r.get_mut(&job.session_id)
        {
            s.pgid = Some(running.pgid);
            if s.stopping {
                tokio::spawn(stop(running.pgid, Duration::from_secs(5)));
            }
        }
        if !*started {
            // The session runs from its first process on (a pre-hook or the provider).
            *started = true;
            let _ = out
                .send(AgentMessage::SessionStarted {
                    session_id: job.session_id.clone(),
                    isolation: running.isolation.describe().to_owned(),
                })
                .await;
        }
        let mut next = seq;
        let mut code = None;
        while let Some(event) = running.events.recv().await {
            match event {
                Event::Output { seq, stream, data } => {
                    next = next.max(seq + 1);
                    let _ = out
                        .send(AgentMessage::SessionOutput {
                            session_id: job.session_id.clone(),
                            seq,
                            stream: match stream {
                                Stream::Stdout => warden_protocol::Stream::Stdout,
                                Stream::Stderr => warden_protocol::Stream::Stderr,
                            },
                            data,
                        })
                        .await;
                }
                Event::Exited { seq, code: c, .. } => {
                    next = next.max(seq + 1);
                    code = c;
                }
            }
        }
        Ok((next, code))
    }

    async fn execute(&self, job: Job, out: &mpsc::Sender<AgentMessage>) -> Result<(), String> {
        // Recorded before anything is made, so an agent that dies (or fails) while preparing
        // leaves nothing its successor does not clean up.
        self.record(&job, None);
        let (mirror, work, worktree, tmp) = self.prepare(&job).await?;
        let confinement = Confinement {
            worktree: worktree.clone(),
            tmp: tmp.clone(),
            mirror: Some(work.clone()),
            read_only: vec![mirror.clone()],
            run_as: self.run_as,
        };
        let shell = |cmd: &String| vec!["sh".to_owned(), "-c".to_owned(), cmd.clone()];
        let mut seq = 0;
        let mut started = false;
        let mut failure: Option<String> = None;
        for hook in &job.hooks_pre {
            let (next, code) = self
                .run_one(&job, shell(hook), &confinement, seq, out, &mut started)
                .await?;
            seq = next;
            if code != Some(0) {
                failure = Some("a pre-session hook failed".to_owned());
                break;
            }
        }
        let mut exit_code = None;
        if failure.is_none() && !self.stopping(&job.session_id) {
            let (next, code) = self
                .run_one(&job, job.argv.clone(), &confinement, seq, out, &mut started)
                .await?;
            seq = next;
            exit_code = code;
        }
        if !self.stopping(&job.session_id) {
            for hook in &job.hooks_post {
                let (next, _) = self
                    .run_one(&job, shell(hook), &confinement, seq, out, &mut started)
                    .await?;
                seq = next;
            }
        }
        let status = if self.stopping(&job.session_id) {
            EndStatus::Canceled
        } else if failure.is_none() && exit_code == Some(0) {
            EndStatus::Done
        } else {
            EndStatus::Failed
        };
        let _ = out
            .send(AgentMessage::SessionEnded {
                session_id: job.session_id.clone(),
                seq,
                status,
                exit_code,
                error: failure,
            })
            .await;
        let _ = std::fs::remove_dir_all(&tmp);
        let _ = std::fs::remove_file(self.record_path(&job.session_id));
        if job.mode == Mode::Develop && !job.keep_worktree {
            let lock = self.mirror_lock(&job.workspace_id);
            let _guard = lock.lock().await;
            let _ = remove_worktree(
                &self.jail(&job.workspace_id),
                &mirror,
                &work,
                &worktree,
                &job.session_id,
            )
            .await;
        }
        Ok(())
    }

    /// Where this runner keeps its files.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }
}

/// A file operation the server asked for.
#[derive(Debug)]
pub struct FileJob {
    /// Pairs the answer with the request.
    pub request_id: u64,
    /// The session.
    pub session_id: String,
    /// Its workspace.
    pub workspace_id: String,
    /// `list`, `read`, `write`, `delete` or `diff`.
    pub op: String,
    /// The path.
    pub path: Option<String>,
    /// For `write`.
    pub content: Option<String>,
}

impl Runner {
    /// Performs a file operation in a session's worktree, beneath it whatever the path says.
    pub async fn file(&self, job: FileJob) -> AgentMessage {
        let answer = |outcome: &str, entries, content| AgentMessage::FileResponse {
            request_id: job.request_id,
            outcome: outcome.to_owned(),
            entries,
            content,
        };
        if !safe_name(&job.session_id) || !safe_name(&job.workspace_id) {
            return answer("no-worktree", Vec::new(), None);
        }
        let root = self
            .data_dir
            .join("worktrees")
            .join(&job.workspace_id)
            .join(&job.session_id);
        let Ok(wt) = crate::files::Worktree::open(&root) else {
            return answer("no-worktree", Vec::new(), None);
        };
        let path = match job
            .path
            .as_deref()
            .map(crate::files::Worktree::path)
            .transpose()
        {
            Ok(p) => p,
            Err(_) => return answer("refused", Vec::new(), None),
        };
        let outcome = |e: crate::files::FileError| {
            use crate::files::FileError as E;
            match e {
                E::Refused(_) => "refused",
                E::Escape => "escape",
                E::NotFound => "not-found",
                E::TooLarge => "too-large",
                E::NotAFile => "not-a-file",
                E::Io => "io",
            }
        };
        let limit = u64::try_from(warden_protocol::MAX_FILE_BYTES).unwrap_or(u64::MAX);
        match (job.op.as_str(), path) {
            ("list", p) => match wt.list(p.as_ref()) {
                Ok(entries) => answer(
                    "ok",
                    entries
                        .into_iter()
                        .map(|e| warden_protocol::FileEntry {
                            name: e.name,
                            kind: e.kind.to_owned(),
                            size: e.size,
                        })
                        .collect(),
                    None,
                ),
                Err(e) => answer(outcome(e), Vec::new(), None),
            },
            ("read", Some(p)) => match wt.read(&p, limit) {
                Ok(data) => answer(
                    "ok",
                    Vec::new(),
                    Some(String::from_utf8_lossy(&data).into_owned()),
                ),
                Err(e) => answer(outcome(e), Vec::new(), None),
            },
            ("write", Some(p)) => {
                let content = job.content.unwrap_or_default();
                if content.len() > warden_protocol::MAX_FILE_BYTES {
                    return answer("too-large", Vec::new(), None);
                }
                match wt.write(&p, content.as_bytes()) {
                    Ok(()) => {
                        // The file and any directory the write created belong to the session
                        // user, who must be able to change them.
                        if let Some((uid, gid)) = self.run_as {
                            let _ = wt.hand_over(&p, uid, gid);
                        }
                        answer("ok", Vec::new(), None)
                    }
                    Err(e) => answer(outcome(e), Vec::new(), None),
                }
            }
            ("delete", Some(p)) => match wt.delete(&p) {
                Ok(()) => answer("ok", Vec::new(), None),
                Err(e) => answer(outcome(e), Vec::new(), None),
            },
            ("diff", None) => {
                let base = self
                    .base_of(&job.workspace_id)
                    .unwrap_or_else(|| "HEAD".to_owned());
                // The worktree and its `.git` are the session's: read them as the session.
                let (mirror, work) = self.repositories(&job.workspace_id);
                let jail = self.jail(&job.workspace_id);
                let confinement = Confinement {
                    worktree: root.clone(),
                    tmp: jail.tmp.clone(),
                    mirror: Some(work),
                    read_only: vec![mirror],
                    run_as: self.run_as,
                };
                match crate::worktree::diff(&jail, &confinement, &base).await {
                    Ok(mut text) => {
                        text.truncate(warden_protocol::MAX_FILE_BYTES);
                        answer("ok", Vec::new(), Some(text))
                    }
                    Err(_) => answer("io", Vec::new(), None),
                }
            }
            _ => answer("refused", Vec::new(), None),
        }
    }

    /// The base a session's branch started from: the mirror's HEAD branch.
    fn base_of(&self, workspace: &str) -> Option<String> {
        let head = std::fs::read_to_string(
            self.data_dir
                .join("mirrors")
                .join(format!("{workspace}.git"))
                .join("HEAD"),
        )
        .ok()?;
        head.trim()
            .strip_prefix("ref: refs/heads/")
            .map(str::to_owned)
    }
}
