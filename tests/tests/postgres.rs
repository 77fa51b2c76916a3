//! Headquarters on PostgreSQL, with real processes: stores sync to a hub whose state is in a
//! PostgreSQL server of its own (Debian's package), members register and pay across stores
//! through the rights bank, the hub is killed and started again on the same database, and
//! `hq verify` checks what the database holds. (`TEST_HUB_STORE=postgres` runs every chain of
//! the end-to-end suite this way.)
#![allow(clippy::unwrap_used, clippy::print_stdout)]

use serde_json::json;
use tests::chain::{Chain, hub_caught_up, hub_row, register, sell, settled, top_up, wait_online};
use tests::{NodeProcess, StandbyHub, bins, eventually};

/// S001 and S002 enrolled at `hub` and online, and a member registered at S001 (`phone`) with
/// 100.00 topped up there.
fn two_stores_and_a_member(
    chain: &Chain,
    hub: std::net::SocketAddr,
    phone: &str,
) -> (NodeProcess, NodeProcess, String) {
    chain.enrol("S001", hub);
    chain.enrol("S002", hub);
    let (a, b) = (chain.node("S001"), chain.node("S002"));
    wait_online(&[&a.client, &b.client]);
    let member = register(&a.client, &format!("reg-{phone}"), "王芳", phone);
    top_up(&a.client, &format!("top-{phone}"), &member, "100.00");
    (a, b, member)
}

#[test]
fn headquarters_on_postgres_keeps_every_sale_member_and_payment_through_a_kill() {
    let chain = Chain::on_postgres(bins!());
    let hub = chain.hub("127.0.0.1:0".parse().unwrap());
    // A member registered and topped up at S001 pays at S002: headquarters grants the rights.
    let (a, b, member) = two_stores_and_a_member(&chain, hub.sync, "13912345678");
    eventually(20, "the balance at S002", || {
        let w = b
            .client
            .get(&format!("/api/v1/members/{member}/wallet"))
            .body;
        (w["stored_value"]["total"]["amount"] == "100.00").then_some(())
    });
    let body = json!({
        "member_id": member,
        "amount": {"amount": "30.00"},
        "pay_with": "stored_value",
    });
    let paid = b.client.post(
        "/api/v1/checkouts/quick",
        Some("pg-pay-1"),
        &body.to_string(),
    );
    assert_eq!(paid.status, 201, "{:?}", paid.body);
    assert_eq!(paid.body["member_stored_value"]["amount"], "70.00");

    // Headquarters finds the member by phone and knows the balance.
    let found = hub.client.get("/api/v1/members/lookup?phone=13912345678");
    assert_eq!(found.body["member_id"], member.as_str(), "{:?}", found.body);
    eventually(20, "the balance at headquarters", || {
        let w = hub
            .client
            .get(&format!("/api/v1/members/{member}/wallet"))
            .body;
        (w["stored_value"]["total"]["amount"] == "70.00").then_some(())
    });

    // Killed while S001 sells; started again on the same database, it takes the rest once.
    sell(&a.client, "pg-sale", 30);
    let sync = hub.sync;
    hub.kill();
    sell(&a.client, "pg-sale-offline", 30);
    let hub = chain.hub(sync);
    let held = hub_caught_up(&hub.client, &a.client, "S001", 60);
    hub_caught_up(&hub.client, &b.client, "S002", 60);
    assert!(held >= 63, "S001's log at headquarters: {held}");
    let found = hub
        .client
        .get(&format!("/api/v1/members/{member}/wallet"))
        .body;
    assert_eq!(found["stored_value"]["total"]["amount"], "70.00");

    // A backup is the database's own: headquarters says so instead of taking one.
    let backup = hub.client.post("/api/v1/backups", None, "");
    assert_eq!(backup.status, 503, "{:?}", backup.body);
    assert!(
        backup.body["detail"]
            .as_str()
            .is_some_and(|d| d.contains("PostgreSQL")),
        "{:?}",
        backup.body
    );

    // The backups card says where headquarters' data is and which hub holds it.
    let shelf = hub.client.get("/api/v1/backups").body;
    assert_eq!(shelf["database"]["kind"], "postgres", "{shelf}");
    assert_eq!(
        shelf["database"]["epoch"], 2,
        "the second start took the lease again"
    );

    // BI tools read the `bi` schema through a login in the read-only role, and agree with
    // headquarters' own reports; they read nothing else and write nothing.
    let pg = &chain.database.as_ref().unwrap().server;
    pg.query_as("postgres", "CREATE ROLE metabase LOGIN IN ROLE hub_bi")
        .unwrap();
    let today = paid.body["business_date"].as_str().unwrap().to_owned();
    let report = hub
        .client
        .get(&format!(
            "/api/v1/reports/sales?from={today}&to={today}&by=store"
        ))
        .body;
    let expected = piped(&report["rows"], |r| {
        [
            r["store"].as_str().unwrap().to_owned(),
            r["sales"].to_string(),
            r["net"]["amount"].as_str().unwrap().to_owned(),
        ]
    });
    let bi = pg
        .query_as(
            "metabase",
            &format!(
                "SELECT store_id, sales, net FROM bi.daily_sales \
                 WHERE business_date = '{today}' ORDER BY store_id"
            ),
        )
        .unwrap();
    assert_eq!(bi, expected.join("\n"), "bi.daily_sales against {report}");
    assert_eq!(
        pg.query_as(
            "metabase",
            "SELECT stored_value, members_with_wallets FROM bi.liabilities"
        )
        .unwrap(),
        "70.00|1"
    );
    // 跨店清分: the member's prepayment at S001 spent at S002, as the settlement screen says.
    let settled = hub
        .client
        .get(&format!("/api/v1/settlement?from={today}&to={today}"))
        .body;
    let expected = piped(&settled["owed"], |r| {
        [
            r["payer"].as_str().unwrap().to_owned(),
            r["payee"].as_str().unwrap().to_owned(),
            r["principal"]["amount"].as_str().unwrap().to_owned(),
        ]
    });
    assert_eq!(expected, ["S001|S002|30.00"], "{settled}");
    let bi = pg
        .query_as(
            "metabase",
            &format!(
                "SELECT payer_store, payee_store, sum(principal) FROM bi.settlement \
                 WHERE business_date = '{today}' GROUP BY 1, 2 ORDER BY 1, 2"
            ),
        )
        .unwrap();
    assert_eq!(bi, expected.join("\n"), "bi.settlement against {settled}");
    assert_eq!(
        pg.query_as(
            "metabase",
            "SELECT phone_masked, home_store FROM bi.members"
        )
        .unwrap(),
        "139****5678|S001"
    );
    for refused in [
        "SELECT count(*) FROM members",
        "SELECT count(*) FROM store_log",
        "DELETE FROM bi_sales",
    ] {
        let err = pg.query_as("metabase", refused).unwrap_err();
        assert!(
            format!("{err:#}").contains("permission denied"),
            "{refused}: {err:#}"
        );
    }

    settle_stop_and_check(&chain, hub, a, b);
}

