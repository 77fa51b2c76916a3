//! 积分商城 with real processes: headquarters publishes gifts (a bad one refused, nothing
//! published); a member's points earned at S001 buy a cup off S001's shelf and, at S002, two
//! coupon gifts (S002 asks headquarters, which calls the points back from S001). Each store
//! keeps to its allotment and the member to their limit; a redemption sent twice gives one
//! gift; one above the member's points is refused. Headquarters' gift report and liabilities
//! agree with what was given; S001's till gives one from the member's page (headless
//! Chromium), and S001 still gives one with the points it holds while its link to headquarters
//! is cut.
#![allow(clippy::unwrap_used)]

use serde_json::{Value, json};
use tests::browser::{Browser, ENTER};
use tests::chain::{Chain, register, settled, wait_online};
use tests::{Client, bins, eventually};

fn redeem(node: &Client, key: &str, member: &str, gift: &str) -> tests::Answer {
    node.post(
        &format!("/api/v1/members/{member}/gifts"),
        Some(key),
        &json!({"gift": gift}).to_string(),
    )
}

fn points(answer: &tests::Answer) -> i64 {
    match answer.body["points"]["balance"].as_i64() {
        Some(points) => points,
        None => panic!("no points in {} {:?}", answer.status, answer.body),
    }
}

fn mall(cup_sku: &str) -> Value {
    json!({"gifts": [
        {"id": "cup", "name": "保温杯", "points": 200, "kind": {"goods": {"sku": cup_sku, "qty": 1}},
         "per_member": 1, "stock": 5},
        {"id": "c10", "name": "10元代金券", "points": 100, "kind": {"coupon": {"template": "T10"}},
         "per_member": 3, "stock": 10},
        {"id": "rare", "name": "限量券", "points": 10, "kind": {"coupon": {"template": "T10"}},
         "per_member": 5, "stock": 0, "stores": {"S002": 1}},
        {"id": "big", "name": "电饭煲", "points": 100000, "kind": {"coupon": {"template": "T10"}},
         "per_member": 1, "stock": 5}
    ]})
}

