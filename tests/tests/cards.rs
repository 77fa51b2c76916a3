//! 会员卡 with real processes: a member imported from the chain's old system loses their card at
//! one store, is refused by it at another, has it reissued there, pays with the new card at the
//! first while it is cut off, and closes the membership at a third — paid back once, with
//! headquarters' liabilities and reports agreeing at each step.
#![allow(clippy::unwrap_used, clippy::print_stdout)]

use serde_json::{Value, json};
use tests::chain::{Chain, quick_sale, register, wait_online};
use tests::{Client, bins, eventually};

fn lookup(c: &Client, card: &str) -> (u16, Value) {
    let answer = c.get(&format!("/api/v1/members/lookup?card={card}"));
    (answer.status, answer.body)
}

fn stored_value(hub: &Client) -> String {
    let owed = hub.get("/api/v1/liabilities").body;
    owed["stored_value"]["total"]["amount"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// `store`'s row of headquarters' wallet report for `today`, once it shows a closing.
fn closing_row(hub: &Client, store: &str, today: &str) -> Value {
    eventually(30, "the closing in headquarters' report", || {
        let report = hub
            .get(&format!(
                "/api/v1/reports/sales?from={today}&to={today}&by=wallet"
            ))
            .body;
        report["rows"]
            .as_array()?
            .iter()
            .find(|r| r["wallet"] == store && r["closings"] == 1)
            .cloned()
    })
}

#[test]
fn an_imported_members_lost_card_is_refused_everywhere_reissued_paid_with_offline_and_closed_once()
{
    let chain = Chain::new(bins!());
    let hub = chain.hub("127.0.0.1:0".parse().unwrap());
    for store in ["S001", "S002", "S003"] {
        chain.enrol(store, hub.sync);
    }
    let (a, b, c) = (chain.node("S001"), chain.node("S002"), chain.node("S003"));
    wait_online(&[&a.client, &b.client, &c.client]);

    // 王芳 comes from the chain's old system: 300 of stored value and a car-wash card with 8 of
    // its 10 uses left, placed at S001, her home store.
    let dir = chain.hub_data().parent().unwrap().to_owned();
    let file = dir.join("members.csv");
    std::fs::write(
        &file,
        "手机号,姓名,卡号,开卡门店,储值本金,卡项\n\
         13912345601,王芳,VIP0001,S001,300.00,count:洗车卡:8:10:100.00\n",
    )
    .unwrap();
    let imported = ops::members::import(&hub.client.base, &file, "hq-import", None, false).unwrap();
    assert_eq!(imported["imported"], 1, "{imported}");
    let member = eventually(30, "S001 to hold the imported balance", || {
        let (status, found) = lookup(&a.client, "VIP0001");
        let id = found["member_id"]
            .as_str()
            .filter(|_| status == 200)?
            .to_owned();
        let w = a.client.get(&format!("/api/v1/members/{id}/wallet")).body;
        (w["stored_value"]["spendable_here"]["amount"] == "300.00").then_some(id)
    });
    register(&a.client, "reg-card-0002", "李雷", "13912345602");
    let other = b.client.post(
        "/api/v1/members",
        Some("reg-card-0003"),
        &json!({"name": "韩梅", "phone": "13912345603", "card_no": "VIP0009"}).to_string(),
    );
    assert_eq!(other.status, 201, "{:?}", other.body);
    eventually(30, "S002 to find the member by card", || {
        (lookup(&b.client, "VIP0001").0 == 200).then_some(())
    });
    eventually(30, "headquarters to owe the top-up", || {
        (stored_value(&hub.client) == "300.00").then_some(())
    });

    // 挂失 at S001: refused by card at S002 as soon as the change arrives, by search too; the
    // member is still found by phone.
    let lost = a.client.post(
        &format!("/api/v1/members/{member}/card/lost"),
        Some("lost-card-0001"),
        "{}",
    );
    assert_eq!(lost.status, 200, "{:?}", lost.body);
    assert_eq!(lost.body["card_status"], "lost");
    let (_, refused) = eventually(30, "S002 to refuse the lost card", || {
        let (status, body) = lookup(&b.client, "VIP0001");
        (status == 409).then_some((status, body))
    });
    assert_eq!(refused["code"], "card_lost", "{refused}");
    let searched = b.client.get("/api/v1/members/search?q=VIP0001");
    assert_eq!(searched.body["code"], "card_lost", "{:?}", searched.body);
    let by_phone = b.client.get("/api/v1/members/lookup?phone=13912345601");
    assert_eq!(by_phone.status, 200, "{:?}", by_phone.body);
    let twice = a.client.post(
        &format!("/api/v1/members/{member}/card/lost"),
        Some("lost-card-0002"),
        "{}",
    );
    assert_eq!(twice.body["code"], "card_state_invalid", "{:?}", twice.body);

    // 补卡 at S002: the member proves who they are; a number in use, or the old one, is refused.
    let reissue = |key: &str, body: Value| {
        b.client.post(
            &format!("/api/v1/members/{member}/card/reissue"),
            Some(key),
            &body.to_string(),
        )
    };
    let no_password = reissue(
        "reissue-card-0001",
        json!({"check": "payment_password", "password": "123456", "card_no": "VIP0002"}),
    );
    assert_eq!(
        no_password.body["code"], "field_invalid",
        "{:?}",
        no_password.body
    );
    let taken = reissue(
        "reissue-card-0002",
        json!({"check": "id_document", "card_no": "VIP0009"}),
    );
    assert_eq!(taken.body["code"], "card_taken", "{:?}", taken.body);
    let own = reissue(
        "reissue-card-0003",
        json!({"check": "id_document", "card_no": "VIP0001"}),
    );
    assert_eq!(own.body["code"], "card_state_invalid", "{:?}", own.body);
    let reissued = reissue(
        "reissue-card-0004",
        json!({"check": "id_document", "card_no": "VIP0002"}),
    );
    assert_eq!(reissued.status, 200, "{:?}", reissued.body);
    assert_eq!(reissued.body["card_no"], "VIP0002");
    assert_eq!(reissued.body["card_status"], "active");
    assert_eq!(reissued.body["former_cards"], json!(["VIP0001"]));
    let (_, old) = lookup(&b.client, "VIP0001");
    assert_eq!(old["code"], "card_replaced", "{old}");

    // S001 learns the new card, then is cut off and takes a payment with it, within what it
    // holds of the balance (the reissue moved no money: the wallet is the member's).
    let found = eventually(30, "S001 to find the new card", || {
        let (status, body) = lookup(&a.client, "VIP0002");
        (status == 200).then_some(body)
    });
    assert_eq!(found["member_id"], member.as_str());
    let sync = hub.sync;
    hub.kill();
    eventually(20, "S001 to notice headquarters is gone", || {
        (a.client.get("/api/v1/sync").body["link"] != "online").then_some(())
    });
    let paid = quick_sale(&a.client, "pay-card-0001", "50.00", Some(&member));
    assert_eq!(paid.status, 201, "{:?}", paid.body);
    let hub = chain.hub(sync);
    wait_online(&[&a.client, &b.client, &c.client]);
    eventually(30, "headquarters to hear of the payment", || {
        (stored_value(&hub.client) == "250.00").then_some(())
    });

    // 退卡 at S003: 250 of principal, 8 of 10 uses of a 100-yuan card; every right comes to
    // S003 through headquarters, and is paid back once.
    let preview = eventually(30, "S003 to see the whole wallet", || {
        let p = c
            .client
            .get(&format!("/api/v1/members/{member}/closing"))
            .body;
        (p["principal"] == "250.00").then_some(p)
    });
    assert_eq!(preview["cash"], "330.00", "{preview}");
    assert_eq!(preview["cards"][0]["left"], 8);
    let close = |key: &str| {
        c.client.post(
            &format!("/api/v1/members/{member}/close"),
            Some(key),
            &json!({"reason": "搬家"}).to_string(),
        )
    };
    let closed = close("close-card-0001");
    assert_eq!(closed.status, 201, "{:?}", closed.body);
    assert_eq!(closed.body["stored_value"]["total"]["amount"], "0.00");
    let again = close("close-card-0001");
    assert!(again.replayed, "a retry is the same closing");
    let twice = close("close-card-0002");
    assert_eq!(twice.body["code"], "membership_closed", "{:?}", twice.body);
    let topped = c.client.post(
        &format!("/api/v1/members/{member}/top-ups"),
        Some("topup-card-0002"),
        &json!({"amount": {"amount": "10.00"}}).to_string(),
    );
    assert_eq!(
        topped.body["code"], "membership_closed",
        "{:?}",
        topped.body
    );

    // Headquarters owes nothing more, and its report shows the closing at S003.
    eventually(30, "headquarters to see the closing", || {
        (stored_value(&hub.client) == "0.00").then_some(())
    });
    let today = paid.body["business_date"].as_str().unwrap().to_owned();
    let row = closing_row(&hub.client, "S003", &today);
    assert_eq!(row["refunded_principal"]["amount"], "250.00", "{row}");
    assert_eq!(row["card_refunds"]["amount"], "80.00", "{row}");
    let (_, closed_card) = eventually(30, "S001 to refuse the closed card", || {
        let (status, body) = lookup(&a.client, "VIP0002");
        (body["code"] == "membership_closed").then_some((status, body))
    });
    println!("closed card at S001: {closed_card}");
    hub.kill();
    a.kill();
    b.kill();
    c.kill();
    for store in ["S001", "S002", "S003"] {
        chain.verify(store);
    }
    chain.verify_hub();
}

/// 退卡与计时规则 published by headquarters: bad rules are refused with the field named and
/// nothing published; good ones reach the store, whose closing then pays no card back and
/// keeps the fee, as headquarters' report shows.
#[test]
fn a_closing_follows_the_card_rules_headquarters_published() {
    let chain = Chain::new(bins!());
    let hub = chain.hub("127.0.0.1:0".parse().unwrap());
    chain.enrol("S001", hub.sync);
    let a = chain.node("S001");
    wait_online(&[&a.client]);

    let publish = |key: &str, fee: &str| {
        hub.client.put_as(
            "/api/v1/card-rules",
            key,
            Some("HQ01"),
            &json!({"bonus_refund_percent": "50", "cards": "none", "fee_percent": fee,
                "step_minutes": 15, "rounding": "up", "free_minutes": 10})
            .to_string(),
        )
    };
    let refused = publish("card-rules-0001", "60");
    assert_eq!(refused.status, 422, "{:?}", refused.body);
    assert_eq!(refused.body["field"], "fee_percent");
    assert!(hub.client.get("/api/v1/card-rules").body["current"].is_null());
    let published = publish("card-rules-0002", "5");
    assert_eq!(published.status, 201, "{:?}", published.body);
    let current = hub.client.get("/api/v1/card-rules").body;
    assert_eq!(current["current"]["rules"]["fee_percent"], "5", "{current}");

    let member = register(&a.client, "reg-rules-0001", "赵敏", "13912345611");
    tests::chain::top_up(&a.client, "topup-rules-0001", &member, "100.00");
    let sold = a.client.post(
        &format!("/api/v1/members/{member}/cards"),
        Some("card-rules-sell-0001"),
        &json!({"name": "洗车卡", "kind": "count", "uses": 10, "price": {"amount": "50"}})
            .to_string(),
    );
    assert_eq!(sold.status, 201, "{:?}", sold.body);
    // 100.00 back, the card not, 5% of it kept.
    let preview = eventually(30, "S001 to close by the chain's rules", || {
        let p = a
            .client
            .get(&format!("/api/v1/members/{member}/closing"))
            .body;
        (p["fee"] == "5.00").then_some(p)
    });
    assert_eq!(preview["cash"], "95.00", "{preview}");
    assert_eq!(preview["cards"][0]["refund"], "0.00", "{preview}");
    let closed = a.client.post(
        &format!("/api/v1/members/{member}/close"),
        Some("close-rules-0001"),
        &json!({"reason": "搬家", "cash": {"amount": "95.00"}}).to_string(),
    );
    assert_eq!(closed.status, 201, "{:?}", closed.body);
    assert_eq!(closed.body["closing"]["cash"], "95.00", "{:?}", closed.body);

    let sale = quick_sale(&a.client, "sale-rules-0001", "1.00", None);
    let today = sale.body["business_date"].as_str().unwrap().to_owned();
    let row = closing_row(&hub.client, "S001", &today);
    assert_eq!(row["refunded_principal"]["amount"], "100.00", "{row}");
    assert_eq!(row["card_refunds"]["amount"], "0.00", "{row}");
    assert_eq!(row["closing_fees"]["amount"], "5.00", "{row}");
    hub.kill();
    a.kill();
    chain.verify("S001");
    chain.verify_hub();
}
