//! 营销 with real processes: headquarters publishes a coupon template for one product, a
//! segment (S001's members who agreed to marketing) and a campaign, and runs it twice; the one
//! member in the segment gets one coupon, held at S001, which S001 redeems while cut off from
//! headquarters — on that product's lines only — and refuses the second time.
#![allow(clippy::unwrap_used, clippy::print_stdout)]

use serde_json::{Value, json};
use tests::chain::{Chain, wait_online};
use tests::proxy::{FaultProxy, Faults};
use tests::{Client, bins, eventually};

fn put(hq: &Client, what: &str, n: u32, body: Value) -> tests::Answer {
    hq.put_as(
        &format!("/api/v1/marketing/{what}"),
        &format!("mk-{what}-{n:04}"),
        Some("hq-mkt"),
        &body.to_string(),
    )
}

fn template(percent: &str) -> Value {
    json!({"id": "T1", "name": "A1 满20减5", "per_member": 1, "quota": 10,
           "offer": {"kind": "amount_off", "threshold": {"amount": "20"}, "off": {"amount": "5"}},
           "validity": {"days": {"days": 30}}, "scope": {"skus": ["A1"]},
           "stacks": false, "withdrawn": percent == "withdrawn"})
}

#[test]
fn a_campaign_coupon_reaches_the_members_home_store_once_and_is_redeemed_there_offline() {
    let chain = Chain::new(bins!());
    let hub = chain.hub("127.0.0.1:0".parse().unwrap());
    let proxy = FaultProxy::start(hub.sync, 26).unwrap();
    chain.enrol("S001", proxy.address);
    chain.enrol("S002", hub.sync);
    let (a, b) = (chain.node("S001"), chain.node("S002"));
    wait_online(&[&a.client, &b.client]);
    let hq = &hub.client;

    let products = json!({"changes": [
        {"product": {"sku": "A1", "name": "矿泉水", "unit": "piece", "barcodes": [],
                     "price": {"amount": "10.00"}, "low_stock": "0"}},
        {"product": {"sku": "B1", "name": "大米", "unit": "piece", "barcodes": [],
                     "price": {"amount": "50.00"}, "low_stock": "0"}},
    ]});
    let published = hq.post_as(
        "/api/v1/catalogue/changes",
        Some("hq-buyer"),
        &products.to_string(),
    );
    assert!(published.status < 300, "{:?}", published.body);
    let register = |key: &str, name: &str, phone: &str, consent: bool| {
        let answer = a.client.post(
            "/api/v1/members",
            Some(key),
            &json!({"name": name, "phone": phone, "marketing_consent": consent}).to_string(),
        );
        assert_eq!(answer.status, 201, "{:?}", answer.body);
        answer.body["member_id"].as_str().unwrap().to_owned()
    };
    let agreed = register("reg-a-0001", "周一", "13911110001", true);
    register("reg-a-0002", "吴二", "13911110002", false);

    // Bad input changes nothing: an impossible discount, a field no segment knows.
    let mut bad = template("");
    bad["offer"] = json!({"kind": "percent_off", "percent": "120"});
    let refused = put(hq, "templates", 1, bad);
    assert_eq!(
        (
            refused.status,
            refused.body["code"].as_str(),
            refused.body["field"].as_str()
        ),
        (422, Some("invalid_marketing"), Some("offer")),
        "{:?}",
        refused.body
    );
    let unknown = put(
        hq,
        "segments",
        1,
        json!({"id": "X", "name": "x", "conditions": [{"shoe_size": {"any": ["42"]}}]}),
    );
    assert_eq!(unknown.status, 422, "{:?}", unknown.body);
    assert_eq!(put(hq, "templates", 2, template("")).status, 201);
    let segment = json!({"id": "S001-agreed", "name": "S001 同意营销的会员",
        "conditions": [{"home_store": {"any": ["S001"]}}, "consent"]});
    assert_eq!(put(hq, "segments", 2, segment.clone()).status, 201);
    // The live count, once headquarters has both members.
    let count = eventually(30, "both members at headquarters", || {
        let everyone =
            json!({"id": "all", "name": "S001", "conditions": [{"home_store": {"any": ["S001"]}}]});
        let all = hq.post_as(
            "/api/v1/marketing/segments/count",
            None,
            &everyone.to_string(),
        );
        (all.body["count"] == 2).then(|| {
            hq.post_as(
                "/api/v1/marketing/segments/count",
                None,
                &segment.to_string(),
            )
        })
    });
    assert_eq!(count.body["count"], 1, "{:?}", count.body);
    assert_eq!(count.body["sample"][0]["phone_masked"], "139****0001");
    let campaign = json!({"id": "C1", "name": "回店礼", "template": "T1",
        "segment": "S001-agreed", "schedule": "once", "message": "{name}，送您 {coupon}"});
    assert_eq!(put(hq, "campaigns", 1, campaign).status, 201);
    let run = |n: u32| {
        let answer = hq.post_as("/api/v1/marketing/campaigns/C1/run", Some("hq-mkt"), "");
        assert_eq!(answer.status, 200, "run {n}: {:?}", answer.body);
        answer.body
    };
    let first = run(1);
    assert_eq!(
        (first["targeted"].as_u64(), first["issued"].as_u64()),
        (Some(1), Some(1))
    );
    let again = run(2);
    assert_eq!(
        (again["issued"].as_u64(), again["already"].as_u64()),
        (Some(0), Some(1))
    );

    // The coupon reaches S001 with its one use held there; then S001 is cut off.
    let coupon = eventually(30, "the campaign's coupon at S001", || {
        let list = a
            .client
            .get(&format!("/api/v1/members/{agreed}/coupons"))
            .body;
        let c = &list["coupons"][0];
        (c["campaign"] == "C1" && c["state"] == "usable")
            .then(|| c["coupon_id"].as_str().unwrap().to_owned())
    });
    let list = a
        .client
        .get(&format!("/api/v1/members/{agreed}/coupons"))
        .body;
    assert_eq!(list["coupons"][0]["held_here"], true, "{list}");
    proxy.set(Faults {
        cut: true,
        ..Faults::default()
    });
    eventually(30, "S001 to see the link down", || {
        (a.client.get("/api/v1/sync").body["link"] != "online").then_some(())
    });
    let sale = |key: &str| {
        a.client.post(
            "/api/v1/checkouts/items",
            Some(key),
            &json!({"member_id": agreed, "coupon": coupon,
                    "lines": [{"sku": "A1", "qty": "3"}, {"sku": "B1", "qty": "1"}],
                    "tenders": [{"kind": "cash", "tendered": {"amount": "100.00"}}]})
            .to_string(),
        )
    };
    let redeemed = sale("sale-a-0001");
    assert_eq!(redeemed.status, 201, "{:?}", redeemed.body);
    let coupon_off = |line: usize| -> Vec<String> {
        redeemed.body["lines"][line]["steps"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["step"] == "coupon")
            .map(|s| s["off"]["amount"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(coupon_off(0), vec!["5.00"], "{:?}", redeemed.body);
    assert!(
        coupon_off(1).is_empty(),
        "rice is not in the coupon's scope"
    );
    let twice = sale("sale-a-0002");
    assert_eq!(twice.body["code"], "coupon_used", "{:?}", twice.body);

    // Back online, headquarters counts the coupon, shows the runs and what the coupon did.
    proxy.set(Faults::default());
    let report = eventually(30, "the redemption at headquarters", || {
        let r = hq.get("/api/v1/marketing/campaigns/C1/report").body;
        (r["rows"][0]["redeemed"] == 1).then_some(r)
    });
    let row = &report["rows"][0];
    assert_eq!(
        (row["targeted"].as_u64(), row["issued"].as_u64()),
        (Some(1), Some(1)),
        "{report}"
    );
    assert_eq!(row["discount"], "5.00");
    assert_eq!(row["redeemer_sales"], "75.00", "30.00 less 5.00, and 50.00");
    let csv = hq.get("/api/v1/marketing/campaigns/C1/report?format=csv");
    assert!(csv.body.to_string().contains("核销张数"), "{:?}", csv.body);
    let overview = hq.get("/api/v1/marketing").body;
    assert_eq!(overview["templates"][0]["issued"], 1, "{overview}");
    assert_eq!(overview["templates"][0]["offer"]["off"]["amount"], "5.00");
    assert_eq!(overview["campaigns"][0]["runs"][0]["already"], 1);
}

/// A target list brought in as a tag (批量打标签), a booklet of three coupons to each member
/// of the tag (券包), two of them redeemed in one sale (多券同用) and given back by its whole
/// return; a run again and a tagging again give nothing twice; an unknown phone tags nobody.
#[test]
fn a_booklet_is_given_once_its_coupons_redeem_together_and_a_return_gives_them_back() {
    let chain = Chain::new(bins!());
    let hub = chain.hub("127.0.0.1:0".parse().unwrap());
    chain.enrol("S001", hub.sync);
    let a = chain.node("S001");
    wait_online(&[&a.client]);
    let hq = &hub.client;
    let products = json!({"changes": [
        {"product": {"sku": "A1", "name": "矿泉水", "unit": "piece", "barcodes": [],
                     "price": {"amount": "10.00"}, "low_stock": "0"}},
    ]});
    let published = hq.post_as(
        "/api/v1/catalogue/changes",
        Some("hq-buyer"),
        &products.to_string(),
    );
    assert!(published.status < 300, "{:?}", published.body);
    let answer = a.client.post(
        "/api/v1/members",
        Some("reg-b-0001"),
        &json!({"name": "郑三", "phone": "13922220001"}).to_string(),
    );
    assert_eq!(answer.status, 201, "{:?}", answer.body);
    let member = answer.body["member_id"].as_str().unwrap().to_owned();

    // The list: one phone unknown refuses it all; then the member alone, twice.
    let tag = |phones: Value| {
        hq.post_as(
            "/api/v1/members/tags",
            Some("hq-mkt"),
            &json!({"tag": "回流名单", "phones": phones}).to_string(),
        )
    };
    let unknown = eventually(30, "the member at headquarters", || {
        let r = hq.get("/api/v1/members/lookup?phone=13922220001");
        (r.status == 200).then(|| tag(json!(["13922220001", "13999999999"])))
    });
    assert_eq!(unknown.body["code"], "invalid_phone", "{:?}", unknown.body);
    for _ in 0..2 {
        let tagged = tag(json!(["13922220001"]));
        assert_eq!(tagged.status, 200, "{:?}", tagged.body);
    }
    let edits = eventually(30, "the tag at S001", || {
        let m = a.client.get(&format!("/api/v1/members/{member}")).body;
        (m["tags"] == json!(["回流名单"])).then_some(m)
    });
    assert_eq!(edits["tags"], json!(["回流名单"]), "tagged once: {edits}");

    let template = json!({"id": "T2", "name": "2元券包", "per_member": 3, "quota": null,
        "offer": {"kind": "voucher", "value": {"amount": "2"}},
        "validity": {"days": {"days": 30}}, "scope": {"skus": ["A1"]}, "stacks": null});
    assert_eq!(put(hq, "templates", 1, template).status, 201);
    let segment =
        json!({"id": "G1", "name": "回流名单", "conditions": [{"tags": {"any": ["回流名单"]}}]});
    assert_eq!(put(hq, "segments", 1, segment).status, 201);
    let campaign = json!({"id": "C2", "name": "券包", "template": "T2", "segment": "G1",
        "schedule": "once", "message": ""});
    assert_eq!(put(hq, "campaigns", 1, campaign).status, 201);
    let run = |coupons: u32| {
        hq.post_as(
            &format!("/api/v1/marketing/campaigns/C2/run?coupons={coupons}"),
            Some("hq-mkt"),
            "",
        )
    };
    assert_eq!(run(4).body["field"], "coupons", "over the per-member limit");
    let first = run(3);
    assert_eq!(
        (
            first.body["targeted"].as_u64(),
            first.body["issued"].as_u64()
        ),
        (Some(1), Some(3)),
        "{:?}",
        first.body
    );
    let again = run(3);
    assert_eq!(
        (
            again.body["issued"].as_u64(),
            again.body["already"].as_u64()
        ),
        (Some(0), Some(3)),
        "{:?}",
        again.body
    );
    let coupons: Vec<String> = eventually(30, "the booklet at S001", || {
        let list = a
            .client
            .get(&format!("/api/v1/members/{member}/coupons"))
            .body;
        let ids: Vec<String> = list["coupons"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["state"] == "usable")
            .map(|c| c["coupon_id"].as_str().unwrap().to_owned())
            .collect();
        (ids.len() == 3).then_some(ids)
    });

    // A basket held (挂单) with two of them keeps both: recalled, it is priced with both.
    let held = a.client.post(
        "/api/v1/orders/held",
        Some("hold-b-0001"),
        &json!({"member_id": member, "coupon": coupons[0], "coupons": [coupons[1]],
                "lines": [{"sku": "A1", "qty": "2"}]})
        .to_string(),
    );
    assert_eq!(held.status, 201, "{:?}", held.body);
    let order = held.body["order_id"].as_str().unwrap();
    let recalled = a.client.get(&format!("/api/v1/orders/held/{order}")).body;
    assert_eq!(
        (&recalled["coupon"], &recalled["coupons"]),
        (&json!(coupons[0]), &json!([coupons[1]])),
        "{recalled}"
    );
    assert_eq!(recalled["due_now"]["amount"], "16.00", "{recalled}");
    let voided = a.client.post(
        &format!("/api/v1/orders/held/{order}/void"),
        Some("void-b-0001"),
        "{}",
    );
    assert_eq!(voided.status, 200, "{:?}", voided.body);

    // Two coupons in one sale: 2.00 off each.
    let sale = a.client.post(
        "/api/v1/checkouts/items",
        Some("sale-b-0001"),
        &json!({"member_id": member, "coupons": [coupons[0], coupons[1]],
                "lines": [{"sku": "A1", "qty": "2"}],
                "tenders": [{"kind": "cash", "tendered": {"amount": "20.00"}}]})
        .to_string(),
    );
    assert_eq!(sale.status, 201, "{:?}", sale.body);
    assert_eq!(sale.body["due"]["amount"], "16.00", "{:?}", sale.body);
    assert_eq!(sale.body["coupons"], json!([coupons[0], coupons[1]]));
    let twice = a.client.post(
        "/api/v1/checkouts/items",
        Some("sale-b-0002"),
        &json!({"member_id": member, "coupons": [coupons[2], coupons[2]],
                "lines": [{"sku": "A1", "qty": "1"}],
                "tenders": [{"kind": "cash", "tendered": {"amount": "10.00"}}]})
        .to_string(),
    );
    assert_eq!(twice.status, 422, "a coupon named twice: {:?}", twice.body);
    let report = |redeemed: u64| {
        eventually(30, "the report at headquarters", || {
            let r = hq.get("/api/v1/marketing/campaigns/C2/report").body;
            (r["rows"][0]["redeemed"] == redeemed).then_some(r)
        })
    };
    let row = report(2)["rows"][0].clone();
    assert_eq!(
        (&row["issued"], &row["discount"], &row["redeemer_sales"]),
        (&json!(3), &json!("4.00"), &json!("16.00")),
        "{row}"
    );

    // Its whole return gives both coupons back.
    let sale_id = sale.body["sale_id"].as_str().unwrap();
    let back = a.client.post(
        &format!("/api/v1/sales/{sale_id}/returns"),
        Some("ret-b-0001"),
        &json!({"reason": "不要了"}).to_string(),
    );
    assert_eq!(back.status, 201, "{:?}", back.body);
    report(0);
    let list = a
        .client
        .get(&format!("/api/v1/members/{member}/coupons"))
        .body;
    let usable = list["coupons"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["state"] == "usable")
        .count();
    assert_eq!(usable, 3, "{list}");
}
