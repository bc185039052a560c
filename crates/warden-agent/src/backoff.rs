//! Reconnect delays: exponential from 1 s to 60 s, each drawn uniformly from the upper half
//! of its step ("equal jitter"), so hosts that lost the server together do not return in
//! lockstep.

use std::time::Duration;

const BASE: Duration = Duration::from_secs(1);
const MAX: Duration = Duration::from_secs(60);

/// The delay before reconnect attempt `attempt` (0 = first retry), given a random `draw`.
pub fn delay(attempt: u32, draw: u64) -> Duration {
    let step = BASE.saturating_mul(1u32 << attempt.min(6)).min(MAX);
    let half = step / 2;
    let nanos = u64::try_from(half.as_nanos()).unwrap_or(u64::MAX).max(1);
    half + Duration::from_nanos(draw % nanos)
}

/// A random draw for [`delay`].
pub fn draw() -> u64 {
    let mut b = [0u8; 8];
    let _ = aws_lc_rs::rand::fill(&mut b);
    u64::from_le_bytes(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_to_a_minute_and_stay_within_the_upper_half_of_each_step() {
        for attempt in 0..20 {
            let step = BASE.saturating_mul(1u32 << attempt.min(6)).min(MAX);
            for d in [0, 1, u64::MAX / 3, u64::MAX] {
                let got = delay(attempt, d);
                assert!(got >= step / 2 && got <= step, "{attempt}: {got:?}");
            }
        }
        assert!(delay(0, 0) >= Duration::from_millis(500));
        assert!(delay(30, u64::MAX) <= MAX);
        assert_ne!(delay(5, 1), delay(5, 2));
    }
}
