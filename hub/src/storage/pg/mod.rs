//! Headquarters on PostgreSQL: the same records as the sled store (`mod.rs` lists them), one
//! table each (`hub/migrations/`), for a chain that runs its headquarters on a database its IT
//! already operates (replication, failover, its own backups) and reads it with its BI tools.
//!
//! The driver is tokio-postgres with deadpool's pool, on a small runtime of this store's own:
//! `HubStore` is synchronous (the ingest thread, the outbox's sender and the API's blocking
//! tasks call it), so each call runs on that runtime and its caller waits for the answer.
//!
//! Durability as the sled store has it: `append` queues the batch, written behind the ingest
//! (`pipe.rs`) in transactions committed with `synchronous_commit` off; the appending thread
//! reads what it appended, other threads what is committed. `flush` waits for the queue, then
//! commits a row synchronously, which waits for the WAL up to its own commit record, so for
//! every batch before it (`flush.rs`). A crash between the two loses a suffix of whole batches,
//! which the stores send again (they were not acknowledged). Every other write is durable
//! before it returns.

use std::future::Future;

use deadpool_postgres::{GenericClient, Pool};
use tokio_postgres::types::ToSql;

use super::*;

mod bi;
mod flush;
pub mod lease;
mod outbox;
mod pipe;
mod schema;
#[cfg(unix)]
pub mod scratch;
mod write;

/// Headquarters' storage on PostgreSQL.
pub struct PgHubStore {
    runtime: Option<tokio::runtime::Runtime>,
    pool: Pool,
    index: IndexKey,
    /// Headquarters' lease's own connections (a busy pool must not keep it from renewing).
    lease_pool: Pool,
    /// The count of batches known durable (none yet: the first flush commits whatever the
    /// database counts), held by the flush in progress.
    flushing: std::sync::Mutex<i64>,
    /// The batches appended, written behind the ingest (`pipe.rs`), and why this store
    /// writes nothing more once the database and the hub disagree.
    pipe: pipe::Pipe,
    /// Headquarters' lease, once this hub holds it: every write checks it (`lease::guard`).
    lease: std::sync::Arc<std::sync::RwLock<Option<lease::Lease>>>,
}

