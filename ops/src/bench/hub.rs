//! `ops bench hub`: the hub under many stores, over real QUIC with mutual TLS on loopback.
//! Durable ingest rate from many stores pushing at once (next to raw sled writing the same
//! bytes, and the same round with headquarters on PostgreSQL), and many stores reconnecting at once (next to one store reconnecting alone). The
//! stores here are lean clients running the real store-side session (`UplinkSession`) over
//! pre-built hash-chained logs; client and hub share this machine's two cores.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::NaiveDate;
use protocol::entry::{ChainTip, Entry, Payload};
use protocol::points::Points;
use protocol::sale::{QuickSale, Tender};
use protocol::sync::{self, HubMsg, StoreMsg, UplinkEvent, UplinkSession};
use protocol::{Currency, Fen, Hlc, SaleId, StaffId, StoreId, TxId};

use super::{Figure, Scratch, machine, ms, percentile, ratio};

/// A store's log of `n` quick sales, encoded and chained.
fn sales_log(store: &StoreId, n: u64) -> Vec<Vec<u8>> {
    let mut tip = ChainTip::GENESIS;
    (1..=n)
        .map(|_| {
            let entry = quick_sale(store, tip, 1_795_451_400_000);
            tip = ChainTip {
                next_seq: entry.seq + 1,
                hash: entry.hash(),
            };
            entry.encode()
        })
        .collect()
}

/// A cash quick sale of 18.80 without a member, the entry after `tip` of `store`'s log, at
/// `base_ms` plus its seq.
pub(crate) fn quick_sale(store: &StoreId, tip: ChainTip, base_ms: u64) -> Entry {
    let seq = tip.next_seq;
    Entry {
        origin: store.clone(),
        seq,
        hlc: Hlc {
            wall_ms: base_ms + seq,
            logical: 0,
        },
        business_date: NaiveDate::from_ymd_opt(2026, 11, 24).unwrap_or_default(),
        staff: StaffId::system(),
        tx: TxId::parse(&format!("{store}-till-{seq:08}")).unwrap_or_else(|_| unreachable!()),
        prev_hash: tip.hash,
        payload: Payload::QuickSale(QuickSale {
            sale_id: SaleId::for_entry(store, seq),
            member_id: None,
            category: None,
            amount: Fen(1_880),
            currency: Currency::CNY,
            tender: Tender::Cash {
                tendered: Fen(2_000),
                change: Fen(120),
            },
            points_earned: Points(0),
        }),
    }
}

pub(crate) struct Setup {
    pub(crate) dir: Scratch,
    pub(crate) hub: hub::Config,
    pub(crate) stores: Vec<(StoreId, quinn::ClientConfig)>,
}

pub(crate) fn setup(label: &str, stores: usize) -> anyhow::Result<Setup> {
    let dir = Scratch::new(label)?;
    let pki = dir.0.join("pki");
    ops::pki::init(&pki, &["hub", "127.0.0.1"])?;
    let mut hub = ops::pki::hub_config(&pki, dir.0.join("hub-data"))?;
    hub.sync_listen = std::net::UdpSocket::bind("127.0.0.1:0")?.local_addr()?;
    hub.http_listen = ([127, 0, 0, 1], 0).into();
    hub.open_before_logins = true;
    hub.http.connections_per_address_max = hub.http.connections_max;
    let mut clients = Vec::with_capacity(stores);
    for i in 0..stores {
        let id = format!("S{:04}", i + 1);
        let config = ops::pki::enrol(&pki, &id, hub.sync_listen, "hub", &dir.0.join(&id))?;
        let sync = config.sync.context("enrolment wrote no sync section")?;
        clients.push((StoreId::parse(&id)?, node::uplink::client_config(&sync)?));
    }
    Ok(Setup {
        dir,
        hub,
        stores: clients,
    })
}

