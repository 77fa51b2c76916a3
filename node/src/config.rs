//! The node's configuration: a TOML file with defaults for everything but the store id.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use protocol::calendar::StoreCalendar;
use protocol::points::EarnRule;
use protocol::sale::SaleLimits;
use protocol::wallet::{BonusUse, PointsPolicy, TopUpRule, WalletRules};
use protocol::{Fen, HlcClock, StoreId};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::journal::Settings;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// This store's id, bound to its certificate once sync arrives (e.g. "S001").
    pub store_id: String,
    /// For tests only: pretend this PC's clock is off by this much (ms, may be negative).
    /// Headquarters' time corrects it while the store hears it (`clock.rs`).
    #[serde(skip_serializing_if = "is_zero")]
    pub clock_skew_ms: i64,
    /// Host names the till's pages and API may be reached by, besides IP addresses and
    /// `localhost` (any other Host is refused: DNS rebinding).
    pub http_names: Vec<String>,
    /// Connections the till's HTTP server holds at once and its timeouts.
    pub http: protocol::web::HttpLimits,
    /// The demo's and the tests' mode: the till's API is open to anyone (acting as `system`)
    /// until a member of staff who may log in here has a login. Off (the default), every call
    /// but health and login needs a staff login, which headquarters sets.
    pub open_before_logins: bool,
    /// `GET /metrics` for Prometheus, and every request counted and timed for it (on by
    /// default).
    pub metrics: bool,
    /// A display name for receipts and the UI (e.g. "人民广场店").
    pub store_name: String,
    /// Headquarters' web address (e.g. "http://hq.example.com:8090"): the member's own page
    /// (会员自助, `/m`) and its API are passed on there, so members reach it through the store
    /// (its Wi-Fi, a QR code at the counter). None: the store does not offer it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hub_web: Option<String>,
    /// Where sled keeps the log and views.
    pub data_dir: PathBuf,
    /// The cashier API's address; loopback by default, since the tills run on this PC.
    pub listen: SocketAddr,
    /// IANA time zone of the store; business dates are local dates here.
    pub time_zone: String,
    /// Minutes after local midnight when the business day starts.
    pub day_start_minutes: u32,
    /// Points earned per yuan paid.
    pub points_per_yuan: Decimal,
    /// Points per yuan for particular categories, e.g. `{ "烟酒" = "0", "生鲜" = "2" }`.
    pub points_per_yuan_by_category: std::collections::BTreeMap<String, Decimal>,
    /// Days that multiply points, e.g. `[{ name = "会员日", weekday = "Wed", factor = "2" }]`.
    pub points_multipliers: Vec<protocol::points::Multiplier>,
    /// The largest single sale the till accepts, in yuan.
    pub sale_amount_max: Decimal,
    /// Tier given to new members.
    pub default_tier: String,
    /// How far another replica's clock may run ahead of ours.
    pub max_forward_skew_ms: u64,
    /// Staff ids who may reset a member's payment password.
    pub managers: Vec<String>,
    /// Stored value, points and cards (the chain's rules; the same at every store).
    pub wallet: WalletConfig,
    /// Discounts at the till: the order of the pricing steps, percent off by member tier and in
    /// the birthday month, points that make a yuan off and the most of a sale they may pay.
    pub pricing: protocol::pricing::PricingRules,
    /// Foreign cash the tills take (外币现金), yuan per unit, e.g. `{ USD = "7.10", HKD = "0.91" }`.
    pub exchange_rates: std::collections::BTreeMap<String, Decimal>,
    /// How many days late a sale may be entered with its own time (补录: sales taken on paper
    /// while the till was down; a replay of old data sets this high).
    pub backdate_days_max: u32,
    /// 改价: the lowest share of a line's price, in percent, a cashier may sell it for; a lower
    /// price needs a store manager logged in at the till. Every 改价 is in the audit log.
    pub override_floor_percent: u8,
    /// How long a staff login lasts at a till, in minutes (a shift: 720 by default).
    pub session_minutes: u32,
    /// Headquarters to sync with; without it the node runs on its own.
    pub sync: Option<SyncConfig>,
    /// Backups of the store's data (备份): where, how often, how many (`crate::backup`).
    pub backup: Option<crate::backup::BackupConfig>,
}

