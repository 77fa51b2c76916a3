//! The branch store's edge node: a durable, hash-chained log with views on sled, owned by the
//! journal, and the cashier HTTP API in front of it. Keeps selling with no network at all.

pub mod api;
pub mod backup;
pub mod backup_file;
pub mod cli;
pub mod clock;
pub mod config;
pub mod follow;
pub mod host;
pub mod http;
pub mod integrity;
pub mod journal;
pub mod lease;
pub mod logging;
pub mod member_codes;
pub mod metrics;
pub mod openapi;
pub mod password;
pub mod platform;
pub mod receipt;
pub mod renew;
pub mod sealed;
pub mod session;
pub mod store;
pub mod store_chain;
pub mod uplink;
pub mod views;

use std::future::Future;
use std::sync::Arc;

use anyhow::Context;
use tokio::net::TcpListener;
use tracing::Instrument;

pub use config::Config;
use journal::{Environment, Journal};
use store::{SledStore, Store};

/// Opens the store's data, then serves the API on `listener` until `shutdown` completes.
/// Taking the listener and the shutdown signal as arguments lets tests run real nodes on
/// loopback ports of their choosing.
pub async fn run(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let store = open_checked(&config.data_dir)?;
    run_with(config, store, listener, shutdown).await
}

/// `run` on a store already opened and checked (`open_checked`): the command line opens it
/// before it binds and announces its address, so a damaged store is refused before that.
/// `node run`: opens and checks the store (a damaged one is refused before an address is
/// announced), binds `config.listen`, tells `bound` where it listens, and serves until
/// `shutdown` completes (also what the Windows service runs).
pub fn serve(
    config: Config,
    bound: impl FnOnce(std::net::SocketAddr),
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let store = open_checked(&config.data_dir)?;
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let listener = TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("binding {}", config.listen))?;
        bound(listener.local_addr()?);
        run_with(config, store, listener, shutdown).await
    })
}

pub async fn run_with(
    config: Config,
    store: SledStore,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let settings = config.settings()?;
    let store_id = settings.store_id.clone();
    let managers = config
        .managers
        .iter()
        .map(|m| protocol::StaffId::parse(m))
        .collect::<Result<Vec<_>, _>>()
        .context("managers")?;
    let sled = Arc::new(store);
    let backups = Arc::new(backup::Backups::new(
        sled.clone(),
        store_id.clone(),
        config.backup(),
    ));
    let store: Arc<dyn Store> = sled;
    // The index key first: a rebuild of the views files members under it.
    sealed::ensure_index_key(&*store, || {
        sealed::draw(&mut *journal::Environment::system().random)
    })?;
    store.flush()?;
    views::ensure_current(&*store, &settings.calendar)
        .context("bringing the views up to this version")?;
    let clock = clock::ChainClock::new(config.clock_skew_ms);
    let mut journal = Journal::open(
        store.clone(),
        settings.clone(),
        Environment::with_clock(&clock),
    )
    .context("reading the log")?;
    let lease = match &config.sync {
        Some(sync) => {
            let lease_ms = sync.offline_rights_secs.saturating_mul(1000);
            let lease = lease::Lease::open(
                &config.data_dir,
                lease_ms,
                uplink::now_ms(),
                lease::mono_ms(),
            )
            .context("reading when headquarters was last heard")?;
            journal.set_rights_gate(lease.gate.clone());
            Some(Arc::new(lease))
        }
        None => None,
    };
    tracing::info!(store = %config.store_id, entries = journal.tip().next_seq - 1, "log opened");
    let (handle, journal_thread) = journal::spawn(journal);
    let views = views::Views::new(store.clone());
    let log_len = *handle.log_len().borrow();
    // What is applied already, not 0 until the first feed batch of this run; and whether the
    // store is restoring its log, as the journal already refuses sales for it (the uplink keeps
    // it current, but a till may ask before the uplink first runs).
    let status = uplink::SyncStatus {
        feed_applied: views.feed_applied()?,
        restore_to: journal::restore::restore_to(&*store)?,
        ..uplink::SyncStatus::disabled(log_len)
    };
    let (status, status_rx) = tokio::sync::watch::channel(status);
    let (asks, asks_rx) = tokio::sync::mpsc::channel(256);
    let uplink_task = config.sync.clone().map(|sync| {
        if let Err(e) = renew::finish_interrupted(&sync) {
            tracing::error!(error = %format!("{e:#}"), "finishing a certificate renewal");
        }
        let expires = uplink::certificate_expiry(&sync.cert);
        match &expires {
            Ok(at) if *at < uplink::now_ms() + 30 * 86_400_000 => {
                tracing::warn!(
                    expires_ms = at,
                    "this store's certificate runs out within 30 days: it is renewed over sync \
                     when headquarters can sign it"
                );
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "this store's certificate could not be read"),
        }
        status.send_modify(|s| {
            s.hub = Some(sync.hub.to_string());
            s.certificate_expires_ms = expires.ok();
        });
        let uplink = uplink::Uplink {
            store: store_id,
            config: sync,
            journal: handle.clone(),
            views: views.clone(),
            status,
            asks: tokio::sync::Mutex::new(asks_rx),
            clock: clock.clone(),
        };
        tokio::spawn(uplink.run().in_current_span())
    });
    // The lease counts from the last moment the link to headquarters was up.
    let lease_task = lease.clone().map(|lease| {
        let status = status_rx.clone();
        tokio::spawn(
            async move {
                loop {
                    let (now, mono) = (uplink::now_ms(), lease::mono_ms());
                    if status.borrow().link == uplink::Link::Online
                        && let Err(e) = lease.heard(now, mono)
                    {
                        tracing::warn!(error = %e, "writing when headquarters was last heard");
                    }
                    let was = lease.gate.is_shut();
                    if lease.check(mono) != was {
                        match was {
                            false => tracing::warn!(
                                lease_secs = lease.lease_ms() / 1000,
                                "no word from headquarters for longer than the offline lease: \
                             member rights stop here until it is heard again"
                            ),
                            true => {
                                tracing::info!("headquarters heard again: member rights resume")
                            }
                        }
                    }
                    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                }
            }
            .in_current_span(),
        )
    });
    let metrics = config
        .metrics
        .then(|| api::NodeMetrics::new(&handle.metrics));
    let state = api::AppState {
        sync: status_rx,
        lease,
        clock,
        http_names: config.http_names.clone(),
        open_before_logins: config.open_before_logins,
        journal: handle,
        views,
        settings,
        store_name: config.store_name.clone(),
        managers,
        tries: Default::default(),
        sessions: Default::default(),
        session_ms: u64::from(config.session_minutes) * 60_000,
        asks: uplink_task.is_some().then_some(asks),
        metrics,
        backups: backups.clone(),
        used_codes: Default::default(),
        hub_web: config.hub_web.clone(),
    };
    let state = Arc::new(state);
    let collector = tokio::spawn({
        let state = state.clone();
        async move {
            loop {
                tokio::time::sleep(std::time::Duration::from_secs(5)).await;
                if let Err(e) = api::collect_overdrafts(&state).await {
                    tracing::warn!(error = %e.detail, "collecting offline overdrafts");
                }
            }
        }
        .in_current_span()
    });
    let scheduled = (backups.shelf.config.every_hours > 0).then(|| {
        let every =
            std::time::Duration::from_secs(u64::from(backups.shelf.config.every_hours) * 3600);
        tokio::spawn(
            async move {
                loop {
                    tokio::time::sleep(every).await;
                    let (backups, now_ms) = (backups.clone(), uplink::now_ms());
                    match tokio::task::spawn_blocking(move || backups.take_now(now_ms)).await {
                        Ok(Ok(taken)) => {
                            tracing::info!(file = %taken.file.display(), "scheduled backup taken")
                        }
                        Ok(Err(e)) => tracing::error!(error = %format!("{e:#}"), "backup failed"),
                        Err(e) => tracing::error!(error = %e, "backup failed"),
                    }
                }
            }
            .in_current_span(),
        )
    });
    let app = api::router(state);
    tracing::info!(address = %listener.local_addr()?, "cashier API listening");
    http::serve(listener, app, config.http, shutdown)
        .await
        .context("serving the API")?;
    // Stop the uplink; with the router gone too, the last journal handle is dropped and the
    // journal drains its queue and stops.
    collector.abort();
    let _ = collector.await;
    if let Some(task) = scheduled {
        task.abort();
        let _ = task.await;
    }
    if let Some(task) = lease_task {
        task.abort();
        let _ = task.await;
    }
    if let Some(task) = uplink_task {
        task.abort();
        let _ = task.await;
    }
    tokio::task::spawn_blocking(move || journal_thread.join())
        .await?
        .ok();
    store.flush()?;
    Ok(())
}

