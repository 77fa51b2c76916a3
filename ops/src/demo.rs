//! `ops demo`: a headquarters hub and three stores on loopback, with certificates, sample
//! members and sales, so a newcomer has a chain to look at. Seeding uses fixed idempotency keys,
//! so running it again (also after a `kill -9`) adds nothing twice.

use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use serde_json::json;

const STORES: &[(&str, &str)] = &[
    ("S001", "人民广场店"),
    ("S002", "徐家汇店"),
    ("S003", "陆家嘴店"),
];

/// Sample members: name, phone, birthday, gender, tags.
const MEMBERS: &[(&str, &str, &str, &str, &[&str])] = &[
    ("张伟", "13800138001", "1988-03-12", "male", &["vip"]),
    ("王芳", "13900139002", "1992-11-23", "female", &["生日会员"]),
    ("李娜", "13700137003", "1985-07-08", "female", &[]),
    ("刘洋", "13600136004", "1995-01-30", "male", &["新会员"]),
    ("陈静", "+85291234567", "1990-09-15", "female", &["香港"]),
];

/// Sample quick sales: member index (or none), amount, category, cash handed over.
const SALES: &[(Option<usize>, &str, &str, Option<&str>)] = &[
    (Some(0), "128.00", "饮品", Some("150.00")),
    (Some(1), "56.50", "烘焙", None),
    (Some(0), "35.80", "饮品", Some("50")),
    (None, "12.00", "零食", Some("20")),
    (Some(2), "288.00", "礼盒", None),
    (Some(3), "19.90", "饮品", None),
];

const HUB_SYNC_PORT: u16 = 7443;

/// Certificates, hub config and store configs, created on the first run and reused after.
fn prepare(dir: &Path, port: u16) -> anyhow::Result<(hub::Config, Vec<node::Config>)> {
    let pki = dir.join("pki");
    if !pki.join(ops::pki::CA_KEY).exists() {
        ops::pki::init(&pki, &["hub", "localhost", "127.0.0.1"])?;
    }
    let hub_sync = std::net::SocketAddr::from(([127, 0, 0, 1], HUB_SYNC_PORT));
    let mut hub = ops::pki::hub_config(&pki, std::path::absolute(dir.join("hub"))?)?;
    hub.sync_listen = hub_sync;
    hub.http_listen = ([127, 0, 0, 1], port + 10).into();
    // The demo is open until an admin has a login, and says so on its pages.
    hub.open_before_logins = true;
    // 消息: the demo's gateway is a file: every message to a member, one JSON line each.
    hub.notify = Some(hub::config::NotifyConfig {
        file: Some(std::path::absolute(dir.join("hub").join("outbox.jsonl"))?),
        ..Default::default()
    });
    let mut stores = Vec::new();
    for (i, (store_id, store_name)) in STORES.iter().enumerate() {
        let out = dir.join("stores").join(store_id);
        let path = out.join("node.toml");
        let mut config = if path.exists() {
            node::Config::load(&path)?
        } else {
            ops::pki::enrol(&pki, store_id, hub_sync, "hub", &out)?
        };
        config.store_name = (*store_name).to_owned();
        config.open_before_logins = true;
        config.listen = ([127, 0, 0, 1], port + i as u16).into();
        // 会员自助 at every till's address too (/m), passed on to headquarters.
        config.hub_web = Some(format!("http://127.0.0.1:{}", port + 10));
        // The chain's wallet rules: one top-up offer, and a small offline overdraft.
        config.wallet.top_up_rules = vec![node::config::TopUpRuleConfig {
            id: "充500送50".into(),
            pay_at_least: rust_decimal::Decimal::new(500, 0),
            bonus: rust_decimal::Decimal::new(50, 0),
        }];
        config.wallet.offline_overdraft_per_member = rust_decimal::Decimal::new(50, 0);
        config.wallet.offline_overdraft_per_store = rust_decimal::Decimal::new(2000, 0);
        // Foreign cash the tills take (外币现金), yuan per unit.
        config.exchange_rates = [
            ("USD".to_owned(), rust_decimal::Decimal::new(710, 2)),
            ("HKD".to_owned(), rust_decimal::Decimal::new(91, 2)),
        ]
        .into();
        std::fs::write(&path, config.to_toml())?;
        stores.push(config);
    }
    Ok((hub, stores))
}

