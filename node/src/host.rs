//! Many stores in one process (`node host`): each store as `node run` starts it, with its own
//! storage, journal thread, certificate, sync session and HTTP listener, all on one runtime.
//! For replays and benchmarks of a whole chain on one machine, and for a franchisee who keeps
//! several stores' PCs in one office. A store PC runs `node run`, as before.
//!
//! Every store is opened and checked before any listens, so a damaged or misconfigured one
//! stops the start and is named. Once running, a store that stops with an error is logged
//! under its id and the others go on; the process then exits with an error naming it.
#![allow(clippy::print_stdout)]

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

use anyhow::Context;
use tracing::Instrument;

use crate::Config;

/// The most runtime worker threads a host starts, however many stores it serves.
const HOST_WORKERS_MAX: usize = 8;

/// How each hosted store's sled runs. Its background flush fsyncs at each turn: 457 stores at
/// sled's half second were 900 fsyncs a second, and its log cleaning held up the journals (a
/// third of a 457-store host's CPU while every store applied each registration); nothing
/// durable depends on it. Its page cache is sled's 1 GiB by default, per store: 457 stores
/// took the host to 22 GB and the out-of-memory killer; a year's store holds a few MB.
const HOSTED: crate::store::SledTuning = crate::store::SledTuning {
    background_flush_ms: 10_000,
    cache_bytes: 16 * 1024 * 1024,
};

/// Loads and opens every store of `configs`, refusing two with one store id or one data
/// directory.
fn open_all(configs: &[PathBuf]) -> anyhow::Result<Vec<(Config, crate::store::SledStore)>> {
    anyhow::ensure!(
        !configs.is_empty(),
        "no store to host: give --config once per store"
    );
    let mut ids: BTreeMap<String, &Path> = BTreeMap::new();
    let mut dirs: BTreeMap<PathBuf, &Path> = BTreeMap::new();
    let mut opened = Vec::with_capacity(configs.len());
    for path in configs {
        let config = Config::load(path)?;
        if let Some(first) = ids.insert(config.store_id.clone(), path) {
            anyhow::bail!(
                "{} and {} are both store {}",
                first.display(),
                path.display(),
                config.store_id
            );
        }
        let dir = std::path::absolute(&config.data_dir)?;
        if let Some(first) = dirs.insert(dir.clone(), path) {
            anyhow::bail!(
                "{} and {} both keep their data in {}",
                first.display(),
                path.display(),
                dir.display()
            );
        }
        let store = crate::open_checked_tuned(&config.data_dir, HOSTED)
            .with_context(|| format!("store {} ({})", config.store_id, path.display()))?;
        opened.push((config, store));
    }
    Ok(opened)
}

/// Runs every store of `configs` until Ctrl-C or SIGTERM. With `any_port`, each listens on a
/// free loopback port instead of its configured address. Prints `<store> listening on
/// http://<address>` for each, then `hosting <n> stores`.
pub fn host(configs: &[PathBuf], any_port: bool) -> anyhow::Result<()> {
    let opened = open_all(configs)?;
    // More workers than cores: a handler's storage read blocks its worker, and here it would
    // hold up every other store's requests and sessions, not only its own store's.
    let cores = std::thread::available_parallelism().map_or(2, usize::from);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(opened.len().clamp(cores, HOST_WORKERS_MAX))
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let mut nodes = tokio::task::JoinSet::new();
        let count = opened.len();
        for (config, store) in opened {
            let address = match any_port {
                true => SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
                false => config.listen,
            };
            let id = config.store_id.clone();
            let listener = tokio::net::TcpListener::bind(address)
                .await
                .with_context(|| format!("store {id}: binding {address}"))?;
            println!("{id} listening on http://{}", listener.local_addr()?);
            let mut stopped = stopped.clone();
            let shutdown = async move {
                let _ = stopped.wait_for(|stop| *stop).await;
            };
            let span = tracing::info_span!("store", id = %id);
            nodes.spawn(
                async move { (id, crate::run_with(config, store, listener, shutdown).await) }
                    .instrument(span),
            );
        }
        println!("hosting {count} stores");
        tokio::spawn(async move {
            crate::shutdown_signal().await;
            let _ = stop.send(true);
        });
        let mut failed = Vec::new();
        while let Some(joined) = nodes.join_next().await {
            match joined {
                Ok((_, Ok(()))) => {}
                Ok((id, Err(e))) => {
                    tracing::error!(store = %id, error = ?e, "the store stopped");
                    failed.push(id);
                }
                Err(e) => {
                    tracing::error!(error = %e, "a store's task ended abnormally");
                    failed.push("?".to_owned());
                }
            }
        }
        anyhow::ensure!(
            failed.is_empty(),
            "stores stopped with an error: {failed:?}"
        );
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(label: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("node-host-{label}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn config(dir: &Path, name: &str, store: &str, data: &str) -> PathBuf {
        let config = Config {
            store_id: store.into(),
            data_dir: dir.join(data),
            open_before_logins: true,
            ..Config::default()
        };
        let path = dir.join(name);
        std::fs::write(&path, config.to_toml()).unwrap();
        path
    }

    #[test]
    fn two_configs_of_one_store_are_refused_by_name() {
        let dir = scratch("same-id");
        let a = config(&dir, "a.toml", "S001", "a");
        let b = config(&dir, "b.toml", "S001", "b");
        let error = open_all(&[a, b]).err().unwrap().to_string();
        assert!(error.contains("are both store S001"), "{error}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn two_stores_in_one_data_directory_are_refused() {
        let dir = scratch("same-dir");
        let a = config(&dir, "a.toml", "S001", "same");
        let b = config(&dir, "b.toml", "S002", "same");
        let error = open_all(&[a, b]).err().unwrap().to_string();
        assert!(error.contains("both keep their data in"), "{error}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
