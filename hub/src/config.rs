//! The hub's configuration: a TOML file with defaults for everything but the certificate paths.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Where headquarters keeps its files: its sled store unless `database_url` is set, and
    /// always the first admin's password file and (sled only) backups.
    pub data_dir: PathBuf,
    /// Headquarters on PostgreSQL (`postgres://user:password@host:port/database`): the hub's
    /// state in that database instead of sled in `data_dir` (`storage::pg`). Backups are then
    /// the database's own (pg_dump, replication).
    pub database_url: Option<String>,
    /// On PostgreSQL, two or more hub processes may share the database: one is active, the
    /// others stand by and take over when its lease has not been renewed for this long.
    pub lease_secs: u64,
    /// This hub's name in the lease (by default `<host name>/<sync address>`): a hub started
    /// again under the name of the last holder takes the lease back at once.
    pub instance: Option<String>,
    /// UDP address stores connect to (QUIC).
    pub sync_listen: SocketAddr,
    /// HTTP address of the headquarters API.
    pub http_listen: SocketAddr,
    /// The chain's CA certificate: the only issuer whose store certificates are accepted.
    pub ca_cert: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
    /// 离线权益期限: how long a store cut off from headquarters goes on spending the rights it
    /// holds (every store's `[sync] offline_rights_secs`; this must not be shorter). A hold
    /// fences a store only after it has run out.
    pub offline_rights_secs: u64,
    /// What a hold adds to that lease (clock rates, a store that heard headquarters a moment
    /// after headquarters last heard it), and the shortest hold accepted.
    pub fence_margin_secs: u64,
    pub hold_min_secs: u64,
    /// Host names headquarters' pages and API may be reached by, besides IP addresses and
    /// `localhost` (any other Host is refused: DNS rebinding).
    pub http_names: Vec<String>,
    /// Connections headquarters' HTTP server holds at once and its timeouts.
    pub http: protocol::web::HttpLimits,
    /// The demo's and the tests' mode: the API is open to anyone until an active headquarters
    /// admin has a login. Off (the default), every call needs a login, and the first start
    /// makes the first admin (`admin`, its password in `first-admin-password.txt` in the data
    /// directory).
    pub open_before_logins: bool,
    /// The rights bank (`[rights]`): the share of each member's balance headquarters keeps to
    /// grant at once (`reserve_percent`, 0–90).
    pub rights: protocol::bank::Policy,
    /// 消息 (`[notify]`): where notices to members go. Without it no notice is queued.
    pub notify: Option<NotifyConfig>,
    /// Backups of headquarters' data (备份, `[backup]`): where, how often, how many
    /// (`crate::backup`). Without it: `backups/` beside the data directory, daily, 7 kept.
    pub backup: Option<crate::backup::BackupConfig>,
    /// 证书续期 (`[renewal]`): the store-issuing CA with which headquarters signs the new
    /// certificates stores ask for over sync. Without it, a renewal is refused with the reason.
    pub renewal: Option<crate::renew::RenewalConfig>,
    /// 会员等级评定 once a business day, after quiet hours, once a tier table is published (the
    /// default). Off, tiers move down only when headquarters runs the review on its page.
    pub tier_review_daily: bool,
}

/// The message gateway and the sending rules.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NotifyConfig {
    /// The gateway's URL (http or https): each message is POSTed there as JSON with an
    /// `Idempotency-Key` (the notice's id) and an HMAC-SHA256 signature of the body.
    pub url: Option<String>,
    /// The secret shared with the gateway for the signature.
    pub secret: String,
    /// Or: each message appended to this file as a JSON line (the demo).
    pub file: Option<PathBuf>,
    /// Messages sent per second at most.
    pub per_second: u32,
    /// Quiet hours (免打扰), local time: no marketing message from `quiet_from` to
    /// `quiet_to` o'clock (transactional notices still go).
    pub quiet_from: u32,
    pub quiet_to: u32,
    /// How long one try waits for the gateway.
    pub timeout_ms: u64,
    /// Tries before a notice is given up as failed.
    pub attempts_max: u32,
    /// A notice older than this when it could be sent is suppressed (a store that comes back
    /// after days does not send week-old balances).
    pub stale_hours: u64,
    /// Days a notice is kept after it was made, once sent, failed or suppressed (it holds the
    /// member's personal data: PIPL's "no longer than needed").
    pub keep_days: u32,
    /// Days before an unused coupon runs out that its member is reminded (券即将过期; 0: never).
    pub expiring_days: u32,
    /// A birthday greeting (生日祝福) on the member's birthday.
    pub birthday: bool,
    /// Marketing messages (campaign coupons, reminders, greetings) one member gets in a day at
    /// most; more wait for the next day.
    pub marketing_per_day: u32,
    /// The chain's wording of each message (`[notify.texts]`), Chinese by default.
    pub texts: protocol::notice::Texts,
}

