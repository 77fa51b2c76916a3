//! Hybrid logical clock: wall-clock milliseconds plus a logical counter, so that every entry a
//! replica writes is ordered after everything it has seen, even when its wall clock steps back.

use serde::{Deserialize, Serialize};

/// A timestamp. Ordered by wall time, then by the logical counter.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
pub struct Hlc {
    pub wall_ms: u64,
    pub logical: u32,
}

impl Hlc {
    pub const ZERO: Hlc = Hlc {
        wall_ms: 0,
        logical: 0,
    };

    fn successor(self) -> Hlc {
        match self.logical.checked_add(1) {
            Some(logical) => Hlc {
                wall_ms: self.wall_ms,
                logical,
            },
            None => Hlc {
                wall_ms: self.wall_ms + 1,
                logical: 0,
            },
        }
    }
}

/// A remote timestamp too far ahead of our wall clock to be believed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("remote clock is {ahead_ms} ms ahead of ours (at most {max_ms} ms allowed)")]
pub struct ClockSkew {
    pub ahead_ms: u64,
    pub max_ms: u64,
}

/// The clock state of one replica. Physical time is always passed in.
#[derive(Debug, Clone)]
pub struct HlcClock {
    last: Hlc,
    max_forward_skew_ms: u64,
}

impl HlcClock {
    /// Default bound on how far a received timestamp may run ahead of our wall clock.
    pub const DEFAULT_MAX_FORWARD_SKEW_MS: u64 = 60_000;

    /// A clock that continues after `last` (for example the newest entry found on disk).
    pub fn new(last: Hlc, max_forward_skew_ms: u64) -> Self {
        Self {
            last,
            max_forward_skew_ms,
        }
    }

    pub fn last(&self) -> Hlc {
        self.last
    }

    /// Timestamps a local event.
    pub fn tick(&mut self, physical_ms: u64) -> Hlc {
        self.last = if physical_ms > self.last.wall_ms {
            Hlc {
                wall_ms: physical_ms,
                logical: 0,
            }
        } else {
            self.last.successor()
        };
        self.last
    }

    /// Timestamps the receipt of a remote event; refuses (and ignores) a remote clock that is
    /// more than the allowed skew ahead, so one bad clock cannot drag the chain into the future.
    pub fn observe(&mut self, physical_ms: u64, remote: Hlc) -> Result<Hlc, ClockSkew> {
        let limit = physical_ms.saturating_add(self.max_forward_skew_ms);
        if remote.wall_ms > limit {
            let ahead_ms = remote.wall_ms - physical_ms;
            return Err(ClockSkew {
                ahead_ms,
                max_ms: self.max_forward_skew_ms,
            });
        }
        let newest = self.last.max(remote);
        self.last = if physical_ms > newest.wall_ms {
            Hlc {
                wall_ms: physical_ms,
                logical: 0,
            }
        } else {
            newest.successor()
        };
        Ok(self.last)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[derive(Debug, Clone)]
    enum Event {
        Local { physical_ms: u64 },
        Receive { physical_ms: u64, remote: Hlc },
    }

    fn event() -> impl Strategy<Value = Event> {
        let hlc = (0u64..2_000, 0u32..5).prop_map(|(wall_ms, logical)| Hlc { wall_ms, logical });
        prop_oneof![
            (0u64..2_000).prop_map(|physical_ms| Event::Local { physical_ms }),
            (0u64..2_000, hlc).prop_map(|(physical_ms, remote)| Event::Receive {
                physical_ms,
                remote
            }),
        ]
    }

    proptest! {
        #[test]
        fn strictly_monotonic_under_any_interleaving(events in proptest::collection::vec(event(), 1..200)) {
            let mut clock = HlcClock::new(Hlc::ZERO, 500);
            let mut previous = Hlc::ZERO;
            for e in events {
                let stamped = match e {
                    Event::Local { physical_ms } => Some(clock.tick(physical_ms)),
                    Event::Receive { physical_ms, remote } => match clock.observe(physical_ms, remote) {
                        Ok(t) => {
                            prop_assert!(t > remote, "receive must order after the remote event");
                            Some(t)
                        }
                        Err(skew) => {
                            prop_assert!(remote.wall_ms > physical_ms + 500);
                            prop_assert_eq!(skew.max_ms, 500);
                            None
                        }
                    },
                };
                if let Some(t) = stamped {
                    prop_assert!(t > previous);
                    previous = t;
                }
                prop_assert_eq!(clock.last(), previous);
            }
        }
    }

    #[test]
    fn wall_clock_stepping_back_still_advances() {
        let mut clock = HlcClock::new(Hlc::ZERO, 1_000);
        let a = clock.tick(5_000);
        let b = clock.tick(4_000);
        assert_eq!(
            b,
            Hlc {
                wall_ms: 5_000,
                logical: 1
            }
        );
        assert!(b > a);
    }

    #[test]
    fn far_future_remote_is_refused_and_changes_nothing() {
        let mut clock = HlcClock::new(Hlc::ZERO, 1_000);
        let before = clock.tick(10_000);
        let err = clock
            .observe(
                10_000,
                Hlc {
                    wall_ms: 20_000,
                    logical: 0,
                },
            )
            .unwrap_err();
        assert_eq!(err.ahead_ms, 10_000);
        assert_eq!(clock.last(), before);
    }

    #[test]
    fn logical_overflow_carries_into_wall_time() {
        let mut clock = HlcClock::new(
            Hlc {
                wall_ms: 7,
                logical: u32::MAX,
            },
            0,
        );
        assert_eq!(
            clock.tick(0),
            Hlc {
                wall_ms: 8,
                logical: 0
            }
        );
    }
}
