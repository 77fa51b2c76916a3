//! The chain's time at this store: the PC's clock, corrected by headquarters' once the store
//! has heard it (sync version 4's `Clock`). A branch PC whose clock is a day slow would date
//! its sales yesterday and stamp its writes older than the ones it follows (a payment password
//! changed there would lose to the one it replaced); going by headquarters' time while it
//! knows it keeps both right. Headquarters sees the PC's own offset on its stores page.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

/// A PC clock within this of headquarters' is left alone (a round trip, jitter).
pub const CORRECT_BEYOND_MS: i64 = 2_000;

/// Off by more than this, the clock is shown as wrong (to the till and to headquarters).
pub const WARN_BEYOND_MS: i64 = 60_000;

/// What a PC's clock reads (ms since the epoch).
type PcClock = Arc<dyn Fn() -> u64 + Send + Sync>;

#[derive(Clone)]
pub struct ChainClock {
    /// Added to the PC's clock: headquarters' time minus the PC's, when it is off.
    correction_ms: Arc<AtomicI64>,
    pc: PcClock,
}

impl std::fmt::Debug for ChainClock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChainClock")
            .field("correction_ms", &self.correction_ms)
            .finish_non_exhaustive()
    }
}

impl Default for ChainClock {
    fn default() -> Self {
        Self::new(0)
    }
}

impl ChainClock {
    /// The OS clock, off by `pc_skew_ms` (configured for tests: `clock_skew_ms`).
    pub fn new(pc_skew_ms: i64) -> Self {
        Self::with_pc(Arc::new(move || {
            let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
            let ms = since.map(|d| d.as_millis() as u64).unwrap_or(0);
            ms.saturating_add_signed(pc_skew_ms)
        }))
    }

    /// Another clock for the PC's (the simulator's).
    pub fn with_pc(pc: PcClock) -> Self {
        Self {
            correction_ms: Arc::default(),
            pc,
        }
    }

    /// What the PC's clock says (ms since the epoch).
    pub fn pc_ms(&self) -> u64 {
        (self.pc)()
    }

    /// The chain's time here: the PC's, corrected.
    pub fn now_ms(&self) -> u64 {
        self.pc_ms()
            .saturating_add_signed(self.correction_ms.load(Ordering::Acquire))
    }

    /// Headquarters' clock read `hub_ms` as this store was welcomed, heard when the PC's read
    /// `pc_ms`: from now on the store goes by it, if the PC is off by more than a round trip.
    pub fn heard_hub(&self, hub_ms: u64, pc_ms: u64) {
        let off = i64::try_from(i128::from(hub_ms) - i128::from(pc_ms)).unwrap_or(0);
        let correction = if off.abs() > CORRECT_BEYOND_MS {
            off
        } else {
            0
        };
        let before = self.correction_ms.swap(correction, Ordering::AcqRel);
        if before != correction && correction.abs() > WARN_BEYOND_MS {
            tracing::warn!(
                off_ms = correction,
                "this PC's clock is off from headquarters': going by headquarters' time"
            );
        }
    }

    /// How far the PC's clock is off headquarters' as last heard (0 when within a round trip).
    pub fn correction_ms(&self) -> i64 {
        self.correction_ms.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pc_a_day_slow_goes_by_headquarters_time_once_it_hears_it() {
        let day = 86_400_000;
        let clock = ChainClock::new(-day);
        let pc = clock.pc_ms();
        assert!(clock.now_ms() <= pc + 1_000);
        clock.heard_hub(pc + day as u64, pc);
        assert_eq!(clock.correction_ms(), day);
        let true_now = ChainClock::default().pc_ms();
        assert!(clock.now_ms().abs_diff(true_now) < 1_000);
        // Within a round trip: left alone.
        clock.heard_hub(pc + 500, pc);
        assert_eq!(clock.correction_ms(), 0);
    }
}
