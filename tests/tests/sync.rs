//! Store ↔ headquarters sync with real processes over loopback: the member directory reaches
//! other stores, concurrent profile edits converge, every sale reaches the hub exactly once
//! through a hub crash, and certificates that should not get in do not.
#![allow(clippy::unwrap_used, clippy::print_stdout)]

use serde_json::json;
use tests::chain::{Chain, hub_caught_up, hub_row, register, sell, sync_status, wait_online};
use tests::{NodeProcess, bins, eventually};

use protocol::sync::{self, StoreMsg};

#[test]
fn members_travel_between_stores_and_sales_reach_the_hub_exactly_once() {
    let chain = Chain::new(bins!());
    let hub = chain.hub("127.0.0.1:0".parse().unwrap());
    chain.enrol("S001", hub.sync);
    chain.enrol("S002", hub.sync);
    let (a, b) = (chain.node("S001"), chain.node("S002"));
    wait_online(&[&a.client, &b.client]);

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

    // Headquarters' directory converges too, with the phone masked.
    let at_hq = eventually(20, "edits to converge at the hub", || {
        let m = hub.client.get(&path).body;
        (m["name"] == "张三丰" && m["notes"] == "喜欢绿茶" && m["tags"] == json!(["tea"]))
            .then_some(m)
    });
    assert_eq!(at_hq["phone_masked"], "138****0001");
    let looked_up = hub.client.get("/api/v1/members/lookup?phone=13812340001");
    assert_eq!(looked_up.body["member_id"], member.as_str());
    assert_eq!(
        hub.client.get("/api/v1/members/lookup?phone=12345").body["code"],
        "invalid_phone"
    );

    // Sales reach the hub; then the hub dies and the stores keep selling and looking up.
    sell(&a.client, "sale-a", 50);
    hub_caught_up(&hub.client, &a.client, "S001", 30);
    let sync_addr = hub.sync;
    hub.kill();
    sell(&a.client, "sale-a-offline", 250);
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
    let held = hub_caught_up(&hub.client, &a.client, "S001", 30);
    assert_eq!(
        held,
        1 + 1 + 300,
        "S001's log: the registration, its own edit and 300 sales"
    );
    assert_eq!(hub_row(&hub.client, "S001").unwrap()["entries_behind"], 0);
    hub_caught_up(&hub.client, &b.client, "S002", 30);
    // The hub shows what it acknowledged as soon as it is durable; the store's backlog drops
    // when the acknowledgement arrives a moment later.
    eventually(10, "S001's backlog to empty", || {
        (sync_status(&a.client)["backlog"] == 0).then_some(())
    });

    a.kill();
    b.kill();
    hub.kill();
    for store in ["S001", "S002"] {
        chain.verify(store);
        chain.assert_hub_holds_store_log(store);
    }
    chain.verify_hub();
}