pub(crate) fn client_endpoint() -> anyhow::Result<quinn::Endpoint> {
    let socket = hub::tls::udp_socket(([127, 0, 0, 1], 0).into())?;
    Ok(quinn::Endpoint::new(
        quinn::EndpointConfig::default(),
        None,
        socket,
        Arc::new(quinn::TokioRuntime),
    )?)
}

/// Reads the hub's next message (`sync::Frames` follows the codec its `Welcome` agrees).
pub(crate) async fn read_msg(
    recv: &mut quinn::RecvStream,
    frames: &mut sync::Frames,
) -> anyhow::Result<HubMsg> {
    loop {
        if let Some(msg) = frames.hub_msg()? {
            return Ok(msg);
        }
        match recv.read_chunk(256 * 1024, true).await? {
            Some(chunk) => frames.push(&chunk.bytes),
            None => anyhow::bail!("the hub finished the stream"),
        }
    }
}

/// Connects, says hello, pushes `log`, and returns (time to Welcome, time to the last Ack).
async fn run_store(
    endpoint: quinn::Endpoint,
    hub: SocketAddr,
    store: StoreId,
    config: quinn::ClientConfig,
    log: Arc<Vec<Vec<u8>>>,
) -> anyhow::Result<(Duration, Duration)> {
    let started = Instant::now();
    let connection = endpoint.connect_with(config, hub, "hub")?.await?;
    let (mut send, mut recv) = connection.open_bi().await?;
    let mut session = UplinkSession::new(store, log.len() as u64, 0);
    let mut frames = sync::Frames::default();
    let mut welcomed = None;
    loop {
        while let Some(range) = session.poll_push() {
            let entries = range.map(|seq| log[seq as usize - 1].clone()).collect();
            session.push(entries, Vec::new());
        }
        while let Some(frame) = session.poll_frame() {
            send.write_all(&frame).await?;
        }
        while let Some(event) = session.poll_event() {
            if let UplinkEvent::Acked(seq) = event {
                welcomed.get_or_insert(started.elapsed());
                if seq == log.len() as u64 {
                    connection.close(0u32.into(), b"done");
                    return Ok((welcomed.unwrap_or_default(), started.elapsed()));
                }
            }
        }
        session.handle(read_msg(&mut recv, &mut frames).await?)?;
    }
}

/// Connects, says hello and waits for `Welcome`; returns the UDP bytes both ways.
async fn hello_bytes(
    endpoint: &quinn::Endpoint,
    hub: SocketAddr,
    store: &StoreId,
    config: &quinn::ClientConfig,
) -> anyhow::Result<u64> {
    let connection = endpoint.connect_with(config.clone(), hub, "hub")?.await?;
    let (mut send, mut recv) = connection.open_bi().await?;
    let hello = StoreMsg::Hello {
        versions: sync::VERSIONS.to_vec(),
        store: store.clone(),
        log_len: 0,
        feed_applied: 0,
    };
    send.write_all(&sync::encode_frame(&hello)).await?;
    let mut frames = sync::Frames::default();
    anyhow::ensure!(
        matches!(
            read_msg(&mut recv, &mut frames).await?,
            HubMsg::Welcome { .. }
        ),
        "no Welcome"
    );
    let stats = connection.stats();
    // Let the session tickets that follow the handshake arrive before hanging up.
    tokio::time::sleep(Duration::from_millis(100)).await;
    connection.close(0u32.into(), b"done");
    Ok(stats.udp_tx.bytes + stats.udp_rx.bytes)
}

/// The bytes of a first connection (full handshake, certificates) and of a reconnect from the
/// same running store (TLS session resumed), Hello → Welcome each.
fn reconnect_bytes(runtime: &tokio::runtime::Runtime, setup: &Setup) -> anyhow::Result<(u64, u64)> {
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let hub_task = runtime.spawn(hub::run(setup.hub.clone(), |_| {}, async move {
        let _ = stopped.await;
    }));
    std::thread::sleep(Duration::from_millis(300));
    let (store, config) = &setup.stores[0];
    let bytes = runtime.block_on(async {
        let endpoint = client_endpoint()?;
        let first = hello_bytes(&endpoint, setup.hub.sync_listen, store, config).await?;
        tokio::time::sleep(Duration::from_millis(200)).await;
        let again = hello_bytes(&endpoint, setup.hub.sync_listen, store, config).await?;
        anyhow::Ok((first, again))
    })?;
    let _ = stop.send(());
    runtime.block_on(hub_task)??;
    Ok(bytes)
}

