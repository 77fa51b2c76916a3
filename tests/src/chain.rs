//! A chain on loopback for end-to-end tests: certificates, a hub process and store processes,
//! plus the probes the tests share.

use std::net::SocketAddr;
use std::path::PathBuf;

use serde_json::{Value, json};

use crate::{Client, HubProcess, NodeProcess, TempDir, eventually};

/// The binaries built by this crate; `bins!()` fills it in an integration test.
#[derive(Clone)]
pub struct Bins {
    pub node: PathBuf,
    pub hub: PathBuf,
}

#[macro_export]
macro_rules! bins {
    () => {
        $crate::chain::Bins {
            node: env!("CARGO_BIN_EXE_store-node").into(),
            hub: env!("CARGO_BIN_EXE_hq").into(),
        }
    };
}

pub struct Chain {
    pub dir: TempDir,
    pub pki: PathBuf,
    pub bins: Bins,
    hub_config: PathBuf,
    hub_data: PathBuf,
    /// Headquarters' PostgreSQL, when the chain runs on one (`Chain::on_postgres`, or every
    /// chain with `TEST_HUB_STORE=postgres`). Declared last: dropped after the chain's files.
    pub database: Option<hub::storage::pg::scratch::TestDatabase>,
}

/// Whether every test chain's headquarters runs on PostgreSQL (`TEST_HUB_STORE=postgres`;
/// sled otherwise): the end-to-end suite against either store.
pub fn postgres_by_default() -> bool {
    std::env::var("TEST_HUB_STORE").is_ok_and(|v| v == "postgres")
}

impl Chain {
    pub fn new(bins: Bins) -> Self {
        Self::with_store(bins, postgres_by_default())
    }

    /// A chain whose headquarters keeps its state in sled whatever `TEST_HUB_STORE` says (a
    /// test of sled's own backups).
    pub fn on_sled(bins: Bins) -> Self {
        Self::with_store(bins, false)
    }

    /// A chain whose headquarters keeps its state in a PostgreSQL server of its own.
    pub fn on_postgres(bins: Bins) -> Self {
        Self::with_store(bins, true)
    }

    fn with_store(bins: Bins, postgres: bool) -> Self {
        let dir = TempDir::new("chain");
        let pki = dir.path().join("pki");
        ops::pki::init(&pki, &["hub", "127.0.0.1"]).unwrap();
        let hub_data = dir.path().join("hub-data");
        let mut config = ops::pki::hub_config(&pki, hub_data.clone()).unwrap();
        // Holds that post within seconds. The stores keep the default lease of a day, longer
        // than headquarters': a store cut off but alive then keeps spending after its fence,
        // which the tests of the fence use (`enrol_with_lease` gives a store a short one).
        config.offline_rights_secs = 1;
        config.fence_margin_secs = 1;
        config.hold_min_secs = 1;
        // Tests drive the API without logins until they set some (`open_before_logins`);
        // a test of the closed default turns it off.
        config.open_before_logins = true;
        let database = postgres.then(|| {
            hub::storage::pg::scratch::TestDatabase::new("chain").expect("a PostgreSQL server")
        });
        config.database_url = database.as_ref().map(|d| d.url.clone());
        let hub_config = dir.path().join("hub.toml");
        std::fs::write(&hub_config, config.to_toml()).unwrap();
        Self {
            dir,
            pki,
            bins,
            hub_config,
            hub_data,
            database,
        }
    }

    pub fn hub(&self, sync: SocketAddr) -> HubProcess {
        HubProcess::spawn(&self.bins.hub, &self.hub_config, sync)
    }

    /// Starts the hub after changing its configuration with `edit`.
    pub fn hub_with(&self, sync: SocketAddr, edit: impl FnOnce(&mut hub::Config)) -> HubProcess {
        let mut config = hub::Config::load(&self.hub_config).unwrap();
        edit(&mut config);
        std::fs::write(&self.hub_config, config.to_toml()).unwrap();
        self.hub(sync)
    }

