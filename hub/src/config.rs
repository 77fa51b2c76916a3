//! The hub's configuration: a TOML file with defaults for everything but the certificate paths.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub data_dir: PathBuf,
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
}

impl Config {
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
        Ok(config)
    }

    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_default()
    }
}
