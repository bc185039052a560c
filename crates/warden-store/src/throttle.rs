//! Throttles for repeated failures (sign-ins, host keys): a count per scope in a window and a
//! time the scope is closed until. Each statement locks its scope's row until the transaction
//! ends, so attempts reserved before the costly check they guard are counted one after another.

use crate::db::on_tx;
use crate::{StoreError, Tx};

impl Tx {
    /// The latest time any of `scopes` is blocked until (µs), or 0.
    pub async fn throttle_blocked_until(&mut self, scopes: &[&str]) -> Result<i64, StoreError> {
        let mut until = 0;
        for scope in scopes {
            let v = on_tx!(self, |c| sqlx::query_scalar::<_, i64>(
                "SELECT blocked_until FROM sign_in_throttle WHERE scope = $1"
            )
            .bind(*scope)
            .fetch_optional(c)
            .await)?;
            until = until.max(v.unwrap_or(0));
        }
        Ok(until)
    }

    /// Reserves one attempt against `scope` before the costly check it guards: counts it as
    /// a failure (restarting the count if the window has passed) and returns the block that
    /// was in force before it, or `None` when the attempt may go ahead, in which case the
    /// scope is blocked for `delay(attempts)` from now. The row stays locked until the
    /// transaction ends, so concurrent attempts are counted one after another: however they
    /// are timed, no more attempts get through than one after another would. On a block the
    /// caller rolls back, so a refused attempt is not counted.
    pub async fn throttle_reserve(
        &mut self,
        scope: &str,
        now: i64,
        window_us: i64,
        delay_us: impl Fn(u32) -> i64,
    ) -> Result<Option<i64>, StoreError> {
        let (attempts, blocked_until) = self.throttle_count(scope, now, window_us).await?;
        if blocked_until > now {
            return Ok(Some(blocked_until));
        }
        self.throttle_block(scope, now, delay_us(attempts)).await?;
        Ok(None)
    }

    /// Takes back one reserved attempt that turned out to succeed.
    pub async fn throttle_refund(&mut self, scope: &str) -> Result<(), StoreError> {
        on_tx!(self, |c| sqlx::query(
            "UPDATE sign_in_throttle SET failures = failures - 1 \
             WHERE scope = $1 AND failures > 0"
        )
        .bind(scope)
        .execute(c)
        .await
        .map(drop))?;
        Ok(())
    }

    /// Counts one failure against `scope` (restarting the count if the window has passed)
    /// and blocks it until `delay(failures)` from now. Atomic on both backends.
    pub async fn throttle_fail(
        &mut self,
        scope: &str,
        now: i64,
        window_us: i64,
        delay_us: impl Fn(u32) -> i64,
    ) -> Result<u32, StoreError> {
        let (failures, _) = self.throttle_count(scope, now, window_us).await?;
        self.throttle_block(scope, now, delay_us(failures)).await?;
        Ok(failures)
    }

    /// Counts one more attempt in `scope`'s window (one statement, which locks the row until
    /// the transaction ends); returns the count and the block in force.
    async fn throttle_count(
        &mut self,
        scope: &str,
        now: i64,
        window_us: i64,
    ) -> Result<(u32, i64), StoreError> {
        let (count, blocked_until) = on_tx!(self, |c| sqlx::query_as::<_, (i32, i64)>(
            "INSERT INTO sign_in_throttle (scope, failures, window_started_at, blocked_until) \
             VALUES ($1, 1, $2, 0) ON CONFLICT (scope) DO UPDATE SET \
             failures = CASE WHEN sign_in_throttle.window_started_at < $3 THEN 1 \
                        ELSE sign_in_throttle.failures + 1 END, \
             window_started_at = CASE WHEN sign_in_throttle.window_started_at < $3 THEN $2 \
                        ELSE sign_in_throttle.window_started_at END \
             RETURNING failures, blocked_until"
        )
        .bind(scope)
        .bind(now)
        .bind(now - window_us)
        .fetch_one(c)
        .await)?;
        Ok((u32::try_from(count).unwrap_or(0), blocked_until))
    }

    /// Blocks `scope` for `delay` µs from `now` (nothing when the delay is zero).
    async fn throttle_block(
        &mut self,
        scope: &str,
        now: i64,
        delay: i64,
    ) -> Result<(), StoreError> {
        if delay > 0 {
            on_tx!(self, |c| sqlx::query(
                "UPDATE sign_in_throttle SET blocked_until = $2 WHERE scope = $1"
            )
            .bind(scope)
            .bind(now + delay)
            .execute(c)
            .await
            .map(drop))?;
        }
        Ok(())
    }

    /// Forgets a throttle scope (after a successful sign-in).
    pub async fn clear_throttle(&mut self, scope: &str) -> Result<(), StoreError> {
        on_tx!(self, |c| sqlx::query(
            "DELETE FROM sign_in_throttle WHERE scope = $1"
        )
        .bind(scope)
        .execute(c)
        .await
        .map(drop))?;
        Ok(())
    }
}
