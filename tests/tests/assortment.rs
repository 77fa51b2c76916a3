//! 门店经营品项 with real processes: headquarters names the stores that carry a product, and
//! only those receive it; a store that stops carrying it refuses it at the till (while it still
//! holds stock of it, headquarters refuses the change), and one that starts gets it.
#![allow(clippy::unwrap_used)]

use serde_json::{Value, json};
use tests::chain::{Chain, wait_online};
use tests::{Client, bins, eventually};

fn change(hub: &Client, changes: Value) -> Value {
    let written = hub.post_as(
        "/api/v1/catalogue/changes",
        Some("hq-ops"),
        &json!({ "changes": changes }).to_string(),
    );
    assert_eq!(written.status, 201, "{:?}", written.body);
    written.body
}

fn sell(node: &Client, key: &str, sku: &str) -> (u16, Value) {
    let answer = node.post(
        "/api/v1/checkouts/items",
        Some(key),
        &json!({"lines": [{"sku": sku, "qty": "1"}],
                "tenders": [{"kind": "cash", "tendered": {"amount": "20.00"}}]})
        .to_string(),
    );
    (answer.status, answer.body)
}

fn at_version(node: &Client, version: &Value) {
    eventually(30, "the store to see the change set", || {
        (node.get("/api/v1/catalogue").body["version"].as_u64() >= version.as_u64()).then_some(())
    });
}

#[test]
fn a_product_reaches_the_stores_that_carry_it_and_is_refused_where_it_is_withdrawn() {
    let chain = Chain::new(bins!());
    let hub = chain.hub("127.0.0.1:0".parse().unwrap());
    chain.enrol("S001", hub.sync);
    chain.enrol("S002", hub.sync);
    let (a, b) = (chain.node("S001"), chain.node("S002"));
    wait_online(&[&a.client, &b.client]);

    // 鲜奶 is carried at S001 only; 面包 everywhere.
    let written = change(
        &hub.client,
        json!([
            {"product": {"sku": "8001", "name": "鲜奶", "barcodes": [], "department": "食品",
                         "category": "乳品", "unit": "piece", "price": {"amount": "8.00"}}},
            {"carried": {"sku": "8001", "stores": ["S001"]}},
            {"product": {"sku": "8002", "name": "面包", "barcodes": [], "department": "食品",
                         "category": "烘焙", "unit": "piece", "price": {"amount": "6.00"}}},
        ]),
    );
    at_version(&a.client, &written["version"]);
    at_version(&b.client, &written["version"]);
    assert_eq!(a.client.get("/api/v1/products/8001").status, 200);
    assert_eq!(
        b.client.get("/api/v1/products/8001").status,
        404,
        "never sent"
    );
    assert_eq!(b.client.get("/api/v1/products/8002").status, 200);
    let carried = hub.client.get("/api/v1/products/8001").body;
    assert_eq!(carried["stores"], json!(["S001"]), "{carried}");
    // Headquarters' screen: a store's assortment, and where each product is carried.
    let assortment = |store: &str| -> Vec<(String, Value)> {
        let path = format!("/api/v1/catalogue/products?store={store}");
        let body = hub.client.get(&path).body;
        let rows = body["products"].as_array().cloned().unwrap_or_default();
        rows.iter()
            .map(|p| {
                (
                    p["sku"].as_str().unwrap_or("").to_owned(),
                    p["stores"].clone(),
                )
            })
            .collect()
    };
    let (milk, bread) = (
        ("8001".to_owned(), json!(["S001"])),
        ("8002".to_owned(), Value::Null),
    );
    assert_eq!(assortment("S001"), vec![milk, bread.clone()]);
    assert_eq!(assortment("S002"), vec![bread.clone()]);
    assert_eq!(assortment("S404"), vec![bread], "a store yet to join");
    let bad = hub.client.get("/api/v1/catalogue/products?store=商店");
    assert_eq!(bad.status, 400, "{:?}", bad.body);
    assert_eq!(sell(&a.client, "sale-a-0001", "8001").0, 201);

    // S001 holds one bottle: it cannot stop carrying milk until that is sold or written off.
    let received = a.client.post(
        "/api/v1/stock/receipts",
        Some("receipt-a-0001"),
        &json!({"supplier": "牧场", "lines": [{"sku": "8001", "qty": "2"}]}).to_string(),
    );
    assert_eq!(received.status, 201, "{:?}", received.body);
    let moved = json!({"changes": [{"carried": {"sku": "8001", "stores": ["S002"]}}]});
    let at_hq = || {
        let stock = hub.client.get("/api/v1/stores/S001/stock").body;
        stock["stock"].as_array().and_then(|rows| {
            rows.iter()
                .find(|r| r["sku"] == "8001")
                .map(|r| r["on_hand"].clone())
        })
    };
    eventually(30, "headquarters to see S001's stock", || {
        (at_hq() == Some(json!("1"))).then_some(())
    });
    let refused = hub.client.post_as(
        "/api/v1/catalogue/changes",
        Some("hq-ops"),
        &moved.to_string(),
    );
    assert_eq!(refused.status, 409, "{:?}", refused.body);
    assert_eq!(refused.body["code"], "stock_held", "{:?}", refused.body);
    assert!(
        refused.body["detail"]
            .as_str()
            .is_some_and(|m| m.contains("S001 still holds")),
        "{:?}",
        refused.body
    );
    let sold = sell(&a.client, "sale-a-0002", "8001");
    assert_eq!(sold.0, 201, "{:?}", sold.1);
    let stock = || a.client.get("/api/v1/stock/8001").body["on_hand"].clone();
    assert_eq!(stock(), json!("0"));

    // Now it moves: S002 gets milk and sells it; S001 refuses it and keeps its record.
    let written = eventually(30, "headquarters to see S001 sold out", || {
        let answer = hub.client.post_as(
            "/api/v1/catalogue/changes",
            Some("hq-ops"),
            &moved.to_string(),
        );
        (answer.status == 201).then_some(answer.body)
    });
    at_version(&a.client, &written["version"]);
    at_version(&b.client, &written["version"]);
    eventually(30, "S002 to carry milk", || {
        (b.client.get("/api/v1/products/8001").status == 200).then_some(())
    });
    assert_eq!(sell(&b.client, "sale-b-0001", "8001").0, 201);
    let (status, answer) = sell(&a.client, "sale-a-0003", "8001");
    assert_eq!(
        (status, answer["code"].as_str()),
        (422, Some("not_carried")),
        "{answer:?}"
    );
    let kept = a.client.get("/api/v1/products/8001").body;
    assert_eq!(kept["carried_here"], false, "{kept}");
    assert_eq!(sell(&a.client, "sale-a-0004", "8002").0, 201, "bread still");
}
