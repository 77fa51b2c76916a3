//! The till, one screen per job, in a real headless Chromium: a cashier rings up a 10-line
//! basket for a member with a coupon, points and split tenders (stored value and cash) using
//! only the keyboard and the scanner, at 1366×768 and at 1024×768, with nothing scrolling; the
//! keystrokes after the scans are counted (goal: at most 30); then closes the shift (交班) with
//! the drawer counted, which headquarters' audit log shows. Screenshots go to
//! `target/screenshots/`.
#![allow(clippy::unwrap_used, clippy::print_stdout)]

use serde_json::json;
use tests::browser::{Browser, DOWN, ENTER, F2, F8, TAB};
use tests::chain::{Chain, register, top_up, wait_online};
use tests::{bins, eventually};

/// Ten products, each with a barcode (what the scanner types).
fn goods() -> Vec<(String, String)> {
    (1..=10)
        .map(|i| {
            let digits = format!("69020000000{i:02}");
            let sum: u32 = digits
                .chars()
                .enumerate()
                .map(|(n, c)| c.to_digit(10).unwrap() * if n % 2 == 1 { 3 } else { 1 })
                .sum();
            (
                format!("80{i:02}"),
                format!("{digits}{}", (10 - sum % 10) % 10),
            )
        })
        .collect()
}

