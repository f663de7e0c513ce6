//! Rate limits: a token bucket per principal on submissions. (What one
//! client address may hold at once is capped in `http::front::slots`.)
//!
//! **Invariants:**
//! - A bucket holds at most `per_minute` tokens and refills at
//!   `per_minute / 60` tokens per second; each submission takes one. Its size
//!   follows the key's current limit (an admin change applies at once).
//! - The map is bounded: full buckets are removed.
//! - Time is passed in (`Instant`), so tests need no sleeping.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use std::time::Instant;

use super::AuthError;

/// One principal's token bucket.
#[derive(Clone, Debug)]
pub struct Bucket {
    tokens: f64,
    per_minute: u32,
    last: Instant,
}

impl Bucket {
    /// A full bucket.
    pub fn new(per_minute: u32, now: Instant) -> Bucket {
        let per_minute = per_minute.max(1);
        Bucket {
            tokens: f64::from(per_minute),
            per_minute,
            last: now,
        }
    }

    fn refill(&mut self, per_minute: u32, now: Instant) {
        let per_minute = per_minute.max(1);
        let rate = f64::from(per_minute) / 60.0;
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * rate).min(f64::from(per_minute));
        self.per_minute = per_minute;
        self.last = now;
    }

    /// Takes one token, or says how many whole seconds until one is there.
    pub fn take(&mut self, per_minute: u32, now: Instant) -> Result<(), u64> {
        self.refill(per_minute, now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            let rate = f64::from(self.per_minute) / 60.0;
            let wait = ((1.0 - self.tokens) / rate).ceil();
            Err((wait as u64).max(1))
        }
    }

    /// Whether the bucket is full at `now` (and so can be forgotten).
    fn is_full(&self, now: Instant) -> bool {
        let mut probe = self.clone();
        probe.refill(self.per_minute, now);
        probe.tokens >= f64::from(self.per_minute)
    }
}

/// Buckets by principal (`api-key:<id>`, `sso:<user>`).
#[derive(Default)]
pub struct RateLimiter {
    buckets: Mutex<HashMap<String, Bucket>>,
}

/// Past this many buckets, full ones are swept on the next insert.
const SWEEP_AT: usize = 4096;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl RateLimiter {
    /// Charges one submission to `who`, whose limit is `per_minute`.
    pub fn check(&self, who: &str, per_minute: u32, now: Instant) -> Result<(), AuthError> {
        let mut buckets = lock(&self.buckets);
        if !buckets.contains_key(who) && buckets.len() >= SWEEP_AT {
            buckets.retain(|_, b| !b.is_full(now));
        }
        let bucket = buckets
            .entry(who.to_string())
            .or_insert_with(|| Bucket::new(per_minute, now));
        bucket
            .take(per_minute, now)
            .map_err(|retry_after_s| AuthError::RateLimited {
                retry_after_s,
                limit_per_minute: per_minute,
            })
    }

    /// Drops a principal's bucket (key revoked).
    pub fn forget(&self, who: &str) {
        lock(&self.buckets).remove(who);
    }

    /// Number of buckets held (tests, metrics).
    pub fn len(&self) -> usize {
        lock(&self.buckets).len()
    }

    /// Whether no bucket is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn bucket_starts_full_then_refills_at_the_limit_rate() {
        let t0 = Instant::now();
        let mut b = Bucket::new(6, t0); // one token every 10 s
        for _ in 0..6 {
            assert_eq!(b.take(6, t0), Ok(()));
        }
        assert_eq!(b.take(6, t0), Err(10));
        assert_eq!(b.take(6, t0 + Duration::from_secs(4)), Err(6));
        assert_eq!(b.take(6, t0 + Duration::from_secs(10)), Ok(()));
        assert_eq!(b.take(6, t0 + Duration::from_millis(10_500)), Err(10));
        // A long pause refills to capacity and no further.
        let later = t0 + Duration::from_secs(3600);
        for _ in 0..6 {
            assert_eq!(b.take(6, later), Ok(()));
        }
        assert!(b.take(6, later).is_err());
    }

    #[test]
    fn bucket_follows_a_changed_limit_at_once() {
        let t0 = Instant::now();
        let mut b = Bucket::new(100, t0);
        assert_eq!(b.take(100, t0), Ok(()));
        // Lowered to 2/min: the 99 tokens left shrink to 2.
        assert_eq!(b.take(2, t0), Ok(()));
        assert_eq!(b.take(2, t0), Ok(()));
        assert_eq!(b.take(2, t0), Err(30));
        // A zero limit is treated as 1/min, never a division by zero.
        assert_eq!(b.take(0, t0 + Duration::from_secs(60)), Ok(()));
    }

    #[test]
    fn limiter_keeps_principals_apart_and_reports_retry_after() {
        let rl = RateLimiter::default();
        let t0 = Instant::now();
        assert!(rl.check("a", 1, t0).is_ok());
        let err = rl.check("a", 1, t0).unwrap_err();
        assert_eq!(err.code(), "rate_limit_exceeded");
        assert_eq!(err.retry_after_s(), Some(60));
        assert!(rl.check("b", 1, t0).is_ok(), "b has its own bucket");
        rl.forget("a");
        assert!(rl.check("a", 1, t0).is_ok());
    }

    #[test]
    fn limiter_sweeps_full_buckets_when_large() {
        let rl = RateLimiter::default();
        let t0 = Instant::now();
        for i in 0..SWEEP_AT {
            rl.check(&format!("k{i}"), 60, t0).unwrap();
        }
        assert_eq!(rl.len(), SWEEP_AT);
        rl.check("new", 60, t0 + Duration::from_secs(2)).unwrap();
        assert_eq!(rl.len(), 1);
    }
}