    /// The hub's configuration file.
    pub fn hub_config(&self) -> &std::path::Path {
        &self.hub_config
    }

    /// Where the hub keeps its data.
    pub fn hub_data(&self) -> &std::path::Path {
        &self.hub_data
    }

    /// Enrols `store` to reach the hub at `hub` (which may be a fault proxy); quick retries.
    pub fn enrol(&self, store: &str, hub: SocketAddr) -> PathBuf {
        self.enrol_for(store, hub, ops::pki::Lifetime::Days(ops::pki::STORE_DAYS))
    }

    /// Enrols `store` (again: its data stays) with a certificate good for `lifetime`.
    pub fn enrol_for(&self, store: &str, hub: SocketAddr, lifetime: ops::pki::Lifetime) -> PathBuf {
        let out = self.dir.path().join(store);
        let mut config = ops::pki::enrol_for(&self.pki, store, hub, "hub", &out, lifetime).unwrap();
        if let Some(sync) = &mut config.sync {
            sync.retry_delay_ms_max = 500;
        }
        // US dollars as cash at 7.10 yuan.
        config
            .exchange_rates
            .insert("USD".into(), rust_decimal::Decimal::new(710, 2));
        config.open_before_logins = true;
        let path = out.join("node.toml");
        std::fs::write(&path, config.to_toml()).unwrap();
        path
    }

    /// Enrols `store` as `enrol` does, then changes its configuration with `edit`.
    pub fn enrol_with(
        &self,
        store: &str,
        hub: SocketAddr,
        edit: impl FnOnce(&mut node::Config),
    ) -> PathBuf {
        let path = self.enrol(store, hub);
        let mut config = node::Config::load(&path).unwrap();
        edit(&mut config);
        std::fs::write(&path, config.to_toml()).unwrap();
        path
    }

    pub fn node(&self, store: &str) -> NodeProcess {
        NodeProcess::spawn(
            &self.bins.node,
            &self.dir.path().join(store).join("node.toml"),
        )
    }

    pub fn store_data(&self, store: &str) -> PathBuf {
        self.dir.path().join(store).join("data")
    }

    /// (with the node stopped) its views equal a rebuild of its log and feed.
    pub fn verify(&self, store: &str) {
        let config = self.dir.path().join(store).join("node.toml");
        let out = std::process::Command::new(&self.bins.node)
            .args(["verify", "--config"])
            .arg(&config)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{store}: {}",
            String::from_utf8_lossy(&out.stdout)
        );
    }

    /// (with the hub stopped) its chains, feed and member directory check out.
    pub fn verify_hub(&self) {
        let out = std::process::Command::new(&self.bins.hub)
            .args(["verify", "--config"])
            .arg(&self.hub_config)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "hub: {}",
            String::from_utf8_lossy(&out.stdout)
        );
    }

    /// (with hub and store stopped) the hub holds exactly the store's log, entry for entry.
    pub fn assert_hub_holds_store_log(&self, store: &str) -> usize {
        self.assert_hub_holds_log_in(store, &self.store_data(store))
    }

    /// `assert_hub_holds_store_log` for a store whose data is in `data`.
    pub fn assert_hub_holds_log_in(&self, store: &str, data: &std::path::Path) -> usize {
        use node::store::Store;
        let store_id = protocol::StoreId::parse(store).unwrap();
        let node_store = node::store::SledStore::open(data).unwrap();
        let own: Vec<Vec<u8>> = node_store
            .scan_prefix(&node::views::keys::log_prefix(&store_id))
            .unwrap()
            .into_iter()
            .map(|(_, v)| v)
            .collect();
        drop(node_store);
        let opened = hub::open_storage(&hub::Config::load(&self.hub_config).unwrap()).unwrap();
        let held = opened.storage.entries(&store_id, 1, usize::MAX).unwrap();
        assert_eq!(
            held.len(),
            own.len(),
            "{store}: the hub holds {} entries, the store wrote {}",
            held.len(),
            own.len()
        );
        assert!(
            held == own,
            "{store}: the hub's copy differs from the store's log"
        );
        own.len()
    }
}

