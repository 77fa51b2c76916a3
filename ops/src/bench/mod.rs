//! `ops bench`: measurements next to baselines taken in the same run, printed as Markdown
//! tables for BENCHMARKS.md.

pub mod all;
pub mod backup;
pub mod catalogue;
pub mod central;
pub mod checkout;
pub mod hub;
pub mod import;
pub mod marketing;
pub mod members;
pub mod replay;
pub mod sync;
pub mod wallet;

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use node::journal::Request;
use protocol::{StaffId, TxId};
use serde::{Deserialize, Serialize};

/// One figure for the summary that `ops bench all` writes: ours, its baseline measured in the
/// same run, and the goal the issues set. Each bench also prints it in its own tables.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Figure {
    pub figure: String,
    pub ours: String,
    pub baseline: String,
    pub ratio: String,
    pub goal: String,
    /// Whether the goal is met, where there is one.
    pub met: Option<bool>,
}

impl Figure {
    pub fn new(figure: impl Into<String>, ours: impl Into<String>) -> Self {
        Self {
            figure: figure.into(),
            ours: ours.into(),
            baseline: String::new(),
            ratio: String::new(),
            goal: String::new(),
            met: None,
        }
    }

    pub fn baseline(mut self, baseline: impl Into<String>, ratio: impl Into<String>) -> Self {
        self.baseline = baseline.into();
        self.ratio = ratio.into();
        self
    }

    pub fn goal(mut self, goal: impl Into<String>, met: bool) -> Self {
        self.goal = goal.into();
        self.met = Some(met);
        self
    }

    /// Appends the figure to the file `ops bench all` names in [`FIGURES_ENV`]; run alone, a
    /// bench records nothing.
    pub fn record(self) -> anyhow::Result<()> {
        let Some(path) = std::env::var_os(FIGURES_ENV) else {
            return Ok(());
        };
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        writeln!(file, "{}", serde_json::to_string(&self)?)?;
        Ok(())
    }
}

/// Where `ops bench all` asks each bench to append its figures (JSON lines).
pub const FIGURES_ENV: &str = "OPS_BENCH_FIGURES";

/// `a / b` as a ratio for a table, `—` when there is no baseline.
pub fn ratio(a: f64, b: f64) -> String {
    match a / b {
        r if b <= 0.0 || !r.is_finite() => "—".into(),
        r if r < 0.01 => format!("{r:.5}×"),
        r => format!("{r:.2}×"),
    }
}

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

/// CPU time this process has used so far (all threads, user + system), from `/proc/self/stat`.
pub fn cpu_seconds() -> f64 {
    ops::replay::cpu_seconds_of("self").unwrap_or(0.0)
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