/// Starts the hub, runs `stores` clients at once each pushing `log_len` entries, stops the hub.
fn round(
    runtime: &tokio::runtime::Runtime,
    setup: &Setup,
    log_len: u64,
) -> anyhow::Result<(Vec<(Duration, Duration)>, Duration)> {
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let hub_task = runtime.spawn(hub::run(setup.hub.clone(), |_| {}, async move {
        let _ = stopped.await;
    }));
    std::thread::sleep(Duration::from_millis(300));
    let endpoint = runtime.block_on(async { client_endpoint() })?;
    let logs: Vec<Arc<Vec<Vec<u8>>>> = setup
        .stores
        .iter()
        .map(|(id, _)| Arc::new(sales_log(id, log_len)))
        .collect();
    let started = Instant::now();
    let results = runtime.block_on(async {
        let tasks: Vec<_> = setup
            .stores
            .iter()
            .zip(logs)
            .map(|((id, config), log)| {
                tokio::spawn(run_store(
                    endpoint.clone(),
                    setup.hub.sync_listen,
                    id.clone(),
                    config.clone(),
                    log,
                ))
            })
            .collect();
        let mut results = Vec::with_capacity(tasks.len());
        for task in tasks {
            results.push(task.await??);
        }
        anyhow::Ok(results)
    })?;
    let elapsed = started.elapsed();
    let _ = stop.send(());
    runtime.block_on(hub_task)??;
    Ok((results, elapsed))
}

/// Raw sled writing the same entries in 512-entry batches with a flush each.
fn raw_sled(
    dir: &Path,
    stores: &[(StoreId, quinn::ClientConfig)],
    log_len: u64,
) -> anyhow::Result<(u64, Duration)> {
    let db = sled::Config::new().path(dir).open()?;
    // The same durability as the hub's store: sled's flush, then an fdatasync of its file.
    let sled_file = node::store::sled_log(dir)?;
    let logs: Vec<_> = stores
        .iter()
        .map(|(id, _)| (id.clone(), sales_log(id, log_len)))
        .collect();
    let started = Instant::now();
    let mut written = 0u64;
    for (id, log) in &logs {
        for (chunk_no, chunk) in log.chunks(512).enumerate() {
            let mut batch = sled::Batch::default();
            for (i, bytes) in chunk.iter().enumerate() {
                batch.insert(
                    format!("log/{id}/{:010}", chunk_no * 512 + i).into_bytes(),
                    bytes.clone(),
                );
            }
            db.apply_batch(batch)?;
            db.flush()?;
            sled_file.sync_data()?;
            written += chunk.len() as u64;
        }
    }
    Ok((written, started.elapsed()))
}

