//! 会员自助 and 动态会员码 with real processes: a member signs in to their own page at
//! headquarters with a code the outbox sent (wrong codes counted, then locked; codes asked for
//! too often refused; a phone that is no member's told nothing different), reads their balance
//! and what a till sold them, and shows their member code, which a till finds them by — at a
//! store whose link to headquarters is cut too. A code taken once, a forged one and a malformed
//! one find no one. The browser test does the same on a phone-sized page opened at a store's
//! address, which passes it on to headquarters, and redeems a gift of the points mall there.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use serde_json::json;
use tests::browser::{Browser, ENTER};
use tests::chain::{Chain, quick_sale, register, top_up, wait_online};
use tests::{Client, bins, eventually};

/// The last sign-in code the outbox file holds for `phone`.
fn code_sent(outbox: &Path, phone: &str) -> String {
    eventually(15, "the sign-in code in the outbox", || {
        let text = std::fs::read_to_string(outbox).ok()?;
        text.lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|m| m["phone"] == phone)
            .filter_map(|m| {
                let text = m["text"].as_str()?.to_owned();
                let at = text.find("验证码是 ")? + "验证码是 ".len();
                Some(text[at..at + 6].to_owned())
            })
            .next_back()
    })
}

fn with_outbox(chain: &Chain) -> (tests::HubProcess, PathBuf) {
    let outbox = chain.dir.path().join("outbox.jsonl");
    let file = outbox.clone();
    let hub = chain.hub_with("127.0.0.1:0".parse().unwrap(), move |c| {
        c.notify = Some(hub::config::NotifyConfig {
            file: Some(file),
            ..Default::default()
        });
    });
    (hub, outbox)
}

fn ask_code(hub: &Client, phone: &str) -> tests::Answer {
    hub.post(
        "/api/v1/me/codes",
        None,
        &json!({"phone": phone}).to_string(),
    )
}

fn sign_in(hub: &Client, phone: &str, code: &str) -> tests::Answer {
    hub.post(
        "/api/v1/me/sessions",
        None,
        &json!({"phone": phone, "code": code}).to_string(),
    )
}

