//! Store ↔ headquarters sync with real processes over loopback: the member directory reaches
//! other stores, concurrent profile edits converge, every sale reaches the hub exactly once
//! through a hub crash, and certificates that should not get in do not.
#![allow(clippy::unwrap_used, clippy::print_stdout)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use tests::{Client, HubProcess, NodeProcess, TempDir, eventually};

fn node_bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_store-node"))
}

fn hub_bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_hq"))
}

struct Chain {
    dir: TempDir,
    pki: PathBuf,
    hub_config: PathBuf,
}

impl Chain {
    fn new() -> Self {
        let dir = TempDir::new("sync");
        let pki = dir.path().join("pki");
        ops::pki::init(&pki, &["hub", "127.0.0.1"]).unwrap();
        let config = ops::pki::hub_config(&pki, dir.path().join("hub-data")).unwrap();
        let hub_config = dir.path().join("hub.toml");
        std::fs::write(&hub_config, config.to_toml()).unwrap();
        Self {
            dir,
            pki,
            hub_config,
        }
    }

    fn hub(&self, sync: SocketAddr) -> HubProcess {
        HubProcess::spawn(hub_bin(), &self.hub_config, sync)
    }

    /// Enrols `store` against `hub` and returns its config path (quick retries for tests).
    fn enrol(&self, store: &str, hub: SocketAddr) -> PathBuf {
        let out = self.dir.path().join(store);
        let mut config = ops::pki::enrol(&self.pki, store, hub, "hub", &out).unwrap();
        if let Some(sync) = &mut config.sync {
            sync.retry_delay_ms_max = 500;
        }
        let path = out.join("node.toml");
        std::fs::write(&path, config.to_toml()).unwrap();
        path
    }
}

fn register(c: &Client, key: &str, name: &str, phone: &str) -> String {
    let answer = c.post(
        "/api/v1/members",
        Some(key),
        &json!({"name": name, "phone": phone}).to_string(),
    );
    assert_eq!(answer.status, 201, "{:?}", answer.body);
    answer.body["member_id"].as_str().unwrap().to_owned()
}

fn sync_status(c: &Client) -> Value {
    c.get("/api/v1/sync").body
}

fn hub_row(hub: &Client, store: &str) -> Option<Value> {
    let stores = hub.try_get("/api/v1/stores").ok()?.body;
    stores["stores"]
        .as_array()?
        .iter()
        .find(|s| s["store_id"] == store)
        .cloned()
}

/// Waits until the hub holds every entry `node` has written.
fn hub_caught_up(hub: &Client, node: &Client, store: &str) -> u64 {
    eventually(30, &format!("{store} to reach the hub"), || {
        let log_len = node.get("/api/v1/health").body["log_entries"].as_u64()?;
        let row = hub_row(hub, store)?;
        (row["acked_seq"].as_u64()? == log_len).then_some(log_len)
    })
}

#[test]
fn members_travel_between_stores_and_sales_reach_the_hub_exactly_once() {
    let chain = Chain::new();
    let hub = chain.hub("127.0.0.1:0".parse().unwrap());
    let a = NodeProcess::spawn(node_bin(), &chain.enrol("S001", hub.sync));
    let b = NodeProcess::spawn(node_bin(), &chain.enrol("S002", hub.sync));
    eventually(20, "both stores online", || {
        (sync_status(&a.client)["link"] == "online" && sync_status(&b.client)["link"] == "online")
            .then_some(())
    });

    // A member registered at S001 is found at S002.
    let member = register(&a.client, "reg-a-0001", "张三", "13812340001");
    let found = eventually(20, "the member at S002", || {
        let answer = b.client.get("/api/v1/members/lookup?phone=13812340001");
        (answer.status == 200).then_some(answer.body)
    });
    assert_eq!(found["member_id"], member.as_str());
    assert_eq!(found["home_store"], "S001");

    // Concurrent edits of different fields at both stores converge everywhere.
    let path = format!("/api/v1/members/{member}");
    a.client.patch(
        &path,
        Some("edit-a-0001"),
        &json!({"name": "张三丰"}).to_string(),
    );
    b.client.patch(
        &path,
        Some("edit-b-0001"),
        &json!({"notes": "喜欢绿茶", "tags_add": ["tea"]}).to_string(),
    );
    for (label, node) in [("S001", &a), ("S002", &b)] {
        eventually(20, &format!("edits to converge at {label}"), || {
            let m = node.client.get(&path).body;
            (m["name"] == "张三丰" && m["notes"] == "喜欢绿茶" && m["tags"] == json!(["tea"]))
                .then_some(())
        });
    }

    // Sales reach the hub; then the hub dies and the stores keep selling and looking up.
    for n in 0..50 {
        let body = json!({"member_id": member, "amount": {"amount": format!("{}.50", n + 1)}});
        assert_eq!(
            a.client
                .post(
                    "/api/v1/checkouts/quick",
                    Some(&format!("sale-a-{n:04}")),
                    &body.to_string()
                )
                .status,
            201
        );
    }
    hub_caught_up(&hub.client, &a.client, "S001");
    let sync_addr = hub.sync;
    hub.kill();
    for n in 50..300 {
        let body = json!({"amount": {"amount": "9.90"}});
        assert_eq!(
            a.client
                .post(
                    "/api/v1/checkouts/quick",
                    Some(&format!("sale-a-{n:04}")),
                    &body.to_string()
                )
                .status,
            201
        );
    }
    assert_eq!(
        b.client
            .get("/api/v1/members/lookup?phone=13812340001")
            .status,
        200,
        "offline lookup at S002"
    );
    let offline = eventually(20, "S001 to notice the hub is gone", || {
        let s = sync_status(&a.client);
        (s["link"] != "online").then_some(s)
    });
    assert!(offline["backlog"].as_u64().unwrap() >= 250, "{offline}");

    // The hub comes back on the same address: the backlog arrives, once.
    let hub = chain.hub(sync_addr);
    let held = hub_caught_up(&hub.client, &a.client, "S001");
    assert_eq!(
        held,
        1 + 1 + 300,
        "S001's log: the registration, its own edit and 300 sales"
    );
    assert_eq!(hub_row(&hub.client, "S001").unwrap()["entries_behind"], 0);
    hub_caught_up(&hub.client, &b.client, "S002");
    assert_eq!(sync_status(&a.client)["backlog"], 0);

    // Both stores' views still equal a rebuild of their logs (own entries and the feed).
    for (node, store) in [(a, "S001"), (b, "S002")] {
        node.kill();
        let config = chain.dir.path().join(store).join("node.toml");
        let verify = std::process::Command::new(node_bin())
            .args(["verify", "--config"])
            .arg(&config)
            .output()
            .unwrap();
        assert!(
            verify.status.success(),
            "{store}: {}",
            String::from_utf8_lossy(&verify.stdout)
        );
    }
}