#[test]
fn certificates_that_should_not_get_in_do_not() {
    let chain = Chain::new(bins!());
    let hub = chain.hub("127.0.0.1:0".parse().unwrap());

    // A certificate from another CA, on a node that trusts the real hub: only the hub's check of
    // the client certificate stands in the way.
    let rogue_pki = chain.dir.path().join("rogue-pki");
    ops::pki::init(&rogue_pki, &["hub"]).unwrap();
    let rogue_out = chain.dir.path().join("rogue");
    let mut rogue = ops::pki::enrol(&rogue_pki, "S009", hub.sync, "hub", &rogue_out).unwrap();
    std::fs::copy(chain.pki.join("ca.pem"), rogue_out.join("ca.pem")).unwrap();
    rogue.sync.as_mut().unwrap().retry_delay_ms_max = 500;
    rogue.open_before_logins = true;
    std::fs::write(rogue_out.join("node.toml"), rogue.to_toml()).unwrap();

    // An expired certificate from the right CA.
    let expired_config = chain.enrol("S007", hub.sync);
    let (cert, key) = ops::pki::issue(
        &chain.pki,
        ops::pki::Role::Store { store_id: "S007" },
        ops::pki::Lifetime::Expired,
    )
    .unwrap();
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
            NodeProcess::spawn(&chain.bins.node, &rogue_out.join("node.toml")),
            "BadSignature",
        ),
        (
            "expired",
            NodeProcess::spawn(&chain.bins.node, &expired_config),
            "expired",
        ),
        (
            "impostor",
            NodeProcess::spawn(&chain.bins.node, &impostor_config),
            "authenticated as S003",
        ),
    ];
    for (label, node, reason) in &nodes {
        register(&node.client, "reg-x-0001", "路人", "13812349999");
        let status = eventually(20, &format!("{label} to be refused"), || {
            let s = sync_status(&node.client);
            let error = s["last_error"].as_str().unwrap_or("");
            (s["link"] != "online" && error.contains(reason)).then_some(s)
        });
        assert_eq!(status["acked_seq"], 0, "{label}: {status}");
        println!("{label}: {}", status["last_error"]);
    }
    for store in ["S009", "S007", "S004"] {
        assert!(hub_row(&hub.client, store).is_none(), "{store} got in");
    }
    assert_eq!(
        hub_row(&hub.client, "S003")
            .and_then(|r| r["acked_seq"].as_u64())
            .unwrap_or(0),
        0
    );
}

/// Sends raw frames as an enrolled store and returns the close code the hub answers with.
fn hub_closes_with(sync_config: &node::config::SyncConfig, frames: Vec<Vec<u8>>) -> u64 {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let mut endpoint = quinn::Endpoint::client("127.0.0.1:0".parse().unwrap()).unwrap();
        endpoint.set_default_client_config(node::uplink::client_config(sync_config).unwrap());
        let connection = endpoint
            .connect(sync_config.hub, "hub")
            .unwrap()
            .await
            .unwrap();
        let (mut send, _recv) = connection.open_bi().await.unwrap();
        for frame in frames {
            if send.write_all(&frame).await.is_err() {
                break;
            }
        }
        match connection.closed().await {
            quinn::ConnectionError::ApplicationClosed(close) => close.error_code.into_inner(),
            other => panic!("unexpected end: {other}"),
        }
    })
}

#[test]
fn malformed_and_oversized_messages_close_the_session_and_change_nothing() {
    let chain = Chain::new(bins!());
    let hub = chain.hub("127.0.0.1:0".parse().unwrap());
    let config_path = chain.enrol("S001", hub.sync);
    let sync_config = node::Config::load(&config_path).unwrap().sync.unwrap();
    let hello = sync::encode_frame(&StoreMsg::Hello {
        versions: vec![1],
        store: protocol::StoreId::parse("S001").unwrap(),
        log_len: 1,
        feed_applied: 0,
    });
    let garbage_entry = sync::encode_frame(&StoreMsg::Push {
        log_len: 1,
        entries: vec![vec![1, 2, 3]],
    });
    let cases = [
        ("garbage frame", vec![vec![0, 0, 0, 3, 0xff, 0xff, 0xff]], 3),
        ("oversized frame", vec![vec![0xff, 0xff, 0xff, 0xff]], 3),
        ("push before hello", vec![garbage_entry.clone()], 3),
        ("undecodable entry", vec![hello.clone(), garbage_entry], 4),
        (
            "newer protocol only",
            vec![sync::encode_frame(&StoreMsg::Hello {
                versions: vec![99],
                store: protocol::StoreId::parse("S001").unwrap(),
                log_len: 0,
                feed_applied: 0,
            })],
            1,
        ),
    ];
    for (label, frames, code) in cases {
        assert_eq!(hub_closes_with(&sync_config, frames), code, "{label}");
    }
    assert_eq!(
        hub_row(&hub.client, "S001")
            .and_then(|r| r["acked_seq"].as_u64())
            .unwrap_or(0),
        0
    );
    // The store itself then syncs normally: nothing was corrupted.
    let a = chain.node("S001");
    register(&a.client, "reg-a-0001", "正常", "13812340003");
    hub_caught_up(&hub.client, &a.client, "S001", 30);
}