#[test]
fn a_member_signs_in_with_a_code_and_a_till_finds_them_by_their_member_code_also_offline() {
    let chain = Chain::new(bins!());
    let (hub, outbox) = with_outbox(&chain);
    chain.enrol("S001", hub.sync);
    chain.enrol("S002", hub.sync);
    let a = chain.node("S001");
    let b = chain.node("S002");
    wait_online(&[&a.client, &b.client]);
    let member = register(&a.client, "me-reg-00001", "周洁", "13911112222");
    top_up(&a.client, "me-top-00001", &member, "100.00");
    let sold = quick_sale(&a.client, "me-sale-0001", "30.00", Some(&member));
    assert_eq!(sold.status, 201, "{:?}", sold.body);
    register(&a.client, "me-reg-00002", "吴昊", "13911113333");
    // Codes go to members headquarters knows: wait until S001's registrations reached it.
    eventually(30, "headquarters to know both members", || {
        let found = hub.client.get("/api/v1/members/lookup?phone=13911113333");
        (found.status == 200).then_some(())
    });

    // A phone that is no member's is answered the same, and sent nothing.
    let stranger = ask_code(&hub.client, "13700000000");
    assert_eq!(stranger.status, 202, "{:?}", stranger.body);
    assert_eq!(ask_code(&hub.client, "12345").code(), "invalid_phone");
    let asked = ask_code(&hub.client, "13911112222");
    assert_eq!(asked.status, 202, "{:?}", asked.body);
    let again = ask_code(&hub.client, "13911112222");
    assert_eq!(again.status, 429, "{:?}", again.body);
    let code = code_sent(&outbox, "13911112222");
    let text = std::fs::read_to_string(&outbox).unwrap();
    assert!(
        !text.contains("13700000000"),
        "nothing to a stranger: {text}"
    );
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let refused = sign_in(&hub.client, "13911112222", wrong);
    assert_eq!(refused.status, 401, "{:?}", refused.body);
    assert_eq!(refused.code(), "sign_in_failed");
    let signed = sign_in(&hub.client, "13911112222", &code);
    assert_eq!(signed.status, 201, "{:?}", signed.body);
    assert_eq!(
        sign_in(&hub.client, "13911112222", &code).code(),
        "sign_in_failed",
        "a code signs in once"
    );
    let me = Client::new(&hub.client.base).with_bearer(signed.body["token"].as_str().unwrap());
    // A staff login does not open the member's routes, nor a member's token the staff's.
    assert_eq!(hub.client.get("/api/v1/me").status, 401);
    eventually(30, "the sale on the member's page", || {
        let card = me.get("/api/v1/me").body;
        (card["purchases"][0]["store"] == "S001").then_some(card)
    });
    let card = me.get("/api/v1/me").body;
    assert_eq!(card["name"], "周洁");
    assert_eq!(card["phone_masked"], "139****2222");
    assert_eq!(card["stored_value"]["total"]["amount"], "70.00");
    assert_eq!(card["password_set"], false);
    assert_eq!(card["purchases"][0]["amount"]["amount"], "30.00");
    // 支付密码 from the page: the first needs only the sign-in, a change the old one; a till
    // then asks for it.
    let put = |body: serde_json::Value| {
        me.put_as("/api/v1/me/password", "me-pw", None, &body.to_string())
    };
    let short = put(json!({"password": "12345"}));
    assert_eq!(
        (short.status, short.body["field"].as_str()),
        (422, Some("password"))
    );
    assert_eq!(put(json!({"password": "135246"})).status, 200);
    let unproven = put(json!({"password": "246810"}));
    assert_eq!(
        (unproven.code(), unproven.body["field"].as_str()),
        ("sign_in_failed", Some("old_password"))
    );
    assert_eq!(
        put(json!({"password": "246810", "old_password": "999999"})).code(),
        "sign_in_failed"
    );
    assert_eq!(
        put(json!({"password": "246810", "old_password": "135246"})).status,
        200
    );
    let pay = |key: &str, password: &str| {
        a.client.post(
            "/api/v1/checkouts/quick",
            Some(key),
            &json!({"member_id": member, "amount": {"amount": "5.00"}, "pay_with": "stored_value",
                    "password": password})
            .to_string(),
        )
    };
    eventually(30, "S001 to take the new payment password", || {
        (pay("me-pay-0001", "246810").status == 201).then_some(())
    });
    assert_eq!(pay("me-pay-0002", "135246").code(), "password_wrong");
    // Guessing the old password: the fifth wrong one locks the phone, and then not even the
    // right one is taken.
    for _ in 0..4 {
        let guess = put(json!({"password": "111111", "old_password": "000001"}));
        assert_eq!(guess.code(), "sign_in_failed");
    }
    let fifth = put(json!({"password": "111111", "old_password": "000002"}));
    assert_eq!(fifth.status, 423, "{:?}", fifth.body);
    let right = put(json!({"password": "111111", "old_password": "246810"}));
    assert_eq!(right.status, 423, "{:?}", right.body);

    // Five wrong codes lock a phone; its right code then opens nothing.
    assert_eq!(ask_code(&hub.client, "13911113333").status, 202);
    let other_code = code_sent(&outbox, "13911113333");
    let bad = if other_code == "000000" {
        "111111"
    } else {
        "000000"
    };
    for _ in 0..4 {
        assert_eq!(
            sign_in(&hub.client, "13911113333", bad).code(),
            "sign_in_failed"
        );
    }
    assert_eq!(sign_in(&hub.client, "13911113333", bad).status, 423);
    assert_eq!(sign_in(&hub.client, "13911113333", &other_code).status, 423);

    // The member code, found at S002 once; again, forged or malformed it finds no one.
    let shown = me.get("/api/v1/me/code").body;
    let member_code = shown["code"].as_str().unwrap().to_owned();
    assert!(
        shown["qr_svg"].as_str().unwrap().starts_with("<?xml")
            || shown["qr_svg"].as_str().unwrap().contains("<svg")
    );
    assert!(shown["barcode_svg"].as_str().unwrap().contains("<svg"));
    let found = b
        .client
        .get(&format!("/api/v1/members/lookup?code={member_code}"));
    assert_eq!(found.status, 200, "{:?}", found.body);
    assert_eq!(found.body["member_id"], member.as_str());
    let replayed = b
        .client
        .get(&format!("/api/v1/members/lookup?code={member_code}"));
    assert_eq!(replayed.code(), "member_code_used");
    let mut forged = member_code.clone().into_bytes();
    forged[17] = if forged[17] == b'9' {
        b'0'
    } else {
        forged[17] + 1
    };
    let forged = String::from_utf8(forged).unwrap();
    assert_eq!(
        b.client
            .get(&format!("/api/v1/members/lookup?code={forged}"))
            .code(),
        "member_code_invalid"
    );
    assert_eq!(
        b.client.get("/api/v1/members/lookup?code=7123").code(),
        "invalid_request"
    );

    // Headquarters gone: S001 checks the code with what it holds.
    hub.kill();
    eventually(20, "S001 to see the link down", || {
        (a.client.get("/api/v1/sync").body["link"] != "online").then_some(())
    });
    let offline = a
        .client
        .get(&format!("/api/v1/members/lookup?code={member_code}"));
    assert_eq!(offline.status, 200, "{:?}", offline.body);
    assert_eq!(offline.body["member_id"], member.as_str());
}

