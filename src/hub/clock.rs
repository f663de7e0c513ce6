//! The wall clock as the hub uses it, watched by the monotonic clock
//! (a Raspberry Pi has no hardware clock and starts at a wrong time
//! until NTP steps it).
//!
//! **Invariants.**
//! * Every wall-clock reading of the hub goes through [`wall_ms`]
//!   (`hub::now_ms`).
//! * [`Clock::observe`] compares the wall clock with the monotonic clock;
//!   a difference that changed by more than [`JUMP_THRESHOLD_MS`] since the
//!   last look is a jump: logged as a warning and remembered.
//! * Expiry cutoffs ([`Clock::cutoff`]) are moved back by every forward jump
//!   seen within the window, so a row is never expired before the process
//!   has seen its whole window pass on the monotonic clock: after a step of
//!   +31 days a row written a second before the step is a second old, not
//!   31 days.
//! * Purging is refused ([`Clock::purge_refusal`]) while the wall clock
//!   looks wrong: earlier than the newest row in the database, or less than
//!   [`SETTLE`] after a jump.
//!
//! Test seam: `LABELHUB_TEST_CLOCK_OFFSET_FILE` names a file holding a
//! number of milliseconds added to the system clock (read on every
//! reading), so a test can step the hub's wall clock.

use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// The test seam's variable.
pub const OFFSET_FILE_VAR: &str = "LABELHUB_TEST_CLOCK_OFFSET_FILE";
/// A change of the wall clock against the monotonic clock larger than this
/// between two looks is a jump (NTP slews at most 0.5 ms/s; the retention
/// thread looks every [`LOOK_EVERY`]).
pub const JUMP_THRESHOLD_MS: i64 = 2 * 60 * 1000;
/// After a jump nothing is purged for this long (NTP may step again).
pub const SETTLE: Duration = Duration::from_secs(10 * 60);
/// How often the retention thread looks at the clock.
pub const LOOK_EVERY: Duration = Duration::from_secs(5);
/// Jumps remembered (the oldest are forgotten first).
const MAX_JUMPS: usize = 64;

/// Milliseconds since the Unix epoch (plus the test offset, if any).
pub fn wall_ms() -> i64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default();
    now + test_offset()
}

fn test_offset() -> i64 {
    static FILE: OnceLock<Option<PathBuf>> = OnceLock::new();
    let Some(path) = FILE.get_or_init(|| std::env::var_os(OFFSET_FILE_VAR).map(PathBuf::from))
    else {
        return 0;
    };
    std::fs::read_to_string(path)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}

/// A wall-clock jump seen by [`Clock::observe`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Jump {
    /// Monotonic milliseconds (since the clock was made) when it was seen.
    pub seen_at: i64,
    /// How far the wall clock moved beyond the monotonic clock (ms;
    /// positive = forward).
    pub delta_ms: i64,
}

struct State {
    /// wall - monotonic at the last look.
    offset: i64,
    jumps: Vec<Jump>,
}

type Source = Box<dyn Fn() -> i64 + Send + Sync>;

/// The watched clock. Production uses [`global`]; tests make their own
/// with [`Clock::with_sources`].
pub struct Clock {
    wall: Source,
    mono: Source,
    state: Mutex<State>,
}

