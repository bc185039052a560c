//! Bounded costly work: password hashing (argon2id, 19 MiB of memory each) and host-key checks
//! (PBKDF2, ~12 ms of CPU each) run on the blocking pool at most one per core at a time, with
//! a short queue behind them. Past the queue a request is refused at once (503 `server-busy`
//! with `Retry-After`) instead of piling up threads and memory: 100 parallel sign-ins cost
//! what two do. Limits are per process, which is what memory and cores are.
//!
//! Work already admitted always finishes, even if its request is dropped: the permit (and the
//! argon2 memory) travel with the work, so a dropped request cannot free a slot early.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use tokio::sync::Semaphore;
use warden_crypto::password::Scratch;

use crate::CoreError;

/// The work was refused: too much of it is already running or waiting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Busy;

impl From<Busy> for CoreError {
    fn from(_: Busy) -> Self {
        CoreError::busy()
    }
}

/// At most `running` at once, at most `running + queued` admitted.
#[derive(Debug)]
pub struct Limiter {
    permits: Arc<Semaphore>,
    admitted: Arc<AtomicUsize>,
    capacity: usize,
}

struct Admission(Arc<AtomicUsize>);

impl Drop for Admission {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Limiter {
    /// A limiter running `running` at a time with `queued` more waiting.
    pub fn new(running: usize, queued: usize) -> Self {
        let running = running.max(1);
        Self {
            permits: Arc::new(Semaphore::new(running)),
            admitted: Arc::new(AtomicUsize::new(0)),
            capacity: running + queued,
        }
    }

    /// Runs `work` on the blocking pool once a slot is free; [`Busy`] at once if the queue
    /// is full.
    pub async fn run<R: Send + 'static>(
        &self,
        work: impl FnOnce() -> R + Send + 'static,
    ) -> Result<R, Busy> {
        if self.admitted.fetch_add(1, Ordering::AcqRel) >= self.capacity {
            self.admitted.fetch_sub(1, Ordering::AcqRel);
            return Err(Busy);
        }
        let admission = Admission(self.admitted.clone());
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| Busy)?;
        tokio::task::spawn_blocking(move || {
            let out = work();
            drop((permit, admission));
            out
        })
        .await
        .map_err(|_| Busy)
    }

    /// How many are running or waiting now.
    pub fn admitted(&self) -> usize {
        self.admitted.load(Ordering::Acquire)
    }
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(2, std::num::NonZero::get)
}

/// How many may wait per running slot: at ~20 ms per hash, a full queue waits ~0.3 s.
const QUEUE_PER_CORE: usize = 16;

/// Password hashing: the limiter and the argon2 memory it reuses (one buffer per core) while
/// sign-ins come one after another.
#[derive(Debug)]
pub struct PasswordWork {
    limiter: Limiter,
    scratch: Arc<Mutex<Vec<Scratch>>>,
}

impl PasswordWork {
    /// Runs `work` with argon2 memory, bounded. See the module documentation. The memory goes
    /// back to the next hash while others are running or waiting (a burst reuses it rather
    /// than allocating and fragmenting 19 MiB per sign-in), and is freed when the last one
    /// finishes: an idle server does not hold it.
    pub async fn run<R: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Scratch) -> R + Send + 'static,
    ) -> Result<R, Busy> {
        let pool = self.scratch.clone();
        let admitted = self.limiter.admitted.clone();
        self.limiter
            .run(move || {
                let taken = pool.lock().unwrap_or_else(PoisonError::into_inner).pop();
                let mut scratch = taken.unwrap_or_default();
                let out = work(&mut scratch);
                let mut pool = pool.lock().unwrap_or_else(PoisonError::into_inner);
                // This hash is still counted: more than one means another is on its way.
                if admitted.load(Ordering::Acquire) > 1 {
                    pool.push(scratch);
                } else {
                    pool.clear();
                }
                out
            })
            .await
    }

    /// How many argon2 buffers are kept for the next hashes.
    pub fn kept(&self) -> usize {
        self.scratch
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    /// Hashes a new password.
    pub async fn hash(
        &self,
        password: String,
    ) -> Result<Result<String, warden_crypto::password::PasswordError>, Busy> {
        self.run(move |s| warden_crypto::password::hash_in(&password, s))
            .await
    }

    /// Whether `password` matches `stored`; with no stored hash, the same work for nothing
    /// (so timing does not tell whether an account exists) and `false`.
    pub async fn verify(&self, password: String, stored: Option<String>) -> Result<bool, Busy> {
        self.run(move |s| match stored {
            Some(hash) => warden_crypto::password::verify_in(&password, &hash, s).unwrap_or(false),
            None => {
                warden_crypto::password::verify_dummy_in(&password, s);
                false
            }
        })
        .await
    }

    /// How many hashes are running or waiting now.
    pub fn admitted(&self) -> usize {
        self.limiter.admitted()
    }
}