pub fn run(dir: &Path, port: u16) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let (hub_config, stores) = prepare(dir, port)?;
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async move {
        let (stop_tx, _) = tokio::sync::broadcast::channel::<()>(1);
        let stopper = stop_tx.clone();
        tokio::spawn(async move {
            node::shutdown_signal().await;
            let _ = stopper.send(());
        });
        let hub_http = hub_config.http_listen;
        let mut hub_stop = stop_tx.subscribe();
        let hub_task = tokio::spawn(hub::run(hub_config, |_| {}, async move {
            let _ = hub_stop.recv().await;
        }));
        let mut tasks = Vec::new();
        for config in &stores {
            let listener = tokio::net::TcpListener::bind(config.listen)
                .await
                .with_context(|| format!("binding {}", config.listen))?;
            let mut stop = stop_tx.subscribe();
            tasks.push(tokio::spawn(node::run(
                config.clone(),
                listener,
                async move {
                    let _ = stop.recv().await;
                },
            )));
        }
        let first = format!("http://{}", stores[0].listen);
        let hub_url = format!("http://{hub_http}");
        // The sample data goes in once: after that the chain is the user's (an HQ admin given a
        // password closes the APIs the seeding would call).
        let seeded = dir.join("seeded");
        if !seeded.exists() {
            tokio::task::spawn_blocking(move || {
                seed(&first)?;
                seed_goods(&hub_url, &first)?;
                seed_hq(&hub_url)
            })
            .await??;
            std::fs::write(&seeded, "the demo's sample data is in\n")
                .with_context(|| format!("writing {}", seeded.display()))?;
        }
        print_welcome(dir, &stores, hub_http);
        for task in tasks {
            task.await??;
        }
        hub_task.await?
    })
}

fn seed(base: &str) -> anyhow::Result<()> {
    let config = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(10)))
        .build();
    let agent = ureq::Agent::new_with_config(config);
    let mut ids = Vec::new();
    for (i, (name, phone, birthday, gender, tags)) in MEMBERS.iter().enumerate() {
        // The first two agreed to marketing messages (营销同意).
        let body = json!({"name": name, "phone": phone, "birthday": birthday, "gender": gender,
                          "tags": tags, "marketing_consent": i < 2});
        let mut answer = agent
            .post(format!("{base}/api/v1/members"))
            .header("idempotency-key", format!("demo-member-{i:04}"))
            .header("x-staff-id", "demo")
            .send_json(&body)?;
        let member: serde_json::Value = answer.body_mut().read_json()?;
        anyhow::ensure!(
            answer.status().is_success(),
            "seeding member {name}: {member}"
        );
        ids.push(member["member_id"].as_str().unwrap_or_default().to_owned());
    }
    for (i, (member, amount, category, cash)) in SALES.iter().enumerate() {
        let mut body =
            json!({"amount": {"amount": amount, "currency": "CNY"}, "category": category});
        if let Some(m) = member {
            body["member_id"] = json!(ids[*m]);
        }
        if let Some(cash) = cash {
            body["cash_tendered"] = json!({"amount": cash});
        }
        let answer = agent
            .post(format!("{base}/api/v1/checkouts/quick"))
            .header("idempotency-key", format!("demo-sale-{i:04}"))
            .header("x-staff-id", "demo")
            .send_json(&body)?;
        anyhow::ensure!(
            answer.status().is_success(),
            "seeding sale {i}: {}",
            answer.status()
        );
    }
    // The first two members prepaid at S001 (充值), one of them under the 充500送50 rule.
    for (i, (amount, rule)) in [("500", Some("充500送50")), ("200", None)]
        .iter()
        .enumerate()
    {
        let mut body = json!({"amount": {"amount": amount}});
        if let Some(rule) = rule {
            body["rule"] = json!(rule);
        }
        let answer = agent
            .post(format!("{base}/api/v1/members/{}/top-ups", ids[i]))
            .header("idempotency-key", format!("demo-topup-{i:04}"))
            .header("x-staff-id", "demo")
            .send_json(&body)?;
        anyhow::ensure!(
            answer.status().is_success(),
            "seeding top-up {i}: {}",
            answer.status()
        );
    }
    Ok(())
}

