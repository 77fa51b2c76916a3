//! Headquarters hub (总部): the QUIC endpoint stores sync to (mutual TLS; the store id comes
//! from the client certificate), durable per-store logs verified by hash chain, the feed every
//! store receives, the rights bank that moves members' spendable rights where they pay
//! (`ingest`, with the policy in `protocol::bank` and the ask's life in `protocol::ask`),
//! holds and fences of quiet stores, the catalogue, transfers, staff and rules headquarters
//! writes, and the HTTP API and pages (`api`): members, wallets, liabilities, settlement,
//! reports, audit.

pub mod activity;
pub mod api;
pub mod backup;
/// The backup file, as the node writes it (one file, shared by path like the OpenAPI helpers).
#[path = "../../node/src/backup_file.rs"]
pub mod backup_file;
pub mod cli;
pub mod config;
pub mod first_admin;
// The one HTTP server loop of the node and headquarters: the hub compiles the node's file
// (the hub does not depend on the node, and `protocol` does no I/O).
#[path = "../../node/src/http.rs"]
pub mod http;
pub mod import;
pub mod ingest;
// The log's form and files: the node's file, as for `http`.
#[path = "../../node/src/logging.rs"]
pub mod logging;
pub mod member_auth;
// Prometheus metrics: the node's file, as for `http`.
#[path = "../../node/src/metrics.rs"]
pub mod metrics;
pub mod notify;
pub mod reminders;
pub mod renew;
pub mod restore;
pub mod routes;
pub mod segments;
pub mod server;
pub mod storage;
/// A store's certificate chain as headquarters' TLS checks it (the node's file, by path).
#[path = "../../node/src/store_chain.rs"]
pub mod store_chain;
pub mod targets;
pub mod tiers;
pub mod tls;

use std::future::Future;
use std::sync::Arc;

use anyhow::Context;

pub use config::Config;
use storage::{HubStore, SledHubStore};

/// (with the hub stopped) Checks every stored chain, the feed and the member directory.
pub fn verify(config: &Config) -> anyhow::Result<ingest::VerifyReport> {
    let opened = open_storage(config)?;
    Ok(ingest::verify(&*opened.storage)?)
}

/// Headquarters' storage, and the store itself by kind: sled's takes backups, PostgreSQL's
/// holds the lease.
pub struct Opened {
    pub storage: Arc<dyn HubStore>,
    pub sled: Option<Arc<SledHubStore>>,
    pub pg: Option<Arc<storage::PgHubStore>>,
}

/// Headquarters' storage as the config names it: PostgreSQL at `database_url`, or sled in the
/// data directory.
pub fn open_storage(config: &Config) -> anyhow::Result<Opened> {
    match &config.database_url {
        Some(url) => {
            let pg = Arc::new(storage::PgHubStore::open(url).with_context(|| {
                format!("opening headquarters' database {}", storage::pg::shown(url))
            })?);
            Ok(Opened {
                storage: pg.clone(),
                sled: None,
                pg: Some(pg),
            })
        }
        None => {
            let sled = Arc::new(
                SledHubStore::open(&config.data_dir)
                    .with_context(|| format!("opening {}", config.data_dir.display()))?,
            );
            Ok(Opened {
                storage: sled.clone(),
                sled: Some(sled),
                pg: None,
            })
        }
    }
}

