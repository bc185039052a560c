//! The file API on the host: list, read, write and delete inside one session's worktree.
//!
//! Two walls. A path first passes the lexical rules of `WorktreePath` (relative, no `.`/`..`,
//! nothing encoded, no control characters, nothing in `.git`). It is then resolved beneath the
//! worktree's directory handle by `cap-std`, component by component with `openat`, so no
//! symlink, however it was planted, leads outside the worktree. Writes and deletes also refuse
//! to go through symlinks at all, so a link to `.git` cannot be written through.

use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};

use cap_std::ambient_authority;
use cap_std::fs::{Dir, OpenOptions, OpenOptionsExt as _};
use warden_domain::sessions::{PathRefusal, WorktreePath};

/// Why a file operation failed. Messages never carry the path or any file content.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// The path breaks a lexical rule.
    #[error("{0}")]
    Refused(PathRefusal),
    /// The path leads outside the worktree, or a write would go through a symlink.
    #[error("the path leads outside the worktree")]
    Escape,
    /// Nothing there.
    #[error("no such file")]
    NotFound,
    /// Larger than the limit.
    #[error("the file is too large")]
    TooLarge,
    /// A directory where a file was expected, or the reverse.
    #[error("not a file")]
    NotAFile,
    /// Another I/O failure.
    #[error("the file could not be accessed")]
    Io,
}

fn io_error(e: &std::io::Error) -> FileError {
    use std::io::ErrorKind as K;
    match e.kind() {
        K::NotFound => FileError::NotFound,
        K::PermissionDenied => FileError::Escape,
        K::IsADirectory | K::NotADirectory => FileError::NotAFile,
        // A socket, or a named pipe with nobody at the other end.
        _ if e.raw_os_error() == Some(rustix::io::Errno::NXIO.raw_os_error()) => {
            FileError::NotAFile
        }
        _ if e.raw_os_error() == Some(rustix::io::Errno::LOOP.raw_os_error())
            || e.raw_os_error() == Some(rustix::io::Errno::XDEV.raw_os_error()) =>
        {
            FileError::Escape
        }
        _ if e.to_string().contains("outside of the filesystem") => FileError::Escape,
        _ => FileError::Io,
    }
}

/// One entry of a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// File name.
    pub name: String,
    /// `file`, `dir` or `symlink`.
    pub kind: &'static str,
    /// Size in bytes (files).
    pub size: u64,
}

/// A session's worktree, opened once.
#[derive(Debug)]
pub struct Worktree {
    dir: Dir,
}

impl Worktree {
    /// Opens the worktree at `root`.
    pub fn open(root: &Path) -> std::io::Result<Self> {
        Ok(Self {
            dir: Dir::open_ambient_dir(root, ambient_authority())?,
        })
    }

    /// Checks a path from a request.
    pub fn path(raw: &str) -> Result<WorktreePath, FileError> {
        WorktreePath::parse(raw).map_err(FileError::Refused)
    }

    /// Refuses a path any of whose existing components is a symlink.
    fn no_symlinks(&self, p: &WorktreePath) -> Result<(), FileError> {
        let mut prefix = PathBuf::new();
        for c in p.components() {
            prefix.push(c);
            match self.dir.symlink_metadata(&prefix) {
                Ok(m) if m.file_type().is_symlink() => return Err(FileError::Escape),
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
                Err(e) => return Err(io_error(&e)),
            }
        }
        Ok(())
    }