pub fn register(c: &Client, key: &str, name: &str, phone: &str) -> String {
    let answer = c.post(
        "/api/v1/members",
        Some(key),
        &json!({"name": name, "phone": phone}).to_string(),
    );
    assert_eq!(answer.status, 201, "{:?}", answer.body);
    answer.body["member_id"].as_str().unwrap().to_owned()
}

/// Tops `member` up by `yuan` (e.g. "100.00") at the till `c`; returns the wallet answered.
pub fn top_up(c: &Client, key: &str, member: &str, yuan: &str) -> Value {
    let answer = c.post(
        &format!("/api/v1/members/{member}/top-ups"),
        Some(key),
        &json!({"amount": {"amount": yuan}}).to_string(),
    );
    assert_eq!(answer.status, 201, "{:?}", answer.body);
    answer.body
}

/// Sets `member`'s payment password at the till `c`.
pub fn set_password(c: &Client, key: &str, member: &str, password: &str) {
    let answer = c.put_as(
        &format!("/api/v1/members/{member}/password"),
        key,
        None,
        &json!({"password": password}).to_string(),
    );
    assert_eq!(answer.status, 201, "{:?}", answer.body);
}

/// Rings up `count` quick sales of 9.90 with keys `<prefix>-<n>`.
pub fn sell(c: &Client, prefix: &str, count: usize) {
    for n in 0..count {
        let body = json!({"amount": {"amount": "9.90"}}).to_string();
        let answer = c.post(
            "/api/v1/checkouts/quick",
            Some(&format!("{prefix}-{n:06}")),
            &body,
        );
        assert_eq!(answer.status, 201, "{:?}", answer.body);
    }
}

pub fn sync_status(c: &Client) -> Value {
    c.get("/api/v1/sync").body
}

pub fn log_len(c: &Client) -> u64 {
    c.get("/api/v1/health").body["log_entries"]
        .as_u64()
        .unwrap()
}

pub fn hub_row(hub: &Client, store: &str) -> Option<Value> {
    let stores = hub.try_get("/api/v1/stores").ok()?.body;
    stores["stores"]
        .as_array()?
        .iter()
        .find(|s| s["store_id"] == store)
        .cloned()
}

pub fn hub_acked(hub: &Client, store: &str) -> u64 {
    hub_row(hub, store)
        .and_then(|r| r["acked_seq"].as_u64())
        .unwrap_or(0)
}

/// Waits until the hub holds every entry `node` has written; returns that count.
pub fn hub_caught_up(hub: &Client, node: &Client, store: &str, seconds: u64) -> u64 {
    eventually(seconds, &format!("{store} to reach the hub"), || {
        let len = log_len(node);
        (hub_acked(hub, store) == len).then_some(len)
    })
}

pub fn wait_online(nodes: &[&Client]) {
    eventually(30, "stores online", || {
        nodes
            .iter()
            .all(|c| sync_status(c)["link"] == "online")
            .then_some(())
    });
}

/// A quick sale of `yuan` with key `key`, from `member`'s stored value if given, else cash.
pub fn quick_sale(c: &Client, key: &str, yuan: &str, member: Option<&str>) -> crate::Answer {
    let body = match member {
        Some(member) => {
            json!({"member_id": member, "amount": {"amount": yuan}, "pay_with": "stored_value"})
        }
        None => json!({"amount": {"amount": yuan}}),
    };
    c.post("/api/v1/checkouts/quick", Some(key), &body.to_string())
}

/// Waits until the hub holds every entry of `store`'s log and the store writes no more for a
/// while (it hands rights back to headquarters by itself); returns the log's length.
pub fn settled(hub: &Client, node: &Client, store: &str) -> u64 {
    eventually(30, &format!("{store} to settle"), || {
        let len = hub_caught_up(hub, node, store, 20);
        std::thread::sleep(std::time::Duration::from_millis(1500));
        (log_len(node) == len).then_some(len)
    })
}