/// A report's rows as `psql` prints a query's, one line each with its cells joined by `|`.
fn piped(
    rows: &serde_json::Value,
    cells: impl Fn(&serde_json::Value) -> [String; 3],
) -> Vec<String> {
    rows.as_array()
        .unwrap()
        .iter()
        .map(|r| cells(r).join("|"))
        .collect()
}

/// Waits for both stores' logs to stand still at `hub` (rights move after a payment: the
/// recall's answer, the bank's placement), stops everything, and checks that the database
/// holds each store's log exactly once and its wallets are what a rebuild gives.
fn settle_stop_and_check(chain: &Chain, hub: tests::HubProcess, a: NodeProcess, b: NodeProcess) {
    settled(&hub.client, &a.client, "S001");
    settled(&hub.client, &b.client, "S002");
    drop(hub);
    drop(a);
    drop(b);
    chain.verify_hub();
    chain.assert_hub_holds_store_log("S001");
    chain.assert_hub_holds_store_log("S002");
}

/// A free UDP port on loopback (for a hub that binds only once it takes over).
fn free_udp() -> std::net::SocketAddr {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

#[test]
fn stores_carry_on_with_the_standby_hub_when_the_active_one_is_killed() {
    let chain = Chain::on_postgres(bins!());
    let (sync_a, sync_b) = (free_udp(), free_udp());
    // Two hub processes on one database: the first takes the lease, the second stands by.
    let hub_a = chain.hub_with(sync_a, |c| c.lease_secs = 2);
    let standby = StandbyHub::spawn(&chain.bins.hub, chain.hub_config(), sync_b);
    for store in ["S001", "S002"] {
        chain.enrol_with(store, sync_a, |c| {
            if let Some(sync) = &mut c.sync {
                sync.more_hubs = vec![sync_b];
            }
        });
    }
    let (a, b) = (chain.node("S001"), chain.node("S002"));
    wait_online(&[&a.client, &b.client]);
    let member = register(&a.client, "fo-reg-1", "赵敏", "13912340099");
    top_up(&a.client, "fo-top-1", &member, "100.00");
    eventually(20, "the balance at S002", || {
        let w = b
            .client
            .get(&format!("/api/v1/members/{member}/wallet"))
            .body;
        (w["stored_value"]["total"]["amount"] == "100.00").then_some(())
    });
    let pay = |key: &str, yuan: &str| {
        let body = json!({
            "member_id": member,
            "amount": {"amount": yuan},
            "pay_with": "stored_value",
        });
        b.client
            .post("/api/v1/checkouts/quick", Some(key), &body.to_string())
    };
    let paid = pay("fo-pay-1", "30.00");
    assert_eq!(paid.status, 201, "{:?}", paid.body);

    // The active hub is killed while S001 sells; the standby takes over once its lease runs
    // out, and both stores carry on with it: every sale in once, payments through it.
    let seller = a.client.clone();
    let selling = std::thread::spawn(move || sell(&seller, "fo-sale", 60));
    std::thread::sleep(std::time::Duration::from_millis(300));
    hub_a.kill();
    let hub_b = standby.active();
    selling.join().unwrap();
    for store in ["S001", "S002"] {
        eventually(60, &format!("{store} connected to the new hub"), || {
            hub_row(&hub_b.client, store)
                .is_some_and(|r| r["connected"] == true)
                .then_some(())
        });
    }
    hub_caught_up(&hub_b.client, &a.client, "S001", 60);
    hub_caught_up(&hub_b.client, &b.client, "S002", 60);
    // A top-up at S001, then a payment at S002 of more than S002 holds: the new hub recalls
    // from S001 and grants.
    top_up(&a.client, "fo-top-2", &member, "50.00");
    let paid = eventually(30, "a payment through the new hub", || {
        let answer = pay("fo-pay-2", "100.00");
        (answer.status == 201).then_some(answer.body)
    });
    assert_eq!(paid["member_stored_value"]["amount"], "20.00", "{paid}");

    // The first hub, started again, stands by: the lease is the other's now.
    let again = StandbyHub::spawn(&chain.bins.hub, chain.hub_config(), sync_a);
    std::thread::sleep(std::time::Duration::from_secs(3));
    sell(&a.client, "fo-sale-b", 10);
    hub_caught_up(&hub_b.client, &a.client, "S001", 60);
    hub_b.kill();
    let hub_a = again.active();
    settled(&hub_a.client, &a.client, "S001");
    settled(&hub_a.client, &b.client, "S002");
    let w = hub_a
        .client
        .get(&format!("/api/v1/members/{member}/wallet"))
        .body;
    assert_eq!(w["stored_value"]["total"]["amount"], "20.00", "{w}");

    drop(hub_a);
    drop(a);
    drop(b);
    // Nothing lost, nothing taken twice: the database holds each store's log exactly, and its
    // wallets are what a rebuild from the logs gives.
    chain.verify_hub();
    chain.assert_hub_holds_store_log("S001");
    chain.assert_hub_holds_store_log("S002");
}

#[test]
fn headquarters_carries_on_when_postgresql_restarts_under_load() {
    let chain = Chain::on_postgres(bins!());
    let mut hub = chain.hub("127.0.0.1:0".parse().unwrap());
    let (a, b, member) = two_stores_and_a_member(&chain, hub.sync, "13912340077");

    // Both stores sell while PostgreSQL restarts under the hub.
    let sellers: Vec<_> = [("S001", a.client.clone()), ("S002", b.client.clone())]
        .into_iter()
        .map(|(store, client)| {
            std::thread::spawn(move || sell(&client, &format!("rs-{store}"), 80))
        })
        .collect();
    std::thread::sleep(std::time::Duration::from_millis(200));
    chain.database.as_ref().unwrap().server.restart().unwrap();
    for seller in sellers {
        seller.join().unwrap();
    }

    // The same hub process carries on: it takes in the rest, and a payment at S002 needs it.
    hub_caught_up(&hub.client, &a.client, "S001", 60);
    hub_caught_up(&hub.client, &b.client, "S002", 60);
    assert!(
        hub.child.try_wait().unwrap().is_none(),
        "the hub did not stop"
    );
    let body = json!({
        "member_id": member,
        "amount": {"amount": "90.00"},
        "pay_with": "stored_value",
    });
    let paid = eventually(30, "a payment through headquarters", || {
        let answer = b.client.post(
            "/api/v1/checkouts/quick",
            Some("rs-pay-1"),
            &body.to_string(),
        );
        (answer.status == 201).then_some(answer.body)
    });
    assert_eq!(paid["member_stored_value"]["amount"], "10.00", "{paid}");
    settle_stop_and_check(&chain, hub, a, b);
}