/// A small catalogue (published once), and goods received at S001.
fn seed_goods(hub: &str, store: &str) -> anyhow::Result<()> {
    let agent = ureq::Agent::new_with_config(
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(10)))
            .build(),
    );
    let version = |base: &str| -> anyhow::Result<u64> {
        let mut answer = agent.get(format!("{base}/api/v1/catalogue")).call()?;
        let body: serde_json::Value = answer.body_mut().read_json()?;
        Ok(body["version"].as_u64().unwrap_or(0))
    };
    if version(hub)? == 0 {
        let changes: Vec<serde_json::Value> = GOODS
            .iter()
            .map(|(sku, name, barcode, unit, price, low)| {
                json!({"product": {
                    "sku": sku, "name": name, "barcodes": [barcode], "department": "食品",
                    "category": "日用", "unit": unit, "price": {"amount": price}, "low_stock": low,
                }})
            })
            .collect();
        let answer = agent
            .post(format!("{hub}/api/v1/catalogue/changes"))
            .header("x-staff-id", "demo-hq")
            .send_json(json!({ "changes": changes }))?;
        anyhow::ensure!(
            answer.status().is_success(),
            "seeding the catalogue: {}",
            answer.status()
        );
    }
    let started = std::time::Instant::now();
    while version(store)? == 0 {
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(20),
            "S001 did not receive the catalogue"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let lines: Vec<serde_json::Value> = GOODS
        .iter()
        .map(|(sku, ..)| json!({"sku": sku, "qty": "24"}))
        .collect();
    let answer = agent
        .post(format!("{store}/api/v1/stock/receipts"))
        .header("idempotency-key", "demo-receipt-0001")
        .header("x-staff-id", "demo")
        .send_json(json!({"supplier": "演示供应商", "lines": lines}))?;
    anyhow::ensure!(
        answer.status().is_success(),
        "seeding stock: {}",
        answer.status()
    );
    Ok(())
}

/// Headquarters' part of the demo, added once: the member rules and tiers, marketing, the points
/// mall, and two of S003's staff with logins, so S003's till asks for one (S001 and S002, whose
/// staff have none, stay open).
fn seed_hq(hub: &str) -> anyhow::Result<()> {
    let agent = ureq::Agent::new_with_config(
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(10)))
            .build(),
    );
    let mut listed = agent.get(format!("{hub}/api/v1/staff")).call()?;
    let listed: serde_json::Value = listed.body_mut().read_json()?;
    if listed["staff"].as_array().is_some_and(|s| !s.is_empty()) {
        return Ok(());
    }
    let staff = json!({"staff": [
        {"id": "c03", "name": "王芳", "store": "S003", "role": "cashier"},
        {"id": "m03", "name": "李店长", "store": "S003", "role": "manager"},
    ]});
    let answer = agent
        .post(format!("{hub}/api/v1/staff"))
        .header("x-staff-id", "demo-hq")
        .send_json(&staff)?;
    anyhow::ensure!(
        answer.status().is_success(),
        "seeding staff: {}",
        answer.status()
    );
    // The chain's member rules, published by headquarters to every store (the same offer and
    // overdraft as each store's node.toml, plus a member day and a gold-tier discount).
    let rules = json!({
        "points_per_yuan": "1",
        "points_multipliers": [{"name": "会员日", "weekday": "Wed", "factor": "2"}],
        "top_up_rules": [{"id": "充500送50", "pay_at_least": "500", "bonus": "50"}],
        "tier_percent_off": {"金卡": "5"},
        "offline_overdraft_per_member": "50",
        "offline_overdraft_per_store": "2000",
    });
    let answer = agent
        .put(format!("{hub}/api/v1/member-rules"))
        .header("x-staff-id", "demo-hq")
        .send_json(&rules)?;
    anyhow::ensure!(
        answer.status().is_success(),
        "seeding the member rules: {}",
        answer.status()
    );
    // 会员等级: three tiers by a year's spend; 金卡 is kept once reached.
    let tiers = json!({"basis": "spend", "period_days": 365, "tiers": [
        {"name": "普通", "threshold": "0"},
        {"name": "银卡", "threshold": "500", "percent_off": "3", "points_multiplier": "1.5"},
        {"name": "金卡", "threshold": "2000", "percent_off": "5", "points_multiplier": "2",
         "may_go_down": false},
    ]});
    let answer = agent
        .put(format!("{hub}/api/v1/tiers"))
        .header("x-staff-id", "demo-hq")
        .send_json(&tiers)?;
    anyhow::ensure!(
        answer.status().is_success(),
        "seeding the tier table: {}",
        answer.status()
    );
    // 营销: a welcome coupon for the members who agreed to marketing, ready to run.
    let marketing = [
        (
            "templates",
            json!({"id": "T-WELCOME", "name": "满100减20", "per_member": 1, "quota": 1000,
                   "offer": {"kind": "amount_off", "threshold": {"amount": "100"},
                             "off": {"amount": "20"}},
                   "validity": {"days": {"days": 30}}}),
        ),
        (
            "templates",
            json!({"id": "T-GIFT5", "name": "5元代金券", "per_member": 10,
                   "offer": {"kind": "voucher", "value": {"amount": "5"},
                             "threshold": {"amount": "0"}},
                   "validity": {"days": {"days": 30}}}),
        ),
        (
            "segments",
            json!({"id": "agreed", "name": "同意营销的会员", "conditions": ["consent"]}),
        ),
        (
            "campaigns",
            json!({"id": "C-WELCOME", "name": "回店礼", "template": "T-WELCOME",
                   "segment": "agreed", "schedule": "once",
                   "message": "{name}您好，送您一张{coupon}，{valid_to}前到店可用。"}),
        ),
    ];
    for (what, body) in marketing {
        let answer = agent
            .put(format!("{hub}/api/v1/marketing/{what}"))
            .header("x-staff-id", "demo-hq")
            .send_json(&body)?;
        anyhow::ensure!(
            answer.status().is_success(),
            "seeding marketing {what}: {}",
            answer.status()
        );
    }
    // 积分商城: noodles off a store's shelf, or a ¥5 coupon (also on the member's page).
    let gifts = json!({"gifts": [
        {"id": "noodles", "name": "方便面 五连包", "points": 100,
         "kind": {"goods": {"sku": "6902", "qty": 1}}, "per_member": 2, "stock": 20},
        {"id": "v5", "name": "5元代金券", "points": 50,
         "kind": {"coupon": {"template": "T-GIFT5"}}, "per_member": 5, "stock": 200},
    ]});
    let answer = agent
        .put(format!("{hub}/api/v1/gifts"))
        .header("x-staff-id", "demo-hq")
        .send_json(&gifts)?;
    anyhow::ensure!(
        answer.status().is_success(),
        "seeding the points mall: {}",
        answer.status()
    );
    // 拓客: a referrer gets 100 points and ¥5 bonus on their friend's first purchase, and the
    // one who referred them 20 points.
    let referral = json!({"level1": {"points": 100, "bonus": "5.00"}, "level2": {"points": 20}});
    let answer = agent
        .put(format!("{hub}/api/v1/referral-rules"))
        .header("x-staff-id", "demo-hq")
        .send_json(&referral)?;
    anyhow::ensure!(
        answer.status().is_success(),
        "seeding the referral rewards: {}",
        answer.status()
    );
    for (id, pin) in DEMO_LOGINS {
        let answer = agent
            .put(format!("{hub}/api/v1/staff/{id}/password"))
            .header("x-staff-id", "demo-hq")
            .send_json(json!({ "password": pin }))?;
        anyhow::ensure!(
            answer.status().is_success(),
            "seeding {id}'s login: {}",
            answer.status()
        );
    }
    Ok(())
}