/// This process's password hashing.
pub fn passwords() -> &'static PasswordWork {
    static WORK: OnceLock<PasswordWork> = OnceLock::new();
    WORK.get_or_init(|| PasswordWork {
        limiter: Limiter::new(cores(), QUEUE_PER_CORE * cores()),
        scratch: Arc::new(Mutex::new(Vec::new())),
    })
}

/// This process's host-key checks (PBKDF2).
pub fn host_keys() -> &'static Limiter {
    static WORK: OnceLock<Limiter> = OnceLock::new();
    WORK.get_or_init(|| Limiter::new(cores(), QUEUE_PER_CORE * cores()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::sync::atomic::AtomicUsize;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn argon2_memory_is_reused_through_a_burst_and_freed_after_it() {
        let work = Arc::new(PasswordWork {
            limiter: Limiter::new(2, 30),
            scratch: Arc::default(),
        });
        work.hash("one sign-in".to_owned()).await.unwrap().unwrap();
        assert_eq!(work.kept(), 0, "one sign-in keeps nothing afterwards");
        let kept_during = Arc::new(AtomicUsize::new(0));
        let burst: Vec<_> = (0..8)
            .map(|i| {
                let (work, kept_during) = (work.clone(), kept_during.clone());
                tokio::spawn(async move {
                    let seen = work.clone();
                    work.run(move |s| {
                        kept_during.fetch_max(seen.kept(), Ordering::SeqCst);
                        warden_crypto::password::hash_in(&format!("burst {i}"), s)
                    })
                    .await
                })
            })
            .collect();
        for hashed in burst {
            hashed.await.unwrap().unwrap().unwrap();
        }
        assert!(
            kept_during.load(Ordering::SeqCst) <= 2,
            "at most a buffer per running hash"
        );
        assert_eq!(work.kept(), 0, "the burst's memory is freed when it ends");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn no_more_than_the_limit_runs_at_once_and_the_rest_is_refused_past_the_queue() {
        let limiter = Arc::new(Limiter::new(2, 3));
        let running = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..20 {
            let (limiter, running, peak) = (limiter.clone(), running.clone(), peak.clone());
            tasks.push(tokio::spawn(async move {
                limiter
                    .run(move || {
                        let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                        peak.fetch_max(now, Ordering::SeqCst);
                        #[allow(clippy::disallowed_methods)]
                        std::thread::sleep(std::time::Duration::from_millis(50));
                        running.fetch_sub(1, Ordering::SeqCst);
                    })
                    .await
            }));
        }
        let mut done = 0;
        let mut busy = 0;
        for t in tasks {
            match t.await.unwrap() {
                Ok(()) => done += 1,
                Err(Busy) => busy += 1,
            }
        }
        assert!(peak.load(Ordering::SeqCst) <= 2);
        assert_eq!(done, 5, "two running and three queued");
        assert_eq!(busy, 15);
        assert_eq!(limiter.admitted(), 0);
        // Free again afterwards.
        assert_eq!(limiter.run(|| 7).await, Ok(7));
    }
}