impl Drop for PgHubStore {
    fn drop(&mut self) {
        // Dropped from async code too (the hub's `run`), where a runtime may not block.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// A database's address as a log or an error may show it: without its password.
pub fn shown(url: &str) -> String {
    match url.parse::<tokio_postgres::Config>() {
        Ok(config) => {
            let hosts: Vec<String> = config
                .get_hosts()
                .iter()
                .map(|h| match h {
                    tokio_postgres::config::Host::Tcp(name) => name.clone(),
                    #[cfg(unix)]
                    tokio_postgres::config::Host::Unix(path) => path.display().to_string(),
                })
                .collect();
            format!(
                "{}@{}/{}",
                config.get_user().unwrap_or("-"),
                hosts.join(","),
                config.get_dbname().unwrap_or("-")
            )
        }
        Err(_) => "(an address that does not parse)".into(),
    }
}

/// A database failure as the hub's storage error.
fn db(e: impl std::fmt::Display) -> HubStoreError {
    HubStoreError::Database(e.to_string())
}

/// A failure of a statement: refused (the server said what was sent is wrong: a data
/// exception, a broken constraint, a statement it does not take) or not (the connection, the
/// server going away), which a retry may get past.
fn pg(e: tokio_postgres::Error) -> HubStoreError {
    let refused = e.code().is_some_and(|code| {
        ["22", "23", "42"]
            .iter()
            .any(|class| code.code().starts_with(class))
    });
    let shown = match e.as_db_error() {
        Some(server) => server.to_string(),
        None => e.to_string(),
    };
    match refused {
        true => HubStoreError::Refused(shown),
        false => HubStoreError::Database(shown),
    }
}

/// A count or a time as the database's BIGINT.
fn big(n: u64) -> Result<i64> {
    i64::try_from(n).map_err(|_| HubStoreError::Database(format!("{n} is beyond a BIGINT")))
}

/// A bound of a query (a position or a limit) as a BIGINT: beyond the largest is the largest.
fn bound(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Feed records as `SELECT position, origin, entry` reads them.
fn feed_rows(rows: &[tokio_postgres::Row]) -> Result<Vec<(u64, FeedRecord)>> {
    rows.iter()
        .map(|r| {
            let record = FeedRecord {
                origin: parse_store(r.get(1))?,
                entry: r.get(2),
            };
            Ok((unbig(r.get(0), "feed position")?, record))
        })
        .collect()
}

/// A BIGINT read back (never negative as written).
fn unbig(n: i64, what: &str) -> Result<u64> {
    u64::try_from(n).map_err(|_| HubStoreError::Damaged(format!("{what}: {n}")))
}

/// The first key after every key that starts with `prefix` (none: no bound above).
fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < u8::MAX {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

fn parse_member(text: &str) -> Result<MemberId> {
    MemberId::parse(text).map_err(|_| HubStoreError::Damaged(format!("member id {text}")))
}

fn parse_store(text: &str) -> Result<StoreId> {
    StoreId::parse(text).map_err(|_| HubStoreError::Damaged(format!("store id {text}")))
}

/// Runs `sql` as a cached prepared statement.
async fn query(
    client: &impl GenericClient,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<Vec<tokio_postgres::Row>> {
    let statement = client.prepare_cached(sql).await.map_err(pg)?;
    client.query(&statement, params).await.map_err(pg)
}

async fn execute(
    client: &impl GenericClient,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<u64> {
    let statement = client.prepare_cached(sql).await.map_err(pg)?;
    client.execute(&statement, params).await.map_err(pg)
}

/// A write transaction under `lease`, committed synchronously: durable once its commit
/// returns (whatever the server's default), and refused when another hub took the lease over.
async fn durable<'a>(
    client: &'a mut deadpool_postgres::Client,
    lease: Option<&lease::Lease>,
) -> Result<deadpool_postgres::Transaction<'a>> {
    let tx = client.transaction().await.map_err(db)?;
    tx.batch_execute("SET LOCAL synchronous_commit TO ON")
        .await
        .map_err(db)?;
    lease::guard(&tx, lease).await?;
    Ok(tx)
}

/// A member's key as the database holds it: held, erased (a tombstone), or unknown.
fn key_state(key: Option<Vec<u8>>, erased: bool) -> Result<KeyState> {
    if let Some(bytes) = key {
        let bytes: [u8; 32] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| HubStoreError::Damaged("a member's key".into()))?;
        return Ok(KeyState::Held(MemberKey::from_bytes(bytes)));
    }
    Ok(match erased {
        true => KeyState::Erased,
        false => KeyState::Unknown,
    })
}

const MEMBER_KEY: &str = "SELECT (SELECT key FROM member_keys WHERE member_id = $1), \
     EXISTS (SELECT 1 FROM erased_members WHERE member_id = $1)";

async fn member_key(client: &impl GenericClient, id: &MemberId) -> Result<KeyState> {
    let rows = query(client, MEMBER_KEY, &[&id.to_string()]).await?;
    let row = rows
        .first()
        .ok_or_else(|| db("no row for a member's key"))?;
    key_state(row.get(0), row.get(1))
}

/// A member's record with its key, opened (none: no such member, or erased).
const MEMBER: &str = "SELECT m.member_id, m.record, k.key, e.member_id IS NOT NULL \
     FROM members m LEFT JOIN member_keys k ON k.member_id = m.member_id \
     LEFT JOIN erased_members e ON e.member_id = m.member_id";

fn opened(row: &tokio_postgres::Row) -> Result<Option<MemberRecord>> {
    let id = parse_member(row.get(0))?;
    let bytes: Vec<u8> = row.get(1);
    let state = key_state(row.get(2), row.get(3))?;
    open_record(&id, &bytes, || Ok(state))
}

/// Members' facets after `$1`, `$2` of them, with their keys; the record only where the facets
/// are missing (written before they were).
const FACETS_AFTER: &str = "SELECT m.member_id, m.facets, k.key, e.member_id IS NOT NULL, \
     CASE WHEN m.facets IS NULL THEN m.record END \
     FROM members m LEFT JOIN member_keys k ON k.member_id = m.member_id \
     LEFT JOIN erased_members e ON e.member_id = m.member_id \
     WHERE m.member_id COLLATE \"C\" > $1 ORDER BY m.member_id COLLATE \"C\" LIMIT $2";

fn opened_facets(row: &tokio_postgres::Row) -> Result<Option<(MemberId, Facets)>> {
    let id = parse_member(row.get(0))?;
    let state = key_state(row.get(2), row.get(3))?;
    let facets = match row.get::<_, Option<Vec<u8>>>(1) {
        Some(bytes) => open_facets(&id, &bytes, || Ok(state))?,
        None => {
            let record: Vec<u8> = row.get(4);
            open_record(&id, &record, || Ok(state))?.map(|r| Facets::of(&r.profile))
        }
    };
    Ok(facets.map(|f| (id, f)))
}

async fn member(client: &impl GenericClient, id: &MemberId) -> Result<Option<MemberRecord>> {
    let rows = query(
        client,
        &format!("{MEMBER} WHERE m.member_id = $1"),
        &[&id.to_string()],
    )
    .await?;
    match rows.first() {
        Some(row) => opened(row),
        None => Ok(None),
    }
}

async fn erased_changes(client: &impl GenericClient, id: &MemberId) -> Result<Vec<[u8; 32]>> {
    let rows = query(
        client,
        "SELECT changes FROM erased_members WHERE member_id = $1",
        &[&id.to_string()],
    )
    .await?;
    match rows.first() {
        Some(row) => {
            let bytes: Vec<u8> = row.get(0);
            match bytes.is_empty() {
                true => Ok(Vec::new()),
                false => decode(format!("e/{id}").as_bytes(), &bytes),
            }
        }
        None => Ok(Vec::new()),
    }
}

async fn meta<T: for<'de> Deserialize<'de>>(
    client: &impl GenericClient,
    key: &str,
) -> Result<Option<T>> {
    let rows = query(client, "SELECT value FROM hub_meta WHERE key = $1", &[&key]).await?;
    rows.first()
        .map(|row| decode(key.as_bytes(), row.get::<_, &[u8]>(0)))
        .transpose()
}

async fn set_meta(client: &impl GenericClient, key: &str, value: &[u8]) -> Result<()> {
    execute(
        client,
        "INSERT INTO hub_meta (key, value) VALUES ($1, $2) \
         ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
        &[&key, &value],
    )
    .await?;
    Ok(())
}

const INDEX_KEY: &str = "index_key";

impl PgHubStore {
    /// Up to `limit` members after `after` in id order, read by `sql` (`$1` the id after which,
    /// `$2` how many; the id first in each row) and opened by `open`: an erased member's row
    /// opens to nothing, so what they left short is asked for again.
    fn members_paged<T>(
        &self,
        after: Option<&MemberId>,
        limit: usize,
        sql: String,
        open: fn(&tokio_postgres::Row) -> Result<Option<T>>,
    ) -> Result<Vec<T>> {
        let mut cursor = after.map(|m| m.to_string()).unwrap_or_default();
        let mut out = Vec::new();
        while out.len() < limit {
            let asked = bound((limit - out.len()) as u64);
            let (after, sql) = (cursor.clone(), sql.clone());
            let rows = self.run(move |pool| async move {
                let client = pool.get().await.map_err(db)?;
                query(&client, &sql, &[&after, &asked]).await
            })?;
            for row in &rows {
                cursor = row.get(0);
                out.extend(open(row)?);
            }
            if (rows.len() as u64) < asked as u64 {
                break;
            }
        }
        Ok(out)
    }

    /// Connects to the database at `url` (`postgres://user:password@host:port/database`),
    /// brings its schema up to date, and makes the index key on a new one.
    pub fn open(url: &str) -> Result<Self> {
        let mut config: tokio_postgres::Config = url
            .parse()
            .map_err(|e| HubStoreError::Database(format!("the database's address: {e}")))?;
        // A hub cut off mid-transaction must not hold headquarters' lease row for long (its
        // share lock would keep a standby from taking over): the server ends a transaction
        // left idle, and a dead connection is noticed by keepalives.
        config
            .options("-c idle_in_transaction_session_timeout=15000")
            .keepalives(true)
            .keepalives_idle(std::time::Duration::from_secs(10))
            .connect_timeout(std::time::Duration::from_secs(10));
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("hub-postgres")
            .enable_all()
            .build()
            .map_err(db)?;
        let pool = |size: usize| {
            let manager = deadpool_postgres::Manager::from_config(
                config.clone(),
                tokio_postgres::NoTls,
                deadpool_postgres::ManagerConfig {
                    recycling_method: deadpool_postgres::RecyclingMethod::Fast,
                },
            );
            Pool::builder(manager)
                .max_size(size)
                .runtime(deadpool_postgres::Runtime::Tokio1)
                .create_timeout(Some(std::time::Duration::from_secs(10)))
                .wait_timeout(Some(std::time::Duration::from_secs(30)))
                .build()
                .map_err(db)
        };
        let mut store = Self {
            runtime: Some(runtime),
            pool: pool(16)?,
            lease_pool: pool(2)?,
            index: IndexKey::from_bytes([0; 32]),
            flushing: std::sync::Mutex::new(i64::MIN),
            pipe: pipe::Pipe::idle(),
            lease: Default::default(),
        };
        store.run(|pool| async move {
            let mut client = pool.get().await.map_err(db)?;
            schema::migrate(&mut client).await
        })?;
        // The BI tools' role: made when this login may; a DBA does it otherwise.
        if let Err(e) = store.run(|pool| async move {
            let client = pool.get().await.map_err(db)?;
            bi::grant_reader(&client).await
        }) {
            tracing::warn!(role = bi::READER_ROLE, error = %e, "the BI tools' read-only role was not made or granted: ask the database's administrator (README, \"Headquarters on PostgreSQL\")");
        }
        let fresh = {
            let mut bytes = [0u8; 32];
            getrandom::fill(&mut bytes)
                .map_err(|e| HubStoreError::Database(format!("random source: {e}")))?;
            bytes
        };
        let index: Vec<u8> = store.run(move |pool| async move {
            let client = pool.get().await.map_err(db)?;
            execute(
                &client,
                "INSERT INTO hub_meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING",
                &[&INDEX_KEY, &&fresh[..]],
            )
            .await?;
            let rows = query(
                &client,
                "SELECT value FROM hub_meta WHERE key = $1",
                &[&INDEX_KEY],
            )
            .await?;
            Ok(rows.first().map(|r| r.get(0)).unwrap_or_default())
        })?;
        let index: [u8; 32] = index
            .as_slice()
            .try_into()
            .map_err(|_| HubStoreError::Damaged(INDEX_KEY.into()))?;
        store.index = IndexKey::from_bytes(index);
        let count = store.appends_now()?;
        let runtime = store.runtime.as_ref().map(|r| r.handle().clone());
        let runtime = runtime.ok_or_else(|| db("the database's runtime is gone"))?;
        store.pipe = pipe::Pipe::start(
            &runtime,
            store.pool.clone(),
            store.index.clone(),
            store.lease.clone(),
            count,
        );
        Ok(store)
    }

    /// Runs `work` on this store's runtime and waits for it (from any thread, async or not),
    /// after every batch appended before it is written.
    fn run<T, F>(&self, work: impl FnOnce(Pool) -> F) -> Result<T>
    where
        T: Send + 'static,
        F: Future<Output = Result<T>> + Send + 'static,
    {
        self.pipe.settle();
        self.run_now(work)
    }

    /// `run`, not waiting for the batches appended (the lease's work, reads that look at the
    /// queue first).
    fn run_now<T, F>(&self, work: impl FnOnce(Pool) -> F) -> Result<T>
    where
        T: Send + 'static,
        F: Future<Output = Result<T>> + Send + 'static,
    {
        let runtime = self
            .runtime
            .as_ref()
            .ok_or_else(|| db("the database's runtime is gone"))?;
        let work = work(self.pool.clone());
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        runtime.spawn(async move {
            let _ = tx.send(work.await);
        });
        rx.recv()
            .map_err(|_| db("the database's task ended without an answer"))?
    }

    /// The lease this store writes under (none: it writes without one).
    fn lease(&self) -> Option<lease::Lease> {
        self.lease.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Takes headquarters' lease for `holder` for `ttl_ms` when no other hub holds it; from
    /// then on every write checks it is still this hub's.
    pub fn take_lease(&self, holder: &str, ttl_ms: u64) -> Result<Option<lease::Lease>> {
        let (holder, ttl) = (holder.to_owned(), bound(ttl_ms));
        let pool = self.lease_pool.clone();
        let taken = self.run_now(move |_| async move {
            let mut client = pool.get().await.map_err(db)?;
            lease::take(&mut client, &holder, ttl).await
        })?;
        if let Some(lease) = &taken {
            *self.lease.write().unwrap_or_else(|p| p.into_inner()) = Some(lease.clone());
            // What the hub that held it before counted.
            self.pipe.restart(|| self.appends_now())?;
            self.forget_flushed();
        }
        Ok(taken)
    }

    /// Extends this hub's lease; false when another hub has taken it over.
    pub fn renew_lease(&self, ttl_ms: u64) -> Result<bool> {
        let Some(held) = self.lease() else {
            return Ok(false);
        };
        let ttl = bound(ttl_ms);
        let pool = self.lease_pool.clone();
        self.run_now(move |_| async move {
            let client = pool.get().await.map_err(db)?;
            lease::renew(&client, &held, ttl).await
        })
    }

    /// Gives headquarters' lease up (a hub stopping cleanly): a standby takes over at once.
    pub fn release_lease(&self) -> Result<()> {
        let Some(held) = self.lease.write().unwrap_or_else(|p| p.into_inner()).take() else {
            return Ok(());
        };
        let pool = self.lease_pool.clone();
        self.run_now(move |_| async move {
            let client = pool.get().await.map_err(db)?;
            lease::release(&client, &held).await
        })
    }

    /// Who holds headquarters' lease: (holder, epoch, until, now), times in ms by the
    /// database's clock.
    pub fn lease_holder(&self) -> Result<(String, i64, i64, i64)> {
        let pool = self.lease_pool.clone();
        self.run_now(move |_| async move {
            let client = pool.get().await.map_err(db)?;
            lease::holder(&client).await
        })
    }

    /// Rows of a read-only query with owned parameters.
    fn rows(
        &self,
        sql: &'static str,
        params: Vec<Box<dyn ToSql + Send + Sync>>,
    ) -> Result<Vec<tokio_postgres::Row>> {
        self.pipe.settle();
        self.rows_now(sql, params)
    }

    /// `rows`, not waiting for the batches appended: for a row no queued batch writes.
    fn rows_now(
        &self,
        sql: &'static str,
        params: Vec<Box<dyn ToSql + Send + Sync>>,
    ) -> Result<Vec<tokio_postgres::Row>> {
        self.run_now(move |pool| async move {
            let client = pool.get().await.map_err(db)?;
            let refs: Vec<&(dyn ToSql + Sync)> = params
                .iter()
                .map(|p| p.as_ref() as &(dyn ToSql + Sync))
                .collect();
            query(&client, sql, &refs).await
        })
    }

    /// Executes one statement with owned parameters, durably (a transaction of its own, under
    /// the lease).
    fn write(&self, sql: &'static str, params: Vec<Box<dyn ToSql + Send + Sync>>) -> Result<u64> {
        self.check_running()?;
        let held = self.lease();
        self.run(move |pool| async move {
            let mut client = pool.get().await.map_err(db)?;
            let tx = durable(&mut client, held.as_ref()).await?;
            let refs: Vec<&(dyn ToSql + Sync)> = params
                .iter()
                .map(|p| p.as_ref() as &(dyn ToSql + Sync))
                .collect();
            let n = execute(&tx, sql, &refs).await?;
            tx.commit().await.map_err(db)?;
            Ok(n)
        })
    }

    /// Every search index key under `prefix`, in order.
    fn keys_under(&self, prefix: &[u8]) -> Result<Vec<Vec<u8>>> {
        let rows = match prefix_end(prefix) {
            Some(end) => self.rows(
                "SELECT key FROM member_search WHERE key >= $1 AND key < $2 ORDER BY key",
                vec![Box::new(prefix.to_vec()), Box::new(end)],
            )?,
            None => self.rows(
                "SELECT key FROM member_search WHERE key >= $1 ORDER BY key",
                vec![Box::new(prefix.to_vec())],
            )?,
        };
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }
}

impl HubStore for PgHubStore {
    fn stores(&self) -> Result<Vec<(StoreId, ChainTip, StoreStatus)>> {
        let rows = self.rows(
            "SELECT store, tip, acked_seq, log_len, last_entry_ms, last_sync_ms \
             FROM stores ORDER BY store COLLATE \"C\"",
            vec![],
        )?;
        rows.iter()
            .map(|r| {
                let store = parse_store(r.get(0))?;
                let tip = decode(format!("tip/{store}").as_bytes(), r.get::<_, &[u8]>(1))?;
                let status = StoreStatus {
                    acked_seq: unbig(r.get(2), "acked_seq")?,
                    log_len: unbig(r.get(3), "log_len")?,
                    last_entry_ms: unbig(r.get(4), "last_entry_ms")?,
                    last_sync_ms: unbig(r.get(5), "last_sync_ms")?,
                };
                Ok((store, tip, status))
            })
            .collect()
    }

    fn feed_len(&self) -> Result<u64> {
        self.run(|pool| async move {
            let client = pool.get().await.map_err(db)?;
            Ok(meta(&client, "feed_len").await?.unwrap_or(0))
        })
    }

    fn append(&self, append: Append<'_>) -> Result<()> {
        self.check_running()?;
        self.pipe.push(write::Batch::of(append, &self.index)?)
    }

    fn flush(&self) -> Result<()> {
        self.flush_appended()
    }

    fn feed(&self, from: u64, limit: usize) -> Result<Vec<(u64, FeedRecord)>> {
        let rows = self.rows(
            "SELECT position, origin, entry FROM feed WHERE position >= $1 \
             ORDER BY position LIMIT $2",
            vec![Box::new(bound(from)), Box::new(bound(limit as u64))],
        )?;
        feed_rows(&rows)
    }

    fn feed_at(&self, positions: &[u64]) -> Result<Vec<(u64, FeedRecord)>> {
        let wanted: Vec<i64> = positions.iter().map(|p| bound(*p)).collect();
        let rows = self.rows(
            "SELECT position, origin, entry FROM feed WHERE position = ANY($1) ORDER BY position",
            vec![Box::new(wanted)],
        )?;
        feed_rows(&rows)
    }

    fn entries(&self, store: &StoreId, from_seq: u64, limit: usize) -> Result<Vec<Vec<u8>>> {
        let rows = self.rows(
            "SELECT entry FROM store_log WHERE store = $1 AND seq >= $2 ORDER BY seq LIMIT $3",
            vec![
                Box::new(store.to_string()),
                Box::new(bound(from_seq)),
                Box::new(bound(limit as u64)),
            ],
        )?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    fn member(&self, id: &MemberId) -> Result<Option<MemberRecord>> {
        let id = *id;
        self.run(move |pool| async move {
            let client = pool.get().await.map_err(db)?;
            member(&client, &id).await
        })
    }

    fn member_by_phone(&self, phone: &Phone) -> Result<Option<MemberId>> {
        let blind = self.index.blind("phone", phone.as_str()).to_string();
        let rows = self.rows(
            "SELECT member_id FROM member_phones WHERE phone_blind = $1",
            vec![Box::new(blind)],
        )?;
        rows.first().map(|r| parse_member(r.get(0))).transpose()
    }

    fn members(&self) -> Result<Vec<MemberRecord>> {
        let rows = self.run(|pool| async move {
            let client = pool.get().await.map_err(db)?;
            query(
                &client,
                &format!("{MEMBER} ORDER BY m.member_id COLLATE \"C\""),
                &[],
            )
            .await
        })?;
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            out.extend(opened(row)?);
        }
        Ok(out)
    }

    fn member_count(&self) -> Result<u64> {
        let rows = self.run(move |pool| async move {
            let client = pool.get().await.map_err(db)?;
            query(
                &client,
                "SELECT count(*) FROM members m \
                 WHERE NOT EXISTS (SELECT 1 FROM erased_members e WHERE e.member_id = m.member_id)",
                &[],
            )
            .await
        })?;
        let n: i64 = rows.first().map_or(0, |r| r.get(0));
        u64::try_from(n).map_err(|_| HubStoreError::Damaged(format!("a count of {n} members")))
    }

    fn members_after(&self, after: Option<&MemberId>, limit: usize) -> Result<Vec<MemberRecord>> {
        let sql = format!(
            "{MEMBER} WHERE m.member_id COLLATE \"C\" > $1 ORDER BY m.member_id COLLATE \"C\" LIMIT $2"
        );
        self.members_paged(after, limit, sql, opened)
    }

    fn facets_after(
        &self,
        after: Option<&MemberId>,
        limit: usize,
    ) -> Result<Vec<(MemberId, Facets)>> {
        self.members_paged(after, limit, FACETS_AFTER.to_owned(), opened_facets)
    }

    fn search_members(&self, query: &str, limit: usize) -> Result<Vec<MemberRecord>> {
        protocol::member::search_index(
            query,
            limit,
            &self.index,
            |prefix| self.keys_under(prefix),
            |id| self.member(id),
            |record: &MemberRecord| &record.profile,
        )
    }

    fn search_index(&self) -> Result<BTreeSet<Vec<u8>>> {
        Ok(self
            .keys_under(protocol::member::SEARCH_INDEX)?
            .into_iter()
            .collect())
    }

    fn index_key(&self) -> IndexKey {
        self.index.clone()
    }

    fn member_key(&self, id: &MemberId) -> Result<KeyState> {
        let id = *id;
        self.run(move |pool| async move {
            let client = pool.get().await.map_err(db)?;
            member_key(&client, &id).await
        })
    }

    fn erased_changes(&self, id: &MemberId) -> Result<Vec<[u8; 32]>> {
        let id = *id;
        self.run(move |pool| async move {
            let client = pool.get().await.map_err(db)?;
            erased_changes(&client, &id).await
        })
    }

    fn wallet(&self, id: &MemberId) -> Result<Option<Wallet>> {
        let key = format!("w/{id}");
        if let Some(queued) = self.pipe.wallet(id) {
            return decode(key.as_bytes(), &queued).map(Some);
        }
        let rows = self.rows_now(
            "SELECT wallet FROM wallets WHERE member_id = $1",
            vec![Box::new(id.to_string())],
        )?;
        rows.first()
            .map(|r| decode(key.as_bytes(), r.get::<_, &[u8]>(0)))
            .transpose()
    }

    fn wallets(&self) -> Result<Vec<(MemberId, Wallet)>> {
        let rows = self.rows(
            "SELECT member_id, wallet FROM wallets ORDER BY member_id COLLATE \"C\"",
            vec![],
        )?;
        rows.iter()
            .map(|r| {
                let id = parse_member(r.get(0))?;
                let wallet = decode(format!("w/{id}").as_bytes(), r.get::<_, &[u8]>(1))?;
                Ok((id, wallet))
            })
            .collect()
    }

    fn fences(&self) -> Result<Vec<(StoreId, Fence)>> {
        let rows = self.rows(
            "SELECT store, fence FROM fences ORDER BY store COLLATE \"C\"",
            vec![],
        )?;
        rows.iter()
            .map(|r| {
                let store = parse_store(r.get(0))?;
                let fence = decode(format!("fence/{store}").as_bytes(), r.get::<_, &[u8]>(1))?;
                Ok((store, fence))
            })
            .collect()
    }

    fn view(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        if let Some(queued) = self.pipe.view(key) {
            return Ok(queued);
        }
        let rows = self.rows_now(
            "SELECT value FROM views WHERE key = $1",
            vec![Box::new(key.to_vec())],
        )?;
        Ok(rows.first().map(|r| r.get(0)))
    }

    fn views(&self, prefix: &[u8], limit: usize) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let limit = bound(limit as u64);
        let rows = match prefix_end(prefix) {
            Some(end) => self.rows(
                "SELECT key, value FROM views WHERE key >= $1 AND key < $2 ORDER BY key LIMIT $3",
                vec![Box::new(prefix.to_vec()), Box::new(end), Box::new(limit)],
            )?,
            None => self.rows(
                "SELECT key, value FROM views WHERE key >= $1 ORDER BY key LIMIT $2",
                vec![Box::new(prefix.to_vec()), Box::new(limit)],
            )?,
        };
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    fn views_between(
        &self,
        from: &[u8],
        to: &[u8],
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let rows = self.rows(
            "SELECT key, value FROM views WHERE key >= $1 AND key < $2 ORDER BY key LIMIT $3",
            vec![
                Box::new(from.to_vec()),
                Box::new(to.to_vec()),
                Box::new(bound(limit as u64)),
            ],
        )?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    fn put_fence(&self, store: &StoreId, fence: Option<&Fence>) -> Result<()> {
        match fence {
            Some(fence) => self.write(
                "INSERT INTO fences (store, fence) VALUES ($1, $2) \
                 ON CONFLICT (store) DO UPDATE SET fence = EXCLUDED.fence",
                vec![Box::new(store.to_string()), Box::new(encode(fence))],
            )?,
            None => self.write(
                "DELETE FROM fences WHERE store = $1",
                vec![Box::new(store.to_string())],
            )?,
        };
        Ok(())
    }

    fn add_follows(&self, store: &StoreId, members: &[MemberId]) -> Result<()> {
        let members: Vec<String> = members.iter().map(|m| m.to_string()).collect();
        self.write(
            "INSERT INTO follows (member_id, store) SELECT m, $2 FROM UNNEST($1::TEXT[]) AS t(m) \
             ON CONFLICT (member_id, store) DO NOTHING",
            vec![Box::new(members), Box::new(store.to_string())],
        )?;
        Ok(())
    }

    fn follows(&self) -> Result<Vec<(MemberId, StoreId)>> {
        let rows = self.rows(
            "SELECT member_id, store FROM follows ORDER BY member_id COLLATE \"C\", store COLLATE \"C\"",
            vec![],
        )?;
        rows.iter()
            .map(|r| Ok((parse_member(r.get(0))?, parse_store(r.get(1))?)))
            .collect()
    }

    fn revoke(&self, store: &StoreId, revocation: &Revocation) -> Result<()> {
        self.write(
            "INSERT INTO revocations (store, revocation) VALUES ($1, $2) \
             ON CONFLICT (store) DO UPDATE SET revocation = EXCLUDED.revocation",
            vec![Box::new(store.to_string()), Box::new(encode(revocation))],
        )?;
        Ok(())
    }

    fn revocation(&self, store: &StoreId) -> Result<Option<Revocation>> {
        let rows = self.rows(
            "SELECT revocation FROM revocations WHERE store = $1",
            vec![Box::new(store.to_string())],
        )?;
        rows.first()
            .map(|r| decode(format!("revoked/{store}").as_bytes(), r.get::<_, &[u8]>(0)))
            .transpose()
    }

    fn notices_due(&self, now_ms: u64, limit: usize) -> Result<Vec<(Notice, Delivery)>> {
        self.outbox_due(now_ms, limit)
    }

    fn set_delivery(&self, id: &str, delivery: &Delivery) -> Result<()> {
        self.outbox_set(id, delivery)
    }

    fn latest_notices(&self, limit: usize) -> Result<Vec<(Notice, Delivery)>> {
        self.outbox_latest(limit)
    }

    fn notice_counts(&self) -> Result<NoticeCounts> {
        self.outbox_counts()
    }

    fn prune_notices(&self, before_ms: u64, limit: usize) -> Result<usize> {
        self.outbox_prune(before_ms, limit)
    }

    fn queue_notices(&self, notices: &[Notice]) -> Result<usize> {
        self.outbox_queue(notices)
    }

    fn sent_on(&self, member: &MemberId, day: chrono::NaiveDate) -> Result<u32> {
        self.outbox_sent_on(member, day)
    }

    fn count_sent(&self, member: &MemberId, day: chrono::NaiveDate) -> Result<()> {
        self.outbox_count_sent(member, day)
    }

    fn derived_version(&self) -> Result<Option<u32>> {
        self.run(|pool| async move {
            let client = pool.get().await.map_err(db)?;
            meta(&client, "derived_version").await
        })
    }

    fn replace_derived(&self, derived: Derived, version: u32) -> Result<()> {
        self.check_running()?;
        let (index, held) = (self.index.clone(), self.lease());
        self.run(move |pool| async move {
            let mut client = pool.get().await.map_err(db)?;
            write::replace_derived(&mut client, &index, held.as_ref(), derived, version).await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_prefix_ends_at_the_next_key_not_under_it() {
        assert_eq!(prefix_end(b"v/a"), Some(b"v/b".to_vec()));
        assert_eq!(prefix_end(&[1, 0xff]), Some(vec![2]));
        assert_eq!(prefix_end(&[0xff, 0xff]), None);
        assert_eq!(prefix_end(b""), None);
    }
}