/// The demo's logins at S003: (staff id, PIN).
const DEMO_LOGINS: &[(&str, &str)] = &[("c03", "246810"), ("m03", "135790")];

/// (sku, name, barcode, unit, price, low-stock threshold)
const GOODS: &[(&str, &str, &str, &str, &str, &str)] = &[
    (
        "6901",
        "矿泉水 550ml",
        "6901234567892",
        "piece",
        "2.00",
        "30",
    ),
    (
        "6902",
        "方便面 五连包",
        "6901234567809",
        "piece",
        "12.50",
        "10",
    ),
    ("6903", "散装大米", "2000000000015", "kg", "4.80", "20"),
    ("6904", "可乐 330ml", "6901000000011", "piece", "3.00", "24"),
    (
        "6905",
        "纯牛奶 250ml",
        "6901000000028",
        "piece",
        "3.50",
        "24",
    ),
    ("6906", "全麦面包", "6901000000035", "piece", "8.90", "6"),
    ("6907", "鸡蛋 10枚", "6901000000042", "piece", "13.80", "6"),
    ("6908", "酸奶 原味", "6901000000059", "piece", "5.50", "12"),
    ("6909", "纸巾 3包", "6901000000066", "piece", "9.90", "6"),
    ("6910", "薯片 原味", "6901000000073", "piece", "7.50", "12"),
    ("6911", "咖啡 拿铁", "6901000000080", "piece", "12.00", "6"),
    (
        "6912",
        "洗洁精 500g",
        "6901000000097",
        "piece",
        "11.80",
        "4",
    ),
];

