//! `ops bench sync`: what sync costs on the wire, measured with a real hub and a real node over
//! QUIC on loopback (UDP bytes as quinn counts them, TLS and QUIC included), next to automerge's
//! own per-document sync protocol moving the same member documents in the same run.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use automerge::sync::{State, SyncDoc};
use node::journal::{Command, Environment, Journal, MemberEdit, NewMember};
use node::store::{SledStore, Store};
use protocol::Phone;
use protocol::member::ProfilePatch;
use serde_json::Value;

use super::{Figure, Scratch, cpu_seconds, machine, ratio, request};

/// The phone of the `n`th member the benchmarks write.
pub(super) fn member_phone(n: usize) -> String {
    format!("13{n:09}")
}

/// The name of the `n`th member in the sync benchmarks.
pub(super) fn numbered_name(n: usize) -> String {
    format!("会员{n}")
}

/// Writes `sales` quick sales (cash, a member's, a few categories) straight into a node's store
/// after what it holds; returns how many entries it wrote and their encoded bytes.
pub(super) fn write_sales(config: &node::Config, sales: usize) -> anyhow::Result<(u64, u64)> {
    let store: Arc<dyn Store> = Arc::new(SledStore::open(&config.data_dir)?);
    let members: Vec<protocol::MemberId> = store
        .scan_prefix(b"m/")?
        .iter()
        .filter_map(|(k, _)| protocol::MemberId::parse(std::str::from_utf8(&k[2..]).ok()?).ok())
        .collect();
    anyhow::ensure!(!members.is_empty(), "no members to sell to");
    let settings = config.settings()?;
    let origin = settings.store_id.clone();
    let mut journal = Journal::open(store.clone(), settings, Environment::system())?;
    let before = journal.tip().next_seq;
    for n in 0..sales {
        let sale = protocol::sale::QuickSaleRequest {
            member_id: Some(members[n * 7919 % members.len()]),
            amount: protocol::Money::cny(protocol::Fen(500 + (n as i64 * 4_111) % 30_000)),
            category: Some(["饮品", "零食", "日用", "生鲜"][n % 4].to_owned()),
            cash_tendered: None,
            pay_with: protocol::sale::PayWith::Cash,
            offline_overdraft: false,
        };
        journal.handle(Command::QuickCheckout(request(
            format!("till-1-{n:09}"),
            sale,
        )?))?;
        if n % 256 == 255 {
            journal.flush()?;
        }
    }
    journal.flush()?;
    let after = journal.tip().next_seq;
    let mut bytes = 0;
    for seq in before..after {
        let key = node::views::keys::log(&origin, seq);
        bytes += store.get(&key)?.map_or(0, |b| b.len() as u64);
    }
    Ok((after - before, bytes))
}

/// Writes `members` registrations and `edits` profile edits per member straight into a node's
/// store (as its journal would), after what it holds; returns the number of entries in its log.
pub(super) fn write_members(
    config: &node::Config,
    members: std::ops::Range<usize>,
    edits: usize,
    name: fn(usize) -> String,
) -> anyhow::Result<u64> {
    std::fs::create_dir_all(&config.data_dir)?;
    let store: Arc<dyn Store> = Arc::new(SledStore::open(&config.data_dir)?);
    let mut journal = Journal::open(store, config.settings()?, Environment::system())?;
    let mut ids = Vec::with_capacity(members.len());
    for n in members {
        let reply = journal.handle(Command::RegisterMember(request(
            format!("bench-reg-{n:09}"),
            NewMember::named(name(n), Phone::parse(&member_phone(n))?),
        )?))?;
        if let node::journal::Outcome::Member { member, .. } = reply.outcome {
            ids.push(member.member_id);
        }
        if n % 256 == 255 {
            journal.flush()?;
        }
    }
    for round in 0..edits {
        for (n, id) in ids.iter().enumerate() {
            let patch = ProfilePatch {
                notes: Some(format!("第{round}次回访")),
                tags_add: vec![format!("r{round}")],
                ..Default::default()
            };
            let edit = MemberEdit {
                member_id: *id,
                patch,
                tier_reason: None,
            };
            journal.handle(Command::EditMember(request(
                format!("bench-edit-{round}-{n:09}"),
                edit,
            )?))?;
            if n % 256 == 255 {
                journal.flush()?;
            }
        }
    }
    journal.flush()?;
    Ok(journal.tip().next_seq - 1)
}

