//! `flush` on PostgreSQL, and what it does when the database went away under it (a restart):
//! the batches appended since the last flush were committed without waiting for their WAL, so
//! a restart may or may not have kept them. Once the database answers again, the flush reads
//! back each store's tip and the feed's length those batches left: all there (a clean restart
//! writes every commit out first), it commits its synchronous row and the hub carries on; any
//! missing (a crash lost them), it fails and the hub stops, to start again from what the
//! database holds (its memory would be ahead of it; the stores send the rest again).

use std::collections::BTreeMap;

use super::{PgHubStore, db, execute, lease, query};
use crate::storage::*;

/// What was appended since the last flush: each store's tip after its last batch (encoded, as
/// stored) and the feed's length.
#[derive(Debug, Default)]
pub(super) struct Unflushed {
    tips: BTreeMap<String, Vec<u8>>,
    feed_len: Option<u64>,
}

impl Unflushed {
    pub(super) fn note(&mut self, store: String, tip: Vec<u8>, feed_len: u64) {
        self.tips.insert(store, tip);
        self.feed_len = Some(feed_len);
    }

    fn is_empty(&self) -> bool {
        self.feed_len.is_none()
    }
}

/// How long a flush waits for the database to come back before it gives up.
const WAIT_MS: u64 = 30_000;

impl PgHubStore {
    fn unflushed(&self) -> std::sync::MutexGuard<'_, Unflushed> {
        self.unflushed.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Makes every batch appended so far durable (see the module's note).
    pub(super) fn flush_appended(&self) -> Result<()> {
        let mut unflushed = self.unflushed();
        if unflushed.is_empty() {
            return Ok(());
        }
        let first = self.commit_flush();
        let Err(failed) = first else {
            *unflushed = Unflushed::default();
            return Ok(());
        };
        if matches!(failed, HubStoreError::Deposed(_)) {
            return Err(failed);
        }
        tracing::warn!(error = %failed, "a flush failed; waiting for the database to check what it kept");
        let deadline = std::time::Instant::now() + std::time::Duration::from_millis(WAIT_MS);
        loop {
            std::thread::sleep(std::time::Duration::from_millis(500));
            match self.kept(&unflushed) {
                Ok(true) => match self.commit_flush() {
                    Ok(()) => {
                        tracing::info!(
                            "the database kept every batch appended; the flush went through"
                        );
                        *unflushed = Unflushed::default();
                        return Ok(());
                    }
                    Err(e @ HubStoreError::Deposed(_)) => return Err(e),
                    Err(e) => tracing::warn!(error = %e, "the flush failed again"),
                },
                Ok(false) => {
                    return Err(HubStoreError::Database(
                        "the database lost batches appended before it stopped".into(),
                    ));
                }
                Err(e) => tracing::warn!(error = %e, "the database is not back yet"),
            }
            if std::time::Instant::now() >= deadline {
                return Err(failed);
            }
        }
    }

    /// Commits the synchronous row that waits for the WAL of every batch before it.
    fn commit_flush(&self) -> Result<()> {
        let held = self.lease();
        self.run(move |pool| async move {
            let mut client = pool.get().await.map_err(db)?;
            let tx = client.transaction().await.map_err(db)?;
            tx.batch_execute("SET LOCAL synchronous_commit TO ON")
                .await
                .map_err(db)?;
            lease::guard(&tx, held.as_ref()).await?;
            execute(&tx, "UPDATE flushes SET n = n + 1 WHERE id = 1", &[]).await?;
            tx.commit().await.map_err(db)
        })
    }

    /// Whether the database holds what the unflushed batches left: each store's tip and the
    /// feed's length.
    fn kept(&self, unflushed: &Unflushed) -> Result<bool> {
        let stores: Vec<String> = unflushed.tips.keys().cloned().collect();
        let (tips, feed_len) = self.run(move |pool| async move {
            let client = pool.get().await.map_err(db)?;
            let rows = query(
                &client,
                "SELECT store, tip FROM stores WHERE store = ANY($1::TEXT[])",
                &[&stores],
            )
            .await?;
            let tips: BTreeMap<String, Vec<u8>> =
                rows.iter().map(|r| (r.get(0), r.get(1))).collect();
            let feed_len: Option<u64> = super::meta(&client, "feed_len").await?;
            Ok((tips, feed_len))
        })?;
        Ok(unflushed
            .tips
            .iter()
            .all(|(store, tip)| tips.get(store) == Some(tip))
            && feed_len == unflushed.feed_len)
    }
}
