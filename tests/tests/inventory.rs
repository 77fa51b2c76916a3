//! Inventory with real processes over loopback: headquarters publishes the catalogue, a store
//! receives goods and counts them while it keeps moving stock, and a transfer completes while
//! the source and the destination take turns being cut off (each behind its own fault proxy).
#![allow(clippy::unwrap_used, clippy::print_stdout)]

use serde_json::{Value, json};
use tests::chain::{Chain, wait_online};
use tests::proxy::{FaultProxy, Faults};
use tests::{Client, bins, eventually};

fn cut(proxy: &FaultProxy, cut: bool) {
    proxy.set(Faults {
        cut,
        ..Faults::default()
    });
}

fn on_hand(c: &Client, sku: &str) -> String {
    c.get(&format!("/api/v1/stock/{sku}")).body["on_hand"]
        .as_str()
        .unwrap_or("?")
        .to_owned()
}

fn transfer_state(c: &Client, id: &str) -> Value {
    c.get(&format!("/api/v1/transfers/{id}")).body["state"].clone()
}

/// A chain of headquarters and two stores, each store behind its own fault proxy (S002 gives
/// members of the standard tier 10% off), with the catalogue published: A1 (a bottle, barcode
/// 6901234567892, 2.00; 1.80 at S002), RICE by the kilogram (4.80) and X1 without a price; and a
/// member registered at S002.
struct World {
    chain: Chain,
    hub: tests::HubProcess,
    pa: FaultProxy,
    pb: FaultProxy,
    a: tests::NodeProcess,
    b: tests::NodeProcess,
    member: String,
}

/// Publishes `changes` at headquarters as `hq-buyer`.
fn publish(hq: &Client, changes: Vec<Value>) -> tests::Answer {
    hq.post_as(
        "/api/v1/catalogue/changes",
        Some("hq-buyer"),
        &json!({ "changes": changes }).to_string(),
    )
}

fn product(sku: &str, barcode: Option<&str>, unit: &str, price: &str) -> Value {
    json!({"product": {
        "sku": sku, "name": format!("商品{sku}"), "unit": unit,
        "barcodes": barcode.into_iter().collect::<Vec<_>>(),
        "price": {"amount": price}, "low_stock": "20",
    }})
}

impl World {
    fn new() -> World {
        let chain = Chain::new(bins!());
        let hub = chain.hub("127.0.0.1:0".parse().unwrap());
        let (pa, pb) = (
            FaultProxy::start(hub.sync, 1).unwrap(),
            FaultProxy::start(hub.sync, 2).unwrap(),
        );
        chain.enrol("S001", pa.address);
        // S002 gives members of the standard tier 10% off goods that take discounts.
        let s002 = chain.enrol("S002", pb.address);
        let mut config = node::Config::load(&s002).unwrap();
        config
            .pricing
            .tier_percent_off
            .insert("standard".into(), "10".parse().unwrap());
        std::fs::write(&s002, config.to_toml()).unwrap();
        let (a, b) = (chain.node("S001"), chain.node("S002"));
        wait_online(&[&a.client, &b.client]);
        let hq = &hub.client;

        let first = publish(
            hq,
            vec![
                product("A1", Some("6901234567892"), "piece", "2.00"),
                product("RICE", None, "kg", "4.80"),
                json!({"product": {"sku": "X1", "name": "未定价商品"}}),
            ],
        );
        assert_eq!(first.status, 201, "{:?}", first.body);
        let special = publish(
            hq,
            vec![json!({"store_price": {
                "store": "S002", "sku": "A1", "price": {"amount": "1.80"}
            }})],
        );
        assert_eq!(special.body["version"], 2, "{:?}", special.body);
        for c in [&a.client, &b.client] {
            eventually(20, "the catalogue at every store", || {
                (c.get("/api/v1/catalogue").body["version"] == 2).then_some(())
            });
        }
        let member = tests::chain::register(&b.client, "reg-b-0001", "赵六", "13912340003");
        World {
            chain,
            hub,
            pa,
            pb,
            a,
            b,
            member,
        }
    }

    /// Stops every process and checks every store's and headquarters' storage.
    fn finish(self) {
        self.hub.kill();
        self.a.kill();
        self.b.kill();
        self.chain.verify("S001");
        self.chain.verify("S002");
        self.chain.verify_hub();
    }
}

/// Headquarters publishes the catalogue whole or not at all, and only headquarters: each store
/// prices a basket with its own prices before taking payment.
#[test]
fn the_catalogue_is_checked_whole_and_each_store_prices_with_its_own() {
    let w = World::new();
    let (hq, a, b, member) = (&w.hub.client, &w.a, &w.b, &w.member);
    let refused = [
        (
            vec![product("A2", Some("6901234567892"), "piece", "1.00")],
            "duplicate_barcode",
        ),
        (
            vec![
                json!({"store_price": {"store": "S001", "sku": "NOPE", "price": {"amount": "1"}}}),
            ],
            "unknown_sku",
        ),
        (
            vec![product("A3", None, "piece", "-1.00")],
            "invalid_change",
        ),
        (vec![], "invalid_change"),
        (
            vec![
                product("A4", None, "piece", "1.00"),
                product("A4", None, "piece", "2.00"),
            ],
            "invalid_change",
        ),
    ];
    for (changes, code) in refused {
        let answer = publish(hq, changes);
        assert_eq!(answer.body["code"], code, "{:?}", answer.body);
    }
    let anonymous = hq.post_as("/api/v1/catalogue/changes", None, "{\"changes\": []}");
    assert_eq!(anonymous.body["code"], "staff_required");
    let scanned = b.client.get("/api/v1/products?barcode=6901234567892").body;
    assert_eq!(scanned["sku"], "A1");
    assert_eq!(scanned["price_here"]["amount"], "1.80", "S002's own price");
    assert_eq!(
        a.client.get("/api/v1/products/A1").body["price_here"]["amount"],
        "2.00"
    );
    // The till prices a basket with this store's prices before taking payment.
    let quote = b.client.post(
        "/api/v1/checkouts/quote",
        None,
        &json!({"lines": [{"barcode": "6901234567892", "qty": "3"}, {"sku": "RICE", "qty": "1.5"}]})
            .to_string(),
    );
    assert_eq!(quote.status, 200, "{:?}", quote.body);
    assert_eq!(quote.body["lines"][0]["gross"]["amount"], "5.40");
    assert_eq!(quote.body["lines"][1]["gross"]["amount"], "7.20");
    assert_eq!(quote.body["due"]["amount"], "12.60");
    let for_member = b.client.post(
        "/api/v1/checkouts/quote",
        None,
        &json!({"member_id": member, "lines": [{"sku": "A1", "qty": "3"}]}).to_string(),
    );
    assert_eq!(
        for_member.body["lines"][0]["steps"][0]["step"], "tier",
        "{:?}",
        for_member.body
    );
    assert_eq!(for_member.body["due"]["amount"], "4.86", "5.40 less 10%");
    for (body, code) in [
        (
            json!({"lines": [{"sku": "X1", "qty": "1"}]}),
            "not_for_sale",
        ),
        (
            json!({"lines": [{"sku": "NOPE", "qty": "1"}]}),
            "unknown_sku",
        ),
        (
            json!({"lines": [{"sku": "A1", "qty": "1"}], "points": 100}),
            "insufficient_balance",
        ),
        (json!({"lines": []}), "invalid_request"),
    ] {
        let refused = b
            .client
            .post("/api/v1/checkouts/quote", None, &body.to_string());
        assert_eq!(refused.body["code"], code, "{body}: {:?}", refused.body);
    }
    // A store has no way to change prices: only headquarters writes the catalogue.
    let at_store = a
        .client
        .post("/api/v1/catalogue/changes", Some("price-0001"), "{}");
    assert_eq!(at_store.status, 404);

    w.finish();
}

