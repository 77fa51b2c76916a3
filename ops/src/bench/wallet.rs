//! `ops bench wallet`: what a stored-value payment costs at the till, measured over HTTP against
//! a real hub and two real stores on loopback (QUIC, mutual TLS, sled with fsync): a payment at
//! the store holding the rights (the baseline, no network) next to payments at another store:
//! the first needs headquarters to grant rights from its reserve (or, with `--reserve-percent
//! 0`, to recall them from the first store first); after it, headquarters places the second
//! store's share there ahead of need. `--rtt-ms` puts both stores behind a UDP proxy adding
//! that round trip to their links (`ops::proxy`). Last, the first store is switched off
//! and members who have not paid at the second store yet pay there: the share that succeeds.
//!
//! The first spends at the second store are measured two ways: one at a time (each 30 ms after
//! the last, so headquarters has finished placing the previous member's share: the latency of a
//! hub-assisted spend, the figure held to the goal), and back to back (each also queues behind
//! the recalls and grants that placing the previous member's share started).

use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::{Value, json};

use super::{Figure, Scratch, machine, ms, percentile, ratio};

/// A till talking to a node's HTTP API over one keep-alive connection.
pub(super) struct Till {
    pub agent: ureq::Agent,
    pub base: String,
}

impl Till {
    /// A till with its own connection to the node at `base`.
    pub fn new(base: &str) -> Self {
        Self {
            agent: ureq::Agent::new_with_config(
                ureq::Agent::config_builder()
                    .http_status_as_error(false)
                    .build(),
            ),
            base: base.to_owned(),
        }
    }

    pub fn post(&self, path: &str, key: &str, body: &Value) -> anyhow::Result<(u16, Value)> {
        let mut answer = self
            .agent
            .post(format!("{}{path}", self.base))
            .header("idempotency-key", key)
            .send_json(body)?;
        Ok((answer.status().as_u16(), answer.body_mut().read_json()?))
    }

    fn get(&self, path: &str) -> anyhow::Result<Value> {
        Ok(self
            .agent
            .get(format!("{}{path}", self.base))
            .call()?
            .body_mut()
            .read_json()?)
    }

    /// Pays `amount` from stored value; returns how long the till waited.
    pub fn pay(&self, key: &str, member: &str, amount: &str) -> anyhow::Result<Duration> {
        let body =
            json!({"member_id": member, "amount": {"amount": amount}, "pay_with": "stored_value"});
        let started = Instant::now();
        let (status, answer) = self.post("/api/v1/checkouts/quick", key, &body)?;
        let waited = started.elapsed();
        anyhow::ensure!(status == 201, "payment {key} refused: {answer}");
        Ok(waited)
    }
}

