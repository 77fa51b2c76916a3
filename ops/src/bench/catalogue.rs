//! `ops bench catalogue`: importing The Complete Journey's 92,331 products at headquarters,
//! pushing them to many stores at once, and looking stock up at a store. Real hub (QUIC, mutual
//! TLS, sled), lean store clients running the real store session for the push, and a real
//! node for the lookups; everything shares this machine's two cores.

use std::path::Path;
use std::time::{Duration, Instant};

use protocol::StoreId;
use protocol::sync::{self, HubMsg, UplinkEvent, UplinkSession};

use super::hub::{Setup, client_endpoint, read_msg, setup};
use super::{Scratch, machine, ms, percentile};

/// Connects as `store` with nothing applied and reads the feed until it holds `feed_len`
/// records: (time taken, bytes received).
async fn take_feed(
    endpoint: quinn::Endpoint,
    hub: std::net::SocketAddr,
    store: StoreId,
    config: quinn::ClientConfig,
    feed_len: u64,
) -> anyhow::Result<(Duration, u64)> {
    let started = Instant::now();
    let connection = endpoint.connect_with(config, hub, "hub")?.await?;
    let (mut send, mut recv) = connection.open_bi().await?;
    let mut session = UplinkSession::new(store, 0, 0);
    let mut frames = sync::Frames::default();
    loop {
        while let Some(frame) = session.poll_frame() {
            send.write_all(&frame).await?;
        }
        while let Some(event) = session.poll_event() {
            if let UplinkEvent::Feed { upto, .. } = event
                && upto >= feed_len
            {
                let bytes = connection.stats().udp_rx.bytes;
                connection.close(0u32.into(), b"done");
                return Ok((started.elapsed(), bytes));
            }
        }
        let msg: HubMsg = read_msg(&mut recv, &mut frames).await?;
        session.handle(msg)?;
    }
}

/// Every store client takes the whole feed at once.
fn push(
    runtime: &tokio::runtime::Runtime,
    setup: &Setup,
    stores: usize,
    feed_len: u64,
) -> anyhow::Result<(Vec<Duration>, Duration, u64)> {
    let endpoint = runtime.block_on(async { client_endpoint() })?;
    let started = Instant::now();
    let results = runtime.block_on(async {
        let tasks: Vec<_> = setup
            .stores
            .iter()
            .take(stores)
            .map(|(id, config)| {
                tokio::spawn(take_feed(
                    endpoint.clone(),
                    setup.hub.sync_listen,
                    id.clone(),
                    config.clone(),
                    feed_len,
                ))
            })
            .collect();
        let mut out = Vec::new();
        for task in tasks {
            out.push(task.await??);
        }
        anyhow::Ok(out)
    })?;
    let elapsed = started.elapsed();
    let bytes = results.iter().map(|(_, b)| b).sum::<u64>() / results.len().max(1) as u64;
    let mut times: Vec<Duration> = results.into_iter().map(|(t, _)| t).collect();
    times.sort();
    Ok((times, elapsed, bytes))
}

fn get(agent: &ureq::Agent, url: &str) -> anyhow::Result<serde_json::Value> {
    let mut response = agent.get(url).call()?;
    Ok(serde_json::from_str(
        &response.body_mut().read_to_string()?,
    )?)
}

fn timed_gets(agent: &ureq::Agent, urls: &[String]) -> anyhow::Result<Vec<Duration>> {
    let mut times = Vec::with_capacity(urls.len());
    for url in urls {
        let started = Instant::now();
        let mut response = agent.get(url).call()?;
        response.body_mut().read_to_string()?;
        times.push(started.elapsed());
    }
    times.sort();
    Ok(times)
}

