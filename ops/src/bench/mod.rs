//! `ops bench`: measurements next to baselines taken in the same run, printed as Markdown
//! tables for BENCHMARKS.md.

pub mod catalogue;
pub mod checkout;
pub mod hub;
pub mod replay;
pub mod sync;
pub mod wallet;

use std::path::PathBuf;
use std::time::Duration;

use node::journal::Request;
use protocol::{StaffId, TxId};

/// A journal request with a key; benchmarks do not replay, so the fingerprint is constant.
pub fn request<T>(key: String, body: T) -> anyhow::Result<Request<T>> {
    Ok(Request {
        key: TxId::parse(&key)?,
        fingerprint: [0; 32],
        staff: StaffId::system(),
        body,
    })
}

/// A scratch directory under the system temp dir, removed on drop.
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new(label: &str) -> anyhow::Result<Self> {
        let dir = std::env::temp_dir().join(format!("ops-bench-{label}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)?;
        Ok(Self(dir))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[rank]
}

pub fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1e3)
}

pub fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|l| l.trim_start_matches([' ', '\t', ':']));
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let profile = if cfg!(debug_assertions) {
        "debug build (use --release for real figures)"
    } else {
        "release build"
    };
    format!("{} × {} · {profile}", cores, model.unwrap_or("unknown CPU"))
}