fn wait_until(what: &str, mut done: impl FnMut() -> anyhow::Result<bool>) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(300);
    while !done()? {
        anyhow::ensure!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

fn row(label: &str, mut times: Vec<Duration>, baseline_p50: Duration) -> String {
    times.sort();
    let (p50, p99) = (percentile(&times, 0.5), percentile(&times, 0.99));
    format!(
        "| {label} | {} | {} | {} | {:.1}× |",
        times.len(),
        ms(p50),
        ms(p99),
        p50.as_secs_f64() / baseline_p50.as_secs_f64().max(1e-9)
    )
}

pub fn run(members: usize, reserve_percent: u8, rtt_ms: u64, postgres: bool) -> anyhow::Result<()> {
    let policy = protocol::bank::Policy { reserve_percent };
    policy.check().map_err(anyhow::Error::msg)?;
    println!(
        "machine: {} · headquarters keeps {reserve_percent}% · each store's link adds {rtt_ms} ms",
        machine()
    );
    let dir = Scratch::new("wallet")?;
    let pki = dir.0.join("pki");
    ops::pki::init(&pki, &["hub", "127.0.0.1"])?;
    let mut hub_config = ops::pki::hub_config(&pki, dir.0.join("hub-data"))?;
    let sync = std::net::UdpSocket::bind("127.0.0.1:0")?.local_addr()?;
    hub_config.sync_listen = sync;
    hub_config.http_listen = ([127, 0, 0, 1], 0).into();
    hub_config.open_before_logins = true;
    hub_config.http.connections_per_address_max = hub_config.http.connections_max;
    hub_config.rights = policy;
    // Headquarters on PostgreSQL: a server of our own in the scratch directory.
    let pg = match postgres {
        true => {
            let pg = hub::storage::pg::scratch::Postgres::start(&dir.0.join("pg"))?;
            pg.create_database("hub")?;
            hub_config.database_url = Some(pg.url("hub"));
            Some(pg)
        }
        false => None,
    };
    let runtime = tokio::runtime::Runtime::new()?;
    let (hub_stop, hub_stopped) = tokio::sync::oneshot::channel::<()>();
    let (bound_tx, bound) = std::sync::mpsc::channel();
    let hub_task = runtime.spawn(hub::run(
        hub_config,
        move |b| {
            let _ = bound_tx.send(b);
        },
        async move {
            let _ = hub_stopped.await;
        },
    ));
    let hub_http = bound
        .recv_timeout(Duration::from_secs(30))
        .context("the hub did not start")?
        .http;
    let hq = Till::new(&format!("http://{hub_http}"));
    // Both stores reach headquarters through a proxy adding the round trip (half each way), as
    // branch stores over the internet do.
    let proxy = ops::proxy::FaultProxy::start(sync, 28)?;
    proxy.set(ops::proxy::Faults {
        delay_ms_min: rtt_ms / 2,
        delay_ms_max: rtt_ms / 2,
        ..Default::default()
    });
    let agent = ureq::Agent::new_with_config(
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build(),
    );
    let mut stops = Vec::new();
    let mut tills = Vec::new();
    for (store, hub) in [("S001", proxy.address), ("S002", proxy.address)] {
        let mut config = ops::pki::enrol(&pki, store, hub, "hub", &dir.0.join(store))?;
        config.listen = ([127, 0, 0, 1], 0).into();
        config.open_before_logins = true;
        config.http.connections_per_address_max = config.http.connections_max;
        let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))?;
        let base = format!("http://{}", listener.local_addr()?);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = runtime.spawn(node::run(config, listener, async move {
            let _ = stopped.await;
        }));
        stops.push((stop, task));
        tills.push(Till {
            agent: agent.clone(),
            base,
        });
    }
    let (home, away) = (&tills[0], &tills[1]);
    for till in &tills {
        wait_until("the stores to come online", || {
            Ok(till.get("/api/v1/sync")?["link"] == "online")
        })?;
    }

    // Members join and top up 1000 yuan at S001; S002 learns of it through the feed. The last
    // `holdouts` pay at S002 only once S001 is switched off.
    let holdouts = members.div_ceil(2);
    let mut ids = Vec::with_capacity(members + holdouts);
    for n in 0..members + holdouts {
        let body = json!({"name": format!("会员{n}"), "phone": format!("139{n:08}")});
        let (status, member) = home.post("/api/v1/members", &format!("bench-reg-{n:08}"), &body)?;
        anyhow::ensure!(status == 201, "registration refused: {member}");
        let id = member["member_id"]
            .as_str()
            .context("member id")?
            .to_owned();
        let top_up = json!({"amount": {"amount": "1000"}});
        let path = format!("/api/v1/members/{id}/top-ups");
        let (status, answer) = home.post(&path, &format!("bench-top-{n:08}"), &top_up)?;
        anyhow::ensure!(status == 201, "top-up refused: {answer}");
        ids.push(id);
    }
    let last = ids.last().context("no members")?.clone();
    wait_until("the top-ups to reach S002", || {
        let w = away.get(&format!("/api/v1/members/{last}/wallet"))?;
        Ok(w["stored_value"]["total"]["amount"] == "1000.00")
    })?;
    let held_out = ids.split_off(members);

    let mut local = Vec::new();
    let mut first = Vec::new();
    let mut crowded = Vec::new();
    let mut second = Vec::new();
    let mut third = Vec::new();
    for (n, id) in ids.iter().enumerate() {
        local.push(home.pay(&format!("bench-home-{n:08}"), id, "1.00")?);
    }
    // First spend at S002: nothing learned yet, so exactly the amount is recalled and granted.
    // Half the members one at a time, half back to back.
    let alone = ids.len().div_ceil(2);
    for (n, id) in ids.iter().enumerate() {
        let key = format!("bench-away1-{n:08}");
        if n < alone {
            std::thread::sleep(Duration::from_millis(30));
            first.push(away.pay(&key, id, "1.00")?);
        } else {
            crowded.push(away.pay(&key, id, "1.00")?);
        }
    }
    // Second and third: after the first spend headquarters placed S002's share of the balance
    // there (half: the member has spent as much at S002 as at S001), so no round trip.
    for (n, id) in ids.iter().enumerate() {
        second.push(away.pay(&format!("bench-away2-{n:08}"), id, "1.00")?);
    }
    for (n, id) in ids.iter().enumerate() {
        third.push(away.pay(&format!("bench-away3-{n:08}"), id, "1.00")?);
    }

    // S001 is switched off; headquarters is up. Each held-out member pays 1.00 at S002.
    let reserve_at_hq = |id: &str| -> anyhow::Result<bool> {
        let w = hq.get(&format!("/api/v1/members/{id}/wallet"))?;
        Ok(reserve_percent == 0 || w["rights_held"]["sv.p"]["HQ"].as_u64().is_some())
    };
    for id in &held_out {
        wait_until("headquarters' reserve", || reserve_at_hq(id))?;
    }
    let mut stops = stops.into_iter();
    if let Some((stop, task)) = stops.next() {
        let _ = stop.send(());
        runtime.block_on(task).context("node task")??;
    }
    wait_until("the hub to see S001 gone", || {
        let stores = hq.get("/api/v1/stores")?;
        let rows = stores["stores"].as_array().context("the hub's stores")?;
        Ok(rows
            .iter()
            .any(|r| r["store_id"] == "S001" && r["connected"] == false))
    })?;
    let mut holder_off = Vec::new();
    let mut refused = 0usize;
    for (n, id) in held_out.iter().enumerate() {
        std::thread::sleep(Duration::from_millis(30));
        match away.pay(&format!("bench-off-{n:08}"), id, "1.00") {
            Ok(waited) => holder_off.push(waited),
            Err(_) => refused += 1,
        }
    }
    for (stop, task) in stops {
        let _ = stop.send(());
        runtime.block_on(task).context("node task")??;
    }
    let _ = hub_stop.send(());
    runtime.block_on(hub_task).context("hub task")??;

    let mut sorted = local.clone();
    sorted.sort();
    let baseline = percentile(&sorted, 0.5);
    let mut assisted = first.clone();
    assisted.sort();
    let (p50, p99) = (percentile(&assisted, 0.5), percentile(&assisted, 0.99));
    let how = match reserve_percent {
        0 => "recall + grant".to_owned(),
        r => format!("granted from a {r}% reserve"),
    };
    let link = match rtt_ms {
        0 => "loopback".to_owned(),
        ms => format!("through a {ms} ms round trip"),
    } + if pg.is_some() {
        ", headquarters on PostgreSQL"
    } else {
        ""
    };
    let rtt = Duration::from_millis(rtt_ms);
    Figure::new(
        format!("hub-assisted cross-store spend p50 / p99 ({how}), HTTP, one at a time, {link}"),
        format!("{} / {}", ms(p50), ms(p99)),
    )
    .baseline(
        format!(
            "{} / {} at the store holding the rights",
            ms(baseline),
            ms(percentile(&sorted, 0.99))
        ),
        ratio(p50.as_secs_f64(), baseline.as_secs_f64()) + " (p50)",
    )
    .goal(
        "one round trip + ≤ 5 ms at p50",
        p50 <= rtt + Duration::from_millis(5),
    )
    .record()?;
    let tried = holder_off.len() + refused;
    let succeeded = holder_off.len() as f64 / tried.max(1) as f64;
    Figure::new(
        format!("spends at S002 that succeed while S001 (holding the rest) is off, headquarters up ({how}, {link})"),
        format!("{:.1}% of {tried}", 100.0 * succeeded),
    )
    .baseline("0% before issue 28: a recall S001 cannot answer", "—")
    .goal("≥ 99%", succeeded >= 0.99)
    .record()?;
    println!();
    println!("| stored-value payment of 1.00 over HTTP | payments | p50 | p99 | p50 vs baseline |");
    println!("| --- | ---: | ---: | ---: | ---: |");
    println!(
        "{}",
        row(
            "at the store holding the rights (baseline: local, no network)",
            local,
            baseline
        )
    );
    println!(
        "{}",
        row(
            &format!("first spend at another store, one at a time ({how})"),
            first,
            baseline
        )
    );
    println!(
        "{}",
        row(
            "first spend at another store, back to back (behind the last member's placement)",
            crowded,
            baseline
        )
    );
    println!(
        "{}",
        row(
            "second spend there: from the share headquarters placed after the first",
            second,
            baseline
        )
    );
    println!(
        "{}",
        row(
            "third spend there: from the rights placed, no round trip",
            third,
            baseline
        )
    );
    if !holder_off.is_empty() {
        println!(
            "{}",
            row(
                &format!(
                    "first spend at S002 with S001 switched off: {} of {tried} succeeded",
                    holder_off.len()
                ),
                holder_off,
                baseline
            )
        );
    }
    Ok(())
}
