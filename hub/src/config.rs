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
        }
    }
}

impl Config {
    pub fn load(path: &Path) -> anyhow::Result<Config> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))
    }

    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_default()
    }
}