impl Clock {
    /// A clock on the given wall and monotonic sources (both ms).
    pub fn with_sources(wall: Source, mono: Source) -> Clock {
        let offset = wall() - mono();
        Clock {
            wall,
            mono,
            state: Mutex::new(State {
                offset,
                jumps: Vec::new(),
            }),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Reads the wall clock, notes a jump since the last look, returns the
    /// reading.
    pub fn observe(&self) -> i64 {
        let mono = (self.mono)();
        let wall = (self.wall)();
        let offset = wall - mono;
        let mut st = self.state();
        let delta = offset - st.offset;
        if delta.abs() > JUMP_THRESHOLD_MS {
            log::warn!(
                "clock jump: the wall clock moved {} by {:.0} s against the monotonic clock \
                 (now {}); expiry counts the monotonic time instead, and nothing is purged \
                 for the next {} min",
                if delta > 0 { "forward" } else { "backward" },
                delta.abs() as f64 / 1000.0,
                super::rfc3339(wall),
                SETTLE.as_secs() / 60
            );
            if st.jumps.len() == MAX_JUMPS {
                st.jumps.remove(0);
            }
            st.jumps.push(Jump {
                seen_at: mono,
                delta_ms: delta,
            });
        }
        st.offset = offset;
        wall
    }

    /// The jumps seen, oldest first.
    pub fn jumps(&self) -> Vec<Jump> {
        self.state().jumps.clone()
    }

    /// The wall-clock time before which a row with a `window` lifetime has
    /// expired: `now - window`, moved back by every forward jump seen
    /// within the last `window` of monotonic time.
    pub fn cutoff(&self, window: Duration) -> i64 {
        let now = self.observe();
        let mono = (self.mono)();
        let window_ms = i64::try_from(window.as_millis()).unwrap_or(i64::MAX);
        let forward: i64 = self
            .state()
            .jumps
            .iter()
            .filter(|j| j.delta_ms > 0 && mono.saturating_sub(j.seen_at) < window_ms)
            .map(|j| j.delta_ms)
            .sum();
        now.saturating_sub(window_ms).saturating_sub(forward)
    }

    /// Why nothing may be purged now, if the wall clock looks wrong:
    /// earlier than `newest_row` (ms), or a jump was seen less than
    /// [`SETTLE`] ago.
    pub fn purge_refusal(&self, newest_row: Option<i64>) -> Option<String> {
        let now = self.observe();
        if let Some(newest) = newest_row {
            // A little slack: rows are stamped by other threads.
            if now + 5_000 < newest {
                return Some(format!(
                    "the wall clock ({}) is earlier than the newest row in the database ({}); \
                     a device without a hardware clock before NTP has set the time?",
                    super::rfc3339(now),
                    super::rfc3339(newest)
                ));
            }
        }
        let mono = (self.mono)();
        let settle = SETTLE.as_millis() as i64;
        let st = self.state();
        if let Some(j) = st.jumps.last() {
            let ago = mono - j.seen_at;
            if ago < settle {
                return Some(format!(
                    "the wall clock jumped by {:+.0} s {:.0} s ago; waiting {} min for it to settle",
                    j.delta_ms as f64 / 1000.0,
                    ago as f64 / 1000.0,
                    SETTLE.as_secs() / 60
                ));
            }
        }
        None
    }
}

/// The process's clock (the system clock, plus the test offset).
pub fn global() -> &'static Clock {
    static CLOCK: OnceLock<Clock> = OnceLock::new();
    CLOCK.get_or_init(|| {
        let start = Instant::now();
        Clock::with_sources(
            Box::new(wall_ms),
            Box::new(move || start.elapsed().as_millis() as i64),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicI64, Ordering};
    use std::sync::Arc;

    const DAY: i64 = 86_400_000;

    /// A clock whose wall and monotonic readings the test sets.
    fn fake(wall: i64) -> (Clock, Arc<AtomicI64>, Arc<AtomicI64>) {
        let w = Arc::new(AtomicI64::new(wall));
        let m = Arc::new(AtomicI64::new(0));
        let (w2, m2) = (w.clone(), m.clone());
        let clock = Clock::with_sources(
            Box::new(move || w2.load(Ordering::SeqCst)),
            Box::new(move || m2.load(Ordering::SeqCst)),
        );
        (clock, w, m)
    }

    fn advance(w: &AtomicI64, m: &AtomicI64, ms: i64) {
        w.fetch_add(ms, Ordering::SeqCst);
        m.fetch_add(ms, Ordering::SeqCst);
    }

    #[test]
    fn steady_time_gives_plain_cutoffs_and_no_jump() {
        let (clock, w, m) = fake(1_000 * DAY);
        advance(&w, &m, 3_600_000);
        assert_eq!(
            clock.cutoff(Duration::from_secs(86_400)),
            1_000 * DAY + 3_600_000 - DAY
        );
        assert!(clock.jumps().is_empty());
        assert_eq!(clock.purge_refusal(Some(1_000 * DAY)), None);
    }

    #[test]
    fn a_forward_step_does_not_age_rows_until_the_window_passed_monotonically() {
        let (clock, w, m) = fake(1_000 * DAY);
        let written = 1_000 * DAY; // a row written now
        advance(&w, &m, 1_000);
        w.fetch_add(31 * DAY, Ordering::SeqCst); // NTP steps +31 days
        advance(&w, &m, 1_000);
        let window = Duration::from_secs(30 * 86_400);
        assert!(clock.cutoff(window) < written, "a 2 s old row is kept");
        assert_eq!(clock.jumps().len(), 1);
        assert!(clock.purge_refusal(None).is_some(), "settling");
        // 29 days later (monotonic) it is still younger than 30 days.
        advance(&w, &m, 29 * DAY);
        assert!(clock.cutoff(window) < written);
        assert_eq!(clock.purge_refusal(None), None, "settled");
        // After 30 days of monotonic time it expires.
        advance(&w, &m, DAY);
        assert!(clock.cutoff(window) > written);
    }

    #[test]
    fn a_start_in_1970_refuses_purges_then_the_step_to_now_ages_nothing() {
        let real = 20_000 * DAY;
        let (clock, w, m) = fake(0); // booted without a hardware clock
        assert!(
            clock.purge_refusal(Some(real - DAY)).is_some(),
            "earlier than the rows"
        );
        let written_1970 = 0;
        advance(&w, &m, 60_000);
        w.store(real, Ordering::SeqCst); // NTP
        let window = Duration::from_secs(86_400);
        assert!(
            clock.cutoff(window) < written_1970,
            "a minute-old row stays"
        );
        assert!(clock.purge_refusal(Some(real - DAY)).is_some(), "settling");
        let jump = clock.jumps()[0];
        assert!(jump.delta_ms > real - 70_000);
    }

    #[test]
    fn a_backward_step_is_a_jump_but_expires_nothing_early() {
        let (clock, w, m) = fake(1_000 * DAY);
        advance(&w, &m, 10_000);
        w.fetch_sub(DAY, Ordering::SeqCst);
        let window = Duration::from_secs(86_400);
        assert_eq!(clock.cutoff(window), 999 * DAY + 10_000 - DAY);
        assert_eq!(clock.jumps()[0].delta_ms, -DAY);
        // Earlier than a row written before the step.
        assert!(clock.purge_refusal(Some(1_000 * DAY)).is_some());
    }

    #[test]
    fn slow_drift_is_not_a_jump() {
        let (clock, w, m) = fake(1_000 * DAY);
        for _ in 0..100 {
            advance(&w, &m, 5_000);
            w.fetch_add(1_000, Ordering::SeqCst);
            clock.observe();
        }
        assert!(clock.jumps().is_empty());
    }
}