/// A hub and one enrolled store on loopback.
struct Bench {
    _dir: Scratch,
    hub: hub::Config,
    node: node::Config,
}

impl Bench {
    fn new(label: &str) -> anyhow::Result<Self> {
        let dir = Scratch::new(label)?;
        let pki = dir.0.join("pki");
        ops::pki::init(&pki, &["hub", "127.0.0.1"])?;
        let mut hub = ops::pki::hub_config(&pki, dir.0.join("hub-data"))?;
        let free = std::net::UdpSocket::bind("127.0.0.1:0")?.local_addr()?;
        hub.sync_listen = free;
        hub.http_listen = ([127, 0, 0, 1], 0).into();
        hub.open_before_logins = true;
        hub.http.connections_per_address_max = hub.http.connections_max;
        let mut node = ops::pki::enrol(&pki, "S001", free, "hub", &dir.0.join("S001"))?;
        node.listen = ([127, 0, 0, 1], 0).into();
        node.open_before_logins = true;
        node.http.connections_per_address_max = node.http.connections_max;
        Ok(Self {
            _dir: dir,
            hub,
            node,
        })
    }
}

/// Runs the hub and the node until the node reports everything acknowledged and the feed applied,
/// then returns its sync status.
fn sync_once(
    runtime: &tokio::runtime::Runtime,
    bench: &Bench,
    timeout: Duration,
) -> anyhow::Result<Value> {
    let (hub_stop, hub_stopped) = tokio::sync::oneshot::channel::<()>();
    let (node_stop, node_stopped) = tokio::sync::oneshot::channel::<()>();
    let hub_task = runtime.spawn(hub::run(bench.hub.clone(), |_| {}, async move {
        let _ = hub_stopped.await;
    }));
    // The store was just written by a journal of this process: sled lets go of its lock on the
    // directory a moment after the last handle is dropped, so a node that cannot open it yet
    // is started again (a few times), and any other early end is an error, not a hang.
    let start_node = |stopped: tokio::sync::oneshot::Receiver<()>| -> anyhow::Result<_> {
        let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))?;
        let base = format!("http://{}", listener.local_addr()?);
        let task = runtime.spawn(node::run(bench.node.clone(), listener, async move {
            let _ = stopped.await;
        }));
        Ok((base, task))
    };
    let (mut node_stop, node_stopped) = (node_stop, node_stopped);
    let (mut base, mut node_task) = start_node(node_stopped)?;
    for attempt in 1.. {
        std::thread::sleep(Duration::from_millis(200));
        if !node_task.is_finished() {
            break;
        }
        let ended = runtime.block_on(node_task).context("node task")?;
        anyhow::ensure!(attempt < 25, "the node did not start: {ended:?}");
        tracing::warn!(attempt, ?ended, "the node ended at once; starting it again");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        node_stop = stop;
        (base, node_task) = start_node(stopped)?;
    }
    let agent = ureq::Agent::new_with_config(
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build(),
    );
    let deadline = Instant::now() + timeout;
    let status = loop {
        anyhow::ensure!(
            Instant::now() < deadline,
            "sync did not finish in {timeout:?}"
        );
        anyhow::ensure!(
            !node_task.is_finished() && !hub_task.is_finished(),
            "the node or the hub stopped before the sync finished"
        );
        std::thread::sleep(Duration::from_millis(100));
        let Ok(mut answer) = agent.get(format!("{base}/api/v1/sync")).call() else {
            continue;
        };
        let status: Value = answer.body_mut().read_json()?;
        if status["link"] == "online"
            && status["backlog"] == 0
            && status["acked_seq"] == status["log_len"]
        {
            // One more beat so a feed message in flight is counted.
            std::thread::sleep(Duration::from_millis(300));
            break agent
                .get(format!("{base}/api/v1/sync"))
                .call()?
                .body_mut()
                .read_json()?;
        }
    };
    let _ = node_stop.send(());
    runtime.block_on(node_task).context("node task")??;
    let _ = hub_stop.send(());
    runtime.block_on(hub_task).context("hub task")??;
    Ok(status)
}