pub fn run(data: &Path, stores: usize, lookups: usize) -> anyhow::Result<()> {
    println!("machine: {}", machine());
    let runtime = tokio::runtime::Runtime::new()?;
    let setup = setup("catalogue", stores)?;
    let (bound_tx, bound_rx) = std::sync::mpsc::channel();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let hub_task = runtime.spawn(hub::run(
        setup.hub.clone(),
        move |b| {
            let _ = bound_tx.send(b.http);
        },
        async move {
            let _ = stopped.await;
        },
    ));
    let http = bound_rx.recv_timeout(Duration::from_secs(30))?;
    let hub_url = format!("http://{http}");

    let started = Instant::now();
    let parsed = ops::catalogue::read(&data.join("products.csv.gz"))?;
    let read_in = started.elapsed();
    let products = parsed.products.len();
    let started = Instant::now();
    let written = ops::catalogue::send(&hub_url, "bench", parsed.products.clone())?;
    let imported_in = started.elapsed();
    let feed_len = written["parts"].as_u64().unwrap_or(0);

    // The ceiling for the import: sled writing the same products, one record each, one batch.
    let raw = Scratch::new("catalogue-raw")?;
    let db = sled::Config::new().path(&raw.0).open()?;
    let started = Instant::now();
    let mut batch = sled::Batch::default();
    for p in &parsed.products {
        let product = p.clone().into_product()?;
        batch.insert(
            format!("pr/{}", product.sku).into_bytes(),
            protocol::inventory::encode(&product),
        );
    }
    db.apply_batch(batch)?;
    db.flush()?;
    node::store::sled_log(&raw.0)?.sync_data()?;
    let raw_in = started.elapsed();
    drop(db);

    let (alone, _, bytes) = push(&runtime, &setup, 1, feed_len)?;
    let (times, all_in, _) = push(&runtime, &setup, stores, feed_len)?;

    // Stock lookups at a real node that took the catalogue from the hub.
    let node_dir = setup.dir.0.join("S9999");
    let mut config = ops::pki::enrol(
        &setup.dir.0.join("pki"),
        "S9999",
        setup.hub.sync_listen,
        "hub",
        &node_dir,
    )?;
    config.data_dir = node_dir.join("data");
    config.open_before_logins = true;
    config.http.connections_per_address_max = config.http.connections_max;
    let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))?;
    let node_url = format!("http://{}", listener.local_addr()?);
    let (node_stop, node_stopped) = tokio::sync::oneshot::channel::<()>();
    let node_task = runtime.spawn(node::run(config, listener, async move {
        let _ = node_stopped.await;
    }));
    let agent = ureq::Agent::new_with_config(
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build(),
    );
    let started = Instant::now();
    loop {
        let version = get(&agent, &format!("{node_url}/api/v1/catalogue"))
            .map(|v| v["version"].as_u64().unwrap_or(0))
            .unwrap_or(0);
        if version >= 1 {
            break;
        }
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(600),
            "the node did not take the catalogue"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let node_took = started.elapsed();
    let skus: Vec<String> = parsed
        .products
        .iter()
        .step_by((products / lookups.max(1)).max(1))
        .take(lookups)
        .map(|p| p.sku.to_string())
        .collect();
    for (i, chunk) in skus.chunks(200).enumerate() {
        let lines: Vec<serde_json::Value> = chunk
            .iter()
            .map(|sku| serde_json::json!({"sku": sku, "qty": "10"}))
            .collect();
        let body = serde_json::json!({"supplier": "bench", "lines": lines}).to_string();
        let status = agent
            .post(format!("{node_url}/api/v1/stock/receipts"))
            .header("content-type", "application/json")
            .header("idempotency-key", format!("bench-receipt-{i:04}"))
            .send(body.as_str())?
            .status();
        anyhow::ensure!(status == 201, "receiving stock: {status}");
    }
    // Price the stocked products (the data has no prices) and time 20-line item checkouts with
    // a member and split tenders, next to quick checkouts of the same member.
    let priced: Vec<serde_json::Value> = parsed
        .products
        .iter()
        .filter(|p| skus.contains(&p.sku.to_string()))
        .map(|p| {
            let mut p = p.clone();
            p.price = Some(protocol::Money::cny(protocol::Fen(9_90)));
            serde_json::json!({ "product": p })
        })
        .collect();
    let answer = agent
        .post(format!("{hub_url}/api/v1/catalogue/changes"))
        .header("content-type", "application/json")
        .header("x-staff-id", "bench")
        .send(
            serde_json::json!({ "changes": priced })
                .to_string()
                .as_str(),
        )?;
    anyhow::ensure!(answer.status() == 201, "pricing: {}", answer.status());
    let started = Instant::now();
    while get(&agent, &format!("{node_url}/api/v1/catalogue"))?["version"].as_u64() < Some(2) {
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(120),
            "prices did not arrive"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut registered = agent
        .post(format!("{node_url}/api/v1/members"))
        .header("content-type", "application/json")
        .header("idempotency-key", "bench-member-0001")
        .send(r#"{"name":"基准会员","phone":"13900000001"}"#)?;
    let member: serde_json::Value = serde_json::from_str(&registered.body_mut().read_to_string()?)?;
    let member = member["member_id"].as_str().unwrap_or_default().to_owned();
    let checkouts = (lookups / 20).clamp(10, 200);
    let mut items = Vec::with_capacity(checkouts);
    let mut quick = Vec::with_capacity(checkouts);
    let mut sales = Vec::with_capacity(checkouts);
    for i in 0..checkouts {
        let lines: Vec<serde_json::Value> = skus
            .iter()
            .cycle()
            .skip(i * 20)
            .take(20)
            .map(|sku| serde_json::json!({"sku": sku, "qty": "1"}))
            .collect();
        // A coupon for this sale (满100减10), given before the clock starts.
        let mut given = agent
            .post(format!("{node_url}/api/v1/members/{member}/coupons"))
            .header("content-type", "application/json")
            .header("idempotency-key", format!("bench-coupon-{i:06}"))
            .send(
                r#"{"name":"满100减10","offer":{"kind":"amount_off","threshold":{"amount":"100"},
                   "off":{"amount":"10"}},"valid_from":"2000-01-01","valid_to":"2100-12-31"}"#,
            )?;
        let given: serde_json::Value = serde_json::from_str(&given.body_mut().read_to_string()?)?;
        let coupon = format!("S9999-{:08}", given["seq"].as_u64().unwrap_or(0));
        // 20 × 9.90 = 198.00 less 10.00: 100.00 by card, the rest in cash with change from 100.
        let body = serde_json::json!({
            "member_id": member, "lines": lines, "coupon": coupon,
            "tenders": [
                {"kind": "card", "amount": {"amount": "100.00"}, "reference": format!("POS-{i:06}")},
                {"kind": "cash", "tendered": {"amount": "100.00"}},
            ],
        })
        .to_string();
        let started = Instant::now();
        let mut answer = agent
            .post(format!("{node_url}/api/v1/checkouts/items"))
            .header("content-type", "application/json")
            .header("idempotency-key", format!("bench-items-{i:06}"))
            .send(body.as_str())?;
        items.push(started.elapsed());
        let status = answer.status();
        anyhow::ensure!(status == 201, "item checkout: {status}");
        let sold: serde_json::Value = serde_json::from_str(&answer.body_mut().read_to_string()?)?;
        let body = serde_json::json!({"member_id": member, "amount": {"amount": "198.00"},
            "cash_tendered": {"amount": "200.00"}})
        .to_string();
        let started = Instant::now();
        let mut answer = agent
            .post(format!("{node_url}/api/v1/checkouts/quick"))
            .header("content-type", "application/json")
            .header("idempotency-key", format!("bench-quick-{i:06}"))
            .send(body.as_str())?;
        quick.push(started.elapsed());
        let status = answer.status();
        anyhow::ensure!(status == 201, "quick checkout: {status}");
        let quick_sale: serde_json::Value =
            serde_json::from_str(&answer.body_mut().read_to_string()?)?;
        sales.push((sold["sale_id"].clone(), quick_sale["sale_id"].clone()));
    }
    // Returns at the store that made the sales: one line of each item sale (money back split
    // over card and cash, points, the coupon stays used), next to the whole quick sale's return.
    let mut item_returns = Vec::with_capacity(checkouts);
    let mut quick_returns = Vec::with_capacity(checkouts);
    for (i, (item_sale, quick_sale)) in sales.iter().enumerate() {
        let time_return = |sale: &serde_json::Value, body: &str, key: String| {
            let sale = sale.as_str().unwrap_or_default();
            let started = Instant::now();
            let status = agent
                .post(format!("{node_url}/api/v1/sales/{sale}/returns"))
                .header("content-type", "application/json")
                .header("idempotency-key", key)
                .send(body)?
                .status();
            anyhow::ensure!(status == 201, "return: {status}");
            Ok::<_, anyhow::Error>(started.elapsed())
        };
        let line = r#"{"reason":"基准","lines":[{"line":0,"qty":"1"}]}"#;
        item_returns.push(time_return(item_sale, line, format!("bench-ret-{i:06}"))?);
        let whole = r#"{"reason":"基准"}"#;
        quick_returns.push(time_return(
            quick_sale,
            whole,
            format!("bench-qret-{i:06}"),
        )?);
    }
    item_returns.sort();
    quick_returns.sort();
    items.sort();
    quick.sort();
    let stock_urls: Vec<String> = skus
        .iter()
        .map(|sku| format!("{node_url}/api/v1/stock/{sku}"))
        .collect();
    let health_urls: Vec<String> = skus
        .iter()
        .map(|_| format!("{node_url}/api/v1/health"))
        .collect();
    let health = timed_gets(&agent, &health_urls)?;
    let stock = timed_gets(&agent, &stock_urls)?;
    let checkout_row = format!(
        "| item checkout over HTTP: 20 lines, a member, a coupon, card + cash with change, durable, p50 / p99 ({checkouts} sales) | {} / {} | {} / {} quick checkout of the same member, one amount | {:.1}× (p50) |",
        ms(percentile(&items, 0.5)),
        ms(percentile(&items, 0.99)),
        ms(percentile(&quick, 0.5)),
        ms(percentile(&quick, 0.99)),
        percentile(&items, 0.5).as_secs_f64() / percentile(&quick, 0.5).as_secs_f64().max(1e-9)
    );
    let return_row = format!(
        "| item return over HTTP: one line of a 20-line sale, money back over card and cash, durable, p50 / p99 | {} / {} | {} / {} whole quick sale returned, same store | {:.1}× (p50) |",
        ms(percentile(&item_returns, 0.5)),
        ms(percentile(&item_returns, 0.99)),
        ms(percentile(&quick_returns, 0.5)),
        ms(percentile(&quick_returns, 0.99)),
        percentile(&item_returns, 0.5).as_secs_f64()
            / percentile(&quick_returns, 0.5).as_secs_f64().max(1e-9)
    );
    let _ = node_stop.send(());
    runtime.block_on(node_task)??;
    let _ = stop.send(());
    runtime.block_on(hub_task)??;

    println!();
    println!(
        "{products} products read from products.csv.gz in {read_in:.1?}; catalogue version 1 in {feed_len} entries; {} bad rows",
        parsed.bad.len()
    );
    println!();
    println!("| figure | ours | baseline (same run) | ratio |");
    println!("| --- | ---: | ---: | ---: |");
    println!(
        "| import {products} products at headquarters (HTTP, checks, {feed_len} HQ entries, durable) | {:.2} s | {:.2} s raw sled: the same products, one batch + flush | {:.1}× |",
        imported_in.as_secs_f64(),
        raw_in.as_secs_f64(),
        imported_in.as_secs_f64() / raw_in.as_secs_f64().max(1e-9)
    );
    println!(
        "| push the whole catalogue to {stores} stores at once: all done / p50 / p99 per store | {:.2} s / {:.2} s / {:.2} s | {:.2} s one store alone ({:.1} MB on the wire) | {:.1}× (all done) |",
        all_in.as_secs_f64(),
        percentile(&times, 0.5).as_secs_f64(),
        percentile(&times, 0.99).as_secs_f64(),
        alone[0].as_secs_f64(),
        bytes as f64 / 1e6,
        all_in.as_secs_f64() / alone[0].as_secs_f64().max(1e-9)
    );
    println!(
        "| a real node takes and applies the whole catalogue from the hub | {:.2} s | — | — |",
        node_took.as_secs_f64()
    );
    println!(
        "| stock lookup at a store, HTTP, p50 / p99 ({} SKUs) | {} / {} | {} / {} the health endpoint | {:.1}× (p50) |",
        stock.len(),
        ms(percentile(&stock, 0.5)),
        ms(percentile(&stock, 0.99)),
        ms(percentile(&health, 0.5)),
        ms(percentile(&health, 0.99)),
        percentile(&stock, 0.5).as_secs_f64() / percentile(&health, 0.5).as_secs_f64().max(1e-9)
    );
    println!("{checkout_row}");
    println!("{return_row}");
    Ok(())
}