/// Waits until this hub holds headquarters' lease on the database (another hub may be active:
/// this one stands by), then keeps it renewed; a hub that loses it stops at once (a standby
/// has taken over, or the database was out of reach for longer than the lease).
async fn lead(pg: Arc<storage::PgHubStore>, config: &Config) -> anyhow::Result<Leading> {
    let holder = config.instance();
    let ttl_ms = config.lease_secs * 1000;
    let mut told = None;
    loop {
        let (trying, name) = (pg.clone(), holder.clone());
        match tokio::task::spawn_blocking(move || trying.take_lease(&name, ttl_ms)).await? {
            Ok(Some(lease)) => {
                tracing::info!(
                    holder,
                    epoch = lease.epoch,
                    "this hub is headquarters' active one"
                );
                break;
            }
            Ok(None) => {
                let asking = pg.clone();
                if let Ok(Ok((other, epoch, until, now))) =
                    tokio::task::spawn_blocking(move || asking.lease_holder()).await
                    && told.as_ref() != Some(&(other.clone(), epoch))
                {
                    tracing::warn!(
                        holder = other,
                        epoch,
                        lease_left_ms = until - now,
                        "standing by: another hub is headquarters' active one"
                    );
                    told = Some((other, epoch));
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "headquarters' lease could not be read; trying again")
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    let every_ms = (ttl_ms / 4).max(250);
    let (lost_tx, lost) = tokio::sync::watch::channel(false);
    let renewing_store = pg.clone();
    let renewal = tokio::spawn(async move {
        let mut renewed = std::time::Instant::now();
        loop {
            tokio::time::sleep(std::time::Duration::from_millis(every_ms)).await;
            let renewing = renewing_store.clone();
            let tried = tokio::time::timeout(
                std::time::Duration::from_millis(every_ms * 2),
                tokio::task::spawn_blocking(move || renewing.renew_lease(ttl_ms)),
            )
            .await;
            match tried {
                Ok(Ok(Ok(true))) => renewed = std::time::Instant::now(),
                Ok(Ok(Ok(false))) => {
                    tracing::error!("another hub took headquarters' lease over; this hub stops");
                    let _ = lost_tx.send(true);
                    return;
                }
                failed => {
                    tracing::warn!(error = ?failed, "headquarters' lease was not renewed");
                    let since_ms = u64::try_from(renewed.elapsed().as_millis()).unwrap_or(u64::MAX);
                    if since_ms >= ttl_ms.saturating_sub(every_ms) {
                        tracing::error!(
                            "the database was out of reach for the lease's length: another hub \
                             may take over; this hub stops"
                        );
                        let _ = lost_tx.send(true);
                        return;
                    }
                }
            }
        }
    });
    Ok(Leading { pg, renewal, lost })
}

/// Headquarters' lease held by this hub: its renewal, and whether it was lost.
struct Leading {
    pg: Arc<storage::PgHubStore>,
    renewal: tokio::task::JoinHandle<()>,
    lost: tokio::sync::watch::Receiver<bool>,
}

impl Leading {
    /// Stops renewing; gives the lease up unless it was lost (then says so).
    async fn end(self) -> anyhow::Result<()> {
        self.renewal.abort();
        let _ = self.renewal.await;
        anyhow::ensure!(
            !*self.lost.borrow(),
            "another hub took headquarters' lease over, or the database was out of reach"
        );
        let pg = self.pg;
        tokio::task::spawn_blocking(move || pg.release_lease()).await??;
        Ok(())
    }
}

/// Where a running hub listens (useful when the config asked for port 0).
#[derive(Debug, Clone, Copy)]
pub struct Bound {
    pub sync: std::net::SocketAddr,
    pub http: std::net::SocketAddr,
}

/// Opens the hub's data, binds its QUIC and HTTP listeners, reports where it listens through
/// `bound`, and serves until `shutdown` completes.
pub async fn run(
    config: Config,
    bound: impl FnOnce(Bound) + Send,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("creating {}", config.data_dir.display()))?;
    let Opened { storage, sled, pg } = open_storage(&config)?;
    let server_config = tls::server_config(&config.ca_cert, &config.cert, &config.key)?;
    let socket = tls::udp_socket(config.sync_listen)?;
    let endpoint = quinn::Endpoint::new(
        quinn::EndpointConfig::default(),
        Some(server_config),
        socket,
        Arc::new(quinn::TokioRuntime),
    )?;
    let database = match (&pg, &config.database_url) {
        (Some(pg), Some(url)) => Some((storage::pg::shown(url), pg.clone())),
        _ => None,
    };
    let mut leading = None;
    if let Some(pg) = pg {
        // Standing by, this hub turns stores away at once, so they try the next address.
        let turning_away = tokio::spawn({
            let endpoint = endpoint.clone();
            async move {
                while let Some(incoming) = endpoint.accept().await {
                    incoming.refuse();
                }
            }
        });
        let led = lead(pg, &config).await;
        turning_away.abort();
        let _ = turning_away.await;
        leading = Some(led?);
    }
    // A hub that loses the lease stops serving.
    let lost = leading.as_ref().map(|l| l.lost.clone());
    let shutdown = async move {
        match lost {
            Some(mut lost) => {
                tokio::select! {
                    () = shutdown => {}
                    _ = lost.wait_for(|lost| *lost) => {}
                }
            }
            None => shutdown.await,
        }
    };
    let backups = Arc::new(backup::Backups::new(sled, database, config.backup()));
    let (ingest, ingest_thread) = ingest::spawn(
        storage.clone(),
        config.fence_rule(),
        config.rights,
        config.notify.is_some(),
    )?;
    // 消息: the outbox's sender, when a gateway or a file is configured.
    let stop_notify = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let notify_thread = match &config.notify {
        Some(notify) => Some(notify::spawn(
            notify::Outbox {
                storage: storage.clone(),
                config: notify.clone(),
                calendar: protocol::calendar::StoreCalendar::default(),
                now_ms: Box::new(ingest::system_now_ms),
            },
            notify::sender(notify)?,
            stop_notify.clone(),
        )?),
        None => None,
    };
    if !config.open_before_logins
        && let Some(path) = first_admin::ensure(&ingest, &*storage, &config.data_dir).await?
    {
        tracing::warn!(
            staff = first_admin::FIRST_ADMIN,
            password_file = %path.display(),
            "a new headquarters: its first admin was made; log in with the password in the file, \
             then set your own and delete the file"
        );
    }
    let renewer = match &config.renewal {
        Some(renewal) => Some(Arc::new(
            renew::Renewer::load(renewal, &config.ca_cert)
                .context("the store-issuing CA ([renewal])")?,
        )),
        None => None,
    };
    let http = tokio::net::TcpListener::bind(config.http_listen)
        .await
        .with_context(|| format!("binding {}", config.http_listen))?;
    let addresses = Bound {
        sync: endpoint.local_addr()?,
        http: http.local_addr()?,
    };
    tracing::info!(sync = %addresses.sync, http = %addresses.http, "hub listening");
    bound(addresses);
    let sync_task = tokio::spawn(server::serve(
        endpoint.clone(),
        ingest.clone(),
        storage.clone(),
        renewer,
    ));
    // Waiting asks lapse and withdrawn ones are dropped even when no store is writing.
    let daily_from = config.notify.as_ref().map_or(9, |n| n.quiet_to);
    let tier_review_daily = config.tier_review_daily;
    let ticker = tokio::spawn({
        let ingest = ingest.clone();
        let storage = storage.clone();
        let notify = config.notify.clone();
        let backups = backups.clone();
        async move {
            let mut every = tokio::time::interval(std::time::Duration::from_secs(1));
            let mut seconds = 0u64;
            let mut reminded = None;
            let mut reviewed = None;
            loop {
                every.tick().await;
                ingest.tick().await;
                seconds += 1;
                // 备份: on the config's schedule, the first that long after start.
                let every = u64::from(backups.shelf.config.every_hours) * 3600;
                if every > 0 && seconds.is_multiple_of(every) && backups.storage.is_some() {
                    let (backups, now) = (backups.clone(), ingest::system_now_ms());
                    tokio::task::spawn_blocking(move || match backups.take_now(now) {
                        Ok(taken) => {
                            tracing::info!(file = %taken.file.display(), "scheduled backup taken")
                        }
                        Err(e) => tracing::error!(error = %format!("{e:#}"), "backup failed"),
                    });
                }
                // 营销: daily campaigns (the birthday run) once a day, after quiet hours.
                if seconds % 60 == 1 {
                    let now = ingest::system_now_ms();
                    match segments::run_daily(&ingest, storage.clone(), now, daily_from).await {
                        Ok(runs) => {
                            for run in runs {
                                tracing::info!(campaign = %run.campaign, run = %run.run, issued = run.issued, "daily campaign ran");
                            }
                        }
                        Err(e) => tracing::error!(error = %e, "a daily campaign could not run"),
                    }
                    // 会员等级评定: once a day, after quiet hours, once a tier table exists.
                    let review = match tier_review_daily {
                        true => {
                            tiers::review_daily(
                                &ingest,
                                storage.clone(),
                                now,
                                daily_from,
                                &mut reviewed,
                            )
                            .await
                        }
                        false => Ok(None),
                    };
                    match review {
                        Ok(Some(r)) => {
                            tracing::info!(as_of = %r.as_of, up = r.up, down = r.down, "tier review ran")
                        }
                        Ok(None) => {}
                        Err(e) => tracing::error!(error = %e, "the tier review could not run"),
                    }
                    // 提醒与祝福: once a day, after quiet hours, with a gateway configured.
                    if let Some(notify) = &notify {
                        reminders::tick(storage.clone(), notify, now, &mut reminded).await;
                    }
                }
            }
        }
    });
    http::serve(
        http,
        api::router(
            ingest,
            storage.clone(),
            config.http_names.clone(),
            config.open_before_logins,
            config.notify.clone(),
            backups,
        ),
        config.http,
        shutdown,
    )
    .await?;
    endpoint.close(0u32.into(), b"hub shutting down");
    sync_task.abort();
    let _ = sync_task.await; // its ingest handle must be gone before the ingest thread can end
    ticker.abort();
    let _ = ticker.await;
    endpoint.wait_idle().await;
    tokio::task::spawn_blocking(move || ingest_thread.join())
        .await?
        .ok();
    stop_notify.store(true, std::sync::atomic::Ordering::Relaxed);
    if let Some(thread) = notify_thread {
        tokio::task::spawn_blocking(move || thread.join())
            .await?
            .ok();
    }
    storage.flush()?;
    if let Some(leading) = leading {
        leading.end().await?;
    }
    Ok(())
}
