//! The routed feed with real processes: a store holds every member's listing (会员名录) but the
//! profile and wallet only of the members it has met. One that first meets a member while cut
//! off finds them, sells to them for cash, and takes none of their stored value (their payment
//! password was set at another store), nor changes their profile; back online, their history
//! arrives once, with the whole profile, and they pay there.
#![allow(clippy::unwrap_used, clippy::print_stdout)]

use serde_json::{Value, json};
use tests::chain::{Chain, register, set_password, top_up, wait_online};
use tests::{Client, bins, eventually};

fn pay(c: &Client, key: &str, member: &str, password: &str) -> (u16, Value) {
    let body = json!({
        "member_id": member,
        "amount": {"amount": "10.00"},
        "pay_with": "stored_value",
        "password": password,
    });
    let answer = c.post("/api/v1/checkouts/quick", Some(key), &body.to_string());
    (answer.status, answer.body)
}

#[test]
fn a_store_that_first_meets_a_member_while_cut_off_takes_their_stored_value_only_once_back() {
    let chain = Chain::new(bins!());
    let hub = chain.hub("127.0.0.1:0".parse().unwrap());
    chain.enrol("S001", hub.sync);
    let proxy = tests::proxy::FaultProxy::start(hub.sync, 25).unwrap();
    chain.enrol("S002", proxy.address);
    let (a, b) = (chain.node("S001"), chain.node("S002"));
    wait_online(&[&a.client, &b.client]);

    let member = register(&a.client, "reg-a-0001", "吴九", "13912340009");
    top_up(&a.client, "topup-a-0001", &member, "100.00");
    set_password(&a.client, "pw-a-0001", &member, "246810");
    let noted = a.client.patch(
        &format!("/api/v1/members/{member}"),
        Some("edit-a-0001"),
        &json!({"notes": "喜欢绿茶"}).to_string(),
    );
    assert_eq!(noted.status, 200, "{:?}", noted.body);
    // The directory reaches S002 (a search does not meet the member: nothing is followed).
    eventually(30, "the member in S002's directory", || {
        let found = b.client.get("/api/v1/members/search?q=0009").body;
        (found["members"].as_array().is_some_and(|m| !m.is_empty())).then_some(())
    });
    // Headquarters' search says who holds the member whole: S001, which registered them.
    let whole_at = || {
        let found = hub.client.get("/api/v1/members/search?q=0009").body;
        found["members"][0]["whole_at"].clone()
    };
    eventually(30, "S001 to follow the member at headquarters", || {
        (whole_at() == json!(["S001"])).then_some(())
    });
    proxy.set(tests::proxy::Faults {
        cut: true,
        ..Default::default()
    });
    eventually(30, "S002 to see the link down", || {
        (b.client.get("/api/v1/sync").body["link"] != "online").then_some(())
    });

    // Cut off, S002 finds the member by phone (their listing: no notes) and sells to them
    // for cash; their profile is not changed here until S002 holds it whole.
    let found = b.client.get("/api/v1/members/lookup?phone=13912340009");
    assert_eq!(found.status, 200, "{:?}", found.body);
    let listed = b.client.get(&format!("/api/v1/members/{member}")).body;
    assert_eq!(
        (&listed["name"], &listed["notes"]),
        (&json!("吴九"), &json!("")),
        "{listed}"
    );
    let edit = json!({"tags_add": ["常客"]}).to_string();
    let refused = b.client.patch(
        &format!("/api/v1/members/{member}"),
        Some("edit-b-0001"),
        &edit,
    );
    assert_eq!(refused.code(), "profile_not_here", "{:?}", refused.body);
    let wallet = b
        .client
        .get(&format!("/api/v1/members/{member}/wallet"))
        .body;
    assert_eq!(wallet["whole"], false, "{wallet}");
    let (status, refused) = pay(&b.client, "pay-b-0001", &member, "246810");
    assert_eq!(
        (status, refused["code"].as_str()),
        (409, Some("member_not_here")),
        "{refused:?}"
    );
    let cash = b.client.post(
        "/api/v1/checkouts/quick",
        Some("cash-b-0001"),
        &json!({"member_id": member, "amount": {"amount": "30.00"},
                "cash_tendered": {"amount": "50.00"}})
        .to_string(),
    );
    assert_eq!(cash.status, 201, "{:?}", cash.body);

    // Back online: the member's history arrives once, and with it the password set at S001.
    proxy.set(tests::proxy::Faults::default());
    let wallet = eventually(30, "the member's history at S002", || {
        let w = b
            .client
            .get(&format!("/api/v1/members/{member}/wallet"))
            .body;
        (w["whole"] == true).then_some(w)
    });
    assert_eq!(
        wallet["stored_value"]["total"]["amount"], "100.00",
        "{wallet}"
    );
    assert_eq!(wallet["password_set"], true, "{wallet}");
    let (status, refused) = pay(&b.client, "pay-b-0002", &member, "000000");
    assert_eq!(
        (status, refused["code"].as_str()),
        (401, Some("password_wrong")),
        "{refused:?}"
    );
    let (status, sale) = pay(&b.client, "pay-b-0003", &member, "246810");
    assert_eq!(status, 201, "{sale:?}");
    assert_eq!(whole_at(), json!(["S001", "S002"]));
    // The whole profile came with the history: the notes, and an edit here.
    let whole = b.client.get(&format!("/api/v1/members/{member}")).body;
    assert_eq!(whole["notes"], "喜欢绿茶", "{whole}");
    let edited = b.client.patch(
        &format!("/api/v1/members/{member}"),
        Some("edit-b-0002"),
        &edit,
    );
    assert_eq!(edited.status, 200, "{:?}", edited.body);
    eventually(30, "S002's edit at S001", || {
        let m = a.client.get(&format!("/api/v1/members/{member}")).body;
        (m["tags"] == json!(["常客"]) && m["notes"] == "喜欢绿茶").then_some(())
    });
    hub.kill();
    a.kill();
    b.kill();
    chain.verify("S001");
    chain.verify("S002");
}
