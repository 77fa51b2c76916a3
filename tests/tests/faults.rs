//! Sync under network and process faults, through our UDP fault proxy (there is no netem here):
//! loss, duplication and reordering; a long partition with thousands of entries of backlog; the
//! hub killed mid-batch; a store killed mid-push; a tampered entry (which the store itself now
//! refuses at start). After each, the hub holds every store entry exactly once and byte for
//! byte, and the stores' views equal a rebuild.
//!
//! Seeded: `FAULT_SEED=<n>` replays a run's fault pattern.
#![allow(clippy::unwrap_used, clippy::print_stdout)]

use protocol::entry::{Entry, Payload};
use tests::chain::{
    Chain, hub_acked, hub_caught_up, log_len, register, sell, sync_status, wait_online,
};
use tests::proxy::{FaultProxy, Faults};
use tests::{bins, eventually};

fn seed() -> u64 {
    let seed = std::env::var("FAULT_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20261123);
    println!("FAULT_SEED={seed}");
    seed
}

#[test]
fn a_lossy_duplicating_reordering_link_delivers_everything_once() {
    let chain = Chain::new(bins!());
    let hub = chain.hub("127.0.0.1:0".parse().unwrap());
    let proxy = FaultProxy::start(hub.sync, seed()).unwrap();
    proxy.set(Faults {
        drop: 0.1,
        duplicate: 0.05,
        delay_ms_max: 15,
        ..Faults::default()
    });
    chain.enrol("S001", proxy.address);
    chain.enrol("S002", proxy.address);
    let (a, b) = (chain.node("S001"), chain.node("S002"));
    wait_online(&[&a.client, &b.client]);
    register(&a.client, "reg-a-0001", "丢包", "13812340002");
    sell(&a.client, "lossy", 300);
    eventually(40, "the member at S002 over the lossy link", || {
        (b.client
            .get("/api/v1/members/lookup?phone=13812340002")
            .status
            == 200)
            .then_some(())
    });
    hub_caught_up(&hub.client, &a.client, "S001", 60);
    a.kill();
    b.kill();
    hub.kill();
    assert_eq!(chain.assert_hub_holds_store_log("S001"), 301);
    chain.verify("S001");
    chain.verify("S002");
    chain.verify_hub();
}

#[test]
fn a_long_partition_heals_and_the_backlog_arrives() {
    let chain = Chain::new(bins!());
    let hub = chain.hub("127.0.0.1:0".parse().unwrap());
    let proxy = FaultProxy::start(hub.sync, seed()).unwrap();
    chain.enrol("S001", proxy.address);
    let a = chain.node("S001");
    wait_online(&[&a.client]);
    proxy.set(Faults {
        cut: true,
        ..Faults::default()
    });
    sell(&a.client, "partition", 3_000);
    let status = eventually(30, "S001 to see the partition", || {
        let s = sync_status(&a.client);
        (s["link"] != "online").then_some(s)
    });
    assert_eq!(status["backlog"], 3_000, "{status}");
    assert_eq!(hub_acked(&hub.client, "S001"), 0);
    proxy.set(Faults::default());
    hub_caught_up(&hub.client, &a.client, "S001", 60);
    // The hub shows what it acknowledged as soon as it is durable; the store's backlog drops
    // when the acknowledgement arrives a moment later.
    eventually(10, "S001's backlog to empty", || {
        (sync_status(&a.client)["backlog"] == 0).then_some(())
    });
    a.kill();
    hub.kill();
    assert_eq!(chain.assert_hub_holds_store_log("S001"), 3_000);
}

#[test]
fn the_hub_killed_mid_batch_and_a_store_killed_mid_push_lose_nothing() {
    let chain = Chain::new(bins!());
    let hub = chain.hub("127.0.0.1:0".parse().unwrap());
    let sync = hub.sync;
    hub.kill();
    chain.enrol("S001", sync);
    let a = chain.node("S001");
    sell(&a.client, "backlog", 4_000);

    // The hub comes up and is killed while the backlog is still arriving.
    let hub = chain.hub(sync);
    eventually(30, "the push to start", || {
        (hub_acked(&hub.client, "S001") > 0).then_some(())
    });
    let acked_before_crash = hub_acked(&hub.client, "S001");
    hub.kill();
    println!("hub killed with {acked_before_crash} of 4000 entries acknowledged");

    // Then the store is killed while pushing to the restarted hub.
    let hub = chain.hub(sync);
    eventually(30, "the push to resume", || {
        (hub_acked(&hub.client, "S001") > acked_before_crash.min(3_999)).then_some(())
    });
    a.kill();
    let a = chain.node("S001");
    assert_eq!(
        log_len(&a.client),
        4_000,
        "the store's log survived its own crash"
    );
    hub_caught_up(&hub.client, &a.client, "S001", 60);
    a.kill();
    hub.kill();
    assert_eq!(chain.assert_hub_holds_store_log("S001"), 4_000);
    chain.verify("S001");
}

#[test]
fn a_tampered_entry_is_refused_and_nothing_after_it_is_taken() {
    let chain = Chain::new(bins!());
    let hub = chain.hub("127.0.0.1:0".parse().unwrap());
    let proxy = FaultProxy::start(hub.sync, seed()).unwrap();
    chain.enrol("S001", proxy.address);
    let a = chain.node("S001");
    sell(&a.client, "honest", 5);
    hub_caught_up(&hub.client, &a.client, "S001", 30);
    proxy.set(Faults {
        cut: true,
        ..Faults::default()
    });
    sell(&a.client, "later", 5);
    a.kill();

    // Someone edits sale 7 on the store's disk (and leaves the chain as it was).
    {
        use node::store::Store;
        let store = node::store::SledStore::open(&chain.store_data("S001")).unwrap();
        let s001 = protocol::StoreId::parse("S001").unwrap();
        let key = node::views::keys::log(&s001, 7);
        let mut entry = Entry::decode(&store.get(&key).unwrap().unwrap()).unwrap();
        let Payload::Sale { sale, .. } = &mut entry.payload else {
            panic!("entry 7 is not a sale")
        };
        sale.amount.0 = 1;
        let mut batch = node::store::Batch::default();
        batch.put(key, entry.encode());
        store.apply(batch).unwrap();
        store.flush().unwrap();
    }
    proxy.set(Faults::default());
    // The store finds the break itself at start (entry 8 no longer links to the edited 7) and
    // refuses to serve or push anything (`node::integrity`); the hub keeps what it had.
    let config = chain.dir.path().join("S001").join("node.toml");
    let args = [
        "run",
        "--config",
        config.to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
    ];
    let args: Vec<_> = args.iter().map(std::ffi::OsStr::new).collect();
    let (code, stderr) = tests::run_to_end(&chain.bins.node, &args);
    println!("refused: {stderr}");
    assert_eq!(code, Some(node::cli::EXIT_DAMAGED_STORE.into()), "{stderr}");
    assert!(stderr.contains("breaks at entry 8"), "{stderr}");
    assert_eq!(hub_acked(&hub.client, "S001"), 5);
}
