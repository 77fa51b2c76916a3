//! The schema's versions (`hub/migrations/NNNN_name.sql`, in the repository, applied in order
//! at open). Each is applied with its record in `hub_schema` in one transaction: two hubs
//! starting at once on a new database both try, one commits, the other's insert of the same
//! version fails and it reads the versions again.

use super::{db, execute, query};
use crate::storage::*;

/// Every version, in order. A released version is never edited: a change is a new one.
pub(super) const MIGRATIONS: &[(i32, &str, &str)] = &[
    (1, "hub", include_str!("../../../migrations/0001_hub.sql")),
    (2, "bi", include_str!("../../../migrations/0002_bi.sql")),
    (
        3,
        "lease",
        include_str!("../../../migrations/0003_lease.sql"),
    ),
    (
        4,
        "flushes",
        include_str!("../../../migrations/0004_flushes.sql"),
    ),
    (
        5,
        "bi_settlement",
        include_str!("../../../migrations/0005_bi_settlement.sql"),
    ),
    (
        6,
        "members_by_id",
        include_str!("../../../migrations/0006_members_by_id.sql"),
    ),
    (
        7,
        "member_facets",
        include_str!("../../../migrations/0007_member_facets.sql"),
    ),
];

/// Versions this database has, newest last.
async fn applied(client: &deadpool_postgres::Client) -> Result<Vec<i32>> {
    let rows = query(
        client,
        "SELECT version FROM hub_schema ORDER BY version",
        &[],
    )
    .await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// Brings the database's schema up to this build's, and refuses one newer than it.
pub(super) async fn migrate(client: &mut deadpool_postgres::Client) -> Result<()> {
    // Two hubs on a new database may both create it: the loser's error is harmless.
    if let Err(e) = client
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS hub_schema (\
                version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_ms BIGINT NOT NULL)",
        )
        .await
    {
        tracing::info!(error = %e, "hub_schema was being made by another hub");
    }
    for _try in 0..3 {
        let have = applied(client).await?;
        let newest = MIGRATIONS.last().map_or(0, |m| m.0);
        if let Some(ahead) = have.iter().find(|v| **v > newest) {
            return Err(HubStoreError::Database(format!(
                "the database's schema is version {ahead}, newer than this hub's {newest}: \
                 run the newer hub"
            )));
        }
        let mut raced = false;
        for (version, name, sql) in MIGRATIONS.iter().filter(|m| !have.contains(&m.0)) {
            let tx = client.transaction().await.map_err(db)?;
            let done = async {
                tx.batch_execute(sql).await.map_err(db)?;
                execute(
                    &tx,
                    "INSERT INTO hub_schema (version, name, applied_ms) VALUES ($1, $2, $3)",
                    &[version, name, &super::big(crate::ingest::system_now_ms())?],
                )
                .await?;
                tx.commit().await.map_err(db)
            }
            .await;
            if let Err(e) = done {
                // Another hub applying the same version at once has it now; anything else is
                // this version's own failure.
                if !applied(client).await?.contains(version) {
                    return Err(HubStoreError::Database(format!(
                        "schema version {version} ({name}) could not be applied: {e}"
                    )));
                }
                tracing::info!(version, "another hub applied this schema version");
                raced = true;
                break;
            }
            tracing::info!(version, name, "database schema version applied");
        }
        if !raced {
            return Ok(());
        }
    }
    Err(db("the database's schema could not be brought up to date"))
}