    /// Refuses what is neither a regular file nor a directory (a named pipe, a socket, a
    /// device) before anything opens it, and the worktree's `.git` pointer under any other
    /// name (a symlink or hard link to it): it names the host's work repository.
    fn plain(&self, p: &WorktreePath) -> Result<(), FileError> {
        use cap_std::fs::MetadataExt as _;
        let meta = match self.dir.metadata(p.as_str()) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(io_error(&e)),
        };
        if !meta.is_file() && !meta.is_dir() {
            return Err(FileError::NotAFile);
        }
        if let Ok(git) = self.dir.symlink_metadata(".git")
            && git.dev() == meta.dev()
            && git.ino() == meta.ino()
        {
            return Err(FileError::Refused(PathRefusal::GitDir));
        }
        Ok(())
    }

    /// A file's content, up to `max` bytes.
    pub fn read(&self, p: &WorktreePath, max: u64) -> Result<Vec<u8>, FileError> {
        self.plain(p)?;
        // Non-blocking: a named pipe the session made answers "not a file" at once instead of
        // waiting for a writer.
        let mut options = OpenOptions::new();
        options
            .read(true)
            .custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32);
        let mut file = self
            .dir
            .open_with(p.as_str(), &options)
            .map_err(|e| io_error(&e))?;
        let meta = file.metadata().map_err(|e| io_error(&e))?;
        if !meta.is_file() {
            return Err(FileError::NotAFile);
        }
        // Checked again on what was opened, in case the name was swapped in between.
        if let Ok(git) = self.dir.symlink_metadata(".git") {
            use cap_std::fs::MetadataExt as _;
            if git.dev() == meta.dev() && git.ino() == meta.ino() {
                return Err(FileError::Refused(PathRefusal::GitDir));
            }
        }
        if meta.len() > max {
            return Err(FileError::TooLarge);
        }
        let mut data = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
        file.read_to_end(&mut data).map_err(|e| io_error(&e))?;
        Ok(data)
    }

    /// Writes (creating or replacing) a file, creating its parent directories.
    pub fn write(&self, p: &WorktreePath, data: &[u8]) -> Result<(), FileError> {
        self.no_symlinks(p)?;
        self.plain(p)?;
        if let Some(parent) = Path::new(p.as_str()).parent()
            && !parent.as_os_str().is_empty()
        {
            self.dir.create_dir_all(parent).map_err(|e| io_error(&e))?;
            // Created just now or before: check again, in case a symlink raced in.
            self.no_symlinks(p)?;
        }
        // Non-blocking, and no truncation before the type is known: a named pipe is refused
        // at once (no reader: the open fails; a reader: it is not a file).
        let mut options = OpenOptions::new();
        options
            .write(true)
            .create(true)
            .custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32);
        let mut file = self
            .dir
            .open_with(p.as_str(), &options)
            .map_err(|e| io_error(&e))?;
        if !file.metadata().map_err(|e| io_error(&e))?.is_file() {
            return Err(FileError::NotAFile);
        }
        file.set_len(0).map_err(|e| io_error(&e))?;
        file.write_all(data).map_err(|e| io_error(&e))?;
        Ok(())
    }

    /// Gives `p` and each directory on the way to it to `uid`:`gid`, each by name within the
    /// directory opened before it (resolved inside the worktree, never through a link).
    pub fn hand_over(&self, p: &WorktreePath, uid: u32, gid: u32) -> Result<(), FileError> {
        use rustix::fs::{AtFlags, Gid, Uid, chownat};
        let mut parent = PathBuf::new();
        for c in p.components() {
            let dir = if parent.as_os_str().is_empty() {
                self.dir.try_clone()
            } else {
                self.dir.open_dir(&parent)
            }
            .map_err(|e| io_error(&e))?;
            chownat(
                &dir,
                c,
                Some(Uid::from_raw(uid)),
                Some(Gid::from_raw(gid)),
                AtFlags::SYMLINK_NOFOLLOW,
            )
            .map_err(|e| io_error(&e.into()))?;
            parent.push(c);
        }
        Ok(())
    }

    /// Deletes a file.
    pub fn delete(&self, p: &WorktreePath) -> Result<(), FileError> {
        self.no_symlinks(p)?;
        self.dir.remove_file(p.as_str()).map_err(|e| io_error(&e))
    }

    /// The entries of a directory (the worktree's root when `p` is `None`), by name, without
    /// `.git`.
    pub fn list(&self, p: Option<&WorktreePath>) -> Result<Vec<Entry>, FileError> {
        let entries = match p {
            None => self.dir.entries(),
            Some(p) => self.dir.read_dir(p.as_str()),
        }
        .map_err(|e| io_error(&e))?;
        let mut out = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| io_error(&e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.eq_ignore_ascii_case(".git") {
                continue;
            }
            let ft = entry.file_type().map_err(|e| io_error(&e))?;
            let (kind, size) = if ft.is_symlink() {
                ("symlink", 0)
            } else if ft.is_dir() {
                ("dir", 0)
            } else {
                ("file", entry.metadata().map(|m| m.len()).unwrap_or(0))
            };
            out.push(Entry { name, kind, size });
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }
}
