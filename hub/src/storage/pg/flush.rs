//! Appends and flushes on PostgreSQL when the database goes away under them (a restart, a
//! crash, a cut connection), by the count of batches appended (`hub_appends.n`, written in each
//! batch's own transaction as `n = n + 1 WHERE n = expected`):
//!
//! - a group of batches whose commit's answer was lost (`pipe.rs`) is committed if `n` moved
//!   on to its last, not if it stayed at its first (it is written again); anything else
//!   means the database and this hub disagree;
//! - a flush reads `n` and commits a row of its own (`hub_flushes`) synchronously: once it
//!   returns, every batch counted is durable; if `n` is below what the hub expects, a crash
//!   lost asynchronous commits. (`n` above it: batches written behind the ingest since.)
//!
//! When they disagree, or the database does not come back within `WAIT_MS`, the store stops:
//! every write after is refused, the flush fails, and the hub stops to start again from what the
//! database holds (the stores send the rest again). A clean restart (every commit written out
//! first) disagrees with nothing, and the hub carries on.

use super::{PgHubStore, db, execute, pipe, query};
use crate::storage::*;

/// How long an append or a flush waits for the database to come back before it gives up.
const WAIT_MS: u64 = 30_000;

pub(super) fn wait() -> std::time::Duration {
    std::time::Duration::from_millis(WAIT_MS)
}

async fn appended(client: &impl deadpool_postgres::GenericClient) -> Result<i64> {
    let rows = query(client, "SELECT n FROM hub_appends WHERE id = 1", &[]).await?;
    rows.first()
        .map(|r| r.get(0))
        .ok_or_else(|| db("no row in hub_appends"))
}

/// The count once the database answers (none: it did not by `deadline`).
pub(super) async fn count_when_back(
    pool: &deadpool_postgres::Pool,
    deadline: tokio::time::Instant,
) -> Option<i64> {
    loop {
        let counted = async {
            let client = pool.get().await.map_err(db)?;
            appended(&client).await
        }
        .await;
        match counted {
            Ok(n) => return Some(n),
            Err(e) if tokio::time::Instant::now() < deadline => {
                tracing::warn!(error = %e, "waiting for headquarters' database");
                tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            }
            Err(_) => return None,
        }
    }
}

impl PgHubStore {
    /// Refuses every write once the store has stopped.
    pub(super) fn check_running(&self) -> Result<()> {
        self.pipe.check()
    }

    /// Stops the store for `why`: it writes nothing more.
    pub(super) fn stop(&self, why: String) -> HubStoreError {
        self.pipe.fail(pipe::Failure::Stopped(why.clone()));
        HubStoreError::Stopped(why)
    }

    /// The batches counted in the database now.
    pub(super) fn appends_now(&self) -> Result<i64> {
        self.run_now(|pool| async move {
            let client = pool.get().await.map_err(db)?;
            appended(&client).await
        })
    }

    /// The count once the database answers again (none: it did not within `WAIT_MS`).
    fn appends_when_back(&self) -> Option<i64> {
        self.run_now(|pool| async move {
            Ok(count_when_back(&pool, tokio::time::Instant::now() + wait()).await)
        })
        .ok()
        .flatten()
    }

    /// Makes every batch appended so far durable (see the module's note). One flush at a
    /// time: a second waits, then finds its batches durable or flushes them.
    pub(super) fn flush_appended(&self) -> Result<()> {
        let mut durable = self.flushing.lock().unwrap_or_else(|p| p.into_inner());
        // Every batch appended before this call is written once the queue is.
        let expected = self.pipe.drain()?;
        if expected <= *durable {
            return Ok(());
        }
        let flushed = self.commit_flush(expected).or_else(|failed| {
            if matches!(failed, HubStoreError::Deposed(_) | HubStoreError::Stopped(_)) {
                return Err(failed);
            }
            tracing::warn!(error = %failed, "a flush failed; waiting for the database to check what it kept");
            match self.appends_when_back() {
                Some(n) if n >= expected => self.commit_flush(expected),
                Some(n) => Err(self.stop(format!(
                    "the database lost batches appended before it stopped: it counts {n}, \
                     this hub {expected}"
                ))),
                None => Err(self.stop(format!("the database did not come back: {failed}"))),
            }
        });
        match &flushed {
            Ok(()) => *durable = expected,
            Err(HubStoreError::Deposed(why)) => {
                self.pipe.fail(pipe::Failure::Deposed(why.clone()));
            }
            Err(_) => {}
        }
        flushed
    }

    /// Forgets which batches are known durable (a hub that took the lease): the next flush
    /// commits whatever the database counts.
    pub(super) fn forget_flushed(&self) {
        *self.flushing.lock().unwrap_or_else(|p| p.into_inner()) = i64::MIN;
    }

    /// Commits a row synchronously, which waits for the WAL of every batch committed before
    /// it, if the database counts at least `expected` batches (later ones may be written
    /// meanwhile; a gap cannot be: each batch counts on from the one before).
    fn commit_flush(&self, expected: i64) -> Result<()> {
        let held = self.lease();
        let n = self.run_now(move |pool| async move {
            let mut client = pool.get().await.map_err(db)?;
            let tx = super::durable(&mut client, held.as_ref()).await?;
            let n = appended(&tx).await?;
            execute(
                &tx,
                "UPDATE hub_flushes SET flushed = $1 WHERE id = 1",
                &[&expected],
            )
            .await?;
            tx.commit().await.map_err(db)?;
            Ok(n)
        })?;
        match n >= expected {
            true => Ok(()),
            false => Err(self.stop(format!(
                "the database lost batches appended: it counts {n}, this hub {expected}"
            ))),
        }
    }
}
