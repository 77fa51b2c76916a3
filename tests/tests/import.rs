//! 会员导入 with real processes: a chain's member file checked (every bad row reported, nothing
//! imported while one is bad), imported once however often it is sent, placed at each member's
//! home store (found by card, paid from offline there), and in headquarters' liabilities.
#![allow(clippy::unwrap_used, clippy::print_stdout)]

use serde_json::{Value, json};
use tests::chain::{Chain, quick_sale, wait_online};
use tests::{Client, bins, eventually};

const HEADER: &str = "手机号,姓名,卡号,开卡门店,入会日期,储值本金,赠送金额,积分,积分到期,卡项";

fn write(dir: &std::path::Path, name: &str, rows: &[&str]) -> std::path::PathBuf {
    let path = dir.join(name);
    let mut text = String::from(HEADER);
    for row in rows {
        text.push('\n');
        text.push_str(row);
    }
    std::fs::write(&path, text).unwrap();
    path
}

fn send(hub: &Client, file: &std::path::Path, dry_run: bool) -> anyhow::Result<Value> {
    ops::members::import(&hub.base, file, "hq-import", None, dry_run)
}

#[test]
fn a_member_file_is_checked_then_imported_once_at_each_home_store() {
    let chain = Chain::new(bins!());
    let hub = chain.hub("127.0.0.1:0".parse().unwrap());
    chain.enrol("S001", hub.sync);
    chain.enrol("S002", hub.sync);
    let (a, b) = (chain.node("S001"), chain.node("S002"));
    wait_online(&[&a.client, &b.client]);
    let dir = chain.hub_data().parent().unwrap().to_owned();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    let next_year = chrono::DateTime::from_timestamp(now.as_secs() as i64, 0)
        .unwrap()
        .date_naive()
        + chrono::Days::new(200);
    let wang = format!(
        "13900000001,王一,VIP1001,S001,2020-03-01,300.00,30,500,{next_year},count:洗车卡:8:10:100.00"
    );
    let li = "13900000002,李二,,S002,,50,,,,";

    // Every kind of bad row is reported with its line and column; nothing is imported.
    let bad_file = write(
        &dir,
        "bad.csv",
        &[
            &wang,
            li,
            "1390000000,短号,,S001,,,,,,",
            "13900000001,又一个王一,,S001,,,,,,",
            "13900000003,同卡,VIP1001,S001,,,,,,",
            "13900000004,负数,,S001,,-5,,,,",
            "13900000005,无店,,S099,,,,,,",
            "13900000006,坏日期,,S001,2026-13-01,,,,,",
        ],
    );
    let checked = send(&hub.client, &bad_file, true).unwrap();
    let report = &checked["report"];
    assert_eq!(
        (report["rows"].as_u64(), report["bad"].as_u64()),
        (Some(8), Some(6)),
        "{report}"
    );
    let seen: Vec<(u64, &str)> = report["bad_rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| (b["line"].as_u64().unwrap(), b["field"].as_str().unwrap()))
        .collect();
    assert_eq!(
        seen,
        [
            (4, "phone"),
            (5, "phone"),
            (6, "card_no"),
            (7, "principal"),
            (8, "home_store"),
            (9, "join_date")
        ]
    );
    let refused = send(&hub.client, &bad_file, false).unwrap_err().to_string();
    assert!(
        refused.contains("(422)") && refused.contains("bad: 6"),
        "{refused}"
    );
    let none = hub.client.get("/api/v1/members/lookup?phone=13900000002");
    assert_eq!(none.status, 404, "nothing was imported: {:?}", none.body);

    // The good rows import; sent again, nothing is imported twice.
    let zhang = "13900000003,张三,,S001,,,,,,";
    let good_file = write(&dir, "good.csv", &[&wang, li, zhang]);
    let imported = send(&hub.client, &good_file, false).unwrap();
    assert_eq!(
        (imported["imported"].as_u64(), imported["skipped"].as_u64()),
        (Some(3), Some(0)),
        "{imported}"
    );
    let again = send(&hub.client, &good_file, false).unwrap();
    assert_eq!(
        (again["imported"].as_u64(), again["skipped"].as_u64()),
        (Some(0), Some(3)),
        "{again}"
    );
    // 李二 changes phone at S002 and 张三 is erased at their request (被遗忘): sent again, the
    // file brings neither back (李二's opening is not credited twice; 张三 is a bad row).
    let id_of = |phone: &str| {
        eventually(30, "the imported member at S002", || {
            let r = b
                .client
                .get(&format!("/api/v1/members/lookup?phone={phone}"));
            (r.status == 200).then(|| r.body["member_id"].as_str().unwrap().to_owned())
        })
    };
    let li_id = id_of("13900000002");
    let moved = b.client.patch(
        &format!("/api/v1/members/{li_id}"),
        Some("edit-li-0001"),
        &json!({"phone": "13900000012"}).to_string(),
    );
    assert_eq!(moved.status, 200, "{:?}", moved.body);
    let zhang_id = id_of("13900000003");
    eventually(30, "张三 erased", || {
        let r = hub
            .client
            .post(&format!("/api/v1/members/{zhang_id}/erase"), None, "");
        (r.status == 200 || r.status == 201).then_some(())
    });
    eventually(30, "the new phone at headquarters", || {
        let r = hub.client.get("/api/v1/members/lookup?phone=13900000012");
        (r.status == 200).then_some(())
    });
    let checked = send(&hub.client, &good_file, true).unwrap();
    let bad: Vec<(u64, String)> = checked["report"]["bad_rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| (b["line"].as_u64().unwrap(), b["message"].to_string()))
        .collect();
    assert_eq!(bad.len(), 1, "{checked}");
    assert_eq!(bad[0].0, 4, "{checked}");
    assert!(bad[0].1.contains("被遗忘"), "{checked}");
    let without_zhang = write(&dir, "good2.csv", &[&wang, li]);
    let third = send(&hub.client, &without_zhang, false).unwrap();
    assert_eq!(
        (third["imported"].as_u64(), third["skipped"].as_u64()),
        (Some(0), Some(2)),
        "{third}"
    );

    // Headquarters owes what the members brought.
    let owed = eventually(20, "the opening balances in the liabilities", || {
        let l = hub.client.get("/api/v1/liabilities").body;
        (l["stored_value"]["total"]["amount"] == "380.00").then_some(l)
    });
    println!("liabilities: {owed}");

    // S001, the home store, finds 王一 by card and holds the balance, the points and the card.
    let found = eventually(30, "S001 to find the imported card", || {
        let r = a.client.get("/api/v1/members/lookup?card=VIP1001");
        (r.status == 200).then_some(r.body)
    });
    assert_eq!(found["join_date"], "2020-03-01");
    let member = found["member_id"].as_str().unwrap().to_owned();
    let wallet = eventually(30, "the opening balances at S001", || {
        let w = a
            .client
            .get(&format!("/api/v1/members/{member}/wallet"))
            .body;
        (w["stored_value"]["spendable_here"]["amount"] == "330.00").then_some(w)
    });
    assert_eq!(wallet["points"]["balance"], 500, "{wallet}");
    assert_eq!(wallet["cards"][0]["uses_left"], 8, "{wallet}");

    // Cut off from headquarters, S001 takes a payment from the imported balance.
    hub.kill();
    eventually(20, "S001 to notice headquarters is gone", || {
        (a.client.get("/api/v1/sync").body["link"] != "online").then_some(())
    });
    let paid = quick_sale(&a.client, "pay-import-0001", "20.00", Some(&member));
    assert_eq!(paid.status, 201, "{:?}", paid.body);
    drop(b);
}

#[test]
fn an_excel_file_imports_and_one_that_is_not_excel_is_refused() {
    let chain = Chain::new(bins!());
    let hub = chain.hub("127.0.0.1:0".parse().unwrap());
    chain.enrol("S001", hub.sync);
    let a = chain.node("S001");
    wait_online(&[&a.client]);
    eventually(20, "headquarters to know S001", || {
        tests::chain::hub_row(&hub.client, "S001").map(|_| ())
    });
    let dir = chain.hub_data().parent().unwrap().to_owned();

    let broken = dir.join("broken.xlsx");
    std::fs::write(&broken, b"PK\x03\x04 this is not a workbook").unwrap();
    let refused = send(&hub.client, &broken, true).unwrap_err().to_string();
    assert!(refused.contains("not a readable Excel file"), "{refused}");

    // Phones typed as numbers, as Excel keeps them.
    let path = dir.join("members.xlsx");
    let mut book = rust_xlsxwriter::Workbook::new();
    let sheet = book.add_worksheet();
    for (col, head) in ["phone", "name", "home_store", "principal"]
        .iter()
        .enumerate()
    {
        sheet.write_string(0, col as u16, *head).unwrap();
    }
    sheet.write_number(1, 0, 13_900_000_011.0).unwrap();
    sheet.write_string(1, 1, "张表格").unwrap();
    sheet.write_string(1, 2, "S001").unwrap();
    sheet.write_number(1, 3, 12.5).unwrap();
    book.save(&path).unwrap();
    let imported = send(&hub.client, &path, false).unwrap();
    assert_eq!(imported["imported"].as_u64(), Some(1), "{imported}");
    let found = hub.client.get("/api/v1/members/lookup?phone=13900000011");
    assert_eq!(found.status, 200, "{:?}", found.body);
    assert_eq!(found.body["name"], "张表格");
    let _ = json!({});
}

/// A large file with a few broken rows (a million rows with `IMPORT_TEST_ROWS=1000000`; 20,000 by
/// default, CI-sized): every broken row is reported with its line, and nothing is imported.
#[test]
fn a_large_file_with_a_few_broken_rows_reports_each_and_imports_nothing() {
    let rows: usize = std::env::var("IMPORT_TEST_ROWS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(20_000);
    let chain = Chain::new(bins!());
    let hub = chain.hub("127.0.0.1:0".parse().unwrap());
    chain.enrol("S001", hub.sync);
    let a = chain.node("S001");
    wait_online(&[&a.client]);
    let dir = chain.hub_data().parent().unwrap().to_owned();
    let path = dir.join("large.csv");
    let mut text = String::from("phone,name,home_store,principal\n");
    let broken = [rows / 3, rows / 2, rows - 1];
    for n in 0..rows {
        let line = match n {
            _ if n == broken[0] => format!("139{n:07},坏号,S001,1\n"),
            _ if n == broken[1] => format!("139{n:08},负数,S001,-1\n"),
            _ if n == broken[2] => format!("139{n:08},无店,S404,1\n"),
            _ => format!("139{n:08},会员{n},S001,1.50\n"),
        };
        text.push_str(&line);
    }
    std::fs::write(&path, text).unwrap();
    let checked = send(&hub.client, &path, true).unwrap();
    let report = &checked["report"];
    assert_eq!(report["rows"].as_u64(), Some(rows as u64));
    assert_eq!(report["bad"].as_u64(), Some(3), "{report}");
    let lines: Vec<u64> = report["bad_rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["line"].as_u64().unwrap())
        .collect();
    let expected: Vec<u64> = broken.iter().map(|n| *n as u64 + 2).collect();
    assert_eq!(lines, expected);
    let refused = send(&hub.client, &path, false).unwrap_err().to_string();
    assert!(refused.contains("(422)"), "{refused}");
    let none = hub.client.get("/api/v1/members/lookup?phone=13900000000");
    assert_eq!(none.status, 404, "nothing was imported");
}
