//! Appends and flushes on PostgreSQL when the database goes away under them (a restart, a
//! crash, a cut connection), by the count of batches appended (`hub_appends.n`, written in each
//! batch's own transaction as `n = n + 1 WHERE n = expected`):
//!
//! - an append whose answer was lost is committed if `n` moved on by one, not if it did not
//!   (its store sends it again); anything else means the database and this hub disagree;
//! - a flush commits `flushed = n WHERE n = expected` synchronously: once it returns, every batch
//!   counted is durable; if `n` is not what the hub expects, a crash lost asynchronous commits.
//!
//! When they disagree, or the database does not come back within `WAIT_MS`, the store stops:
//! every write after is refused, the flush fails, and the hub stops to start again from what the
//! database holds (the stores send the rest again). A clean restart (every commit written out
//! first) disagrees with nothing, and the hub carries on.

use super::{PgHubStore, db, execute, query};
use crate::storage::*;

/// How long an append or a flush waits for the database to come back before it gives up.
const WAIT_MS: u64 = 30_000;

async fn appended(client: &impl deadpool_postgres::GenericClient) -> Result<i64> {
    let rows = query(client, "SELECT n FROM hub_appends WHERE id = 1", &[]).await?;
    rows.first()
        .map(|r| r.get(0))
        .ok_or_else(|| db("no row in hub_appends"))
}

impl PgHubStore {
    /// Refuses every write once the store has stopped.
    pub(super) fn check_running(&self) -> Result<()> {
        match &*self.stopped.lock().unwrap_or_else(|p| p.into_inner()) {
            Some(why) => Err(HubStoreError::Stopped(why.clone())),
            None => Ok(()),
        }
    }

    /// Stops the store for `why`: it writes nothing more.
    pub(super) fn stop(&self, why: String) -> HubStoreError {
        tracing::error!(
            why,
            "headquarters' database and this hub disagree; it writes nothing more"
        );
        *self.stopped.lock().unwrap_or_else(|p| p.into_inner()) = Some(why.clone());
        HubStoreError::Stopped(why)
    }

    /// The batches counted in the database now.
    pub(super) fn appends_now(&self) -> Result<i64> {
        self.run(|pool| async move {
            let client = pool.get().await.map_err(db)?;
            appended(&client).await
        })
    }

    /// The count once the database answers again (none: it did not within `WAIT_MS`).
    fn appends_when_back(&self) -> Option<i64> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_millis(WAIT_MS);
        loop {
            match self.appends_now() {
                Ok(n) => return Some(n),
                Err(e) if std::time::Instant::now() < deadline => {
                    tracing::warn!(error = %e, "waiting for headquarters' database");
                    std::thread::sleep(std::time::Duration::from_millis(500));
                }
                Err(_) => return None,
            }
        }
    }

    /// After an append of batch `expected + 1` failed with `failed`: whether it was committed
    /// after all (Ok), was not (its error), or the store stops.
    pub(super) fn settle_append(&self, expected: i64, failed: HubStoreError) -> Result<bool> {
        if matches!(
            failed,
            HubStoreError::Deposed(_) | HubStoreError::Stopped(_)
        ) {
            return Err(failed);
        }
        match self.appends_when_back() {
            Some(n) if n == expected + 1 => {
                tracing::warn!(error = %failed, "a batch's commit answered an error but was committed");
                Ok(true)
            }
            Some(n) if n == expected => Err(failed),
            Some(n) => Err(self.stop(format!(
                "the database counts {n} batches appended, this hub {expected}"
            ))),
            None => Err(self.stop(format!("the database did not come back: {failed}"))),
        }
    }

    /// Makes every batch appended so far durable (see the module's note).
    pub(super) fn flush_appended(&self) -> Result<()> {
        self.check_running()?;
        if !self
            .unflushed
            .swap(false, std::sync::atomic::Ordering::AcqRel)
        {
            return Ok(());
        }
        let expected = *self.appends.lock().unwrap_or_else(|p| p.into_inner());
        let flushed = self.commit_flush(expected).or_else(|failed| {
            if matches!(failed, HubStoreError::Deposed(_) | HubStoreError::Stopped(_)) {
                return Err(failed);
            }
            tracing::warn!(error = %failed, "a flush failed; waiting for the database to check what it kept");
            match self.appends_when_back() {
                Some(n) if n == expected => self.commit_flush(expected),
                Some(n) => Err(self.stop(format!(
                    "the database lost batches appended before it stopped: it counts {n}, \
                     this hub {expected}"
                ))),
                None => Err(self.stop(format!("the database did not come back: {failed}"))),
            }
        });
        if flushed.is_err() {
            // Not known durable: the next flush must try again.
            self.unflushed
                .store(true, std::sync::atomic::Ordering::Release);
        }
        flushed
    }

    /// Commits the synchronous row that waits for the WAL of every batch before it, if the
    /// database counts `expected` batches.
    fn commit_flush(&self, expected: i64) -> Result<()> {
        let held = self.lease();
        let counted = self.run(move |pool| async move {
            let mut client = pool.get().await.map_err(db)?;
            let tx = super::durable(&mut client, held.as_ref()).await?;
            let counted = execute(
                &tx,
                "UPDATE hub_appends SET flushed = n WHERE id = 1 AND n = $1",
                &[&expected],
            )
            .await?;
            tx.commit().await.map_err(db)?;
            Ok(counted)
        })?;
        match counted {
            1 => Ok(()),
            _ => {
                let n = self.appends_now().unwrap_or(-1);
                Err(self.stop(format!(
                    "the database lost batches appended: it counts {n}, this hub {expected}"
                )))
            }
        }
    }
}
