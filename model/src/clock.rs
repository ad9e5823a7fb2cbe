//! Wall-clock time in Unix milliseconds, the unit of every sample timestamp, so the server,
//! the store, the demo and the benchmarks read the time one way, and code that needs a
//! controllable time takes a [`Clock`] and gets a [`ManualClock`] in tests.
//!
//! The system clock is left out of wasm32-unknown-unknown builds: `SystemTime::now` panics in
//! the browser, which has its own clock (`Date.now`), so a browser build that reached for it
//! fails to compile instead of panicking at run time.

use crate::TimestampMs;
use std::sync::atomic::{AtomicI64, Ordering};

/// Something that tells the time in Unix milliseconds.
pub trait Clock: Send + Sync {
    fn now_ms(&self) -> TimestampMs;
}

/// The machine's wall clock.
#[cfg(not(all(target_arch = "wasm32", target_os = "unknown")))]
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

#[cfg(not(all(target_arch = "wasm32", target_os = "unknown")))]
impl Clock for SystemClock {
    fn now_ms(&self) -> TimestampMs {
        now_ms()
    }
}

/// Milliseconds since the Unix epoch by the machine's wall clock.
///
/// A clock set before 1970 reads as 0 rather than panicking: a sample stamped 0 is visibly
/// wrong and the process keeps running.
///
/// ```
/// let t = model::clock::now_ms();
/// // 2020-01-01T00:00:00Z: any working clock is past it.
/// assert!(t > 1_577_836_800_000, "{t}");
/// assert!(model::clock::now_ms() >= t);
/// ```
#[cfg(not(all(target_arch = "wasm32", target_os = "unknown")))]
pub fn now_ms() -> TimestampMs {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as TimestampMs)
        .unwrap_or(0)
}

/// A clock that only moves when told to, for tests of time-dependent behaviour (windows,
/// staleness, retention) that must not depend on how fast the machine is.
///
/// ```
/// use model::clock::{Clock, ManualClock};
///
/// let clock = ManualClock::new(1_800_000_000_000);
/// assert_eq!(clock.now_ms(), 1_800_000_000_000);
/// clock.advance(std::time::Duration::from_secs(90));
/// assert_eq!(clock.now_ms(), 1_800_000_090_000);
/// clock.set(5);
/// assert_eq!(clock.now_ms(), 5);
/// ```
#[derive(Debug, Default)]
pub struct ManualClock(AtomicI64);

impl ManualClock {
    pub fn new(start_ms: TimestampMs) -> Self {
        ManualClock(AtomicI64::new(start_ms))
    }

    pub fn set(&self, ms: TimestampMs) {
        self.0.store(ms, Ordering::SeqCst);
    }

    pub fn advance(&self, by: std::time::Duration) {
        self.0.fetch_add(by.as_millis() as i64, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> TimestampMs {
        self.0.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_clock_agrees_with_now_ms() {
        let before = now_ms();
        let read = SystemClock.now_ms();
        assert!(read >= before && read - before < 60_000, "{before} {read}");
    }

    #[test]
    fn manual_clock_is_usable_behind_the_trait() {
        let clock: std::sync::Arc<dyn Clock> = std::sync::Arc::new(ManualClock::new(10));
        assert_eq!(clock.now_ms(), 10);
    }
}
