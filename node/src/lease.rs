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
    /// (last heard, last written to disk), wall ms.
    heard: Mutex<(u64, u64)>,
    pub gate: RightsGate,
}

impl Lease {
    /// Reads when this store last heard headquarters from `dir`; a store that never kept count
    /// starts counting now.
    pub fn open(dir: &Path, lease_ms: u64, now_ms: u64) -> std::io::Result<Self> {
        let path = dir.join("last_heard_hub");
        let last = match std::fs::read_to_string(&path) {
            Ok(text) => text.trim().parse::<u64>().map_err(|e| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("{}: {e}", path.display()),
                )
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                write_durably(&path, now_ms)?;
                now_ms
            }
            Err(e) => return Err(e),
        };
        // A clock set back since then must not stretch the lease.
        let last = last.min(now_ms);
        let lease = Self {
            lease_ms,
            path,
            heard: Mutex::new((last, last)),
            gate: RightsGate::default(),
        };
        lease.check(now_ms);
        Ok(lease)
    }

    /// Headquarters is reachable now.
    pub fn heard(&self, now_ms: u64) -> std::io::Result<()> {
        let mut heard = self.heard.lock().unwrap_or_else(|p| p.into_inner());
        heard.0 = heard.0.max(now_ms);
        if now_ms.saturating_sub(heard.1) >= PERSIST_EVERY_MS {
            write_durably(&self.path, now_ms)?;
            heard.1 = now_ms;
        }
        Ok(())
    }

    /// Shuts the gate once the lease has run out; says whether it is shut.
    pub fn check(&self, now_ms: u64) -> bool {
        let last = self.last_heard_ms();
        let shut = protocol::lease::expired(self.lease_ms, last, now_ms);
        self.gate.set_shut(shut);
        shut
    }

    pub fn last_heard_ms(&self) -> u64 {
        self.heard.lock().unwrap_or_else(|p| p.into_inner()).0
    }

    pub fn lease_ms(&self) -> u64 {
        self.lease_ms
    }
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
        let lease = Lease::open(&dir, 60_000, 1_000_000).unwrap();
        assert!(!lease.check(1_050_000));
        lease.heard(1_100_000).unwrap();
        assert!(!lease.check(1_150_000));
        assert!(lease.check(1_160_001));
        assert!(lease.gate.is_shut());
        // Restarted while still cut off: the count goes on from the last moment written.
        drop(lease);
        let again = Lease::open(&dir, 60_000, 1_160_001).unwrap();
        assert!(again.gate.is_shut());
        again.heard(1_170_000).unwrap();
        assert!(!again.check(1_170_000));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
