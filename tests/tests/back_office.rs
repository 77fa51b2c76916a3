//! The back offices in a real headless Chromium. At the store (门店后台, F7): a manager counts
//! stock (盘点), writes goods off (报损), asks another store for goods (调拨申请) and reads the
//! store's member report; on a member's page issues a coupon (发券) and refunds stored value
//! (退储值). At headquarters: a cashier added with a PIN that the store then accepts, commission
//! rules published, a bundle and a store price published and priced at the till, a table sorted
//! by a click on its heading. Screenshots go to `target/screenshots/`.
#![allow(clippy::unwrap_used)]

use serde_json::json;
use tests::browser::{Browser, ENTER};
use tests::chain::{Chain, register, top_up, wait_online};
use tests::{bins, eventually};

fn catalogue(hub: &tests::Client, node: &tests::Client) {
    let changes = json!({"changes": [
        {"product": {"sku": "7001", "name": "绿茶 500ml", "barcodes": ["6907000000012"], "department": "食品",
                     "category": "饮料", "unit": "piece", "price": {"amount": "3.50"}}},
        {"product": {"sku": "7002", "name": "面包", "barcodes": [], "department": "食品",
                     "category": "烘焙", "unit": "piece", "price": {"amount": "6.00"}}},
    ]});
    let written = hub.post_as(
        "/api/v1/catalogue/changes",
        Some("hq-ops"),
        &changes.to_string(),
    );
    assert_eq!(written.status, 201, "{:?}", written.body);
    eventually(30, "the store to hear of the catalogue", || {
        (node.get("/api/v1/catalogue").body["version"] == 1).then_some(())
    });
}