fn print_welcome(dir: &Path, stores: &[node::Config], hub_http: std::net::SocketAddr) {
    let s1 = format!("http://{}", stores[0].listen);
    let s2 = format!("http://{}", stores[1].listen);
    let outbox = dir.join("hub").join("outbox.jsonl");
    let outbox = outbox.display();
    println!(
        "\n连锁演示已启动 · demo chain running (data in {})\n",
        dir.display()
    );
    println!("  总部 headquarters   http://{hub_http}/          (web page; API under /api/v1)");
    for s in stores {
        println!(
            "  门店 {} {}  http://{}/   (收银台 web page; API under /api/v1)",
            s.store_id, s.store_name, s.listen
        );
    }
    let logins: Vec<String> = DEMO_LOGINS
        .iter()
        .map(|(id, pin)| format!("{id} / {pin}"))
        .collect();
    println!(
        "  S003's page asks for a login ({}: cashier, manager); S001 and S002 are open.",
        logins.join(", ")
    );
    println!(
        "  演示模式 demo mode: headquarters, S001 and S002 answer without a login until their \
         staff have one (open_before_logins = true in hub.toml / node.toml). A real chain leaves \
         it off: the hub's first start makes an `admin` login, its password in \
         hub/first-admin-password.txt, and every till needs a staff login."
    );
    println!(
        r#"
  A member registered at S001 is found at S002 within seconds (also offline, once synced):
    curl '{s2}/api/v1/members/lookup?phone=13800138001'
  Sync state of a store (link, backlog, last sync):
    curl {s1}/api/v1/sync
  Quick checkout at S001 (earns 1 point per yuan, 2 on Wednesdays: 会员日):
    curl -X POST {s1}/api/v1/checkouts/quick \
      -H 'Idempotency-Key: till-1-000001' -H 'Content-Type: application/json' \
      -d '{{"member_id":"<member_id from the lookup>","amount":{{"amount":"88.80","currency":"CNY"}},"cash_tendered":{{"amount":"100"}}}}'

  13800138001 prepaid 500 (+50 bonus) at S001. Pay 30 from stored value at S002: headquarters
  grants it at once from the quarter of the balance it keeps, even with S001 switched off.
  While headquarters is unreachable (or S001 is off and the payment is larger than that
  quarter), S001 still takes what it holds, and S002 takes at most 50 on the chain's offline
  overdraft (a receivable it collects once the rights can be moved):
    curl -X POST {s2}/api/v1/checkouts/quick \
      -H 'Idempotency-Key: till-2-000001' -H 'Content-Type: application/json' \
      -d '{{"member_id":"<member_id>","amount":{{"amount":"30"}},"pay_with":"stored_value"}}'
    curl {s2}/api/v1/members/<member_id>/wallet
  Goods: headquarters' catalogue at every store (scan a barcode), S001's stock and its
  low-stock alerts (24 bottles of water are under the threshold of 30), a transfer request:
    curl '{s2}/api/v1/products?barcode=6901234567892'
    curl '{s1}/api/v1/stock?alerts=low'
    curl -X POST {s2}/api/v1/transfers -H 'Idempotency-Key: till-2-transfer-1' \
      -H 'Content-Type: application/json' \
      -d '{{"from":"S001","to":"S002","lines":[{{"sku":"6901","qty":"6"}}]}}'
    curl 'http://{hub_http}/api/v1/transfers?state=requested'   # approve: POST …/<id>/approve
  营销 and 消息: run the welcome campaign (a coupon to each member who agreed to marketing,
  once however often it runs), then read the messages sent (top-ups and coupons; the demo's
  gateway is a file):
    curl -X POST http://{hub_http}/api/v1/marketing/campaigns/C-WELCOME/run -H 'X-Staff-Id: demo-hq'
    tail {outbox}
  会员自助, the member's own card (phone-sized; at every till's address too, e.g. {s1}/m):
  open http://{hub_http}/m, type 13800138001, press 获取验证码, and read the code from
  `tail -1 {outbox}`; its member code (动态会员码) typed into a till's member box finds 张伟.
  积分商城 and 拓客: on a till's 会员详情 (F3) redeem a gift for points; register a new member
  with 张伟's 推荐码 and make them pay: 张伟 gets the reward (headquarters' 规则·等级 → 拓客报表).
  Headquarters: liabilities and cross-store settlement (跨店清分):
    curl http://{hub_http}/api/v1/liabilities
    curl 'http://{hub_http}/api/v1/settlement?from=2026-01-01&to=2026-12-31'

  Stop with Ctrl-C (or kill -9: acknowledged sales survive). Run again to continue.
"#
    );
}