/// Opens the store in `dir` and makes the check at start (`integrity::check`): a damaged
/// store is refused here, before anything reads or writes it.
pub fn open_checked(dir: &std::path::Path) -> anyhow::Result<SledStore> {
    open_checked_tuned(dir, store::SledTuning::default())
}

/// `open_checked`, sled tuned otherwise than its defaults (`store::SledTuning`).
pub fn open_checked_tuned(
    dir: &std::path::Path,
    tuning: store::SledTuning,
) -> anyhow::Result<SledStore> {
    let opening = || format!("opening the store in {}", dir.display());
    let started = std::time::Instant::now();
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let store = SledStore::open_tuned(dir, tuning).with_context(opening)?;
    let checked = integrity::check(&store).with_context(opening)?;
    tracing::info!(
        pairs = checked.pairs,
        entries = checked.entries,
        ms = started.elapsed().as_millis() as u64,
        "store opened and checked"
    );
    Ok(store)
}

/// Prepares a new PC's data directory for a store that has sold before (`journal::restore`):
/// refused if this directory holds entries of the store's log already.
pub fn replace(config: &Config) -> anyhow::Result<()> {
    let store = open_checked(&config.data_dir)?;
    let prefix = views::keys::log_prefix(&config.settings()?.store_id);
    anyhow::ensure!(
        store.scan_prefix_rev(&prefix, 1)?.is_empty(),
        "{} holds this store's log already: a PC being replaced starts from an empty directory",
        config.data_dir.display()
    );
    journal::restore::mark_unknown(&store)?;
    Ok(())
}

/// Checks every page and hash chain, then compares every view with a rebuild from the log.
pub fn verify(config: &Config) -> anyhow::Result<views::RebuildReport> {
    let store = open_checked(&config.data_dir)?;
    Ok(views::rebuild(&store, &config.settings()?.calendar)?)
}

/// Resolves on Ctrl-C or SIGTERM (`platform`).
pub use platform::shutdown_signal;
