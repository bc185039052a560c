//! Confinement of session processes on the host.
//!
//! Every session process (provider, hooks) starts in a process group of its own with
//! `no_new_privs`, resource limits, and — where the kernel has Landlock — a file-system policy
//! that lets it write only its worktree, its private temporary directory and the workspace's
//! git mirror, and read only the system's programs and libraries plus a short list of
//! configuration files. Everything else — other sessions' worktrees, the agent's key and data
//! directory, `/proc` (and so the agent's environment) — is out of reach. When the agent runs
//! as root, session processes run as an unprivileged user. Where Landlock is missing the agent
//! says so, and each session records the isolation it actually got.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};

use landlock::{
    ABI, Access, AccessFs, CompatLevel, Compatible, PathBeneath, PathFd, Ruleset, RulesetAttr,
    RulesetCreated, RulesetCreatedAttr, RulesetStatus, Scope,
};

/// The Landlock ABI this build asks for (best effort down to what the kernel has). V6 adds
/// scopes: no signals to, and no connections to abstract Unix sockets of, processes outside
/// the session (sessions all run as one user, so permissions do not separate them).
const TARGET_ABI: ABI = ABI::V6;

/// Read and execute beneath these (programs, libraries, certificates).
const SYSTEM_DIRS: &[&str] = &["/usr", "/bin", "/sbin", "/lib", "/lib64", "/lib32", "/opt"];
/// Read these configuration files and directories only, not all of `/etc` (where an operator
/// may keep the agent's key).
const SYSTEM_FILES: &[&str] = &[
    "/etc/ld.so.cache",
    "/etc/ld.so.conf",
    "/etc/ld.so.conf.d",
    "/etc/alternatives",
    "/etc/ssl",
    "/etc/ca-certificates",
    "/etc/pki",
    "/etc/resolv.conf",
    "/etc/hosts",
    "/etc/nsswitch.conf",
    "/etc/host.conf",
    "/etc/gai.conf",
    "/etc/passwd",
    "/etc/group",
    "/etc/localtime",
    "/etc/mime.types",
    "/etc/gitconfig",
    "/usr/share/zoneinfo",
];
/// Devices a process may read and write.
const DEVICES: &[&str] = &[
    "/dev/null",
    "/dev/zero",
    "/dev/urandom",
    "/dev/random",
    "/dev/tty",
];

/// What a session process may touch.
#[derive(Debug, Clone)]
pub struct Confinement {
    /// Its worktree (read, write, execute).
    pub worktree: PathBuf,
    /// Its private temporary directory (read, write, execute; also `HOME` and `TMPDIR`).
    pub tmp: PathBuf,
    /// The workspace's git repository, which the worktree's `.git` points into (read, write).
    pub mirror: Option<PathBuf>,
    /// Beyond the system's files, read only these (the fetched mirror whose objects the
    /// workspace's repository borrows).
    pub read_only: Vec<PathBuf>,
    /// Run as this uid and gid (when the agent is root).
    pub run_as: Option<(u32, u32)>,
}

/// The isolation a session actually got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Isolation {
    /// Landlock enforced (fully, or partially on an older kernel), with `no_new_privs`.
    Landlock {
        /// Whether every requested restriction applies.
        full: bool,
    },
    /// No Landlock on this kernel: process group, `no_new_privs`, limits and the user only.
    Basic,
}

impl Isolation {
    /// As recorded with the session.
    pub fn describe(&self) -> &'static str {
        match self {
            Self::Landlock { full: true } => "landlock",
            Self::Landlock { full: false } => "landlock-partial",
            Self::Basic => "basic",
        }
    }
}

/// What this kernel offers, for the agent's start-up message: `Ok(())` or why not.
pub fn landlock_support() -> Result<(), String> {
    Ruleset::default()
        .set_compatibility(CompatLevel::HardRequirement)
        .handle_access(AccessFs::from_all(ABI::V1))
        .and_then(Ruleset::create)
        .map(drop)
        .map_err(|e| format!("Landlock is unavailable on this kernel ({e})"))
}