pub fn run(stores: usize, entries: u64, reconnecting: usize) -> anyhow::Result<()> {
    println!("machine: {}", machine());
    let runtime = tokio::runtime::Runtime::new()?;

    let ingest = setup("hub-ingest", stores)?;
    let (_, elapsed) = round(&runtime, &ingest, entries)?;
    let total = stores as u64 * entries;
    let raw_dir = Scratch::new("hub-raw")?;
    let (raw_total, raw_elapsed) = raw_sled(&raw_dir.0, &ingest.stores, entries)?;
    drop(ingest);

    // The same round with headquarters on PostgreSQL (a server of our own, Debian's package).
    let mut on_pg = setup("hub-ingest-pg", stores)?;
    let pg = hub::storage::pg::scratch::Postgres::start(&on_pg.dir.0.join("pg"))?;
    pg.create_database("hub")?;
    on_pg.hub.database_url = Some(pg.url("hub"));
    let (_, pg_elapsed) = round(&runtime, &on_pg, entries)?;
    drop(pg);
    drop(on_pg);

    let many = setup("hub-reconnect", reconnecting)?;
    let (results, _) = round(&runtime, &many, 1)?;
    let mut welcome: Vec<Duration> = results.iter().map(|(w, _)| *w).collect();
    welcome.sort();
    let (alone, _) = round(&runtime, &setup("hub-alone", 1)?, 1)?;
    let (full, resumed) = reconnect_bytes(&runtime, &setup("hub-resume", 1)?)?;

    let ours = total as f64 / elapsed.as_secs_f64();
    let on_postgres = total as f64 / pg_elapsed.as_secs_f64();
    let raw = raw_total as f64 / raw_elapsed.as_secs_f64();
    println!();
    println!("| figure | ours | baseline (same run) | ratio | goal |");
    println!("| --- | ---: | ---: | ---: | --- |");
    println!(
        "| hub ingest, {stores} stores pushing {entries} entries each at once, durable | {ours:.0} entries/s | {raw:.0} entries/s raw sled, same entries, 512-entry batch + flush | {:.0}% | ≥ 50,000/s |",
        100.0 * ours / raw
    );
    println!(
        "| hub ingest on PostgreSQL, the same {stores} stores and entries, durable | {on_postgres:.0} entries/s | {ours:.0} entries/s on sled, same run | {:.0}% | ≥ 50% of sled and ≥ 30,000/s |",
        100.0 * on_postgres / ours
    );
    println!(
        "| {reconnecting} stores reconnecting at once: connect + mTLS + Welcome, p50 / p99 / max | {} / {} / {} | {} one store alone | {:.0}× (p99) | all connected, p99 ≤ 3 s |",
        ms(percentile(&welcome, 0.5)),
        ms(percentile(&welcome, 0.99)),
        ms(percentile(&welcome, 1.0)),
        ms(alone[0].0),
        percentile(&welcome, 0.99).as_secs_f64() / alone[0].0.as_secs_f64().max(1e-9),
    );
    println!(
        "| reconnect of a running store, Hello → Welcome (TLS session resumed) | {resumed} B | {full} B first connection, full handshake with certificates | {:.2}× | ≤ 2 KB |",
        resumed as f64 / full.max(1) as f64
    );
    println!(
        "({} of {reconnecting} stores connected and were welcomed)",
        results.len()
    );
    Figure::new(
        format!("hub ingest from {stores} stores at once, durable"),
        format!("{ours:.0} entries/s"),
    )
    .baseline(
        format!("{raw:.0} entries/s raw sled, same entries"),
        ratio(ours, raw),
    )
    .goal("≥ 50,000/s", ours >= 50_000.0)
    .record()?;
    Figure::new(
        format!("hub ingest from {stores} stores at once on PostgreSQL, durable"),
        format!("{on_postgres:.0} entries/s"),
    )
    .baseline(
        format!("{ours:.0} entries/s on sled, same run"),
        ratio(on_postgres, ours),
    )
    .goal(
        "≥ 50% of sled and ≥ 30,000/s",
        on_postgres >= 0.5 * ours && on_postgres >= 30_000.0,
    )
    .record()?;
    let p99 = percentile(&welcome, 0.99);
    Figure::new(
        format!("{reconnecting} stores reconnecting at once, p99 to Welcome"),
        ms(p99),
    )
    .baseline(
        format!("{} one store alone", ms(alone[0].0)),
        ratio(p99.as_secs_f64(), alone[0].0.as_secs_f64()),
    )
    .goal(
        "all connected, p99 ≤ 3 s",
        results.len() == reconnecting && p99 <= Duration::from_secs(3),
    )
    .record()?;
    Ok(())
}