/// The chain's wallet rules as written in the file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WalletConfig {
    /// e.g. `[{ id = "充500送100", pay_at_least = "500", bonus = "100" }]`
    pub top_up_rules: Vec<TopUpRuleConfig>,
    /// How a stored-value payment splits: "proportional", "principal_first" or "bonus_first".
    pub bonus_use: BonusUse,
    /// Points earned in a year can be spent until the end of this many later years; none: never
    /// expire.
    pub points_keep_years: Option<u16>,
    /// The largest single top-up, in yuan.
    pub top_up_max: Decimal,
    /// Offline overdraft (离线透支), in yuan: what one member may owe this store, and all members
    /// together, for stored-value payments taken while headquarters was unreachable and the
    /// balance's rights were held elsewhere. 0 refuses such payments (the default).
    pub offline_overdraft_per_member: Decimal,
    pub offline_overdraft_per_store: Decimal,
    /// Whether such a payment needs a store manager at the till (透支审批), not any cashier.
    pub offline_overdraft_needs_manager: bool,
    /// 计时卡: minutes are charged in steps of this many, rounded up (1 to 60).
    pub timed_round_minutes: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TopUpRuleConfig {
    pub id: String,
    pub pay_at_least: Decimal,
    pub bonus: Decimal,
}

impl Default for WalletConfig {
    fn default() -> Self {
        let rules = WalletRules::default();
        Self {
            top_up_rules: Vec::new(),
            bonus_use: rules.bonus_use,
            points_keep_years: rules.points.keep_years,
            top_up_max: rules.top_up_max.to_decimal(),
            offline_overdraft_per_member: Decimal::ZERO,
            offline_overdraft_per_store: Decimal::ZERO,
            offline_overdraft_needs_manager: false,
            timed_round_minutes: rules.timed_round_minutes,
        }
    }
}

impl WalletConfig {
    fn rules(&self) -> anyhow::Result<WalletRules> {
        let fen = |what: &str, yuan: Decimal| {
            Fen::from_decimal(yuan, protocol::Rounding::TowardZero)
                .ok()
                .filter(|f| f.0 >= 0)
                .with_context(|| format!("{what} must be an amount of at least zero"))
        };
        let mut top_up_rules = Vec::new();
        for r in &self.top_up_rules {
            anyhow::ensure!(!r.id.trim().is_empty(), "a top-up rule needs an id");
            top_up_rules.push(TopUpRule {
                id: r.id.clone(),
                pay_at_least: fen("pay_at_least", r.pay_at_least)?,
                bonus: fen("bonus", r.bonus)?,
            });
        }
        Ok(WalletRules {
            top_up_rules,
            bonus_use: self.bonus_use,
            points: PointsPolicy {
                keep_years: self.points_keep_years,
            },
            top_up_max: fen("top_up_max", self.top_up_max)?,
            overdraft_member: fen(
                "offline_overdraft_per_member",
                self.offline_overdraft_per_member,
            )?,
            overdraft_store: fen(
                "offline_overdraft_per_store",
                self.offline_overdraft_per_store,
            )?,
            overdraft_needs_manager: self.offline_overdraft_needs_manager,
            timed_round_minutes: match self.timed_round_minutes {
                step @ 1..=60 => step,
                other => anyhow::bail!("timed_round_minutes is 1 to 60, not {other}"),
            },
        })
    }
}

/// Where headquarters is and this store's credentials (written by `ops enrol`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyncConfig {
    /// The hub's UDP address, e.g. "127.0.0.1:7443".
    pub hub: SocketAddr,
    /// More headquarters addresses (more hub processes on one database): tried in turn after
    /// `hub` when one does not answer or stands by.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub more_hubs: Vec<SocketAddr>,
    /// The name in the hub's certificate, e.g. "hub".
    #[serde(default = "default_hub_name")]
    pub hub_name: String,
    /// The chain's CA certificate (PEM).
    pub ca_cert: PathBuf,
    /// This store's certificate (PEM); its common name is the store id.
    pub cert: PathBuf,
    pub key: PathBuf,
    /// Longest wait between reconnect attempts.
    #[serde(default = "default_retry_delay_ms_max")]
    pub retry_delay_ms_max: u64,
    /// 离线权益期限: after this long without hearing headquarters, the store stops spending
    /// member rights (stored value, points, cards, coupons) until it hears it again; cash sales
    /// go on, and stored value falls back to the chain's offline overdraft. Headquarters'
    /// `offline_rights_secs` must not be shorter (it may fence a store only after it).
    #[serde(default = "default_offline_rights_secs")]
    pub offline_rights_secs: u64,
    /// 证书续期: ask headquarters for a new certificate over sync once this one has fewer days
    /// left than this (0: never; the operator enrols the store again by hand).
    #[serde(default = "default_renew_days")]
    pub renew_days: u32,
}