fn add_beneath(
    ruleset: RulesetCreated,
    paths: impl IntoIterator<Item = PathBuf>,
    access: landlock::BitFlags<AccessFs>,
) -> Result<RulesetCreated, landlock::RulesetError> {
    let mut ruleset = ruleset;
    for path in paths {
        // Missing paths are simply not granted.
        if let Ok(fd) = PathFd::new(&path) {
            let access = if path.is_dir() {
                access
            } else {
                access & AccessFs::from_file(TARGET_ABI)
            };
            ruleset = ruleset.add_rule(PathBeneath::new(fd, access))?;
        }
    }
    Ok(ruleset)
}

/// The policy for `c`.
fn ruleset(c: &Confinement) -> Result<RulesetCreated, landlock::RulesetError> {
    let all = AccessFs::from_all(TARGET_ABI);
    let read = AccessFs::from_read(TARGET_ABI);
    let ruleset = Ruleset::default()
        .set_compatibility(CompatLevel::BestEffort)
        .handle_access(all)?
        .scope(Scope::from_all(TARGET_ABI))?
        .create()?;
    let ruleset = add_beneath(ruleset, SYSTEM_DIRS.iter().map(PathBuf::from), read)?;
    let ruleset = add_beneath(ruleset, SYSTEM_FILES.iter().map(PathBuf::from), read)?;
    let ruleset = add_beneath(
        ruleset,
        DEVICES.iter().map(PathBuf::from),
        read | AccessFs::WriteFile,
    )?;
    let ruleset = add_beneath(ruleset, c.read_only.iter().cloned(), read)?;
    let mut own = vec![c.worktree.clone(), c.tmp.clone()];
    own.extend(c.mirror.clone());
    add_beneath(ruleset, own, all)
}

/// The first argument that makes `warden-agent` the launcher of a confined command.
pub const LAUNCHER_ARG: &str = "__confine";

/// util-linux `unshare`, for a PID namespace per confined command (as root).
const UNSHARE: &str = "/usr/bin/unshare";

/// A command that runs `argv` confined by `c`, through `launcher` (the `warden-agent` binary,
/// which confines itself, then executes `argv`). Its own process group; the unprivileged user
/// when `c.run_as` says so. Returns the isolation it will get.
pub fn command(
    launcher: &Path,
    argv: &[String],
    c: &Confinement,
) -> (tokio::process::Command, Isolation) {
    // As root, in a PID namespace of its own (util-linux `unshare`): when the command's first
    // process ends, or is killed, so is everything it started, even what left its process
    // group. The launcher then drops to the session user itself.
    let pid_namespace = c.run_as.is_some() && is_root() && Path::new(UNSHARE).exists();
    let mut cmd = if pid_namespace {
        let mut cmd = tokio::process::Command::new(UNSHARE);
        cmd.args(["--pid", "--fork", "--kill-child=SIGTERM", "--"])
            .arg(launcher);
        cmd
    } else {
        tokio::process::Command::new(launcher)
    };
    cmd.arg(LAUNCHER_ARG)
        .arg("--worktree")
        .arg(&c.worktree)
        .arg("--tmp")
        .arg(&c.tmp);
    if let Some(m) = &c.mirror {
        cmd.arg("--mirror").arg(m);
    }
    for r in &c.read_only {
        cmd.arg("--read").arg(r);
    }
    if c.run_as.is_some() {
        cmd.arg("--limit-processes");
    }
    if let Some((uid, gid)) = c.run_as {
        if pid_namespace {
            cmd.arg("--run-as").arg(format!("{uid}:{gid}"));
        } else {
            cmd.uid(uid).gid(gid);
        }
    }
    cmd.arg("--").args(argv);
    cmd.process_group(0);
    cmd.env("HOME", &c.tmp).env("TMPDIR", &c.tmp);
    let isolation = if landlock_support().is_ok() {
        Isolation::Landlock { full: true }
    } else {
        Isolation::Basic
    };
    (cmd, isolation)
}

