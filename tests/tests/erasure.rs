//! 被遗忘权 with real processes: headquarters erases a member on request, and afterwards no file
//! of the hub's or any store's data directory holds their phone or name — not the logs, the
//! views, the indexes, the request records or sled's segments — while every hash chain still
//! verifies and their sales stay in the books.
#![allow(clippy::unwrap_used)]

use serde_json::json;
use tests::chain::{Chain, wait_online};
use tests::{bins, eventually};

const PHONE: &str = "13987650001";
const NAME: &str = "欧阳娜娜";

/// Every file under `dir` whose bytes hold `needle`.
fn files_holding(dir: &std::path::Path, needle: &[u8]) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if let Ok(bytes) = std::fs::read(&path)
                && bytes.windows(needle.len()).any(|w| w == needle)
            {
                found.push(path.display().to_string());
            }
        }
    }
    found
}

#[test]
fn an_erased_members_phone_and_name_are_in_no_file_of_any_replica() {
    let chain = Chain::new(bins!());
    let hub = chain.hub("127.0.0.1:0".parse().unwrap());
    chain.enrol("S001", hub.sync);
    chain.enrol("S002", hub.sync);
    let a = chain.node("S001");
    let b = chain.node("S002");
    wait_online(&[&a.client, &b.client]);
    let member = tests::chain::register(&a.client, "reg-a-0001", NAME, PHONE);
    let path = format!("/api/v1/members/{member}");
    eventually(30, "the member at S002", || {
        (b.client.get(&path).status == 200).then_some(())
    });
    // Another store edits them, and they spend stored value there.
    let edited = b.client.patch(
        &path,
        Some("edit-b-0001"),
        &json!({"notes": "喜欢乌龙茶", "tags_add": ["常客"]}).to_string(),
    );
    assert_eq!(edited.status, 200, "{:?}", edited.body);
    let topped = a.client.post(
        &format!("{path}/top-ups"),
        Some("topup-a-0001"),
        &json!({"amount": {"amount": "50.00"}}).to_string(),
    );
    assert_eq!(topped.status, 201, "{:?}", topped.body);
    let hq = &hub.client;
    // The top-up must be at headquarters before the first try to erase: before it, the
    // chain owes them nothing that headquarters knows of, and the erasure would go through.
    tests::chain::hub_caught_up(hq, &a.client, "S001", 30);
    // While the chain owes them stored value, they cannot be erased: it is refunded first.
    let owed = eventually(30, "the top-up at headquarters", || {
        let answer = hq.post(&format!("{path}/erase"), None, "");
        (answer.status == 409).then_some(answer)
    });
    assert_eq!(owed.code(), "not_erasable", "{:?}", owed.body);
    let refunded = a.client.post(
        &format!("{path}/refunds"),
        Some("refund-a-0001"),
        &json!({"amount": {"amount": "50.00"}, "reason": "会员注销"}).to_string(),
    );
    assert_eq!(refunded.status, 201, "{:?}", refunded.body);
    let sale = b.client.post(
        "/api/v1/checkouts/quick",
        Some("sale-b-0001"),
        &json!({"member_id": member, "amount": {"amount": "12.00"},
                "cash_tendered": {"amount": "20.00"}})
        .to_string(),
    );
    assert_eq!(sale.status, 201, "{:?}", sale.body);
    let erased = eventually(30, "the refund at headquarters", || {
        let answer = hq.post(&format!("{path}/erase"), None, "");
        (answer.status == 200).then_some(answer)
    });
    assert_eq!(erased.body["erased"], member.as_str());
    assert_eq!(hq.get(&path).code(), "member_not_found");
    assert_eq!(
        hq.post(&format!("{path}/erase"), None, "").code(),
        "not_erasable"
    );
    for node in [&a, &b] {
        eventually(30, "the erasure at every store", || {
            (node.client.get(&path).status == 404).then_some(())
        });
        let lookup = node
            .client
            .get(&format!("/api/v1/members/lookup?phone={PHONE}"));
        assert_eq!(lookup.status, 404, "{:?}", lookup.body);
        let search = node.client.get("/api/v1/members/search?q=9876");
        assert_eq!(search.body["members"], json!([]), "{:?}", search.body);
    }
    // Their sale stays in the store's books, under their id.
    let kept = b.client.get(&format!(
        "/api/v1/sales/{}",
        sale.body["sale_id"].as_str().unwrap()
    ));
    assert_eq!(kept.body["member_id"], member.as_str(), "{:?}", kept.body);
    drop(a);
    drop(b);
    drop(hub);
    chain.verify("S001");
    chain.verify("S002");
    chain.verify_hub();
    for dir in [
        chain.hub_data().to_path_buf(),
        chain.store_data("S001"),
        chain.store_data("S002"),
    ] {
        for needle in [PHONE.as_bytes(), NAME.as_bytes(), "乌龙茶".as_bytes()] {
            let holding = files_holding(&dir, needle);
            assert!(
                holding.is_empty(),
                "{} found in {holding:?}",
                String::from_utf8_lossy(needle)
            );
        }
    }
}
