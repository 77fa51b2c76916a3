//! The branch store's edge node: a durable, hash-chained log with views on sled, owned by the
//! journal, and the cashier HTTP API in front of it. Keeps selling with no network at all.

pub mod api;
pub mod cli;
pub mod config;
pub mod journal;
pub mod password;
pub mod receipt;
pub mod session;
pub mod store;
pub mod uplink;
pub mod views;

use std::future::Future;
use std::sync::Arc;

use anyhow::Context;
use tokio::net::TcpListener;

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
    let settings = config.settings()?;
    let store_id = settings.store_id.clone();
    let managers = config
        .managers
        .iter()
        .map(|m| protocol::StaffId::parse(m))
        .collect::<Result<Vec<_>, _>>()
        .context("managers")?;
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("creating {}", config.data_dir.display()))?;
    let store: Arc<dyn Store> = Arc::new(
        SledStore::open(&config.data_dir)
            .with_context(|| format!("opening the store in {}", config.data_dir.display()))?,
    );
    views::ensure_current(&*store, &settings.calendar)
        .context("bringing the views up to this version")?;
    let journal = Journal::open(store.clone(), settings.clone(), Environment::system())
        .context("reading the log")?;
    tracing::info!(store = %config.store_id, entries = journal.tip().next_seq - 1, "log opened");
    let (handle, journal_thread) = journal::spawn(journal);
    let views = views::Views::new(store.clone());
    let log_len = *handle.log_len().borrow();
    let (status, status_rx) = tokio::sync::watch::channel(uplink::SyncStatus::disabled(log_len));
    let (asks, asks_rx) = tokio::sync::mpsc::channel(256);
    let uplink_task = config.sync.clone().map(|sync| {
        status.send_modify(|s| s.hub = Some(sync.hub.to_string()));
        let uplink = uplink::Uplink {
            store: store_id,
            config: sync,
            journal: handle.clone(),
            views: views.clone(),
            status,
            asks: tokio::sync::Mutex::new(asks_rx),
        };
        tokio::spawn(uplink.run())
    });
    let state = api::AppState {
        sync: status_rx,
        journal: handle,
        views,
        settings,
        store_name: config.store_name.clone(),
        managers,
        lockout: Default::default(),
        sessions: Default::default(),
        session_ms: u64::from(config.session_minutes) * 60_000,
        asks: uplink_task.is_some().then_some(asks),
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
    });
    let app = api::router(state);
    tracing::info!(address = %listener.local_addr()?, "cashier API listening");
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
        .context("serving the API")?;
    // Stop the uplink; with the router gone too, the last journal handle is dropped and the
    // journal drains its queue and stops.
    collector.abort();
    let _ = collector.await;
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

/// Checks the log's hash chains and compares every view with a rebuild from the log.
pub fn verify(config: &Config) -> anyhow::Result<views::RebuildReport> {
    let store = SledStore::open(&config.data_dir)
        .with_context(|| format!("opening {}", config.data_dir.display()))?;
    Ok(views::rebuild(&store, &config.settings()?.calendar)?)
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}