#[test]
fn on_a_phone_a_member_sees_a_sale_made_elsewhere_and_shows_a_code_the_till_scans() {
    let chain = Chain::new(bins!());
    let (hub, outbox) = with_outbox(&chain);
    chain.enrol("S001", hub.sync);
    // S002 passes its member page on to headquarters: the member opens it at the store.
    let config = chain.enrol("S002", hub.sync);
    let mut edited = node::Config::load(&config).unwrap();
    edited.hub_web = Some(hub.client.base.clone());
    std::fs::write(&config, edited.to_toml()).unwrap();
    let a = chain.node("S001");
    let b = chain.node("S002");
    wait_online(&[&a.client, &b.client]);
    let member = register(&a.client, "me-reg-00011", "郑爽", "13922224444");
    top_up(&a.client, "me-top-00011", &member, "200.00");
    eventually(30, "S002 to know the member", || {
        (b.client
            .get("/api/v1/members/lookup?phone=13922224444")
            .status
            == 200)
            .then_some(())
    });
    let sold = quick_sale(&b.client, "me-sale-0011", "45.60", Some(&member));
    assert_eq!(sold.status, 201, "{:?}", sold.body);
    // 积分商城: a ¥5 coupon for 20 points, redeemed on the page (the points are S002's:
    // headquarters calls them back while the page waits).
    let template = json!({"id": "T5", "name": "5元代金券", "per_member": 5,
        "offer": {"kind": "voucher", "value": {"amount": "5"}, "threshold": {"amount": "0"}},
        "validity": {"days": {"days": 30}}});
    let hq = &hub.client;
    let put = hq.put_as(
        "/api/v1/marketing/templates",
        "me-t5",
        Some("hq-mkt"),
        &template.to_string(),
    );
    assert_eq!(put.status, 201, "{:?}", put.body);
    let gifts = json!({"gifts": [{"id": "c5", "name": "5元代金券", "points": 20,
        "kind": {"coupon": {"template": "T5"}}, "per_member": 1, "stock": 100}]});
    let put = hq.put_as(
        "/api/v1/gifts",
        "me-gifts",
        Some("hq-mkt"),
        &gifts.to_string(),
    );
    assert_eq!(put.status, 201, "{:?}", put.body);

    let page = Browser::start();
    page.resize(390, 844);
    page.goto(&format!("{}/m", b.client.base));
    page.type_into("#me-phone", "13922224444");
    page.click("#me-send");
    page.wait_text("#me-error", 10, |t| t.contains("已发送"));
    let code = code_sent(&outbox, "13922224444");
    page.type_into("#me-code", &format!("{code}{ENTER}"));
    page.wait_text("#me-name", 10, |t| t == "郑爽");
    page.wait_text("#me-purchases", 30, |t| {
        t.contains("S002") && t.contains("45.60")
    });
    assert_eq!(page.text("#me-stored"), "¥154.40");
    page.wait_text("#me-gifts", 10, |t| t.contains("5元代金券"));
    page.script("window.confirm = () => true");
    page.click("#me-gifts button");
    page.wait_text("#me-gift-error", 30, |t| t.contains("兑换成功"));
    page.wait_text("#me-coupons", 10, |t| t.contains("5元代金券"));
    page.wait_text("#me-points", 10, |t| t == "25");
    page.script("document.getElementById('me-mall').scrollIntoView()");
    page.screenshot("member-page-gift");
    page.wait_text("#me-digits", 10, |t| t.starts_with('7'));
    page.screenshot("member-page-phone");
    let digits = page.text("#me-digits").replace(' ', "");
    assert_eq!(digits.len(), 18, "{digits}");

    // The till at S001: the scanner types the code into the member box.
    let till = Browser::start();
    till.goto(&format!("{}/", a.client.base));
    till.type_into("#lookup-phone", &format!("{digits}{ENTER}"));
    till.wait_text("#member-name", 10, |t| t == "郑爽");
    till.screenshot("till-member-code");
}