#[test]
fn a_ten_line_basket_with_a_member_coupon_points_and_split_tenders_by_keyboard_and_scanner() {
    let chain = Chain::new(bins!());
    let hub = chain.hub("127.0.0.1:0".parse().unwrap());
    chain.enrol("S001", hub.sync);
    let a = chain.node("S001");
    wait_online(&[&a.client]);
    let changes: Vec<_> = goods()
        .iter()
        .enumerate()
        .map(|(i, (sku, barcode))| {
            json!({"product": {"sku": sku, "name": format!("商品{}", i + 1), "barcodes": [barcode],
                   "department": "食品", "category": "日用", "unit": "piece",
                   "price": {"amount": format!("{}.50", 10 + i)}}})
        })
        .collect();
    let written = hub.client.post_as(
        "/api/v1/catalogue/changes",
        Some("hq-ops"),
        &json!({ "changes": changes }).to_string(),
    );
    assert_eq!(written.status, 201, "{:?}", written.body);
    eventually(30, "S001 to hear of the catalogue", || {
        (a.client.get("/api/v1/catalogue").body["version"] == 1).then_some(())
    });
    let member = register(&a.client, "till-reg-0001", "赵敏", "13700001234");
    top_up(&a.client, "till-top-0001", &member, "100.00");
    let points = a.client.post(
        &format!("/api/v1/members/{member}/points"),
        Some("till-points-0001"),
        &json!({"points": 500, "reason": "开业赠送"}).to_string(),
    );
    assert_eq!(points.status, 201, "{:?}", points.body);
    let coupon = a.client.post(
        &format!("/api/v1/members/{member}/coupons"),
        Some("till-coupon-0001"),
        &json!({"name": "满100减20", "offer": {"kind": "amount_off",
            "threshold": {"amount": "100"}, "off": {"amount": "20"}},
            "valid_from": "2020-01-01", "valid_to": "2099-12-31"})
        .to_string(),
    );
    assert_eq!(coupon.status, 201, "{:?}", coupon.body);

    let b = Browser::start();
    for (width, height) in [(1366, 768), (1024, 768)] {
        b.resize(width, height);
        b.goto(&format!("{}/", a.client.base));
        b.wait_text("#link", 10, |t| t.contains("在线"));
        let keystrokes = std::cell::Cell::new(0);
        let press = |keys: &str| {
            keystrokes.set(keystrokes.get() + keys.chars().count());
            b.type_into(":focus", keys);
        };
        press(F2);
        press(&format!("13700001234{ENTER}"));
        b.wait_text("#member-name", 10, |t| t == "赵敏");
        press(F8);
        for (_, barcode) in goods() {
            b.type_into("#scan-code", &format!("{barcode}{ENTER}"));
        }
        // 10.50 + 11.50 + … + 19.50 = 150.00; less the coupon's 20, less 5 yuan of points.
        b.wait_text("#basket-due", 10, |t| t == "¥150.00");
        press(&format!("{TAB}{DOWN}"));
        b.wait_text("#basket-due", 10, |t| t == "¥130.00");
        press(&format!("{TAB}500{TAB}"));
        b.wait_text("#basket-due", 10, |t| t == "¥125.00");
        b.screenshot(&format!("till-ten-lines-{width}x{height}"));
        let scrolls = b.script(
            "return document.documentElement.scrollHeight > window.innerHeight \
             || document.querySelector('#screen-sale .lines').scrollHeight \
                > document.querySelector('#screen-sale .lines').clientHeight",
        );
        assert_eq!(
            scrolls,
            json!(false),
            "the 10-line basket scrolls at {width}×{height}"
        );
        press(&format!("25{TAB}200{ENTER}"));
        b.wait_text("#items-paid-change", 10, |t| t == "¥100.00");
        let keystrokes = keystrokes.get();
        println!("{width}×{height}: {keystrokes} keystrokes after the scans");
        assert!(keystrokes <= 30, "{keystrokes} keystrokes");
        let stored = b.text("#member-stored");
        assert!(stored.starts_with('¥'), "{stored}");
        // The next member's sale starts clean: no member, an empty cart.
        b.type_into(":focus", "\u{E00C}"); // Esc
        b.wait_text("#member-name", 10, |t| t.is_empty());
        // A second round needs another coupon and more points.
        if width == 1366 {
            let again = a.client.post(
                &format!("/api/v1/members/{member}/coupons"),
                Some("till-coupon-0002"),
                &json!({"name": "满100减20", "offer": {"kind": "amount_off",
                    "threshold": {"amount": "100"}, "off": {"amount": "20"}},
                    "valid_from": "2020-01-01", "valid_to": "2099-12-31"})
                .to_string(),
            );
            assert_eq!(again.status, 201, "{:?}", again.body);
            let points = a.client.post(
                &format!("/api/v1/members/{member}/points"),
                Some("till-points-0002"),
                &json!({"points": 500, "reason": "开业赠送"}).to_string(),
            );
            assert_eq!(points.status, 201, "{:?}", points.body);
        }
    }
    let sales = a
        .client
        .get(&format!("/api/v1/members/{member}/sales"))
        .body;
    assert_eq!(sales["sales"].as_array().map(Vec::len), Some(2));
    assert_eq!(sales["sales"][0]["due"]["amount"], "125.00");

    // 交班 (F10): two sales of 125 (25 of stored value, 100 of cash each) and the 100 top-up
    // in cash: 300 expected; 299.50 counted is 0.50 short. A bad count is refused.
    b.type_into(":focus", "\u{E03A}"); // F10
    b.wait_text("#shift-expected", 10, |t| t == "¥300.00");
    assert!(b.text("#shift-summary").contains("2 笔 ¥250.00"));
    b.screenshot("till-shift");
    b.type_into("#shift-counted", &format!("-3{ENTER}"));
    b.wait_text("#shift-close [name=counted] + .field-error", 10, |t| {
        !t.is_empty()
    });
    b.clear("#shift-counted");
    b.type_into("#shift-counted", &format!("299.50{ENTER}"));
    b.wait_text("#shift-done", 10, |t| t.contains("差额 ¥-0.50"));
    b.wait_text("#shift-expected", 10, |t| t == "¥0.00");
    let today = sales["sales"][0]["business_date"]
        .as_str()
        .unwrap()
        .to_owned();
    eventually(30, "the shift in headquarters' audit log", || {
        let log = hub
            .client
            .get(&format!("/api/v1/audit?from={today}&to={today}"))
            .body;
        log["actions"]
            .as_array()?
            .iter()
            .any(|r| {
                r["action"] == "交班"
                    && r["detail"].as_str().is_some_and(|d| {
                        d.contains("应有现金 300.00 元，实点 299.50 元，差额 -0.50 元")
                    })
            })
            .then_some(())
    });
    // The shift report: one row, the drawer 0.50 short, and as CSV for the accountant.
    let shifts = hub
        .client
        .get(&format!("/api/v1/shifts?from={today}&to={today}"))
        .body;
    let row = &shifts["shifts"][0];
    assert_eq!(shifts["shifts"].as_array().unwrap().len(), 1, "{shifts}");
    assert_eq!(row["store_id"], "S001");
    assert_eq!(row["cash_expected"], "300.00");
    assert_eq!(row["counted"], "299.50");
    assert_eq!(row["difference"], "-0.50");
    let csv = hub
        .client
        .get(&format!(
            "/api/v1/shifts?from={today}&to={today}&format=csv"
        ))
        .body;
    let csv = csv.as_str().unwrap();
    assert!(csv.contains("交班时间") && csv.contains("299.50"), "{csv}");
}
