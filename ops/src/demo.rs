//! `ops demo`: one store node on loopback with sample members and sales, so a newcomer has
//! something to look at. Seeding uses fixed idempotency keys, so running it again (also after a
//! `kill -9`) adds nothing twice.

use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use serde_json::json;

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

pub fn run(dir: &Path, port: u16) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let config_path = dir.join("node.toml");
    let config = if config_path.exists() {
        node::Config::load(&config_path)?
    } else {
        let config = node::Config {
            store_id: "S001".into(),
            store_name: "人民广场店".into(),
            data_dir: dir.join("data"),
            listen: ([127, 0, 0, 1], port).into(),
            ..node::Config::default()
        };
        std::fs::write(&config_path, config.to_toml())?;
        config
    };
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async move {
        let listen = std::net::SocketAddr::from(([127, 0, 0, 1], port));
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("binding {listen}"))?;
        let base = format!("http://{}", listener.local_addr()?);
        let server = tokio::spawn(node::run(config, listener, node::shutdown_signal()));
        let seed_base = base.clone();
        tokio::task::spawn_blocking(move || seed(&seed_base)).await??;
        print_welcome(&base, dir, &config_path);
        server.await?
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
        let body = json!({"name": name, "phone": phone, "birthday": birthday, "gender": gender, "tags": tags});
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
    Ok(())
}

fn print_welcome(base: &str, dir: &Path, config_path: &Path) {
    println!(
        r#"
门店节点已启动 · store node running (store S001, data in {dir})

  API            {base}/api/v1/health
  OpenAPI        {base}/openapi.json
  会员 member     curl '{base}/api/v1/members/lookup?phone=13800138001'

  快速消费 quick checkout (earns 1 point per yuan):
    curl -X POST {base}/api/v1/checkouts/quick \
      -H 'Idempotency-Key: till-1-000001' -H 'Content-Type: application/json' \
      -d '{{"member_id":"<member_id from the lookup>","amount":{{"amount":"88.80","currency":"CNY"}},"cash_tendered":{{"amount":"100"}}}}'

  Stop with Ctrl-C (or kill -9: acknowledged sales survive). Run again to continue;
  check the data with: cargo run -p node -- verify --config {config}
"#,
        dir = dir.display(),
        config = config_path.display()
    );
}
