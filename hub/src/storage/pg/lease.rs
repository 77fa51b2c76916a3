//! Which hub process is headquarters' active one (`hub_lease`, migration 3): two or more hubs
//! may run on one database, one active and the others standing by. The active one renews its
//! lease; a standby takes the lease over once it has run out (by the database's clock, so the
//! hubs' clocks do not matter), with the next epoch. Every write transaction checks the epoch
//! under a key-share lock of the row (`guard`); a takeover first locks the row `FOR UPDATE`,
//! which waits for the writes in flight, and after it the hub that lost the lease writes
//! nothing, whatever it still believes. A renewal changes no key, so it waits for no writer. So everything that
//! must happen once (a store's log position, a grant or recall, a fence, a campaign's issue)
//! is written by one hub's state, as with a single hub.

use deadpool_postgres::GenericClient;

use super::{db, query};
use crate::storage::*;

/// The lease a hub holds: who and which epoch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub holder: String,
    pub epoch: i64,
}

/// The database's clock in ms, as SQL.
const NOW_MS: &str = "(EXTRACT(EPOCH FROM clock_timestamp()) * 1000)::BIGINT";

/// Takes the lease for `holder` for `ttl_ms` when it has run out or is `holder`'s own (a hub
/// restarted under the same name); none while another hub holds it.
pub(super) async fn take(
    client: &mut deadpool_postgres::Client,
    holder: &str,
    ttl_ms: i64,
) -> Result<Option<Lease>> {
    let tx = client.transaction().await.map_err(db)?;
    // Not for long: a hub cut off mid-write holds its lock until the server ends it.
    tx.batch_execute("SET LOCAL lock_timeout = '5s'")
        .await
        .map_err(db)?;
    query(&tx, "SELECT 1 FROM hub_lease WHERE id = 1 FOR UPDATE", &[]).await?;
    let rows = query(
        &tx,
        &format!(
            "UPDATE hub_lease SET holder = $1, epoch = epoch + 1, until_ms = {NOW_MS} + $2 \
             WHERE id = 1 AND (until_ms < {NOW_MS} OR holder = $1) RETURNING epoch"
        ),
        &[&holder, &ttl_ms],
    )
    .await?;
    tx.commit().await.map_err(db)?;
    Ok(rows.first().map(|r| Lease {
        holder: holder.to_owned(),
        epoch: r.get(0),
    }))
}

/// Gives `lease` up: it runs out now, so a standby takes over at once.
pub(super) async fn release(client: &impl GenericClient, lease: &Lease) -> Result<()> {
    query(
        client,
        "UPDATE hub_lease SET until_ms = 0 WHERE id = 1 AND holder = $1 AND epoch = $2 \
         RETURNING epoch",
        &[&lease.holder, &lease.epoch],
    )
    .await?;
    Ok(())
}

/// Extends `lease` by `ttl_ms`; false when it is no longer held (taken over).
pub(super) async fn renew(client: &impl GenericClient, lease: &Lease, ttl_ms: i64) -> Result<bool> {
    let rows = query(
        client,
        &format!(
            "UPDATE hub_lease SET until_ms = {NOW_MS} + $3 \
             WHERE id = 1 AND holder = $1 AND epoch = $2 RETURNING epoch"
        ),
        &[&lease.holder, &lease.epoch, &ttl_ms],
    )
    .await?;
    Ok(!rows.is_empty())
}

/// Who holds the lease now and until when (ms by the database's clock, and that clock).
pub(super) async fn holder(client: &impl GenericClient) -> Result<(String, i64, i64, i64)> {
    let rows = query(
        client,
        &format!("SELECT holder, epoch, until_ms, {NOW_MS} FROM hub_lease WHERE id = 1"),
        &[],
    )
    .await?;
    let row = rows.first().ok_or_else(|| db("no lease row"))?;
    Ok((row.get(0), row.get(1), row.get(2), row.get(3)))
}

/// In a write transaction: the lease is still `lease` (none: this store writes without one, as
/// a tool does). The row stays key-share-locked to the commit, so a takeover (`FOR UPDATE`)
/// comes after this transaction or this transaction fails; a renewal does not wait for it.
pub(super) async fn guard(client: &impl GenericClient, lease: Option<&Lease>) -> Result<()> {
    let Some(lease) = lease else {
        return Ok(());
    };
    let rows = query(
        client,
        "SELECT holder, epoch FROM hub_lease WHERE id = 1 FOR KEY SHARE",
        &[],
    )
    .await?;
    let row = rows.first().ok_or_else(|| db("no lease row"))?;
    let (holder, epoch): (String, i64) = (row.get(0), row.get(1));
    if holder == lease.holder && epoch == lease.epoch {
        return Ok(());
    }
    Err(HubStoreError::Deposed(format!(
        "headquarters is now {holder} (epoch {epoch}); this hub ({}, epoch {}) writes nothing more",
        lease.holder, lease.epoch
    )))
}