fn default_renew_days() -> u32 {
    crate::renew::RENEW_DAYS
}

fn default_offline_rights_secs() -> u64 {
    protocol::lease::DEFAULT_LEASE_MS / 1000
}

fn is_zero(n: &i64) -> bool {
    *n == 0
}

fn default_hub_name() -> String {
    "hub".to_owned()
}

fn default_retry_delay_ms_max() -> u64 {
    30_000
}

impl Default for Config {
    fn default() -> Self {
        Self {
            clock_skew_ms: 0,
            http_names: Vec::new(),
            http: Default::default(),
            open_before_logins: false,
            metrics: true,
            store_id: "S001".to_owned(),
            store_name: "总店".to_owned(),
            hub_web: None,
            data_dir: PathBuf::from("data"),
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            time_zone: "Asia/Shanghai".to_owned(),
            day_start_minutes: 0,
            points_per_yuan: Decimal::ONE,
            points_per_yuan_by_category: Default::default(),
            points_multipliers: Vec::new(),
            sale_amount_max: Decimal::new(1_000_000, 0),
            default_tier: "standard".to_owned(),
            max_forward_skew_ms: HlcClock::DEFAULT_MAX_FORWARD_SKEW_MS,
            managers: Vec::new(),
            wallet: WalletConfig::default(),
            pricing: Default::default(),
            exchange_rates: Default::default(),
            backdate_days_max: 7,
            override_floor_percent: 90,
            session_minutes: 720,
            sync: None,
            backup: None,
        }
    }
}

impl Config {
    /// Where and how often backups are taken: `[backup]`, or beside the data directory.
    pub fn backup(&self) -> crate::backup::BackupConfig {
        self.backup
            .clone()
            .unwrap_or_else(|| crate::backup::BackupConfig::beside(&self.data_dir))
    }