fn on_hand(node: &tests::Client, sku: &str) -> String {
    node.get(&format!("/api/v1/stock/{sku}")).body["on_hand"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[test]
fn a_manager_counts_writes_off_asks_for_goods_issues_a_coupon_and_refunds_stored_value() {
    let chain = Chain::new(bins!());
    let hub = chain.hub("127.0.0.1:0".parse().unwrap());
    chain.enrol("S001", hub.sync);
    let a = chain.node("S001");
    wait_online(&[&a.client]);
    catalogue(&hub.client, &a.client);
    let received = a.client.post(
        "/api/v1/stock/receipts",
        Some("office-receipt-01"),
        &json!({"supplier": "农夫", "lines": [{"sku": "7001", "qty": "20"}, {"sku": "7002", "qty": "10"}]})
            .to_string(),
    );
    assert_eq!(received.status, 201, "{:?}", received.body);
    let member = register(&a.client, "office-reg-0001", "钱多多", "13600002222");
    top_up(&a.client, "office-top-0001", &member, "100.00");

    let b = Browser::start();
    b.goto(&format!("{}/", a.client.base));
    b.click("#nav-office");
    // 盘点: the green tea ticked and counted one short.
    b.wait_text("#office-stock tbody", 10, |t| t.contains("绿茶"));
    b.click("#office-stock tbody tr:first-child input[type=checkbox]");
    b.click("#stocktake-open");
    b.wait_text("#stocktakes", 10, |t| t.contains("绿茶"));
    b.type_into("#stocktakes input.count", &format!("19{ENTER}"));
    b.wait_text("#stocktake-error", 10, |t| t.contains("盘点完成"));
    assert!(b.text("#stocktake-error").contains("绿茶 500ml -1"));
    assert_eq!(on_hand(&a.client, "7001"), "19");
    // 报损: two loaves with a reason.
    b.script("const k = document.getElementById('goods-kind'); k.value = 'damage'; k.dispatchEvent(new Event('change'))");
    b.type_into("#office-reason", "过期");
    b.type_into("#office-lines", "7002,2");
    b.click("#office-goods-submit");
    b.wait_text("#office-done", 10, |t| t.contains("已报损"));
    assert_eq!(on_hand(&a.client, "7002"), "8");
    // 调拨申请: six bottles asked of S002; a line that cannot be read is refused first.
    b.type_into("#transfer-store", "S002");
    b.type_into("#transfer-lines", "7001");
    b.click("#transfer-request button[type=submit]");
    b.wait_text("#transfer-request [name=lines] + .field-error", 10, |t| {
        t.contains("7001")
    });
    b.clear("#transfer-lines");
    b.type_into("#transfer-lines", "7001,6");
    b.click("#transfer-request button[type=submit]");
    b.wait_text("#transfer-request-done", 10, |t| t.contains("已提交"));
    b.wait_text("#office-transfers tbody", 10, |t| {
        t.contains("S002 → S001") && t.contains("待审批")
    });
    let transfers = a.client.get("/api/v1/transfers").body;
    assert_eq!(transfers["transfers"][0]["lines"], json!([["7001", "6"]]));
    // The store's members today: one joined (and has not bought yet).
    b.wait_text("#office-members", 10, |t| t.contains("新会员 1 人"));
    b.screenshot("office-stock-transfer");

    // The member's page: a coupon issued, stored value refunded (the page asks first).
    b.type_into("#lookup-phone", &format!("13600002222{ENTER}"));
    b.wait_text("#member-phone", 10, |t| t == "136****2222");
    b.click("#nav-member");
    b.type_into("#coupon-name", "满30减5");
    b.type_into("#coupon-threshold", "30");
    b.type_into("#coupon-off", "5");
    b.script("document.getElementById('coupon-to').value = '2099-12-31'");
    b.click("#issue-coupon button[type=submit]");
    b.wait_text("#coupons tbody", 10, |t| t.contains("满30减5"));
    b.script("window.confirm = () => true");
    b.type_into("#refund-amount", "1000");
    b.type_into("#refund-reason", "搬家");
    b.click("#refund-stored button[type=submit]");
    b.wait_text("#refund-error", 10, |t| !t.is_empty());
    assert_eq!(
        b.text("#member-stored"),
        "¥100.00",
        "a refund above the principal changes nothing"
    );
    b.clear("#refund-amount");
    b.type_into("#refund-amount", "40");
    b.click("#refund-stored button[type=submit]");
    b.wait_text("#member-stored", 10, |t| t == "¥60.00");
    let coupons = a
        .client
        .get(&format!("/api/v1/members/{member}/coupons"))
        .body;
    assert_eq!(coupons["coupons"][0]["valid_to"], "2099-12-31");
    b.screenshot("office-member-coupon-refund");
}

#[test]
fn headquarters_adds_a_cashier_sets_commission_publishes_a_bundle_and_a_store_price_and_sorts_tables()
 {
    let chain = Chain::new(bins!());
    let hub = chain.hub("127.0.0.1:0".parse().unwrap());
    chain.enrol("S001", hub.sync);
    let a = chain.node("S001");
    wait_online(&[&a.client]);
    catalogue(&hub.client, &a.client);

    let admin = json!({"staff": [{"id": "hq-ops", "name": "总部运营", "role": "hq_admin"}]});
    let added = hub
        .client
        .post_as("/api/v1/staff", Some("hq-ops"), &admin.to_string());
    assert_eq!(added.status, 201, "{:?}", added.body);
    let secret = json!({"password": "correct horse"}).to_string();
    let set = hub.client.put_as(
        "/api/v1/staff/hq-ops/password",
        "office-hq-pw-01",
        Some("hq-ops"),
        &secret,
    );
    assert_eq!(set.status, 201, "{:?}", set.body);

    let b = Browser::start();
    b.goto(&format!("{}/", hub.client.base));
    b.type_into("#login-staff", "hq-ops");
    b.type_into("#login-password", &format!("correct horse{ENTER}"));
    b.wait_text("#who", 10, |t| t.contains("总部运营"));
    b.click("#nav-staff");
    // 员工: a cashier for S001 and their PIN, which the store then takes offline-checkable.
    b.type_into("#staff-id", "c21");
    b.type_into("#staff-name", "孙小美");
    b.type_into("#staff-at", "S001");
    b.click("#staff-form button[type=submit]");
    b.wait_text("#staff-table tbody", 10, |t| t.contains("孙小美"));
    b.clear("#staff-id");
    b.type_into("#staff-id", "a09");
    b.clear("#staff-name");
    b.type_into("#staff-name", "白审计");
    b.clear("#staff-at");
    b.script("document.getElementById('staff-role').value = 'auditor'");
    b.click("#staff-form button[type=submit]");
    b.wait_text("#staff-table tbody", 10, |t| t.contains("白审计"));
    b.script("[...document.querySelectorAll('#staff-table tbody tr')].find(r => r.children[0].textContent === 'c21').querySelector('button:last-child').click()");
    b.type_into("#secret-password", &format!("864213{ENTER}"));
    b.wait_text("#secret-error", 10, |t| t.contains("已设置"));
    b.wait_text("#staff-table tbody", 10, |t| t.contains("已设密码"));
    let token = eventually(30, "S001 to take the cashier's PIN", || {
        let login = a.client.post(
            "/api/v1/sessions",
            None,
            &json!({"staff_id": "c21", "password": "864213"}).to_string(),
        );
        login.body["token"].as_str().map(str::to_owned)
    });
    // The store has a login now: the till is no longer open to anyone.
    let till = tests::Client::new(&a.client.base).with_bearer(&token);
    // 排序: by name, then the other way.
    let names = || {
        b.script("return [...document.querySelectorAll('#staff-table tbody tr')].map(r => r.children[0].textContent).join(',')")
            .as_str()
            .unwrap()
            .to_owned()
    };
    b.click("#staff-table thead th:first-child");
    assert_eq!(names(), "a09,c21,hq-ops");
    b.click("#staff-table thead th:first-child");
    assert_eq!(names(), "hq-ops,c21,a09");
    // 提成规则: a bad line marked at its field, then published.
    b.type_into("#commission-categories", "饮料=很多");
    b.click("#commission-form button[type=submit]");
    b.wait_text(
        "#commission-form [name=categories] + .field-error",
        10,
        |t| t.contains("很多"),
    );
    b.clear("#commission-categories");
    b.type_into("#commission-categories", "饮料=3%");
    b.click("#commission-form button[type=submit]");
    b.wait_text("#commission-now", 10, |t| t.contains("饮料 3%"));
    b.screenshot("hq-staff");
    let hq_token = b.script("return sessionStorage.getItem('hq-token')");
    let hq = tests::Client::new(&hub.client.base).with_bearer(hq_token.as_str().unwrap());
    let rules = hq.get("/api/v1/commission-rules").body;
    assert_eq!(
        rules["rules"][0]["categories"]["饮料"],
        json!({"percent": "3"})
    );

    // 商品: a bundle and a store price, both priced at the till.
    b.click("#nav-catalogue");
    b.type_into("#bundle-form [name=id]", "B-TEA");
    b.type_into("#bundle-form [name=name]", "茶点套餐");
    b.type_into("#bundle-form [name=items]", "7001,1\n7002,1");
    b.type_into("#bundle-form [name=price]", "8.00");
    b.click("#bundle-form button[type=submit]");
    b.wait_text("#bundle-table tbody", 10, |t| t.contains("茶点套餐"));
    b.type_into("#sprice-form [name=store]", "S001");
    b.type_into("#sprice-form [name=sku]", "7002");
    b.type_into("#sprice-form [name=price]", "5.00");
    b.click("#sprice-form button[type=submit]");
    b.wait_text("#sprice-table tbody", 10, |t| t.contains("¥5.00"));
    b.screenshot("hq-bundle-store-price");
    let quote =
        json!({"lines": [{"sku": "7001", "qty": "1"}, {"sku": "7002", "qty": "1"}]}).to_string();
    eventually(30, "S001 to price the bundle", || {
        let q = till.post("/api/v1/checkouts/quote", None, &quote);
        (q.body["due"]["amount"] == "8.00").then_some(())
    });
    let bread = till.get("/api/v1/products/7002").body;
    assert_eq!(bread["price_here"]["amount"], "5.00");
    // Back to the chain's price from the same table.
    b.click("#sprice-table tbody button");
    b.wait_text("#sprice-table tbody", 10, |t| !t.contains("¥5.00"));
    eventually(30, "S001 to go back to the chain's price", || {
        (till.get("/api/v1/products/7002").body["price_here"]["amount"] == "6.00").then_some(())
    });
}
