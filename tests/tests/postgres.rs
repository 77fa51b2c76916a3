//! Headquarters on PostgreSQL, with real processes: stores sync to a hub whose state is in a
//! PostgreSQL server of its own (Debian's package), members register and pay across stores
//! through the rights bank, the hub is killed and started again on the same database, and
//! `hq verify` checks what the database holds. (`TEST_HUB_STORE=postgres` runs every chain of
//! the end-to-end suite this way.)
#![allow(clippy::unwrap_used, clippy::print_stdout)]

use serde_json::json;
use tests::chain::{Chain, hub_caught_up, register, sell, top_up, wait_online};
use tests::{bins, eventually};

#[test]
fn headquarters_on_postgres_keeps_every_sale_member_and_payment_through_a_kill() {
    let chain = Chain::on_postgres(bins!());
    let hub = chain.hub("127.0.0.1:0".parse().unwrap());
    chain.enrol("S001", hub.sync);
    chain.enrol("S002", hub.sync);
    let (a, b) = (chain.node("S001"), chain.node("S002"));
    wait_online(&[&a.client, &b.client]);

    // A member registered and topped up at S001 pays at S002: headquarters grants the rights.
    let member = register(&a.client, "pg-reg-1", "王芳", "13912345678");
    top_up(&a.client, "pg-top-1", &member, "100.00");
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
    let expected: Vec<String> = report["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            format!(
                "{}|{}|{}",
                r["store"].as_str().unwrap(),
                r["sales"],
                r["net"]["amount"].as_str().unwrap()
            )
        })
        .collect();
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

    drop(hub);
    drop(a);
    drop(b);
    chain.verify_hub();
    assert_eq!(chain.assert_hub_holds_store_log("S001"), held as usize);
}
