//! Rate limits: a token bucket per principal on submissions, and a cap on
//! what one client address may hold at once (connections, long-polls).
//!
//! **Invariants:**
//! - A bucket holds at most `per_minute` tokens and refills at
//!   `per_minute / 60` tokens per second; each submission takes one. Its size
//!   follows the key's current limit (an admin change applies at once).
//! - A [`Slot`] is released when dropped, so a panicking or erroring handler
//!   cannot leak a client's capacity.
//! - Both maps are bounded: full buckets and zero counters are removed.
//! - Time is passed in (`Instant`), so tests need no sleeping.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};
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

/// Counts what each client address holds at once (connections, or
/// long-polls) against a per-address cap and an overall cap.
pub struct ClientSlots {
    per_client: usize,
    total: usize,
    held: Mutex<(HashMap<IpAddr, usize>, usize)>,
}

/// One held slot; released on drop.
pub struct Slot {
    owner: Arc<ClientSlots>,
    ip: IpAddr,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut held = lock(&self.owner.held);
        let (map, total) = &mut *held;
        *total = total.saturating_sub(1);
        if let Some(n) = map.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                map.remove(&self.ip);
            }
        }
    }
}

/// Why a slot was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refused {
    /// This address already holds `per_client` slots.
    Client,
    /// All `total` slots are taken.
    Full,
}

impl ClientSlots {
    /// A counter allowing `per_client` slots per address and `total` overall.
    pub fn new(per_client: usize, total: usize) -> Arc<ClientSlots> {
        Arc::new(ClientSlots {
            per_client: per_client.max(1),
            total: total.max(1),
            held: Mutex::new((HashMap::new(), 0)),
        })
    }

    /// Takes a slot for `ip`, or says why not.
    pub fn acquire(self: &Arc<Self>, ip: IpAddr) -> Result<Slot, Refused> {
        let mut held = lock(&self.held);
        let (map, total) = &mut *held;
        let n = map.entry(ip).or_insert(0);
        if *n >= self.per_client {
            return Err(Refused::Client);
        }
        if *total >= self.total {
            if *n == 0 {
                map.remove(&ip);
            }
            return Err(Refused::Full);
        }
        *n += 1;
        *total += 1;
        Ok(Slot {
            owner: Arc::clone(self),
            ip,
        })
    }

    /// Slots held by `ip` now.
    pub fn held_by(&self, ip: IpAddr) -> usize {
        lock(&self.held).0.get(&ip).copied().unwrap_or(0)
    }

    /// Slots held overall.
    pub fn held(&self) -> usize {
        lock(&self.held).1
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

    #[test]
    fn slots_cap_each_client_and_the_total_and_free_on_drop() {
        let slots = ClientSlots::new(2, 3);
        let a: IpAddr = "127.0.0.1".parse().unwrap();
        let b: IpAddr = "127.0.0.2".parse().unwrap();
        let c: IpAddr = "127.0.0.3".parse().unwrap();
        let a1 = slots.acquire(a).unwrap();
        let _a2 = slots.acquire(a).unwrap();
        assert_eq!(slots.acquire(a).err(), Some(Refused::Client));
        let _b1 = slots.acquire(b).unwrap();
        assert_eq!(slots.acquire(c).err(), Some(Refused::Full));
        assert_eq!(slots.held_by(c), 0, "a refused address holds nothing");
        drop(a1);
        assert_eq!(slots.held_by(a), 1);
        let _c1 = slots.acquire(c).unwrap();
        assert_eq!(slots.held(), 3);
    }
}