impl Default for NotifyConfig {
    fn default() -> Self {
        Self {
            url: None,
            secret: String::new(),
            file: None,
            per_second: 20,
            quiet_from: 21,
            quiet_to: 9,
            timeout_ms: 5_000,
            attempts_max: 8,
            stale_hours: 24,
            keep_days: 30,
            expiring_days: 3,
            birthday: true,
            marketing_per_day: 2,
            texts: protocol::notice::Texts::default(),
        }
    }
}

impl NotifyConfig {
    pub fn check(&self) -> Result<(), String> {
        if self.url.is_some() == self.file.is_some() {
            return Err("notify: name either url (a gateway) or file".into());
        }
        if self.url.is_some() && self.secret.len() < 16 {
            return Err("notify.secret: at least 16 characters".into());
        }
        if !(1..=10_000).contains(&self.per_second) || self.quiet_from > 23 || self.quiet_to > 23 {
            return Err("notify: per_second 1 to 10000, quiet hours 0 to 23".into());
        }
        if !(100..=60_000).contains(&self.timeout_ms) || !(1..=100).contains(&self.attempts_max) {
            return Err("notify: timeout_ms 100 to 60000, attempts_max 1 to 100".into());
        }
        if !(1..=3_660).contains(&self.keep_days) || !(1..=24 * 30).contains(&self.stale_hours) {
            return Err("notify: keep_days 1 to 3660, stale_hours 1 to 720".into());
        }
        if self.expiring_days > 30 || !(1..=20).contains(&self.marketing_per_day) {
            return Err("notify: expiring_days 0 to 30, marketing_per_day 1 to 20".into());
        }
        self.texts.check().map_err(|e| format!("notify.{e}"))?;
        Ok(())
    }
}

impl Config {
    /// Where and how often backups are taken: `[backup]`, or beside the data directory.
    pub fn backup(&self) -> crate::backup::BackupConfig {
        self.backup
            .clone()
            .unwrap_or_else(|| crate::backup::BackupConfig::beside(&self.data_dir))
    }

    /// Headquarters' side of the offline lease (`protocol::lease`).
    pub fn fence_rule(&self) -> protocol::lease::FenceRule {
        protocol::lease::FenceRule {
            lease_ms: self.offline_rights_secs.saturating_mul(1000),
            margin_ms: self.fence_margin_secs.saturating_mul(1000),
            hold_min_ms: self.hold_min_secs.saturating_mul(1000),
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("hub-data"),
            database_url: None,
            lease_secs: 10,
            instance: None,
            sync_listen: SocketAddr::from(([127, 0, 0, 1], 7443)),
            http_listen: SocketAddr::from(([127, 0, 0, 1], 8090)),
            ca_cert: PathBuf::from("pki/ca.pem"),
            cert: PathBuf::from("pki/hub.pem"),
            key: PathBuf::from("pki/hub.key"),
            offline_rights_secs: protocol::lease::DEFAULT_LEASE_MS / 1000,
            fence_margin_secs: 60,
            hold_min_secs: 60,
            http_names: Vec::new(),
            http: Default::default(),
            open_before_logins: false,
            rights: protocol::bank::Policy::default(),
            notify: None,
            backup: None,
            renewal: None,
            tier_review_daily: true,
        }
    }
}

impl Config {
    pub fn load(path: &Path) -> anyhow::Result<Config> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let config: Config =
            toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
        config
            .http
            .check()
            .map_err(anyhow::Error::msg)
            .with_context(|| format!("checking {}", path.display()))?;
        config
            .rights
            .check()
            .map_err(anyhow::Error::msg)
            .with_context(|| format!("checking {}", path.display()))?;
        if let Some(notify) = &config.notify {
            notify
                .check()
                .map_err(anyhow::Error::msg)
                .with_context(|| format!("checking {}", path.display()))?;
        }
        anyhow::ensure!(
            (1..=600).contains(&config.lease_secs),
            "checking {}: lease_secs 1 to 600",
            path.display()
        );
        Ok(config)
    }

    /// This hub's name in headquarters' lease (`instance`, or `<host name>/<sync address>`).
    pub fn instance(&self) -> String {
        self.instance.clone().unwrap_or_else(|| {
            let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
                .ok()
                .or_else(|| std::env::var("COMPUTERNAME").ok())
                .map_or_else(|| "hub".to_owned(), |h| h.trim().to_owned());
            format!("{host}/{}", self.sync_listen)
        })
    }

    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_default()
    }
}
