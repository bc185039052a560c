//! The host side of Warden, as a library the `warden-agent` binary (and `warden serve`'s local
//! host) runs: the connection to the server ([`connection`]) and the reports it keeps until
//! the server confirms them ([`replay`]),
//! per-workspace git mirrors and per-session worktrees ([`worktree`]), confined session
//! processes ([`sandbox`], [`run`]) and the traversal-proof file API ([`files`]).

mod backoff;
pub mod connection;
pub mod enroll;
pub mod files;
pub mod mask;
pub mod replay;
pub mod run;
pub mod sandbox;
pub mod work;
pub mod worktree;