    pub fn load(path: &Path) -> anyhow::Result<Config> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let config: Config =
            toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
        config
            .settings()
            .with_context(|| format!("checking {}", path.display()))?;
        Ok(config)
    }

    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_default()
    }

    /// The rules the journal applies, checked.
    pub fn settings(&self) -> anyhow::Result<Settings> {
        self.http.check().map_err(anyhow::Error::msg)?;
        let store_id = StoreId::parse(&self.store_id).context("store_id")?;
        anyhow::ensure!(
            store_id != StoreId::hq(),
            "store_id HQ is headquarters' own"
        );
        let time_zone = self
            .time_zone
            .parse()
            .map_err(|e| anyhow::anyhow!("time_zone {:?}: {e}", self.time_zone))?;
        anyhow::ensure!(
            self.day_start_minutes < 24 * 60,
            "day_start_minutes must be under 1440"
        );
        // The file's member rules are checked as loosely as before headquarters could publish
        // them, so a file that loaded still loads; headquarters' sets pass `ChainRules::check`.
        anyhow::ensure!(
            self.points_per_yuan >= Decimal::ZERO
                && self
                    .points_per_yuan_by_category
                    .values()
                    .all(|r| *r >= Decimal::ZERO),
            "points rates must not be negative"
        );
        anyhow::ensure!(
            self.points_multipliers
                .iter()
                .all(|m| m.factor >= Decimal::ONE
                    && (m.weekday.is_some() || m.day_of_month.is_some())),
            "a points multiplier needs a weekday or a day of the month, and a factor of at least 1"
        );
        let amount_max = Fen::from_decimal(self.sale_amount_max, protocol::Rounding::TowardZero)
            .ok()
            .filter(|f| f.0 > 0)
            .context("sale_amount_max must be a positive amount")?;
        let settings = Settings {
            store_id,
            calendar: StoreCalendar {
                time_zone,
                day_start_minutes: self.day_start_minutes,
            },
            limits: SaleLimits {
                amount_max,
                currency: protocol::Currency::CNY,
            },
            earn: EarnRule {
                points_per_yuan: self.points_per_yuan,
                categories: self.points_per_yuan_by_category.clone(),
                multipliers: self.points_multipliers.clone(),
            },
            default_tier: self.default_tier.clone(),
            max_forward_skew_ms: self.max_forward_skew_ms,
            wallet: self.wallet.rules().context("wallet")?,
            pricing: {
                self.pricing.check().context("pricing")?;
                self.pricing.clone()
            },
            rates: self
                .exchange_rates
                .iter()
                .map(|(code, rate)| {
                    let currency: protocol::Currency = code
                        .parse()
                        .with_context(|| format!("exchange_rates: {code}"))?;
                    anyhow::ensure!(
                        currency != protocol::Currency::CNY
                            && *rate > Decimal::ZERO
                            && *rate < Decimal::from(10_000),
                        "exchange_rates: {code} needs a rate above 0 (yuan per unit), not CNY"
                    );
                    Ok((currency, *rate))
                })
                .collect::<anyhow::Result<_>>()?,
            backdate_days_max: self.backdate_days_max,
            override_floor_percent: {
                anyhow::ensure!(
                    self.override_floor_percent <= 100,
                    "override_floor_percent is a percentage of the price (0 to 100)"
                );
                self.override_floor_percent
            },
            tiers: None,
            card_rules: None,
        };
        Ok(settings)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_round_trip_through_toml() {
        let config = Config::default();
        let back: Config = toml::from_str(&config.to_toml()).unwrap();
        assert_eq!(back, config);
        assert!(config.settings().is_ok());
    }

    #[test]
    fn points_rules_and_wallet_rules_read_from_the_file() {
        let text = r#"
store_id = "S002"
points_multipliers = [{ name = "会员日", weekday = "Wed", factor = "2" }]
[points_per_yuan_by_category]
"烟酒" = "0"
[wallet]
top_up_rules = [{ id = "充500送100", pay_at_least = "500", bonus = "100" }]
offline_overdraft_per_member = "100"
offline_overdraft_per_store = "2000"
"#;
        let config: Config = toml::from_str(text).unwrap();
        let settings = config.settings().unwrap();
        assert_eq!(
            settings.earn.multipliers[0].weekday,
            Some(chrono::Weekday::Wed)
        );
        assert_eq!(settings.wallet.top_up_rules[0].bonus, Fen(10_000));
        assert_eq!(settings.wallet.overdraft_store, Fen(200_000));
        let back: Config = toml::from_str(&config.to_toml()).unwrap();
        assert_eq!(back, config);
        let silly = Config {
            points_multipliers: vec![protocol::points::Multiplier {
                name: "x".into(),
                weekday: None,
                day_of_month: None,
                factor: Decimal::TWO,
            }],
            ..Config::default()
        };
        assert!(silly.settings().is_err());
    }

    #[test]
    fn partial_files_take_defaults_and_bad_values_are_named() {
        let config: Config = toml::from_str("store_id = \"S002\"\n").unwrap();
        assert_eq!(config.time_zone, "Asia/Shanghai");
        let bad = Config {
            time_zone: "Mars/Olympus".into(),
            ..Config::default()
        };
        assert!(
            bad.settings()
                .unwrap_err()
                .to_string()
                .contains("Mars/Olympus")
        );
        let hq = Config {
            store_id: "HQ".into(),
            ..Config::default()
        };
        assert!(hq.settings().is_err());
        assert!(toml::from_str::<Config>("colour = \"red\"\n").is_err());
        // A file that loaded before headquarters could publish rules still loads: its rules are
        // not held to `ChainRules::check` (an overdraft cap per member above the store's).
        let mut old = Config::default();
        old.wallet.offline_overdraft_per_member = Decimal::from(50);
        assert!(old.settings().is_ok());
    }
}
