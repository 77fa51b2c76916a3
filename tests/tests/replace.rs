//! A store PC replaced (换机), with real processes: the store sells, its data directory is
//! lost, a new PC is enrolled for it and takes its log back from headquarters, and every sale
//! that reached headquarters is back with the same numbers; the new PC records nothing before
//! headquarters has said how far its copy goes, and a till retrying a sale made before is not
//! charged twice.
#![allow(clippy::unwrap_used, clippy::print_stdout)]

use serde_json::{Value, json};
use tests::chain::{
    Chain, hub_caught_up, log_len, quick_sale, register, settled, sync_status, top_up, wait_online,
};
use tests::{bins, eventually};

/// What the till shows of the store's day and of a member: the figures that must come back.
fn figures(c: &tests::Client, member: &str, sales: &[String]) -> Value {
    // The store's business day (Shanghai) is within a day of UTC's.
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let today = chrono::DateTime::from_timestamp(secs as i64, 0)
        .unwrap()
        .date_naive();
    let (from, to) = (today.pred_opt().unwrap(), today.succ_opt().unwrap());
    let report = c.get(&format!(
        "/api/v1/reports/sales?from={from}&to={to}&by=tender"
    ));
    let wallet = c.get(&format!("/api/v1/members/{member}/wallet"));
    let receipts: Vec<Value> = sales
        .iter()
        .map(|id| c.get(&format!("/api/v1/sales/{id}")).body)
        .collect();
    json!({"report": report.body, "wallet": wallet.body, "sales": receipts})
}

#[test]
fn a_new_pc_for_a_store_takes_its_log_back_from_headquarters_and_sells_on() {
    let chain = Chain::new(bins!());
    let hub = chain.hub("127.0.0.1:0".parse().unwrap());
    chain.enrol("S001", hub.sync);
    chain.enrol("S002", hub.sync);
    let (a, b) = (chain.node("S001"), chain.node("S002"));
    wait_online(&[&a.client, &b.client]);

    // S001 registers a member and sells, in cash and from her stored value; S002 registers
    // another, so the feed interleaves other stores' entries with S001's.
    let member = register(&a.client, "register-1", "王芳", "13800000001");
    top_up(&a.client, "top-up-1", &member, "200.00");
    register(&b.client, "register-2", "李雷", "13800000002");
    let mut sales = Vec::new();
    for n in 0..4 {
        let paid_by = (n % 2 == 1).then_some(member.as_str());
        let answer = quick_sale(&a.client, &format!("sale-{n:04}"), "12.50", paid_by);
        assert_eq!(answer.status, 201, "{:?}", answer.body);
        sales.push(answer.body["sale_id"].as_str().unwrap().to_owned());
    }
    let written = settled(&hub.client, &a.client, "S001");
    let before = figures(&a.client, &member, &sales);

    // The PC dies with its disk; a new one is enrolled for the store.
    a.kill();
    std::fs::remove_dir_all(chain.store_data("S001")).unwrap();
    let config = chain.enrol("S001", hub.sync);
    let (code, out) = tests::run_to_end(
        &bins!().node,
        &["replace".as_ref(), "--config".as_ref(), config.as_os_str()],
    );
    assert_eq!(code, Some(0), "{out}");
    let a = chain.node("S001");
    eventually(30, "the new PC to take the store's log back", || {
        let status = sync_status(&a.client);
        (status["restore_to"].is_null() && log_len(&a.client) == written).then_some(())
    });
    assert_eq!(figures(&a.client, &member, &sales), before);

    // A till retrying a sale made before the PC died is not charged again.
    let retried = quick_sale(&a.client, "sale-0001", "12.50", Some(&member));
    assert_eq!(retried.status, 409, "{:?}", retried.body);
    assert_eq!(retried.code(), "recorded_before_restore");
    // The store sells on from where its log ends, and headquarters takes it.
    let next = quick_sale(&a.client, "sale-after", "8.00", Some(&member));
    assert_eq!(next.status, 201, "{:?}", next.body);
    assert_eq!(next.body["seq"].as_u64(), Some(written + 1));
    settled(&hub.client, &a.client, "S001");

    a.kill();
    b.kill();
    hub.kill();
    chain.verify("S001");
    chain.assert_hub_holds_store_log("S001");
}

#[test]
fn a_replaced_pc_started_offline_records_nothing_until_headquarters_answers() {
    let chain = Chain::new(bins!());
    let hub = chain.hub("127.0.0.1:0".parse().unwrap());
    let sync = hub.sync;
    chain.enrol("S001", sync);
    let a = chain.node("S001");
    wait_online(&[&a.client]);
    for n in 0..3 {
        assert_eq!(
            quick_sale(&a.client, &format!("sale-{n:04}"), "5.00", None).status,
            201
        );
    }
    let written = hub_caught_up(&hub.client, &a.client, "S001", 20);
    a.kill();
    hub.kill();

    std::fs::remove_dir_all(chain.store_data("S001")).unwrap();
    let config = chain.enrol("S001", sync);
    let (code, out) = tests::run_to_end(
        &bins!().node,
        &["replace".as_ref(), "--config".as_ref(), config.as_os_str()],
    );
    assert_eq!(code, Some(0), "{out}");
    let a = chain.node("S001");
    // Headquarters is down: the new PC would number its first sale 1, which headquarters holds.
    let refused = quick_sale(&a.client, "offline-0001", "5.00", None);
    assert_eq!(refused.status, 503, "{:?}", refused.body);
    assert_eq!(refused.code(), "store_restoring");
    assert_eq!(log_len(&a.client), 0);
    assert_eq!(sync_status(&a.client)["restore_to"], json!(u64::MAX));

    let hub = chain.hub(sync);
    eventually(30, "the new PC to take the store's log back", || {
        (sync_status(&a.client)["restore_to"].is_null() && log_len(&a.client) == written)
            .then_some(())
    });
    let sold = quick_sale(&a.client, "offline-0001", "5.00", None);
    assert_eq!(sold.status, 201, "{:?}", sold.body);
    assert_eq!(sold.body["seq"].as_u64(), Some(written + 1));
    hub_caught_up(&hub.client, &a.client, "S001", 20);
    a.kill();
    hub.kill();
    chain.verify("S001");
    chain.assert_hub_holds_store_log("S001");
}