/// The launcher: confines this process as its arguments say, then replaces it with the
/// command after `--`. Returns only on failure.
pub fn enter(args: &[String]) -> std::io::Error {
    let mut worktree = None;
    let mut tmp = None;
    let mut mirror = None;
    let mut read_only = Vec::new();
    let mut run_as: Option<(u32, u32)> = None;
    let mut limit_processes = false;
    let mut rest = args.iter();
    while let Some(a) = rest.next() {
        match a.as_str() {
            "--worktree" => worktree = rest.next().map(PathBuf::from),
            "--tmp" => tmp = rest.next().map(PathBuf::from),
            "--mirror" => mirror = rest.next().map(PathBuf::from),
            "--read" => read_only.extend(rest.next().map(PathBuf::from)),
            "--run-as" => {
                let ids = rest.next().and_then(|v| {
                    let (u, g) = v.split_once(':')?;
                    Some((u.parse().ok()?, g.parse().ok()?))
                });
                match ids {
                    Some(ids) => run_as = Some(ids),
                    None => return std::io::Error::other("--run-as takes UID:GID"),
                }
            }
            "--limit-processes" => limit_processes = true,
            "--" => break,
            _ => return std::io::Error::other("unknown launcher argument"),
        }
    }
    let argv: Vec<&String> = rest.collect();
    let (Some(worktree), Some(tmp), Some((program, args))) = (worktree, tmp, argv.split_first())
    else {
        return std::io::Error::other("the launcher needs --worktree, --tmp and a command");
    };
    if let Err(e) = set_limits(limit_processes) {
        return e;
    }
    let c = Confinement {
        worktree,
        tmp,
        mirror,
        read_only,
        run_as: None,
    };
    if landlock_support().is_ok() {
        match ruleset(&c).and_then(RulesetCreated::restrict_self) {
            Ok(status) if status.ruleset != RulesetStatus::NotEnforced => {}
            Ok(_) => return std::io::Error::other("Landlock was not enforced"),
            Err(e) => return std::io::Error::other(e),
        }
    } else if let Err(e) = rustix::thread::set_no_new_privs(true) {
        return e.into();
    }
    let mut command = std::process::Command::new(program);
    command.args(args);
    if let Some((uid, gid)) = run_as {
        // Dropped last, after the confinement (which root may set up without help); the
        // supplementary groups go too.
        command.uid(uid).gid(gid);
    }
    command.exec()
}

fn set_limits(limit_processes: bool) -> std::io::Result<()> {
    use rustix::process::{Resource, Rlimit, setrlimit};
    let limit = |resource, value: u64| {
        setrlimit(
            resource,
            Rlimit {
                current: Some(value),
                maximum: Some(value),
            },
        )
    };
    limit(Resource::Core, 0)?;
    limit(Resource::Nofile, 4096)?;
    limit(Resource::Fsize, 4 << 30)?;
    if limit_processes {
        limit(Resource::Nproc, 512)?;
    }
    Ok(())
}

/// The uid and gid of `user` (from `/etc/passwd`).
pub fn lookup_user(user: &str) -> Option<(u32, u32)> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|line| {
        let mut f = line.split(':');
        let name = f.next()?;
        let _ = f.next()?;
        let uid = f.next()?.parse().ok()?;
        let gid = f.next()?.parse().ok()?;
        (name == user).then_some((uid, gid))
    })
}

/// Whether this process runs as root.
pub fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// Hands `path` and everything beneath it (not following symlinks) to `uid`/`gid`.
pub fn chown_tree(path: &Path, uid: u32, gid: u32) -> std::io::Result<()> {
    std::os::unix::fs::lchown(path, Some(uid), Some(gid))?;
    let meta = std::fs::symlink_metadata(path)?;
    if meta.is_dir() {
        for entry in std::fs::read_dir(path)? {
            chown_tree(&entry?.path(), uid, gid)?;
        }
    }
    Ok(())
}
