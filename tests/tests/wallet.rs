//! Money that is never spent twice, with real processes over loopback: a member tops up at one
//! store and pays at another through headquarters (a recall and a grant), every store keeps
//! taking what it holds while the hub is down, and no store can take what it does not hold.
#![allow(clippy::unwrap_used, clippy::print_stdout)]

use serde_json::{Value, json};
use tests::chain::{Chain, register, wait_online};
use tests::{Client, bins, eventually};

fn pay(c: &Client, key: &str, member: &str, amount: &str) -> (u16, Value) {
    let body = json!({
        "member_id": member,
        "amount": {"amount": amount},
        "pay_with": "stored_value",
    });
    let answer = c.post("/api/v1/checkouts/quick", Some(key), &body.to_string());
    (answer.status, answer.body)
}

fn wallet(c: &Client, member: &str) -> Value {
    c.get(&format!("/api/v1/members/{member}/wallet")).body
}

#[test]
fn a_member_tops_up_at_one_store_and_pays_at_another_never_twice() {
    let chain = Chain::new(bins!());
    let hub = chain.hub("127.0.0.1:0".parse().unwrap());
    chain.enrol("S001", hub.sync);
    chain.enrol("S002", hub.sync);
    let (a, b) = (chain.node("S001"), chain.node("S002"));
    wait_online(&[&a.client, &b.client]);

    let member = register(&a.client, "reg-a-0001", "李四", "13912340001");
    let topped = a.client.post(
        &format!("/api/v1/members/{member}/top-ups"),
        Some("topup-a-0001"),
        &json!({"amount": {"amount": "100.00"}}).to_string(),
    );
    assert_eq!(topped.status, 201, "{:?}", topped.body);
    assert_eq!(
        topped.body["stored_value"]["spendable_here"]["amount"],
        "100.00"
    );

    // S002 learns the balance through the feed but holds none of it.
    let seen = eventually(20, "the top-up at S002", || {
        let w = wallet(&b.client, &member);
        (w["stored_value"]["total"]["amount"] == "100.00").then_some(w)
    });
    assert_eq!(seen["stored_value"]["spendable_here"]["amount"], "0.00");

    // Paying 30 at S002: headquarters recalls from S001 and grants to S002.
    let (status, sale) = pay(&b.client, "pay-b-0001", &member, "30.00");
    assert_eq!(status, 201, "{sale:?}");
    assert_eq!(sale["tenders"][0]["kind"], "stored_value");
    assert_eq!(sale["member_stored_value"]["amount"], "70.00");
    // A retry of the same request is the same sale, not a second payment.
    let (again, replay) = pay(&b.client, "pay-b-0001", &member, "30.00");
    assert_eq!((again, &replay["sale_id"]), (201, &sale["sale_id"]));

    // More than the balance is refused everywhere, and changes nothing.
    let (status, refused) = pay(&b.client, "pay-b-0002", &member, "70.01");
    assert_eq!(
        (status, refused["code"].as_str()),
        (422, Some("insufficient_balance"))
    );

    // Every replica converges on 70.00, and the hub agrees.
    for (label, node) in [("S001", &a), ("S002", &b)] {
        eventually(20, &format!("the balance at {label}"), || {
            let w = wallet(&node.client, &member);
            (w["stored_value"]["total"]["amount"] == "70.00").then_some(())
        });
    }
    let at_hq = eventually(20, "the balance at the hub", || {
        let w = hub
            .client
            .get(&format!("/api/v1/members/{member}/wallet"))
            .body;
        (w["stored_value"]["total"]["amount"] == "70.00").then_some(w)
    });
    println!("hub wallet: {at_hq}");
    // Settlement: S001 took the cash, S002 handed over the goods, so S001 owes S002.
    let settled = hub
        .client
        .get("/api/v1/settlement?from=2000-01-01&to=2100-12-31")
        .body;
    assert_eq!(settled["owed"][0]["payer"], "S001", "{settled}");
    assert_eq!(settled["owed"][0]["payee"], "S002");
    assert_eq!(settled["owed"][0]["principal"]["amount"], "30.00");
    let bad = hub
        .client
        .get("/api/v1/settlement?from=2026-12-01&to=2026-11-01");
    assert_eq!(bad.body["code"], "invalid_query");
    let owed = hub.client.get("/api/v1/liabilities").body;
    assert_eq!(owed["stored_value"]["total"]["amount"], "70.00", "{owed}");

    // The hub goes down. S001 spends what it holds, offline; S002 holds nothing and says so.
    hub.kill();
    let spendable = wallet(&a.client, &member)["stored_value"]["spendable_here"]["amount"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, offline) = pay(&a.client, "pay-a-0001", &member, &spendable);
    assert_eq!(
        status, 201,
        "S001 spends what it holds offline: {offline:?}"
    );
    let (status, elsewhere) = pay(&b.client, "pay-b-0003", &member, "0.01");
    assert_ne!(
        status, 201,
        "S002 cannot spend rights it does not hold: {elsewhere:?}"
    );
    assert!(
        ["rights_elsewhere", "insufficient_balance"].contains(&elsewhere["code"].as_str().unwrap()),
        "{elsewhere:?}"
    );
    a.kill();
    b.kill();
    chain.verify("S001");
    chain.verify("S002");
    chain.verify_hub();
}