fn wire_bytes(status: &Value) -> u64 {
    status["wire_bytes_sent"].as_u64().unwrap_or(0)
        + status["wire_bytes_received"].as_u64().unwrap_or(0)
}

/// Every member document the store holds, as saved bytes (opened under each member's key).
fn documents(data_dir: &Path) -> anyhow::Result<Vec<Vec<u8>>> {
    let store = SledStore::open(data_dir)?;
    let store: &dyn Store = &store;
    let mut docs = Vec::new();
    for (key, _) in store.scan_prefix(b"d/")? {
        let id = protocol::MemberId::parse(std::str::from_utf8(&key[2..])?)?;
        docs.extend(node::sealed::read_bytes(store, &id, &key)?);
    }
    Ok(docs)
}

/// Bytes automerge's sync protocol exchanges to bring `to` up to `from` (both directions).
fn automerge_sync_bytes(
    from: &mut automerge::Automerge,
    to: &mut automerge::Automerge,
) -> anyhow::Result<u64> {
    let (mut a, mut b) = (State::new(), State::new());
    let mut bytes = 0u64;
    loop {
        let mut moved = false;
        if let Some(msg) = from.generate_sync_message(&mut a) {
            let encoded = msg.encode();
            bytes += encoded.len() as u64;
            to.receive_sync_message(&mut b, automerge::sync::Message::decode(&encoded)?)?;
            moved = true;
        }
        if let Some(msg) = to.generate_sync_message(&mut b) {
            let encoded = msg.encode();
            bytes += encoded.len() as u64;
            from.receive_sync_message(&mut a, automerge::sync::Message::decode(&encoded)?)?;
            moved = true;
        }
        if !moved {
            return Ok(bytes);
        }
    }
}