#[test]
fn gifts_are_given_within_stock_limit_and_points_and_show_in_the_report() {
    let chain = Chain::new(bins!());
    let hub = chain.hub("127.0.0.1:0".parse().unwrap());
    chain.enrol("S001", hub.sync);
    chain.enrol("S002", hub.sync);
    let (a, b) = (chain.node("S001"), chain.node("S002"));
    wait_online(&[&a.client, &b.client]);
    let hq = &hub.client;
    let products = json!({"changes": [
        {"product": {"sku": "CUP", "name": "保温杯", "unit": "piece", "barcodes": [],
                     "price": {"amount": "59.00"}}},
    ]});
    let published = hq.post_as(
        "/api/v1/catalogue/changes",
        Some("hq-mkt"),
        &products.to_string(),
    );
    assert_eq!(published.status, 201, "{:?}", published.body);
    let template = json!({"id": "T10", "name": "10元代金券", "per_member": 5,
        "offer": {"kind": "voucher", "value": {"amount": "10"}, "threshold": {"amount": "0"}},
        "validity": {"days": {"days": 30}}});
    let put = hq.put_as(
        "/api/v1/marketing/templates",
        "gift-template-1",
        Some("hq-mkt"),
        &template.to_string(),
    );
    assert_eq!(put.status, 201, "{:?}", put.body);
    // A gift of goods the catalogue does not have: refused with the field, nothing published.
    let bad = hq.put_as(
        "/api/v1/gifts",
        "gifts-0001",
        Some("hq-mkt"),
        &mall("NO-SUCH").to_string(),
    );
    assert_eq!(
        (bad.status, bad.body["field"].as_str()),
        (422, Some("kind")),
        "{:?}",
        bad.body
    );
    assert!(hq.get("/api/v1/gifts").body["current"].is_null());
    let good = hq.put_as(
        "/api/v1/gifts",
        "gifts-0002",
        Some("hq-mkt"),
        &mall("CUP").to_string(),
    );
    assert_eq!(good.status, 201, "{:?}", good.body);

    let member = register(&a.client, "gift-reg-0001", "冯乐", "13955556666");
    // Paid in cash: 600 points at S001.
    let sold = a.client.post(
        "/api/v1/checkouts/quick",
        Some("gift-sale-001"),
        &json!({"member_id": member, "amount": {"amount": "600.00"}}).to_string(),
    );
    assert_eq!(sold.status, 201, "{:?}", sold.body);
    let received = a.client.post(
        "/api/v1/stock/receipts",
        Some("gift-receipt-01"),
        &json!({"supplier": "厂家", "lines": [{"sku": "CUP", "qty": "3"}]}).to_string(),
    );
    assert_eq!(received.status, 201, "{:?}", received.body);
    eventually(30, "S001 to hear of the points mall", || {
        let gifts = a.client.get("/api/v1/gifts").body;
        (gifts["gifts"].as_array()?.len() == 4).then_some(())
    });

    // The cup off S001's shelf; the same request again gives nothing more; a second cup is
    // over the member's limit.
    let cup = redeem(&a.client, "gift-0000001", &member, "cup");
    assert_eq!(cup.status, 201, "{:?}", cup.body);
    assert_eq!(points(&cup), 400);
    let again = redeem(&a.client, "gift-0000001", &member, "cup");
    assert_eq!((again.status, points(&again)), (201, 400));
    assert_eq!(
        a.client.get("/api/v1/stock/CUP").body["on_hand"],
        "2",
        "one cup given"
    );
    assert_eq!(
        redeem(&a.client, "gift-0000002", &member, "cup").code(),
        "gift_limit_reached"
    );
    // None of the limited coupon is allotted to S001; a gift above the points; no such gift.
    assert_eq!(
        redeem(&a.client, "gift-0000003", &member, "rare").code(),
        "gift_unavailable"
    );
    assert_eq!(
        redeem(&a.client, "gift-0000004", &member, "big").code(),
        "insufficient_balance"
    );
    assert_eq!(
        redeem(&a.client, "gift-0000005", &member, "nope").code(),
        "gift_not_found"
    );
    let listed = a
        .client
        .get(&format!("/api/v1/gifts?member_id={member}"))
        .body;
    let cup_row = &listed["gifts"][0];
    assert_eq!(
        (cup_row["left_here"].as_u64(), cup_row["had"].as_u64()),
        (Some(4), Some(1))
    );

    // At S002 the points are S001's: headquarters calls them back for S002. The lookup has S002
    // follow the member; their wallet (the 400 points, held at S001) arrives moments later.
    eventually(30, "S002 to know the member and their points", || {
        let found = b.client.get("/api/v1/members/lookup?phone=13955556666");
        let wallet = b.client.get(&format!("/api/v1/members/{member}/wallet"));
        (found.status == 200 && wallet.body["points"]["balance"] == 400).then_some(())
    });
    let rare = redeem(&b.client, "gift-0000011", &member, "rare");
    assert_eq!(rare.status, 201, "{:?}", rare.body);
    assert_eq!(points(&rare), 390);
    assert_eq!(
        redeem(&b.client, "gift-0000012", &member, "rare").code(),
        "gift_unavailable",
        "S002's one is given"
    );
    let c10 = redeem(&b.client, "gift-0000013", &member, "c10");
    assert_eq!((c10.status, points(&c10)), (201, 290), "{:?}", c10.body);
    let coupons = b
        .client
        .get(&format!("/api/v1/members/{member}/coupons"))
        .body;
    assert_eq!(coupons["coupons"].as_array().unwrap().len(), 2);

    // Headquarters: per gift and store, and the points still owed to the member.
    let report = eventually(30, "every redemption in the report", || {
        let r = hq.get("/api/v1/reports/gifts").body;
        (r["total"]["redeemed"] == 3).then_some(r)
    });
    assert_eq!(report["total"]["points"], 310);
    let row = |gift: &str, store: &str| {
        report["rows"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["gift"] == gift && r["store"] == store)
            .cloned()
            .unwrap()
    };
    assert_eq!(
        (
            row("cup", "S001")["redeemed"].as_u64(),
            row("cup", "S001")["left"].as_u64()
        ),
        (Some(1), Some(4))
    );
    assert_eq!(row("rare", "S002")["left"], 0);
    assert_eq!(row("c10", "S002")["points"], 100);
    let csv = hq.get("/api/v1/reports/gifts?format=csv").body.to_string();
    assert!(csv.contains("礼品,名称,门店,兑换次数"), "{csv}");
    eventually(30, "the liabilities to count the points spent", || {
        (hq.get("/api/v1/liabilities").body["points"] == 290).then_some(())
    });

    // At S001's till: the member found, 积分兑换 on their page, a coupon gift for 100 points.
    let till = Browser::start();
    till.goto(&format!("{}/", a.client.base));
    till.type_into("#lookup-phone", &format!("13955556666{ENTER}"));
    till.wait_text("#member-name", 10, |t| t == "冯乐");
    till.click("#nav-member");
    till.wait_text("#gifts", 10, |t| {
        t.contains("10元代金券") && t.contains("保温杯")
    });
    till.script("window.confirm = () => true");
    till.click("#gifts tbody tr:nth-child(2) button");
    till.wait_text("#gift-error", 30, |t| t.contains("已兑换"));
    till.wait_text("#member-points", 10, |t| t == "190");
    till.script("document.getElementById('gifts').scrollIntoView()");
    till.screenshot("till-points-mall");

    // S001 cut off from headquarters gives a coupon gift with points it holds: 300 more
    // earned there, and the bank done moving rights before the link goes.
    let sold = a.client.post(
        "/api/v1/checkouts/quick",
        Some("gift-sale-002"),
        &json!({"member_id": member, "amount": {"amount": "300.00"}}).to_string(),
    );
    assert_eq!(sold.status, 201, "{:?}", sold.body);
    settled(hq, &a.client, "S001");
    let wallet = a
        .client
        .get(&format!("/api/v1/members/{member}/wallet"))
        .body;
    assert_eq!(wallet["points"]["balance"], 490);
    assert!(
        wallet["points"]["spendable_here"].as_u64().unwrap() >= 100,
        "{wallet}"
    );
    hub.kill();
    eventually(20, "S001 to see the link down", || {
        (a.client.get("/api/v1/sync").body["link"] != "online").then_some(())
    });
    let offline = redeem(&a.client, "gift-0000021", &member, "c10");
    assert_eq!(
        (offline.status, points(&offline)),
        (201, 390),
        "{:?}",
        offline.body
    );
}
