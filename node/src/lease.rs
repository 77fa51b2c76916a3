//! 离线权益期限 at the store (see `protocol::lease`): when this store last heard headquarters,
//! kept across restarts, and the gate that stops the journal spending member rights once that
//! is longer ago than the lease, or once headquarters has fenced the store.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

/// Shared with the journal, which treats this store as holding no rights while it is shut.
#[derive(Debug, Clone, Default)]
pub struct RightsGate(Arc<AtomicBool>);

impl RightsGate {
    pub fn is_shut(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }

    pub fn set_shut(&self, shut: bool) {
        self.0.store(shut, Ordering::Release);
    }
}

/// How often the moment last heard is written to disk at most: a restart may then count the
/// store as having heard headquarters up to this much earlier than it did, which only ends
/// its lease sooner.
const PERSIST_EVERY_MS: u64 = 30_000;

#[derive(Debug)]
pub struct Lease {
    lease_ms: u64,
    path: PathBuf,
    heard: Mutex<Heard>,
    pub gate: RightsGate,
}

/// When headquarters was last heard: on the process's monotonic clock (what the lease is
/// counted on, so setting the PC's clock back or forth while cut off cannot stretch it), and
/// the PC's wall time then (kept on disk, for a restart, and shown).
#[derive(Debug, Clone, Copy)]
struct Heard {
    mono_ms: i64,
    wall_ms: u64,
    written_wall_ms: u64,
}

impl Lease {
    /// Reads when this store last heard headquarters from `dir` (a store that never kept count
    /// starts counting now). `wall_ms` is the PC's clock, `mono_ms` the process's monotonic one.
    pub fn open(dir: &Path, lease_ms: u64, wall_ms: u64, mono_ms: u64) -> std::io::Result<Self> {
        let path = dir.join("last_heard_hub");
        let last = match std::fs::read_to_string(&path) {
            Ok(text) => text.trim().parse::<u64>().map_err(|e| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("{}: {e}", path.display()),
                )
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                write_durably(&path, wall_ms)?;
                wall_ms
            }
            Err(e) => return Err(e),
        };
        // A clock set back since then must not stretch the lease.
        let last = last.min(wall_ms);
        let since = i64::try_from(wall_ms - last).unwrap_or(i64::MAX);
        let lease = Self {
            lease_ms,
            path,
            heard: Mutex::new(Heard {
                mono_ms: i64::try_from(mono_ms)
                    .unwrap_or(i64::MAX)
                    .saturating_sub(since),
                wall_ms: last,
                written_wall_ms: last,
            }),
            gate: RightsGate::default(),
        };
        lease.check(mono_ms);
        Ok(lease)
    }

    /// Headquarters is reachable now.
    pub fn heard(&self, wall_ms: u64, mono_ms: u64) -> std::io::Result<()> {
        let mut heard = self.heard.lock().unwrap_or_else(|p| p.into_inner());
        heard.mono_ms = heard
            .mono_ms
            .max(i64::try_from(mono_ms).unwrap_or(i64::MAX));
        heard.wall_ms = wall_ms;
        if wall_ms.abs_diff(heard.written_wall_ms) >= PERSIST_EVERY_MS {
            write_durably(&self.path, wall_ms)?;
            heard.written_wall_ms = wall_ms;
        }
        Ok(())
    }

    /// Shuts the gate once the lease has run out; says whether it is shut.
    pub fn check(&self, mono_ms: u64) -> bool {
        let heard = self.heard.lock().unwrap_or_else(|p| p.into_inner()).mono_ms;
        let since = i64::try_from(mono_ms)
            .unwrap_or(i64::MAX)
            .saturating_sub(heard);
        let shut = since > i64::try_from(self.lease_ms).unwrap_or(i64::MAX);
        self.gate.set_shut(shut);
        shut
    }

    /// The PC's time when headquarters was last heard.
    pub fn last_heard_ms(&self) -> u64 {
        self.heard.lock().unwrap_or_else(|p| p.into_inner()).wall_ms
    }

    pub fn lease_ms(&self) -> u64 {
        self.lease_ms
    }
}

/// Milliseconds on the process's monotonic clock (since the first call).
pub fn mono_ms() -> u64 {
    static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    let start = START.get_or_init(std::time::Instant::now);
    u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX)
}

fn write_durably(path: &Path, ms: u64) -> std::io::Result<()> {
    use std::io::Write;
    let tmp = path.with_extension("tmp");
    let mut file = std::fs::File::create(&tmp)?;
    file.write_all(ms.to_string().as_bytes())?;
    file.sync_all()?;
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_store_that_has_not_heard_headquarters_for_its_lease_stops_spending_rights_also_after_a_restart()
     {
        let dir = std::env::temp_dir().join(format!("lease-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        // Wall clock at 1_000_000, process clock at 0.
        let lease = Lease::open(&dir, 60_000, 1_000_000, 0).unwrap();
        assert!(!lease.check(50_000));
        lease.heard(1_100_000, 100_000).unwrap();
        assert!(!lease.check(150_000));
        assert!(lease.check(160_001));
        assert!(lease.gate.is_shut());
        // Restarted while still cut off: the count goes on from the last moment written.
        drop(lease);
        let again = Lease::open(&dir, 60_000, 1_160_001, 5).unwrap();
        assert!(again.gate.is_shut());
        again.heard(1_170_000, 10_000).unwrap();
        assert!(!again.check(10_000));
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// The reviewer's case: a PC clock set right (hours back) while cut off does not stretch the
    /// lease, which runs on the process's own clock.
    #[test]
    fn setting_the_pc_clock_back_does_not_stretch_the_lease() {
        let dir = std::env::temp_dir().join(format!("lease-back-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let two_hours = 7_200_000;
        let lease = Lease::open(&dir, 60_000, 10_000_000 + two_hours, 0).unwrap();
        lease.heard(10_000_000 + two_hours, 1_000).unwrap();
        // The clock is corrected two hours back; a minute and a bit later the lease is out.
        assert!(lease.check(1_000 + 60_001));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