/// 进货, 盘点 while goods keep moving, 报损, and 调拨 completed while the source and the
/// destination take turns being cut off; then item sales (stored value, a coupon redeemed once
/// chain-wide) and their returns at any store.
#[test]
fn stock_moves_and_a_transfer_completes_across_outages_and_sales_return_anywhere() {
    let w = World::new();
    let (hq, a, b, pa, pb) = (&w.hub.client, &w.a, &w.b, &w.pa, &w.pb);
    let member = &w.member;
    // 进货 at S001, with bad lines refused.
    let receive = |key: &str, lines: Value| {
        a.client.post(
            "/api/v1/stock/receipts",
            Some(key),
            &json!({"supplier": "农夫山泉", "lines": lines}).to_string(),
        )
    };
    let got = receive(
        "recv-0001",
        json!([{"barcode": "6901234567892", "qty": "24", "cost": {"amount": "0.90"}},
               {"sku": "RICE", "qty": "5.5"}]),
    );
    assert_eq!(got.status, 201, "{:?}", got.body);
    let again = receive(
        "recv-0001",
        json!([{"barcode": "6901234567892", "qty": "24", "cost": {"amount": "0.90"}},
               {"sku": "RICE", "qty": "5.5"}]),
    );
    assert!(
        again.replayed && again.body == got.body,
        "a replay receives nothing twice"
    );
    for (lines, code) in [
        (json!([{"sku": "A1", "qty": "-3"}]), "invalid_quantity"),
        (json!([{"sku": "A1", "qty": "1.5"}]), "invalid_quantity"),
        (json!([{"sku": "NOPE", "qty": "1"}]), "unknown_sku"),
        (
            json!([{"barcode": "6900000000000", "qty": "1"}]),
            "unknown_barcode",
        ),
    ] {
        let answer = receive("recv-bad-0001", lines);
        assert_eq!(answer.body["code"], code, "{:?}", answer.body);
    }
    assert_eq!(
        (on_hand(&a.client, "A1"), on_hand(&a.client, "RICE")),
        ("24".into(), "5.5".into())
    );

    // 盘点 while goods keep moving: opened at 24; while staff count, one is written off and one
    // sold at the till; 20 counted: the count corrects by -4 and neither the write-off nor the
    // sale is lost (24 - 1 - 1 - 4 = 18).
    let opened = a.client.post(
        "/api/v1/stocktakes",
        Some("count-0001"),
        &json!({"skus": ["A1"]}).to_string(),
    );
    assert_eq!(opened.status, 201, "{:?}", opened.body);
    let stocktake = opened.body["document"].as_str().unwrap().to_owned();
    let overlapping = a.client.post(
        "/api/v1/stocktakes",
        Some("count-0009"),
        &json!({"skus": ["RICE", "A1"]}).to_string(),
    );
    assert_eq!(
        overlapping.body["code"], "stocktake_in_progress",
        "A1 would be corrected twice"
    );
    let damaged = a.client.post(
        "/api/v1/stock/damages",
        Some("damage-0001"),
        &json!({"reason": "破损", "lines": [{"sku": "A1", "qty": "1"}]}).to_string(),
    );
    assert_eq!(damaged.status, 201, "{:?}", damaged.body);
    // More written off than is on the books: refused, nothing changes (the tester's 100,000
    // against 12 took stock to −99,988).
    let too_many = a.client.post(
        "/api/v1/stock/damages",
        Some("damage-0002"),
        &json!({"reason": "破损", "lines": [{"sku": "A1", "qty": "100000"}]}).to_string(),
    );
    assert_eq!(too_many.status, 422, "{:?}", too_many.body);
    let sold_during_count = a.client.post(
        "/api/v1/checkouts/items",
        Some("sale-during-count"),
        &json!({"lines": [{"sku": "A1", "qty": "1"}],
                "tenders": [{"kind": "cash", "tendered": {"amount": "2.00"}}]})
        .to_string(),
    );
    assert_eq!(
        sold_during_count.status, 201,
        "{:?}",
        sold_during_count.body
    );
    assert_eq!(on_hand(&a.client, "A1"), "22");
    let counted = a.client.post(
        &format!("/api/v1/stocktakes/{stocktake}/counts"),
        Some("count-0002"),
        &json!({"counts": [{"sku": "A1", "qty": "20"}]}).to_string(),
    );
    assert_eq!(counted.status, 201, "{:?}", counted.body);
    assert_eq!(on_hand(&a.client, "A1"), "18");
    let closed = a.client.post(
        &format!("/api/v1/stocktakes/{stocktake}/counts"),
        Some("count-0003"),
        &json!({"counts": [{"sku": "A1", "qty": "20"}]}).to_string(),
    );
    assert_eq!(
        closed.body["code"], "stocktake_not_found",
        "a stocktake closes once"
    );
    let alerts = a.client.get("/api/v1/stock?alerts=low").body;
    assert_eq!(
        alerts["stock"][0]["sku"], "A1",
        "18 is under the threshold of 20: {alerts}"
    );

    // 调拨: S002 asks S001 for 6 while cut off; the request waits in its log.
    cut(pb, true);
    let same = b.client.post(
        "/api/v1/transfers",
        Some("tr-bad-0001"),
        &json!({"from": "S002", "to": "S002", "lines": [{"sku": "A1", "qty": "6"}]}).to_string(),
    );
    assert_eq!(
        same.body["code"], "invalid_request",
        "to the same store: {:?}",
        same.body
    );
    let asked = b.client.post(
        "/api/v1/transfers",
        Some("transfer-0001"),
        &json!({"from": "S001", "to": "S002", "lines": [{"sku": "A1", "qty": "6"}], "note": "周末促销"}).to_string(),
    );
    assert_eq!(asked.status, 201, "{:?}", asked.body);
    let id = asked.body["id"].as_str().unwrap().to_owned();
    cut(pb, false);
    eventually(30, "the request at headquarters and at S001", || {
        (transfer_state(hq, &id) == "requested" && transfer_state(&a.client, &id) == "requested")
            .then_some(())
    });
    // S001 is cut off when headquarters approves: it cannot ship what it has not seen approved.
    cut(pa, true);
    let approved = hq.post_as(
        &format!("/api/v1/transfers/{id}/approve"),
        Some("hq-ops-1"),
        "",
    );
    assert_eq!(approved.body["state"], "approved", "{:?}", approved.body);
    let twice = hq.post_as(
        &format!("/api/v1/transfers/{id}/approve"),
        Some("hq-ops-1"),
        "",
    );
    assert_eq!(
        twice.body["code"], "transfer_not_allowed",
        "approving twice"
    );
    let early = a.client.post(
        &format!("/api/v1/transfers/{id}/ship"),
        Some("ship-0001"),
        "{}",
    );
    assert_eq!(
        early.body["code"], "transfer_not_allowed",
        "{:?}",
        early.body
    );
    cut(pa, false);
    eventually(30, "the approval at S001", || {
        (transfer_state(&a.client, &id) == "approved").then_some(())
    });
    // Now S002 is cut off while S001 ships: the goods are in transit.
    cut(pb, true);
    let shipped = a.client.post(
        &format!("/api/v1/transfers/{id}/ship"),
        Some("ship-0002"),
        "{}",
    );
    assert_eq!(shipped.body["state"], "shipped", "{:?}", shipped.body);
    assert_eq!(on_hand(&a.client, "A1"), "12");
    let in_transit = eventually(30, "goods in transit at headquarters", || {
        let s = hq.get("/api/v1/stock?sku=A1").body;
        (s["in_transit"] == "6").then_some(s)
    });
    assert_eq!(in_transit["total"], "18", "{in_transit}");
    let not_yet = b.client.post(
        &format!("/api/v1/transfers/{id}/receive"),
        Some("recv-t-0001"),
        "{}",
    );
    assert_eq!(
        not_yet.body["code"], "transfer_not_allowed",
        "S002 has not seen it shipped"
    );
    cut(pb, false);
    eventually(30, "the shipment at S002", || {
        (transfer_state(&b.client, &id) == "shipped").then_some(())
    });
    let short = json!({"lines": [{"sku": "A1", "qty": "5"}]});
    let unexplained = b.client.post(
        &format!("/api/v1/transfers/{id}/receive"),
        Some("recv-t-0002"),
        &short.to_string(),
    );
    assert_eq!(
        unexplained.body["code"], "discrepancy_required",
        "{:?}",
        unexplained.body
    );
    let explained = b.client.post(
        &format!("/api/v1/transfers/{id}/receive"),
        Some("recv-t-0003"),
        &json!({"lines": [{"sku": "A1", "qty": "5"}], "discrepancy": "少一件"}).to_string(),
    );
    assert_eq!(explained.body["state"], "received", "{:?}", explained.body);
    assert_eq!(on_hand(&b.client, "A1"), "5");

    // Headquarters sees every store at once: 12 at S001, 5 at S002, nothing in transit.
    let chain_wide = eventually(30, "the receipt at headquarters", || {
        let s = hq.get("/api/v1/stock?sku=A1").body;
        (s["total"] == "17" && s["in_transit"] == "0").then_some(s)
    });
    println!("chain-wide A1: {chain_wide}");
    let closed = hq.get(&format!("/api/v1/transfers/{id}")).body;
    assert_eq!(closed["discrepancy"], "少一件");
    assert_eq!(closed["history"].as_array().map(Vec::len), Some(4));
    // Headquarters may request a transfer itself, and reject one; bad requests change nothing.
    let hq_request =
        |body: Value| hq.post_as("/api/v1/transfers", Some("hq-ops-1"), &body.to_string());
    let unknown =
        hq_request(json!({"from": "S002", "to": "S001", "lines": [{"sku": "NOPE", "qty": "1"}]}));
    assert_eq!(unknown.body["code"], "unknown_sku", "{:?}", unknown.body);
    let itself =
        hq_request(json!({"from": "S002", "to": "S002", "lines": [{"sku": "A1", "qty": "1"}]}));
    assert_eq!(itself.body["code"], "invalid_transfer", "{:?}", itself.body);
    let back =
        hq_request(json!({"from": "S002", "to": "S001", "lines": [{"sku": "A1", "qty": "1"}]}));
    assert_eq!(back.status, 201, "{:?}", back.body);
    assert_eq!(back.body["lines"][0], json!(["A1", "1"]));
    let back_id = back.body["id"].as_str().unwrap();
    let no_reason = hq.post_as(
        &format!("/api/v1/transfers/{back_id}/reject"),
        Some("hq-ops-1"),
        "",
    );
    assert_eq!(
        no_reason.body["code"], "invalid_transfer",
        "a rejection needs a reason"
    );
    let rejected = hq.post_as(
        &format!("/api/v1/transfers/{back_id}/reject"),
        Some("hq-ops-1"),
        &json!({"reason": "总部库存充足"}).to_string(),
    );
    assert_eq!(rejected.body["state"], "rejected", "{:?}", rejected.body);
    // 商品消费 at S001: two bottles scanned, 1.00 by WeChat, 5.00 cash handed over, 2.00 back.
    let checkout = |key: &str, body: Value| {
        a.client
            .post("/api/v1/checkouts/items", Some(key), &body.to_string())
    };
    let two = json!([{"barcode": "6901234567892", "qty": "2"}]);
    let sold = checkout(
        "sale-items-0001",
        json!({"lines": two, "tenders": [
            {"kind": "wechat", "amount": {"amount": "1.00"}, "reference": "4200001234"},
            {"kind": "cash", "tendered": {"amount": "5.00"}},
        ]}),
    );
    assert_eq!(sold.status, 201, "{:?}", sold.body);
    assert_eq!(sold.body["due"]["amount"], "4.00");
    assert_eq!(sold.body["tenders"][0]["change"]["amount"], "2.00");
    assert_eq!(sold.body["tenders"][1]["reference"], "4200001234");
    assert_eq!(on_hand(&a.client, "A1"), "10");
    let sale_id = sold.body["sale_id"].as_str().unwrap().to_owned();
    assert_eq!(
        a.client.get(&format!("/api/v1/sales/{sale_id}")).body["due"]["amount"],
        "4.00"
    );
    for (body, code) in [
        (
            json!({"lines": two, "tenders": [{"kind": "card", "amount": {"amount": "3.00"}, "reference": "P1"}]}),
            "tenders_mismatch",
        ),
        (
            json!({"lines": two, "tenders": [{"kind": "card", "amount": {"amount": "5.00"}, "reference": "P1"}]}),
            "tenders_mismatch",
        ),
        (
            json!({"lines": two, "tenders": [{"kind": "cash", "tendered": {"amount": "3.99"}}]}),
            "tender_short",
        ),
        (
            json!({"lines": two, "tenders": [{"kind": "card", "amount": {"amount": "4.00"}, "reference": ""}]}),
            "invalid_request",
        ),
        (
            json!({"lines": [{"sku": "X1", "qty": "1"}], "tenders": [{"kind": "cash", "tendered": {"amount": "1"}}]}),
            "not_for_sale",
        ),
        (
            json!({"lines": two, "tenders": [{"kind": "stored_value", "amount": {"amount": "4.00"}}]}),
            "invalid_request",
        ),
    ] {
        let refused = checkout("sale-items-bad1", body.clone());
        assert_eq!(refused.body["code"], code, "{body}: {:?}", refused.body);
    }
    assert_eq!(
        on_hand(&a.client, "A1"),
        "10",
        "refused sales take nothing off the shelf"
    );
    // At S002 the member pays from stored value, with the standard tier's 10% off, and earns
    // points on what was paid.
    let topped = b.client.post(
        &format!("/api/v1/members/{member}/top-ups"),
        Some("topup-b-0001"),
        &json!({"amount": {"amount": "50.00"}}).to_string(),
    );
    assert_eq!(topped.status, 201, "{:?}", topped.body);
    let paid = b.client.post(
        "/api/v1/checkouts/items",
        Some("sale-items-0002"),
        &json!({"member_id": member, "lines": [{"sku": "A1", "qty": "3"}],
                "tenders": [{"kind": "stored_value", "amount": {"amount": "4.86"}}]})
        .to_string(),
    );
    assert_eq!(paid.status, 201, "{:?}", paid.body);
    assert_eq!(paid.body["member_stored_value"]["amount"], "45.14");
    assert_eq!(paid.body["points_earned"], 4);
    assert_eq!(paid.body["tenders"][0]["kind"], "stored_value");
    assert_eq!(on_hand(&b.client, "A1"), "2");
    eventually(30, "the sale's stock at headquarters", || {
        let s = hq.get("/api/v1/stock?sku=A1").body;
        (s["total"] == "12").then_some(())
    });
    // A coupon (满4减1) given at S001 is redeemed at S002, once in the whole chain: its one
    // use sits at S001, so S002 asks headquarters for it.
    let coupon = |body: Value| {
        a.client.post(
            &format!("/api/v1/members/{member}/coupons"),
            Some("coupon-a-0001"),
            &body.to_string(),
        )
    };
    let bad = coupon(json!({"name": "坏券", "offer": {"kind": "amount_off",
        "threshold": {"amount": "4"}, "off": {"amount": "1"}},
        "valid_from": "2100-01-02", "valid_to": "2100-01-01"}));
    assert_eq!(
        bad.status, 422,
        "a period that ends before it starts: {:?}",
        bad.body
    );
    let free = a.client.post(
        &format!("/api/v1/members/{member}/coupons"),
        Some("coupon-a-0009"),
        &json!({"name": "满5减10", "offer": {"kind": "amount_off",
            "threshold": {"amount": "5"}, "off": {"amount": "10"}},
            "valid_from": "2026-01-01", "valid_to": "2100-01-01"})
        .to_string(),
    );
    assert_eq!(
        free.status, 422,
        "满减 off more than its threshold would make a basket free: {:?}",
        free.body
    );
    let given = a.client.post(
        &format!("/api/v1/members/{member}/coupons"),
        Some("coupon-a-0002"),
        &json!({"name": "满4减1", "offer": {"kind": "amount_off",
            "threshold": {"amount": "4"}, "off": {"amount": "1"}},
            "valid_from": "2000-01-01", "valid_to": "2100-12-31"})
        .to_string(),
    );
    assert_eq!(given.status, 201, "{:?}", given.body);
    let coupon_id = eventually(20, "the coupon at S002", || {
        let list = b
            .client
            .get(&format!("/api/v1/members/{member}/coupons"))
            .body;
        list["coupons"][0]["coupon_id"].as_str().map(str::to_owned)
    });
    let with_coupon = |key: &str| {
        b.client.post(
            "/api/v1/checkouts/items",
            Some(key),
            &json!({"member_id": member, "coupon": coupon_id,
                    "lines": [{"sku": "A1", "qty": "3"}],
                    "tenders": [{"kind": "cash", "tendered": {"amount": "5.00"}}]})
            .to_string(),
        )
    };
    let redeemed = with_coupon("sale-coupon-0001");
    assert_eq!(redeemed.status, 201, "{:?}", redeemed.body);
    assert_eq!(
        redeemed.body["due"]["amount"], "3.86",
        "5.40 less 10%, less 1.00"
    );
    assert_eq!(redeemed.body["lines"][0]["steps"][1]["step"], "coupon");
    let twice = with_coupon("sale-coupon-0002");
    assert_eq!(twice.body["code"], "coupon_used", "{:?}", twice.body);
    assert_eq!(
        on_hand(&b.client, "A1"),
        "-1",
        "the shelf had more than the system knew"
    );
    let negative = b.client.get("/api/v1/stock?alerts=negative").body;
    assert_eq!(negative["stock"][0]["sku"], "A1", "{negative}");
    let low = hq.get("/api/v1/stores/S001/stock?alerts=low").body;
    assert_eq!(low["stock"][0]["on_hand"], "10", "{low}");
    item_returns(
        (&a.client, &b.client),
        member,
        (&sale_id, paid.body["sale_id"].as_str().unwrap()),
        (redeemed.body["sale_id"].as_str().unwrap(), &coupon_id),
    );
    // 畅销: headquarters' goods by SKU at S002, best first (A1 is all S002 sold by SKU, some of
    // it returned), once headquarters has every sale and return.
    let today = paid.body["business_date"].as_str().unwrap().to_owned();
    let best = eventually(30, "S002's returns at headquarters", || {
        let best = hq
            .get(&format!(
                "/api/v1/reports/sales?from={today}&to={today}&store=S002&by=sku&limit=1"
            ))
            .body;
        let returned = best["rows"][0]["returned"]["amount"]
            .as_str()
            .unwrap_or("0");
        (returned.parse::<f64>().unwrap_or(0.0) > 0.0).then_some(best)
    });
    let rows = best["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 1, "{best}");
    assert_eq!(rows[0]["sku"], "A1");
    assert!(
        rows[0]["qty"].as_str().unwrap().parse::<f64>().unwrap() >= 20.0,
        "{best}"
    );
    w.finish();
}

/// 挂单: a basket parked, recalled and paid once; another voided.
#[test]
fn held_orders_are_parked_recalled_paid_once_or_voided() {
    let w = World::new();
    held_orders(&w.a.client);
    w.finish();
}

/// 员工 and 提成 across the chain.
#[test]
fn staff_are_known_at_every_store_and_earn_commission_by_the_rules_in_force() {
    let w = World::new();
    staff_and_commissions(&w.hub.client, (&w.a.client, &w.b.client), &w.member);
    w.finish();
}

/// 报表 at headquarters.
#[test]
fn the_sales_report_moves_by_exactly_one_sale_and_its_return() {
    let w = World::new();
    sales_report(&w.hub.client, &w.b.client, &w.member);
    w.finish();
}

/// 改价 and 补录.
#[test]
fn set_amounts_and_late_sales_are_checked_and_reported_on_their_day() {
    let w = World::new();
    set_amounts_and_late_sales(&w.hub.client, &w.b.client, &w.member);
    w.finish();
}

/// 退货: part of a sale at the store that made it; a member's sale at another store, which
/// fetches the sale's return rights through headquarters; never more than was sold.
fn item_returns(
    (a, b): (&Client, &Client),
    member: &str,
    (anonymous, stored_value): (&str, &str),
    (with_coupon, coupon): (&str, &str),
) {
    let give_back = |c: &Client, sale: &str, key: &str, body: Value| {
        c.post(
            &format!("/api/v1/sales/{sale}/returns"),
            Some(key),
            &body.to_string(),
        )
    };
    // One of the two bottles sold at S001 without a member (3.00 cash, 1.00 WeChat): 2.00 back,
    // split as it was paid, and the bottle back on the shelf.
    let one = json!({"reason": "瓶身破损", "lines": [{"line": 0, "qty": "1"}]});
    let back = give_back(a, anonymous, "return-a-0001", one.clone());
    assert_eq!(back.status, 201, "{:?}", back.body);
    let ret = &back.body["returns"][0];
    assert_eq!(ret["amount"]["amount"], "2.00", "{ret}");
    assert_eq!(ret["refunds"][0]["kind"], "cash");
    assert_eq!(ret["refunds"][0]["amount"]["amount"], "1.50");
    assert_eq!(ret["refunds"][1]["kind"], "wechat");
    assert_eq!(ret["refunds"][1]["reference"], "4200001234");
    assert_eq!(back.body["returned"], json!(["1"]));
    assert_eq!(on_hand(a, "A1"), "11");
    let replayed = give_back(a, anonymous, "return-a-0001", one);
    assert_eq!(
        replayed.body, back.body,
        "a replayed return is the same return"
    );
    assert_eq!(on_hand(a, "A1"), "11");
    for (body, code) in [
        (
            json!({"reason": "x", "lines": [{"line": 0, "qty": "2"}]}),
            "return_exceeds_sale",
        ),
        (
            json!({"reason": "x", "lines": [{"line": 0, "qty": "0"}]}),
            "invalid_quantity",
        ),
        (
            json!({"reason": "x", "lines": [{"line": 0, "qty": "0.5"}]}),
            "invalid_quantity",
        ),
        (
            json!({"reason": "x", "lines": [{"line": 7, "qty": "1"}]}),
            "invalid_request",
        ),
        (json!({"reason": "x", "lines": []}), "invalid_request"),
        (
            json!({"reason": "x", "lines": [{"line": 0, "qty": 1}]}),
            "invalid_request",
        ),
    ] {
        let refused = give_back(a, anonymous, "return-a-bad1", body.clone());
        assert_eq!(refused.body["code"], code, "{body}: {:?}", refused.body);
    }
    let elsewhere = give_back(b, anonymous, "return-b-0001", json!({"reason": "x"}));
    assert_eq!(
        elsewhere.body["code"], "sale_not_found",
        "a sale without a member is known only where it was made"
    );
    assert_eq!(on_hand(a, "A1"), "11", "refused returns change nothing");
    // One of three bottles the member paid 4.86 for from stored value at S002: 1.62 back to
    // stored value, and a third of the 4 points it earned taken back (rounded down).
    let wallet = |c: &Client| c.get(&format!("/api/v1/members/{member}/wallet")).body;
    let before = wallet(b);
    let sv = give_back(
        b,
        stored_value,
        "return-b-0002",
        json!({"reason": "不想要了", "lines": [{"line": 0, "qty": "1"}]}),
    );
    assert_eq!(sv.status, 201, "{:?}", sv.body);
    let ret = &sv.body["returns"][0];
    assert_eq!(ret["refunds"][0]["kind"], "stored_value", "{ret}");
    assert_eq!(ret["refunds"][0]["amount"]["amount"], "1.62");
    assert_eq!(ret["points_taken"], 1);
    let after = wallet(b);
    let yuan = |w: &Value| {
        w["stored_value"]["total"]["amount"]
            .as_str()
            .unwrap()
            .parse::<f64>()
            .unwrap()
    };
    assert!(
        (yuan(&after) - yuan(&before) - 1.62).abs() < 0.001,
        "{before} → {after}"
    );
    // 小票 for a 58 mm printer: every line fits 32 columns (a Chinese character takes two), the
    // member's phone is masked, the return and the balance left are printed.
    let receipt = b.get(&format!("/api/v1/sales/{stored_value}/receipt?paper=58"));
    assert_eq!(receipt.status, 200);
    let text = receipt.body.as_str().unwrap().to_owned();
    println!("{text}");
    for line in text.lines() {
        let columns: usize = line.chars().map(|c| if c.is_ascii() { 1 } else { 2 }).sum();
        assert!(columns <= 32, "{line:?}");
    }
    for needle in ["储值", "退货", "储值余额", "****", "-0.54"] {
        assert!(text.contains(needle), "{needle} in {text}");
    }
    let page = b.get(&format!(
        "/api/v1/sales/{stored_value}/receipt?format=html&paper=80"
    ));
    assert!(page.body.as_str().unwrap().contains("width: 80mm"));
    let bad = b.get(&format!("/api/v1/sales/{stored_value}/receipt?paper=75"));
    assert_eq!(bad.body["code"], "invalid_query", "{:?}", bad.body);
    // The coupon sale made at S002 comes back whole at S001: S001 asks headquarters for its
    // return rights, pays back the cash, puts the goods on its own shelf and gives the coupon
    // back, which S001 can then redeem.
    eventually(30, "the coupon sale at S001", || {
        let s = a.get(&format!("/api/v1/sales/{with_coupon}"));
        (s.status == 200).then_some(())
    });
    let whole = give_back(a, with_coupon, "return-a-0002", json!({"reason": "换货"}));
    assert_eq!(whole.status, 201, "{:?}", whole.body);
    let ret = &whole.body["returns"][0];
    assert_eq!(ret["store_id"], "S001");
    assert_eq!(ret["amount"]["amount"], "3.86", "{ret}");
    assert_eq!(ret["coupon_back"], coupon);
    assert_eq!(on_hand(a, "A1"), "14");
    let again = a.post(
        "/api/v1/checkouts/items",
        Some("sale-coupon-0003"),
        &json!({"member_id": member, "coupon": coupon,
                "lines": [{"sku": "A1", "qty": "3"}],
                "tenders": [{"kind": "cash", "tendered": {"amount": "5.00"}}]})
        .to_string(),
    );
    assert_eq!(
        again.status, 201,
        "the coupon is good again: {:?}",
        again.body
    );
    // A 20-line sale made at S002 comes back whole at S001: one return token moves, however
    // many lines (an ask names at most 16 counters).
    let twenty: Vec<Value> = (0..20).map(|_| json!({"sku": "A1", "qty": "1"})).collect();
    let big = b.post(
        "/api/v1/checkouts/items",
        Some("sale-twenty-0001"),
        &json!({"member_id": member, "lines": twenty,
                "tenders": [{"kind": "cash", "tendered": {"amount": "100.00"}}]})
        .to_string(),
    );
    assert_eq!(big.status, 201, "{:?}", big.body);
    let big_id = big.body["sale_id"].as_str().unwrap().to_owned();
    eventually(30, "the 20-line sale at S001", || {
        (a.get(&format!("/api/v1/sales/{big_id}")).status == 200).then_some(())
    });
    let shelf = on_hand(a, "A1").parse::<i64>().unwrap();
    let all = give_back(a, &big_id, "return-a-0003", json!({"reason": "整单退"}));
    assert_eq!(all.status, 201, "{:?}", all.body);
    assert_eq!(
        all.body["returns"][0]["lines"].as_array().unwrap().len(),
        20
    );
    assert_eq!(on_hand(a, "A1").parse::<i64>().unwrap(), shelf + 20);
    // S002, where the sale was made, learns of the return and refuses a second one.
    eventually(30, "the return at S002", || {
        let twice = give_back(b, with_coupon, "return-b-0003", json!({"reason": "x"}));
        (twice.body["code"] == "already_returned").then_some(())
    });
}

/// 员工 and 提成: headquarters registers staff, every store refuses ids it does not know here;
/// commission rules published today apply to sales made after them; a return claws back what
/// its lines earned; a card sale earns its seller a fixed amount.
fn staff_and_commissions(hq: &Client, (a, b): (&Client, &Client), member: &str) {
    let staff =
        |body: Value, who: Option<&str>| hq.post_as("/api/v1/staff", who, &body.to_string());
    let people = json!({"staff": [
        {"id": "c01", "name": "王芳", "store": "S001", "role": "cashier"},
        {"id": "stylist-3", "name": "李师傅", "store": "S001", "role": "cashier"},
        {"id": "left-1", "name": "赵六", "store": "S001", "role": "cashier", "active": false},
        {"id": "hq-ops-1", "name": "总部运营", "role": "hq_admin"},
        {"id": "c-late", "name": "孙七", "store": "S002", "role": "cashier"},
    ]});
    assert_eq!(staff(people.clone(), None).body["code"], "staff_required");
    for bad in [
        json!({"staff": [{"id": "system", "name": "系统", "role": "cashier"}]}),
        json!({"staff": [{"id": "x1", "name": " ", "role": "cashier"}]}),
        json!({"staff": [{"id": "x1", "name": "甲", "role": "boss"}]}),
        json!({"staff": []}),
    ] {
        let refused = staff(bad.clone(), Some("hq-ops-1"));
        assert!(
            refused.status == 422 || refused.status == 400,
            "{bad}: {:?}",
            refused.body
        );
    }
    let written = staff(people, Some("hq-ops-1"));
    assert_eq!(written.status, 201, "{:?}", written.body);
    assert_eq!(
        hq.get("/api/v1/staff").body["staff"]
            .as_array()
            .unwrap()
            .len(),
        5
    );
    let sell = |c: &Client, key: &str, cashier: &str, served_by: &str| {
        c.post_keyed_as(
            "/api/v1/checkouts/items",
            key,
            cashier,
            &json!({"member_id": member, "served_by": served_by,
                    "lines": [{"sku": "A1", "qty": "3"}],
                    "tenders": [{"kind": "cash", "tendered": {"amount": "10.00"}}]})
            .to_string(),
        )
    };
    // The stores learn the directory through the feed; then strangers are refused.
    // (A try before the directory arrives is a sale: each try needs its own key.) The member,
    // registered at S002, reaches S001 through the feed too (a search does not follow them).
    eventually(30, "the member at S001", || {
        let found = a.get("/api/v1/members/search?q=40003").body;
        found["members"]
            .as_array()?
            .iter()
            .any(|m| m["member_id"] == member)
            .then_some(())
    });
    let mut tries = 0;
    eventually(30, "the staff directory at S001", || {
        tries += 1;
        let r = sell(a, &format!("staff-bad-a{tries:04}"), "c01", "nobody");
        (r.body["code"] == "unknown_staff").then_some(())
    });
    assert_eq!(
        sell(a, "staff-bad-0002", "left-1", "c01").body["code"],
        "unknown_staff"
    );
    eventually(30, "the staff directory at S002", || {
        tries += 1;
        let r = sell(b, &format!("staff-bad-b{tries:04}"), "c01", "c01");
        (r.body["code"] == "unknown_staff").then_some(())
    });
    // A sale before any rules earns nothing; rules from today (the sale's business day).
    let before = sell(a, "staff-sale-0001", "c01", "stylist-3");
    assert_eq!(before.status, 201, "{:?}", before.body);
    let today = before.body["business_date"].as_str().unwrap().to_owned();
    let month = &today[..7];
    let rules = |body: Value| {
        hq.put_as(
            "/api/v1/commission-rules",
            "rules-1",
            Some("hq-ops-1"),
            &body.to_string(),
        )
    };
    let past = rules(json!({"from": "2000-01-01", "skus": {"A1": {"percent": "10"}}}));
    assert_eq!(
        past.body["code"], "invalid_commission_rules",
        "{:?}",
        past.body
    );
    let over = rules(json!({"from": today, "skus": {"A1": {"percent": "120"}}}));
    assert_eq!(over.body["code"], "invalid_commission_rules");
    let set = rules(json!({"from": today, "skus": {"A1": {"percent": "10"}},
                           "card_default": {"fixed": "5.00"}}));
    assert_eq!(set.status, 201, "{:?}", set.body);
    // Wait until S001 has heard of the rules (its clock then follows headquarters').
    eventually(30, "the rules at S001", || {
        let s = a.get("/api/v1/sync").body;
        (s["feed_applied"].as_u64() >= hq.get("/api/v1/health").body["feed_len"].as_u64())
            .then_some(())
    });
    let sold = sell(a, "staff-sale-0002", "c01", "stylist-3");
    assert_eq!(sold.status, 201, "{:?}", sold.body);
    let net = sold.body["due"]["amount"].as_str().unwrap().to_owned();
    let sale_id = sold.body["sale_id"].as_str().unwrap().to_owned();
    let card = a.post_keyed_as(
        &format!("/api/v1/members/{member}/cards"),
        "staff-card-0001",
        "c01",
        &json!({"name": "洗车10次", "kind": "count", "uses": 10, "price": {"amount": "300"}})
            .to_string(),
    );
    assert_eq!(card.status, 201, "{:?}", card.body);
    let back = a.post_keyed_as(
        &format!("/api/v1/sales/{sale_id}/returns"),
        "staff-return-0001",
        "c01",
        &json!({"reason": "多拿了", "lines": [{"line": 0, "qty": "1"}]}).to_string(),
    );
    assert_eq!(back.status, 201, "{:?}", back.body);
    let returned = back.body["returns"][0]["amount"]["amount"]
        .as_str()
        .unwrap()
        .to_owned();
    let fen = |y: &str| (y.parse::<f64>().unwrap() * 100.0).round() as i64;
    let tenth = |f: i64| (f as f64 / 10.0).round() as i64;
    let expected = tenth(fen(&net)) - tenth(fen(&returned));
    let report = eventually(30, "the commissions at headquarters", || {
        let r = hq
            .get(&format!("/api/v1/commissions?month={month}&store=S001"))
            .body;
        let rows = r["staff"].as_array()?;
        let of = |id: &str| rows.iter().find(|row| row["staff_id"] == id).cloned();
        let stylist = of("stylist-3")?;
        (stylist["commission"]["amount"].as_str().map(fen) == Some(expected)
            && of("c01")?["commission"]["amount"] == "5.00")
            .then_some(r)
    });
    let stylist = report["staff"]
        .as_array()
        .unwrap()
        .iter()
        .find(|row| row["staff_id"] == "stylist-3")
        .unwrap()
        .clone();
    assert_eq!(stylist["name"], "李师傅", "{report}");
    let bad_month = hq.get("/api/v1/commissions?month=2026-13");
    assert_eq!(bad_month.body["code"], "invalid_query");
}

/// 挂单: a basket parked, recalled and paid once; another voided before payment.
fn held_orders(a: &Client) {
    let hold = |key: &str, body: Value| a.post("/api/v1/orders/held", Some(key), &body.to_string());
    let held = hold(
        "hold-0001",
        json!({"lines": [{"sku": "A1", "qty": "2"}], "note": "顾客去取钱包"}),
    );
    assert_eq!(held.status, 201, "{:?}", held.body);
    let id = held.body["order_id"].as_str().unwrap().to_owned();
    let listed = a.get("/api/v1/orders/held").body;
    assert_eq!(listed["orders"].as_array().unwrap().len(), 1, "{listed}");
    assert_eq!(listed["orders"][0]["due_now"]["amount"], "4.00");
    let recalled = a.get(&format!("/api/v1/orders/held/{id}"));
    assert_eq!(recalled.body["note"], "顾客去取钱包");
    let pay = |key: &str| {
        a.post(
            "/api/v1/checkouts/items",
            Some(key),
            &json!({"lines": [{"sku": "A1", "qty": "2"}], "held_order": id,
                    "tenders": [{"kind": "cash", "tendered": {"amount": "5.00"}}]})
            .to_string(),
        )
    };
    let paid = pay("hold-pay-0001");
    assert_eq!(paid.status, 201, "{:?}", paid.body);
    assert_eq!(
        pay("hold-pay-0001").body,
        paid.body,
        "a double click is one sale"
    );
    assert_eq!(
        pay("hold-pay-0002").body["code"],
        "order_not_found",
        "paid once only"
    );
    assert_eq!(a.get(&format!("/api/v1/orders/held/{id}")).status, 404);
    assert!(
        a.get("/api/v1/orders/held").body["orders"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    // 外币现金: one dollar at 7.10 for a 2.00 sale, 5.10 back in yuan; a currency without a rate
    // is refused; returned, it comes back in yuan.
    let dollars = a.post(
        "/api/v1/checkouts/items",
        Some("usd-sale-0001"),
        &json!({"lines": [{"sku": "A1", "qty": "1"}], "tenders": [
            {"kind": "foreign_cash", "tendered": {"amount": "1.00", "currency": "USD"}}]})
        .to_string(),
    );
    assert_eq!(dollars.status, 201, "{:?}", dollars.body);
    let t = &dollars.body["tenders"][0];
    assert_eq!(
        (t["kind"].as_str(), t["change"]["amount"].as_str()),
        (Some("foreign_cash"), Some("5.10"))
    );
    assert_eq!(t["foreign"]["currency"], "USD");
    let euros = a.post(
        "/api/v1/checkouts/items",
        Some("eur-sale-0001"),
        &json!({"lines": [{"sku": "A1", "qty": "1"}], "tenders": [
            {"kind": "foreign_cash", "tendered": {"amount": "1.00", "currency": "EUR"}}]})
        .to_string(),
    );
    assert_eq!(euros.body["code"], "invalid_request", "{:?}", euros.body);
    let usd_sale = dollars.body["sale_id"].as_str().unwrap();
    let back = a.post(
        &format!("/api/v1/sales/{usd_sale}/returns"),
        Some("usd-return-0001"),
        &json!({"reason": "不要了"}).to_string(),
    );
    assert_eq!(
        back.body["returns"][0]["refunds"][0]["kind"], "cash",
        "{:?}",
        back.body
    );
    assert_eq!(
        back.body["returns"][0]["refunds"][0]["amount"]["amount"],
        "2.00"
    );
    let other = hold("hold-0002", json!({"lines": [{"sku": "A1", "qty": "1"}]}));
    let other = other.body["order_id"].as_str().unwrap().to_owned();
    let void = |key: &str| {
        a.post(
            &format!("/api/v1/orders/held/{other}/void"),
            Some(key),
            "{}",
        )
    };
    let voided = void("void-0001");
    assert_eq!(voided.status, 200, "{:?}", voided.body);
    assert_eq!(void("void-0001").body, voided.body);
    assert_eq!(void("void-0002").body["code"], "order_not_found");
    for (body, code) in [
        (
            json!({"lines": [{"sku": "NOPE", "qty": "1"}]}),
            "unknown_sku",
        ),
        (
            json!({"lines": [{"sku": "A1", "qty": "1"}], "note": "长".repeat(101)}),
            "field_invalid",
        ),
        (json!({"lines": []}), "invalid_request"),
    ] {
        let refused = hold("hold-bad-0001", body.clone());
        assert_eq!(refused.body["code"], code, "{body}: {:?}", refused.body);
    }
    assert!(
        a.get("/api/v1/orders/held").body["orders"]
            .as_array()
            .unwrap()
            .is_empty()
    );
}

/// 报表: headquarters' sales report moves by exactly what one more sale and its return did.
fn sales_report(hq: &Client, b: &Client, member: &str) {
    let sold = |key: &str| {
        b.post(
            "/api/v1/checkouts/quick",
            Some(key),
            &json!({"amount": {"amount": "12.34"}, "category": "报表测试",
                    "cash_tendered": {"amount": "20"}})
            .to_string(),
        )
    };
    let first = sold("report-sale-0001");
    assert_eq!(first.status, 201, "{:?}", first.body);
    let today = first.body["business_date"].as_str().unwrap().to_owned();
    let report = |by: &str| {
        hq.get(&format!(
            "/api/v1/reports/sales?from={today}&to={today}&store=S002&by={by}"
        ))
        .body
    };
    let row = |by: &str, label: &str| -> Value {
        report(by)["rows"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r[by] == label)
            .cloned()
            .unwrap_or(Value::Null)
    };
    let fen =
        |v: &Value| (v.as_str().unwrap_or("0").parse::<f64>().unwrap() * 100.0).round() as i64;
    // Wait until headquarters has the first sale, then measure the second.
    eventually(30, "the first sale in the report", || {
        (fen(&row("category", "报表测试")["net"]["amount"]) == 1234).then_some(())
    });
    let before = row("store", "S002");
    let cash_before = row("tender", "cash");
    let second = sold("report-sale-0002");
    let id = second.body["sale_id"].as_str().unwrap();
    let back = b.post(
        &format!("/api/v1/sales/{id}/returns"),
        Some("report-return-0001"),
        &json!({"reason": "报表"}).to_string(),
    );
    assert_eq!(back.status, 201, "{:?}", back.body);
    let after = eventually(30, "the second sale and its return in the report", || {
        let after = row("store", "S002");
        (after["returns"].as_u64() == before["returns"].as_u64().map(|n| n + 1)).then_some(after)
    });
    assert_eq!(
        after["sales"].as_u64(),
        before["sales"].as_u64().map(|n| n + 1)
    );
    assert_eq!(
        fen(&after["net"]["amount"]) - fen(&before["net"]["amount"]),
        1234
    );
    assert_eq!(
        fen(&after["returned"]["amount"]) - fen(&before["returned"]["amount"]),
        1234
    );
    let cash = row("tender", "cash");
    assert_eq!(
        fen(&cash["paid"]["amount"]) - fen(&cash_before["paid"]["amount"]),
        1234
    );
    assert_eq!(
        fen(&cash["refunded"]["amount"]) - fen(&cash_before["refunded"]["amount"]),
        1234
    );
    assert_eq!(fen(&row("category", "报表测试")["net"]["amount"]), 2468);
    // Stored value: a top-up of 100 shows as 充值金额 at S002.
    let wallet_before = fen(&row("wallet", "S002")["top_up_paid"]["amount"]);
    let topped = b.post(
        &format!("/api/v1/members/{member}/top-ups"),
        Some("report-topup-0001"),
        &json!({"amount": {"amount": "100.00"}}).to_string(),
    );
    assert_eq!(topped.status, 201, "{:?}", topped.body);
    eventually(30, "the top-up in the report", || {
        let now = fen(&row("wallet", "S002")["top_up_paid"]["amount"]);
        (now - wallet_before == 10_000).then_some(())
    });
    let csv = hq.get(&format!(
        "/api/v1/reports/sales?from={today}&to={today}&by=store&format=csv"
    ));
    let text = csv.body.as_str().unwrap_or_default().to_owned();
    assert!(
        text.contains("门店,销售笔数,会员笔数,原价金额,优惠金额,实收金额"),
        "{text}"
    );
    assert!(text.contains("S002,"), "{text}");
    for bad in ["by=year", "format=xml", "from=2026-12-01&to=2026-11-01"] {
        let q = if bad.starts_with("from") {
            bad.to_owned()
        } else {
            format!("from={today}&to={today}&{bad}")
        };
        let refused = hq.get(&format!("/api/v1/reports/sales?{q}"));
        assert_eq!(
            refused.body["code"], "invalid_query",
            "{q}: {:?}",
            refused.body
        );
    }
}

/// 改价 (a line's amount set at the till, never above its price), a sale entered late with its
/// own time (补录), refused when in the future or too old; the store's own report and the
/// members report at headquarters.
fn set_amounts_and_late_sales(hq: &Client, b: &Client, member: &str) {
    let on_hand_before = on_hand(b, "A1");
    let sell = |key: &str, amount: &str, sold_at: Option<&str>| {
        let mut body = json!({"member_id": member,
            "lines": [{"sku": "A1", "qty": "2", "amount": {"amount": amount}}],
            "tenders": [{"kind": "cash", "tendered": {"amount": "10"}}]});
        if let Some(at) = sold_at {
            body["sold_at"] = json!(at);
        }
        b.post("/api/v1/checkouts/items", Some(key), &body.to_string())
    };
    // 2 × 1.80 at S002, sold for 3.00.
    let cut = sell("set-amount-0001", "3.00", None);
    assert_eq!(cut.status, 201, "{:?}", cut.body);
    assert_eq!(cut.body["due"]["amount"], "3.00", "{:?}", cut.body);
    assert_eq!(
        cut.body["lines"][0]["steps"][0]["step"], "override",
        "{:?}",
        cut.body
    );
    let today: chrono::NaiveDate = cut.body["business_date"].as_str().unwrap().parse().unwrap();
    let on_hand_after = on_hand(b, "A1");
    // Above the price, or on a stock line: refused, and nothing moves.
    let above = sell("set-amount-0002", "4.00", None);
    assert_eq!(above.body["code"], "invalid_amount", "{:?}", above.body);
    let received = b.post(
        "/api/v1/stock/receipts",
        Some("set-amount-0003"),
        &json!({"supplier": "x", "lines": [{"sku": "A1", "qty": "1", "amount": {"amount": "1"}}]})
            .to_string(),
    );
    assert_eq!(
        received.body["code"], "invalid_request",
        "{:?}",
        received.body
    );
    assert_eq!(on_hand(b, "A1"), on_hand_after);
    assert_ne!(on_hand_before, on_hand_after);
    // 补录: three days ago is booked then; tomorrow and a month ago are refused.
    let at = |days: i64| format!("{}T10:30:00", today - chrono::TimeDelta::days(days));
    // Entered late by a cashier: a manager's to do (the tester backdated a sale 6 days).
    let body = json!({"member_id": member,
        "lines": [{"sku": "A1", "qty": "2", "amount": {"amount": "3.60"}}],
        "tenders": [{"kind": "cash", "tendered": {"amount": "10"}}], "sold_at": at(3)});
    let by_cashier = b.post_keyed_as(
        "/api/v1/checkouts/items",
        "late-sale-0009",
        "c-late",
        &body.to_string(),
    );
    assert_eq!(
        by_cashier.code(),
        "manager_required",
        "{:?}",
        by_cashier.body
    );
    // 改价 by a cashier: to 94% of the price alone, to 83% only with a manager at the till.
    let by_cashier = |key: &str, amount: &str| {
        let body = json!({"lines": [{"sku": "A1", "qty": "2", "amount": {"amount": amount}}],
            "tenders": [{"kind": "cash", "tendered": {"amount": "10"}}]});
        b.post_keyed_as("/api/v1/checkouts/items", key, "c-late", &body.to_string())
    };
    let small = by_cashier("override-0001", "3.40");
    assert_eq!(small.status, 201, "{:?}", small.body);
    let large = by_cashier("override-0002", "3.00");
    assert_eq!(large.code(), "manager_required", "{:?}", large.body);
    let late = sell("late-sale-0001", "3.60", Some(&at(3)));
    assert_eq!(late.status, 201, "{:?}", late.body);
    let earlier = (today - chrono::TimeDelta::days(3)).to_string();
    assert_eq!(
        late.body["business_date"],
        earlier.as_str(),
        "{:?}",
        late.body
    );
    let receipt = b.get(&format!(
        "/api/v1/sales/{}/receipt?paper=58&format=text",
        late.body["sale_id"].as_str().unwrap()
    ));
    let text = receipt.body.as_str().unwrap_or_default().to_owned();
    assert!(text.contains(&format!("时间：{earlier}（补录）")), "{text}");
    for (key, days) in [("late-sale-0002", -1), ("late-sale-0003", 30)] {
        let refused = sell(key, "3.60", Some(&at(days)));
        assert_eq!(refused.body["code"], "field_invalid", "{:?}", refused.body);
    }
    // The store's own report has the late sale on its day, as headquarters will.
    let own = b
        .get(&format!(
            "/api/v1/reports/sales?from={earlier}&to={earlier}&by=day"
        ))
        .body;
    assert_eq!(own["rows"][0]["sales"], 1, "{own}");
    assert_eq!(own["rows"][0]["net"]["amount"], "3.60", "{own}");
    // The audit log at headquarters: both 改价 (by whom, from what to what) and the 补录,
    // on the day they were done.
    let small_id = small.body["sale_id"].as_str().unwrap().to_owned();
    let late_id = late.body["sale_id"].as_str().unwrap().to_owned();
    eventually(30, "改价 and 补录 in the audit log", || {
        let log = hq
            .get(&format!("/api/v1/audit?from={today}&to={today}&store=S002"))
            .body;
        let rows = log["actions"].as_array()?.clone();
        let has = |action: &str, needle: &str, staff: &str| {
            rows.iter().any(|r| {
                r["action"] == action
                    && r["staff_id"] == staff
                    && r["detail"].as_str().is_some_and(|d| d.contains(needle))
            })
        };
        (has("改价", &format!("{small_id}：A1 3.60 → 3.40"), "c-late")
            && has("补录", &late_id, "system"))
        .then_some(())
    });
    let refused = b.get("/api/v1/reports/sales?from=2026-01-01&to=2026-01-01&by=year");
    assert_eq!(refused.body["code"], "invalid_query", "{:?}", refused.body);
    eventually(30, "the late sale at headquarters", || {
        let hq_day = hq
            .get(&format!(
                "/api/v1/reports/sales?from={earlier}&to={earlier}&by=day&store=S002"
            ))
            .body;
        (hq_day == own).then_some(())
    });
    // 会员报表: the member bought on two days this week (returning), phone masked.
    let week = format!("from={earlier}&to={today}");
    let members = hq.get(&format!("/api/v1/reports/members?{week}")).body;
    let row = members["members"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["member_id"] == member)
        .cloned()
        .unwrap_or_else(|| panic!("{members}"));
    assert!(row["days"].as_u64().unwrap() >= 2, "{members}");
    assert!(
        row["phone_masked"].as_str().unwrap().contains("****"),
        "{members}"
    );
    assert!(members["returning"].as_u64().unwrap() >= 1, "{members}");
    let csv = hq.get(&format!("/api/v1/reports/members?{week}&format=csv"));
    assert!(
        csv.body
            .as_str()
            .unwrap_or_default()
            .contains("会员编号,手机号,姓名"),
        "{:?}",
        csv.body
    );
    let bad = hq.get(&format!(
        "/api/v1/reports/members?{week}&dormant_days=30&quiet_days=60"
    ));
    assert_eq!(bad.body["code"], "invalid_query", "{:?}", bad.body);
    // The other reports export the same way: sync lag, liabilities, settlement, commissions.
    let month = &today.to_string()[..7];
    for (path, header) in [
        ("/api/v1/stores?format=csv".to_owned(), "门店,在线,总部已收"),
        (
            "/api/v1/liabilities?format=csv".to_owned(),
            "门店,类型,发放",
        ),
        (
            format!("/api/v1/settlement?{week}&format=csv"),
            "应付门店,应收门店",
        ),
        (
            format!("/api/v1/commissions?month={month}&format=csv"),
            "员工编号,姓名",
        ),
    ] {
        let text = hq.get(&path).body.as_str().unwrap_or_default().to_owned();
        assert!(text.contains(header), "{path}: {text}");
    }
    let refused = hq.get("/api/v1/liabilities?format=pdf");
    assert_eq!(refused.body["code"], "invalid_query", "{:?}", refused.body);
}