#[test]
fn certificates_that_should_not_get_in_do_not() {
    let chain = Chain::new();
    let hub = chain.hub("127.0.0.1:0".parse().unwrap());

    // A certificate from another CA.
    let rogue_pki = chain.dir.path().join("rogue-pki");
    ops::pki::init(&rogue_pki, &["hub"]).unwrap();
    let rogue_out = chain.dir.path().join("rogue");
    let mut rogue = ops::pki::enrol(&rogue_pki, "S009", hub.sync, "hub", &rogue_out).unwrap();
    // It trusts the real hub, so only the hub's check of the client certificate stands in the way.
    std::fs::copy(chain.pki.join("ca.pem"), rogue_out.join("ca.pem")).unwrap();
    rogue.sync.as_mut().unwrap().retry_delay_ms_max = 500;
    std::fs::write(rogue_out.join("node.toml"), rogue.to_toml()).unwrap();

    // An expired certificate from the right CA.
    let expired_config = chain.enrol("S007", hub.sync);
    let (cert, key) =
        ops::pki::issue(&chain.pki, ops::pki::Role::Store { store_id: "S007" }, true).unwrap();
    std::fs::write(chain.dir.path().join("S007/store.pem"), cert).unwrap();
    std::fs::write(chain.dir.path().join("S007/store.key"), key).unwrap();

    // A genuine S003 certificate used by a node that claims to be S004.
    let impostor_config = chain.enrol("S003", hub.sync);
    let text = std::fs::read_to_string(&impostor_config)
        .unwrap()
        .replace("store_id = \"S003\"", "store_id = \"S004\"");
    std::fs::write(&impostor_config, text).unwrap();

    let nodes = [
        (
            "other CA",
            NodeProcess::spawn(node_bin(), &rogue_out.join("node.toml")),
        ),
        ("expired", NodeProcess::spawn(node_bin(), &expired_config)),
        ("impostor", NodeProcess::spawn(node_bin(), &impostor_config)),
    ];
    for (label, node) in &nodes {
        register(&node.client, "reg-x-0001", "路人", "13812349999");
        let status = eventually(20, &format!("{label} to be refused"), || {
            let s = sync_status(&node.client);
            (s["link"] == "offline" && s["last_error"].is_string()).then_some(s)
        });
        assert_eq!(status["acked_seq"], 0, "{label}: {status}");
        println!("{label}: {}", status["last_error"]);
    }
    let impostor_error = sync_status(&nodes[2].1.client)["last_error"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        impostor_error.contains("authenticated as S003") || impostor_error.contains("closed"),
        "{impostor_error}"
    );
    let listed = hub.client.get("/api/v1/stores").body;
    for store in ["S009", "S007", "S004"] {
        assert!(
            hub_row(&hub.client, store).is_none(),
            "{store} got in: {listed}"
        );
    }
    assert_eq!(
        hub_row(&hub.client, "S003")
            .and_then(|r| r["acked_seq"].as_u64())
            .unwrap_or(0),
        0
    );
}