pub fn run(members: usize, edits: usize, idle_members: usize, sample: usize) -> anyhow::Result<()> {
    println!("machine: {}", machine());
    let runtime = tokio::runtime::Runtime::new()?;

    // 1. Replicating member changes.
    let bench = Bench::new("sync-wire")?;
    let started = Instant::now();
    let entries = write_members(&bench.node, 0..members, edits, numbered_name)?;
    println!(
        "wrote {entries} entries ({members} members × (1 registration + {edits} edits)) in {:.1?}",
        started.elapsed()
    );
    let cpu = cpu_seconds();
    let status = sync_once(&runtime, &bench, Duration::from_secs(600))?;
    let ours_cpu = cpu_seconds() - cpu;
    let ours = wire_bytes(&status);
    let docs = documents(&bench.node.data_dir)?;
    let loaded = docs
        .iter()
        .map(|saved| automerge::Automerge::load(saved))
        .collect::<Result<Vec<_>, _>>()?;
    let mut automerge_bytes = 0u64;
    let cpu = cpu_seconds();
    for mut from in loaded {
        let mut to = automerge::Automerge::new();
        automerge_bytes += automerge_sync_bytes(&mut from, &mut to)?;
    }
    let automerge_cpu = cpu_seconds() - cpu;
    // Then as many quick sales to those members, replicated in a second session (its
    // handshake included).
    let (sales, sale_entry_bytes) = write_sales(&bench.node, entries as usize)?;
    let sales_status = sync_once(&runtime, &bench, Duration::from_secs(600))?;
    let sales_bytes = wire_bytes(&sales_status);
    drop(bench);

    // 2. An idle reconnect: the store restarts with nothing new on either side.
    let bench = Bench::new("sync-idle")?;
    let started = Instant::now();
    let idle_entries = write_members(&bench.node, 0..idle_members, 0, numbered_name)?;
    println!(
        "wrote {idle_entries} member registrations in {:.1?}",
        started.elapsed()
    );
    sync_once(&runtime, &bench, Duration::from_secs(1800))?;
    let idle = sync_once(&runtime, &bench, Duration::from_secs(120))?;
    let idle_ours = wire_bytes(&idle);
    let idle_docs = documents(&bench.node.data_dir)?;
    let sampled = idle_docs.len().min(sample).max(1);
    let mut sample_bytes = 0u64;
    for saved in idle_docs.iter().take(sampled) {
        let (mut a, mut b) = (
            automerge::Automerge::load(saved)?,
            automerge::Automerge::load(saved)?,
        );
        sample_bytes += automerge_sync_bytes(&mut a, &mut b)?;
    }
    let idle_automerge = sample_bytes * idle_docs.len() as u64 / sampled as u64;
    drop(bench);

    println!();
    println!("| figure | ours | baseline (same run) | ratio | goal |");
    println!("| --- | ---: | ---: | ---: | --- |");
    println!(
        "| wire bytes per replicated member change ({entries} entries, UDP incl. QUIC/TLS) | {:.0} B | {:.0} B automerge per-document sync of the same {} documents | {:.2}× | ≤ 60 B |",
        ours as f64 / entries as f64,
        automerge_bytes as f64 / entries as f64,
        docs.len(),
        ours as f64 / automerge_bytes.max(1) as f64,
    );
    println!(
        "| wire bytes per replicated quick sale to a member ({sales} entries, same) | {:.0} B | {:.0} B the same entries encoded one by one, before compression | {:.2}× | ≤ 60 B |",
        sales_bytes as f64 / sales as f64,
        sale_entry_bytes as f64 / sales as f64,
        sales_bytes as f64 / sale_entry_bytes.max(1) as f64,
    );
    println!(
        "| idle reconnect with {} members (process restart, full TLS handshake) | {} B | {} B automerge per-document sync, fresh sync state ({} documents measured, scaled) | {:.5}× | ≤ 2 KB, independent of members |",
        idle_docs.len(),
        idle_ours,
        idle_automerge,
        sampled,
        idle_ours as f64 / idle_automerge.max(1) as f64,
    );
    println!(
        "| CPU to replicate the member changes, both sides | {:.2} s (hub and node in one process: \
         QUIC, TLS, deflate, fsync'd writes, views) | {:.2} s automerge's sync of the same \
         documents, in memory, no transport | {} | — |",
        ours_cpu,
        automerge_cpu,
        ratio(ours_cpu, automerge_cpu),
    );
    let per_change = ours as f64 / entries as f64;
    Figure::new(
        "wire bytes per replicated member change",
        format!("{per_change:.0} B"),
    )
    .baseline(
        format!(
            "{:.0} B automerge per-document sync",
            automerge_bytes as f64 / entries as f64
        ),
        ratio(ours as f64, automerge_bytes as f64),
    )
    .goal("≤ 60 B", per_change <= 60.0)
    .record()?;
    let per_sale = sales_bytes as f64 / sales as f64;
    Figure::new(
        "wire bytes per replicated quick sale",
        format!("{per_sale:.0} B"),
    )
    .baseline(
        format!(
            "{:.0} B the entries encoded one by one",
            sale_entry_bytes as f64 / sales as f64
        ),
        ratio(sales_bytes as f64, sale_entry_bytes as f64),
    )
    .goal("≤ 60 B", per_sale <= 60.0)
    .record()?;
    Figure::new(
        format!("idle reconnect bytes, {} members", idle_docs.len()),
        format!("{idle_ours} B"),
    )
    .baseline(
        format!("{idle_automerge} B automerge per-document sync"),
        ratio(idle_ours as f64, idle_automerge as f64),
    )
    .goal("≤ 2 KB, independent of members", idle_ours <= 2048)
    .record()?;
    Figure::new(
        "CPU to replicate the member changes",
        format!("{ours_cpu:.2} s"),
    )
    .baseline(
        format!("{automerge_cpu:.2} s automerge's sync, in memory"),
        ratio(ours_cpu, automerge_cpu),
    )
    .record()?;
    Ok(())
}
