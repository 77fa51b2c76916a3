//! The cashier's page in a real headless Chromium: a cashier logs in, finds no member and
//! registers one, tops up under 充500送50, sells for cash (change shown) and from stored value,
//! presses Enter twice on one sale (one sale), opens the receipt; the sale reaches
//! headquarters' figures; and the cashier is refused a manager's action. Screenshots of the
//! main screens are saved under `target/screenshots/`.
#![allow(clippy::unwrap_used)]

use serde_json::json;
use tests::browser::{Browser, ENTER};
use tests::chain::{Chain, wait_online};
use tests::{Client, bins, eventually};

#[test]
fn a_cashier_works_a_sale_through_the_page() {
    let chain = Chain::new(bins!());
    let hub = chain.hub("127.0.0.1:0".parse().unwrap());
    let path = chain.enrol("S001", hub.sync);
    let mut config = node::Config::load(&path).unwrap();
    config.store_name = "人民广场店".into();
    config.wallet.top_up_rules = vec![node::config::TopUpRuleConfig {
        id: "充500送50".into(),
        pay_at_least: "500".parse().unwrap(),
        bonus: "50".parse().unwrap(),
    }];
    std::fs::write(&path, config.to_toml()).unwrap();
    let a = chain.node("S001");
    wait_online(&[&a.client]);
    let hq = &hub.client;
    // Two products, scanned later by barcode and typed by SKU.
    let goods = json!({"changes": [
        {"product": {"sku": "6901", "name": "矿泉水 550ml", "barcodes": ["6901234567892"],
                     "department": "食品", "category": "饮品", "unit": "piece", "price": {"amount": "2.00"}}},
        {"product": {"sku": "6902", "name": "方便面 五连包", "barcodes": ["6901234567809"],
                     "department": "食品", "category": "日用", "unit": "piece", "price": {"amount": "12.50"}}},
    ]});
    let published = hq.post_as(
        "/api/v1/catalogue/changes",
        Some("hq-ops"),
        &goods.to_string(),
    );
    assert_eq!(published.status, 201, "{:?}", published.body);
    eventually(30, "the catalogue at S001", || {
        (a.client.get("/api/v1/catalogue").body["version"].as_u64() >= Some(1)).then_some(())
    });
    let staff =
        json!({"staff": [{"id": "c01", "name": "王芳", "store": "S001", "role": "cashier"}]});
    assert_eq!(
        hq.post_as("/api/v1/staff", Some("hq-ops"), &staff.to_string())
            .status,
        201
    );
    let pin = json!({"password": "246810"}).to_string();
    assert_eq!(
        hq.put_as(
            "/api/v1/staff/c01/password",
            "k-00000001",
            Some("hq-ops"),
            &pin
        )
        .status,
        201
    );
    eventually(30, "logins at S001", || {
        (a.client.get("/api/v1/sync").code() == "login_required").then_some(())
    });

    let b = Browser::start();
    b.goto(&format!("{}/", a.client.base));
    b.wait_text("#login h2", 10, |t| t == "员工登录");
    b.screenshot("cashier-login");
    b.type_into("#login-staff", "c01");
    b.type_into("#login-password", &format!("000000{ENTER}"));
    b.wait_text("#login-error", 10, |t| t.contains("密码错误"));
    b.type_into("#login-password", &format!("246810{ENTER}"));
    b.wait_text("#who", 10, |t| t.contains("王芳"));
    b.wait_text("#link", 10, |t| t.contains("在线"));
    assert!(b.text("#store").contains("人民广场店"));

    // A new member: not found, registered, topped up 500 under 充500送50.
    b.type_into("#lookup-phone", &format!("13912345678{ENTER}"));
    b.wait_text("#register p", 10, |t| t.contains("没有这个会员"));
    b.type_into("#register-name", &format!("张三{ENTER}"));
    b.wait_text("#member-phone", 10, |t| t == "139****5678");
    b.type_into("#topup-amount", "500");
    b.type_into("#topup-rule", &format!("充500送50{ENTER}"));
    b.wait_text("#member-stored", 10, |t| t == "¥550.00");
    assert_eq!(b.text("#member-bonus"), "¥50.00");

    // A cash sale by keyboard: 88.80, 100 handed over, 11.20 change.
    b.script("document.getElementById('sale-amount').focus()");
    b.type_into("#sale-amount", "88.80");
    b.type_into("#sale-cash", &format!("100{ENTER}"));
    b.wait_text("#paid-change", 10, |t| t == "¥11.20");
    // From stored value, Enter pressed twice: one sale.
    b.type_into("#sale-amount", "30");
    b.click("#sale-stored");
    b.script("const f = document.getElementById('sale'); f.requestSubmit(); f.requestSubmit();");
    b.wait_text("#member-stored", 10, |t| t == "¥520.00");
    b.screenshot("cashier-after-sale");
    let token = b.script("return sessionStorage.getItem('token')");
    let cashier = Client::new(&a.client.base).with_bearer(token.as_str().unwrap());
    let member = cashier.get("/api/v1/members/lookup?phone=13912345678").body;
    let sales = cashier
        .get(&format!(
            "/api/v1/members/{}/sales",
            member["member_id"].as_str().unwrap()
        ))
        .body;
    let sales = sales["sales"].as_array().cloned().unwrap_or_default();
    assert_eq!(sales.len(), 2, "a double submit is one sale: {sales:?}");
    // With a payment password set, the page asks the member for it.
    let id = member["member_id"].as_str().unwrap();
    let set = cashier.put_as(
        &format!("/api/v1/members/{id}/password"),
        "browser-password-0001",
        None,
        &json!({"password": "123456"}).to_string(),
    );
    assert!(set.status < 300, "{:?}", set.body);
    b.type_into("#sale-amount", &format!("20{ENTER}"));
    b.wait_text("#sale-error", 10, |t| t.contains("支付密码"));
    b.type_into("#sale-password", &format!("123456{ENTER}"));
    b.wait_text("#member-stored", 10, |t| t == "¥500.00");
    let sales = cashier.get(&format!("/api/v1/members/{id}/sales")).body;
    let sales = sales["sales"].as_array().cloned().unwrap_or_default();
    assert_eq!(sales.len(), 3);
    // 商品结账: a barcode scanned twice and a SKU typed, priced line by line; paid 10.00 from
    // stored value (the password asked for) and the rest in cash, with change.
    b.type_into("#scan-code", &format!("6901234567892{ENTER}"));
    b.wait_text("#basket tbody", 10, |t| t.contains("矿泉水"));
    b.type_into("#scan-code", &format!("6901234567892{ENTER}"));
    b.type_into("#scan-code", &format!("6902{ENTER}"));
    b.wait_text("#basket-due", 10, |t| t == "¥16.50");
    b.type_into("#pay-stored", "10");
    b.type_into("#pay-cash", &format!("10{ENTER}"));
    b.wait_text("#pay-error", 10, |t| t.contains("支付密码"));
    b.type_into("#pay-password", &format!("123456{ENTER}"));
    b.wait_text("#items-paid-change", 10, |t| t == "¥3.50");
    b.wait_text("#member-stored", 10, |t| t == "¥490.00");
    b.screenshot("cashier-items");
    // 交班检查: asked again until headquarters holds the last sale (it says what is missing).
    eventually(30, "safe to close the shift", || {
        b.click("#shift");
        std::thread::sleep(std::time::Duration::from_millis(200));
        b.text("#shift-result").contains("可以交班").then_some(())
    });
    assert!(b.text("#who").contains("收银员"));
    // A cashier may not return a sale.
    let sale = sales[0]["sale_id"].as_str().unwrap();
    let refused = cashier.post(
        &format!("/api/v1/sales/{sale}/returns"),
        Some("browser-return-0001"),
        &json!({"reason": "试试"}).to_string(),
    );
    assert_eq!(refused.code(), "role_forbidden");
    // Headquarters sees today's sales.
    let today = sales[0]["business_date"].as_str().unwrap().to_owned();
    eventually(30, "the sales at headquarters", || {
        let day = hq
            .get(&format!(
                "/api/v1/reports/sales?from={today}&to={today}&by=store"
            ))
            .body;
        (day["rows"][0]["net"]["amount"] == "155.30").then_some(())
    });
    // Headquarters' page: its admin logs in and finds today's sales.
    let admin = json!({"staff": [{"id": "hq-ops", "name": "总部运营", "role": "hq_admin"}]});
    assert_eq!(
        hq.post_as("/api/v1/staff", Some("hq-ops"), &admin.to_string())
            .status,
        201
    );
    let secret = json!({"password": "correct horse"}).to_string();
    let set = hq.put_as(
        "/api/v1/staff/hq-ops/password",
        "k-00000002",
        Some("hq-ops"),
        &secret,
    );
    assert_eq!(set.status, 201);
    b.goto(&format!("{}/", hq.base));
    b.wait_text("#login h2", 10, |t| t == "总部登录");
    b.type_into("#login-staff", "hq-ops");
    b.type_into("#login-password", &format!("correct horse{ENTER}"));
    b.wait_text("#today-net", 10, |t| t == "¥155.30");
    b.wait_text("#by-store tbody", 10, |t| t.contains("S001"));
    b.wait_text("#stores tbody", 10, |t| t.contains("在线"));
    b.click("#report button[type=submit]");
    b.wait_text("#report-table tbody", 10, |t| t.contains("155.30"));
    b.screenshot("hq-overview");
    // The members report and the audit log on the same page.
    b.script("document.getElementById('more-kind').value = 'members'");
    b.click("#more button[type=submit]");
    b.wait_text("#more-summary", 10, |t| t.contains("活跃 1"));
    b.wait_text("#more-table tbody", 10, |t| t.contains("139****5678"));
    b.script("document.getElementById('more-kind').value = 'audit'");
    b.click("#more button[type=submit]");
    b.wait_text("#more-table tbody", 10, |t| t.contains("设置员工密码"));
    b.screenshot("hq-audit");
    b.goto(&format!("{}/", a.client.base));
    b.wait_text("#who", 10, |t| t.contains("王芳"));
    b.click("#lang");
    b.wait_text("section h2 span[data-i18n=member]", 5, |t| t == "Member");
    b.screenshot("cashier-english");
    // The receipt, as the page fetches it to print (80 mm).
    let html = b.script(&format!(
        "return fetch('/api/v1/sales/{sale}/receipt?paper=80&format=html', \
         {{headers: {{Authorization: 'Bearer ' + sessionStorage.getItem('token')}}}}) \
         .then(r => r.text())"
    ));
    let html = html.as_str().unwrap_or_default().to_owned();
    assert!(html.contains("人民广场店") && html.contains(sale), "{html}");
    b.script(&format!(
        "document.open(); document.write({}); document.close();",
        serde_json::to_string(&html).unwrap()
    ));
    b.screenshot("cashier-receipt");
}
