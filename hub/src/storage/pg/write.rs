//! Headquarters' writes on PostgreSQL: a group of stores' batches as one transaction (each what
//! the sled store writes as one `sled::Batch`), and the derived state replaced whole.

use std::collections::{BTreeMap, HashMap};

use deadpool_postgres::{GenericClient, Transaction};
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::Type;

use super::{db, execute, member, member_key};
use crate::storage::*;

/// An [`Append`] owned (it crosses to the store's runtime), with every keyed write reduced to
/// its last (as a sled batch applies them in order).
pub(super) struct Batch {
    store: String,
    entries: BTreeMap<u64, Vec<u8>>,
    tip: Vec<u8>,
    status: StoreStatus,
    feed: BTreeMap<u64, FeedRecord>,
    feed_len: u64,
    members: Vec<MemberRecord>,
    phones: BTreeMap<String, Option<MemberId>>,
    wallets: BTreeMap<MemberId, Vec<u8>>,
    views: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    keys: Vec<(MemberId, MemberKey)>,
    erased: Vec<MemberId>,
    notices: Vec<Notice>,
    /// For the `bi` schema: the batch's sales and returns, and its wallets as balances.
    sales: Vec<super::bi::SaleRow>,
    wallet_rows: Vec<super::bi::WalletRow>,
    settlement: Vec<super::bi::SettlementRow>,
}

impl Batch {
    pub(super) fn of(a: Append<'_>, index: &IndexKey) -> Result<Self> {
        let entries: Vec<&[u8]> = a.entries.iter().map(|(_, e)| e.as_slice()).collect();
        // What the database would refuse every time is refused here, before the batch is queued.
        for (seq, _) in &a.entries {
            super::big(*seq)?;
        }
        // Each key's last write (the settlement rows too: one row per key in a statement).
        let feed = a.feed_records()?;
        let views: BTreeMap<Vec<u8>, Option<Vec<u8>>> = a.views.into_iter().collect();
        Ok(Self {
            sales: super::bi::sales_of(&entries)?,
            settlement: super::bi::settlement_of(views.iter().map(|(k, v)| (k, v.as_ref())))?,
            wallet_rows: super::bi::wallet_rows(&a.wallets)?,
            store: a.store.to_string(),
            entries: a.entries.into_iter().collect(),
            tip: encode(&a.tip),
            status: a.status,
            feed: feed.into_iter().collect(),
            feed_len: a.feed_len,
            members: a.members,
            phones: a
                .phones
                .into_iter()
                .map(|(phone, member)| (index.blind("phone", phone.as_str()).to_string(), member))
                .collect(),
            wallets: a
                .wallets
                .iter()
                .map(|(member, wallet)| (*member, encode(wallet)))
                .collect(),
            views,
            keys: a.keys,
            erased: a.erased,
            notices: a.notices,
        })
    }

    /// The batch's view writes and wallets (encoded), for reads while it is on its way.
    pub(super) fn views(&self) -> &BTreeMap<Vec<u8>, Option<Vec<u8>>> {
        &self.views
    }

    pub(super) fn wallets(&self) -> &BTreeMap<MemberId, Vec<u8>> {
        &self.wallets
    }

    /// Writes the batch inside `tx` as the one after `expected`. The writes that depend on
    /// nothing before them go out together (tokio-postgres pipelines statements polled at once:
    /// one round trip); the directory's (keys, then records sealed under them, erasures,
    /// phones) follow in order.
    pub(super) async fn write_in(
        &self,
        tx: &Transaction<'_>,
        index: &IndexKey,
        expected: i64,
    ) -> Result<()> {
        let feed_len = encode(&self.feed_len);
        tokio::try_join!(
            count_append(tx, expected),
            put_status(tx, &self.store, &self.tip, &self.status),
            put_feed(tx, &self.feed),
            super::set_meta(tx, "feed_len", &feed_len),
            put_wallets(tx, &self.wallets),
            put_views(tx, self.views.iter()),
            async { super::outbox::queue_in(tx, &self.notices).await.map(|_| ()) },
            super::bi::put_wallets(tx, &self.wallet_rows),
            super::bi::put_settlement(tx, &self.settlement),
        )?;
        // The bulk of a batch, copied (a COPY holds the connection: after the rest).
        copy_entries(tx, &self.store, &self.entries).await?;
        super::bi::copy_sales(tx, &self.store, &self.sales).await?;
        put_directory(
            tx,
            index,
            &self.keys,
            &self.members,
            &self.erased,
            &self.phones,
        )
        .await?;
        super::bi::put_members(tx, &self.members).await?;
        let erased: Vec<String> = self.erased.iter().map(|m| m.to_string()).collect();
        super::bi::forget_members(tx, &erased).await
    }
}

/// Writes `batches` (each with the count it follows) as one transaction under `lease`,
/// committed without waiting for its WAL (`flush` does: see the module's note).
pub(super) async fn write_group(
    client: &mut deadpool_postgres::Client,
    index: &IndexKey,
    lease: Option<&super::lease::Lease>,
    batches: &[(i64, Batch)],
) -> Result<()> {
    let tx = client.transaction().await.map_err(super::pg)?;
    tokio::try_join!(
        async {
            tx.batch_execute("SET LOCAL synchronous_commit TO OFF")
                .await
                .map_err(db)
        },
        super::lease::guard(&tx, lease),
    )?;
    for (expected, batch) in batches {
        batch.write_in(&tx, index, *expected).await?;
    }
    tx.commit().await.map_err(super::pg)
}

/// Counts the batch as the one after `expected` (`flush.rs`).
async fn count_append(client: &impl GenericClient, expected: i64) -> Result<()> {
    let counted = execute(
        client,
        "UPDATE hub_appends SET n = n + 1 WHERE id = 1 AND n = $1",
        &[&expected],
    )
    .await?;
    match counted {
        1 => Ok(()),
        _ => Err(HubStoreError::Stopped(format!(
            "the database's count of batches appended is not this hub's {expected}"
        ))),
    }
}

/// The batch's log entries, copied in binary (new rows only: a batch is written once, its
/// count says so, so a row already there is a fault and fails the batch).
async fn copy_entries(
    tx: &Transaction<'_>,
    store: &str,
    entries: &BTreeMap<u64, Vec<u8>>,
) -> Result<()> {
    if entries.is_empty() {
        return Ok(());
    }
    let sink = tx
        .copy_in("COPY store_log (store, seq, entry) FROM STDIN BINARY")
        .await
        .map_err(super::pg)?;
    let writer = BinaryCopyInWriter::new(sink, &[Type::TEXT, Type::INT8, Type::BYTEA]);
    let mut writer = std::pin::pin!(writer);
    for (seq, entry) in entries {
        writer
            .as_mut()
            .write(&[&store, &super::big(*seq)?, &entry.as_slice()])
            .await
            .map_err(super::pg)?;
    }
    writer.finish().await.map_err(super::pg)?;
    Ok(())
}

async fn put_status(
    client: &impl GenericClient,
    store: &str,
    tip: &[u8],
    s: &StoreStatus,
) -> Result<()> {
    execute(
        client,
        "INSERT INTO stores (store, tip, acked_seq, log_len, last_entry_ms, last_sync_ms) \
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (store) DO UPDATE SET \
         tip = EXCLUDED.tip, acked_seq = EXCLUDED.acked_seq, log_len = EXCLUDED.log_len, \
         last_entry_ms = EXCLUDED.last_entry_ms, last_sync_ms = EXCLUDED.last_sync_ms",
        &[
            &store,
            &tip,
            &super::big(s.acked_seq)?,
            &super::big(s.log_len)?,
            &super::big(s.last_entry_ms)?,
            &super::big(s.last_sync_ms)?,
        ],
    )
    .await?;
    Ok(())
}

async fn put_feed(client: &impl GenericClient, feed: &BTreeMap<u64, FeedRecord>) -> Result<()> {
    if feed.is_empty() {
        return Ok(());
    }
    let mut positions = Vec::with_capacity(feed.len());
    let mut origins = Vec::with_capacity(feed.len());
    let mut entries = Vec::with_capacity(feed.len());
    for (position, record) in feed {
        positions.push(super::big(*position)?);
        origins.push(record.origin.to_string());
        entries.push(record.entry.as_slice());
    }
    execute(
        client,
        "INSERT INTO feed (position, origin, entry) \
         SELECT * FROM UNNEST($1::BIGINT[], $2::TEXT[], $3::BYTEA[]) \
         ON CONFLICT (position) DO UPDATE SET origin = EXCLUDED.origin, \
         entry = EXCLUDED.entry",
        &[&positions, &origins, &entries],
    )
    .await?;
    Ok(())
}

async fn put_wallets(
    client: &impl GenericClient,
    wallets: &BTreeMap<MemberId, Vec<u8>>,
) -> Result<()> {
    if wallets.is_empty() {
        return Ok(());
    }
    let (ids, wallets): (Vec<String>, Vec<&[u8]>) = wallets
        .iter()
        .map(|(id, w)| (id.to_string(), w.as_slice()))
        .unzip();
    execute(
        client,
        "INSERT INTO wallets (member_id, wallet) \
         SELECT * FROM UNNEST($1::TEXT[], $2::BYTEA[]) \
         ON CONFLICT (member_id) DO UPDATE SET wallet = EXCLUDED.wallet",
        &[&ids, &wallets],
    )
    .await?;
    Ok(())
}

/// The member directory's writes, in order: keys first (the records are sealed under them; an
/// erased member's stays gone), each member's record and search index records (moved from what
/// they were, stored or earlier in the batch, to what they are), erasures, the phone index.
async fn put_directory(
    tx: &Transaction<'_>,
    index: &IndexKey,
    new_keys: &[(MemberId, MemberKey)],
    members: &[MemberRecord],
    erased: &[MemberId],
    phones: &BTreeMap<String, Option<MemberId>>,
) -> Result<()> {
    let mut keys: HashMap<MemberId, MemberKey> = HashMap::new();
    for (id, key) in new_keys {
        if member_key(tx, id).await? == KeyState::Unknown && !erased.contains(id) {
            execute(
                tx,
                "INSERT INTO member_keys (member_id, key) VALUES ($1, $2) \
                 ON CONFLICT (member_id) DO NOTHING",
                &[&id.to_string(), &&key.as_bytes()[..]],
            )
            .await?;
            keys.insert(*id, key.clone());
        }
    }
    let mut filed: HashMap<MemberId, BTreeSet<Vec<u8>>> = HashMap::new();
    for record in members {
        let id = record.member_id;
        let old = filed_keys(tx, &mut filed, &id, index).await?;
        let new = record.profile.search_keys(&id, index);
        let gone: Vec<Vec<u8>> = old.difference(&new).cloned().collect();
        let added: Vec<Vec<u8>> = new.difference(&old).cloned().collect();
        unfile(tx, gone).await?;
        if !added.is_empty() {
            execute(
                tx,
                "INSERT INTO member_search (key) SELECT * FROM UNNEST($1::BYTEA[]) \
                 ON CONFLICT (key) DO NOTHING",
                &[&added],
            )
            .await?;
        }
        filed.insert(id, new);
        let key = match keys.get(&id) {
            Some(k) => Some(k.clone()),
            None => held_key(tx, &id).await?,
        };
        execute(
            tx,
            "INSERT INTO members (member_id, record, facets) VALUES ($1, $2, $3) \
             ON CONFLICT (member_id) DO UPDATE SET record = EXCLUDED.record, \
             facets = EXCLUDED.facets",
            &[
                &id.to_string(),
                &seal_record(key.as_ref(), record),
                &seal_facets(key.as_ref(), &id, &record.profile),
            ],
        )
        .await?;
    }
    for id in erased {
        let gone: Vec<Vec<u8>> = filed_keys(tx, &mut filed, id, index)
            .await?
            .into_iter()
            .collect();
        unfile(tx, gone).await?;
        let mut hashes = super::erased_changes(tx, id).await?;
        if let Some(record) = member(tx, id).await? {
            let doc = protocol::member::MemberDoc::load(&record.doc)
                .map_err(|e| HubStoreError::Damaged(format!("m/{id}: {e}")))?;
            hashes.extend(doc.clone().change_hashes());
        }
        let text = id.to_string();
        execute(tx, "DELETE FROM members WHERE member_id = $1", &[&text]).await?;
        execute(tx, "DELETE FROM member_keys WHERE member_id = $1", &[&text]).await?;
        execute(
            tx,
            "INSERT INTO erased_members (member_id, changes) VALUES ($1, $2) \
             ON CONFLICT (member_id) DO UPDATE SET changes = EXCLUDED.changes",
            &[&text, &encode(&hashes)],
        )
        .await?;
    }
    for (blind, member) in phones {
        match member {
            Some(id) => {
                execute(
                    tx,
                    "INSERT INTO member_phones (phone_blind, member_id) VALUES ($1, $2) \
                 ON CONFLICT (phone_blind) DO UPDATE SET member_id = EXCLUDED.member_id",
                    &[blind, &id.to_string()],
                )
                .await?
            }
            None => {
                execute(
                    tx,
                    "DELETE FROM member_phones WHERE phone_blind = $1",
                    &[blind],
                )
                .await?
            }
        };
    }
    Ok(())
}

async fn held_key(client: &impl GenericClient, id: &MemberId) -> Result<Option<MemberKey>> {
    Ok(match member_key(client, id).await? {
        KeyState::Held(k) => Some(k),
        _ => None,
    })
}

/// The search index records member `id` is filed under: as written earlier in the batch being
/// built (taken out of `filed`), else as stored.
async fn filed_keys(
    client: &impl GenericClient,
    filed: &mut HashMap<MemberId, BTreeSet<Vec<u8>>>,
    id: &MemberId,
    index: &IndexKey,
) -> Result<BTreeSet<Vec<u8>>> {
    Ok(match filed.remove(id) {
        Some(keys) => keys,
        None => member(client, id)
            .await?
            .map(|old| old.profile.search_keys(id, index))
            .unwrap_or_default(),
    })
}

async fn unfile(client: &impl GenericClient, gone: Vec<Vec<u8>>) -> Result<()> {
    if !gone.is_empty() {
        execute(
            client,
            "DELETE FROM member_search WHERE key = ANY($1::BYTEA[])",
            &[&gone],
        )
        .await?;
    }
    Ok(())
}

/// View writes, each key's last: set or deleted.
async fn put_views<'a>(
    client: &impl GenericClient,
    views: impl Iterator<Item = (&'a Vec<u8>, &'a Option<Vec<u8>>)>,
) -> Result<()> {
    let mut set_keys: Vec<&[u8]> = Vec::new();
    let mut set_values: Vec<&[u8]> = Vec::new();
    let mut gone: Vec<&[u8]> = Vec::new();
    for (key, value) in views {
        match value {
            Some(value) => {
                set_keys.push(key);
                set_values.push(value);
            }
            None => gone.push(key),
        }
    }
    if !set_keys.is_empty() {
        execute(
            client,
            "INSERT INTO views (key, value) SELECT * FROM UNNEST($1::BYTEA[], $2::BYTEA[]) \
             ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
            &[&set_keys, &set_values],
        )
        .await?;
    }
    if !gone.is_empty() {
        execute(
            client,
            "DELETE FROM views WHERE key = ANY($1::BYTEA[])",
            &[&gone],
        )
        .await?;
    }
    Ok(())
}

/// Rows written per statement when the derived state is replaced.
const CHUNK: usize = 5_000;

/// Replaces all derived state (members, phones, the search index, wallets, views) with
/// `derived`, at `version`, as one transaction, durably.
pub(super) async fn replace_derived(
    client: &mut deadpool_postgres::Client,
    index: &IndexKey,
    lease: Option<&super::lease::Lease>,
    derived: Derived,
    version: u32,
) -> Result<()> {
    let tx = super::durable(client, lease).await?;
    for table in [
        "members",
        "member_phones",
        "member_search",
        "wallets",
        "views",
        "bi_members",
        "bi_wallets",
        "bi_settlement",
    ] {
        tx.batch_execute(&format!("DELETE FROM {table}"))
            .await
            .map_err(db)?;
    }
    let held = held_keys(&tx).await?;
    for chunk in derived.members.chunks(CHUNK) {
        let mut ids = Vec::with_capacity(chunk.len());
        let mut records = Vec::with_capacity(chunk.len());
        let mut facets = Vec::with_capacity(chunk.len());
        let mut search = Vec::new();
        for record in chunk {
            let key = held.get(&record.member_id);
            ids.push(record.member_id.to_string());
            records.push(seal_record(key, record));
            facets.push(seal_facets(key, &record.member_id, &record.profile));
            search.extend(record.profile.search_keys(&record.member_id, index));
        }
        execute(
            &tx,
            "INSERT INTO members (member_id, record, facets) \
             SELECT * FROM UNNEST($1::TEXT[], $2::BYTEA[], $3::BYTEA[])",
            &[&ids, &records, &facets],
        )
        .await?;
        execute(
            &tx,
            "INSERT INTO member_search (key) SELECT * FROM UNNEST($1::BYTEA[]) \
             ON CONFLICT (key) DO NOTHING",
            &[&search],
        )
        .await?;
        super::bi::put_members(&tx, chunk).await?;
    }
    let phones: BTreeMap<String, String> = derived
        .phones
        .iter()
        .map(|(phone, id)| {
            (
                index.blind("phone", phone.as_str()).to_string(),
                id.to_string(),
            )
        })
        .collect();
    let phones: Vec<(String, String)> = phones.into_iter().collect();
    for chunk in phones.chunks(CHUNK) {
        let (blinds, ids): (Vec<String>, Vec<String>) = chunk.iter().cloned().unzip();
        execute(
            &tx,
            "INSERT INTO member_phones (phone_blind, member_id) \
             SELECT * FROM UNNEST($1::TEXT[], $2::TEXT[])",
            &[&blinds, &ids],
        )
        .await?;
    }
    for chunk in derived.wallets.chunks(CHUNK) {
        let (ids, wallets): (Vec<String>, Vec<Vec<u8>>) = chunk
            .iter()
            .map(|(id, w)| (id.to_string(), encode(w)))
            .unzip();
        execute(
            &tx,
            "INSERT INTO wallets (member_id, wallet) SELECT * FROM UNNEST($1::TEXT[], $2::BYTEA[]) \
             ON CONFLICT (member_id) DO UPDATE SET wallet = EXCLUDED.wallet",
            &[&ids, &wallets],
        )
        .await?;
        super::bi::put_wallets(&tx, &super::bi::wallet_rows(chunk)?).await?;
    }
    for chunk in derived.views.chunks(CHUNK) {
        let cells = super::bi::settlement_of(chunk.iter().map(|(k, v)| (k, Some(v))))?;
        super::bi::put_settlement(&tx, &cells).await?;
        let views: Vec<(Vec<u8>, Option<Vec<u8>>)> = chunk
            .iter()
            .map(|(k, v)| (k.clone(), Some(v.clone())))
            .collect();
        put_views(&tx, views.iter().map(|(k, v)| (k, v))).await?;
    }
    super::set_meta(&tx, "derived_version", &encode(&version)).await?;
    tx.commit().await.map_err(db)
}

async fn held_keys(tx: &Transaction<'_>) -> Result<HashMap<MemberId, MemberKey>> {
    let rows = super::query(tx, "SELECT member_id, key FROM member_keys", &[]).await?;
    let mut out = HashMap::with_capacity(rows.len());
    for row in rows {
        let id = super::parse_member(row.get(0))?;
        if let KeyState::Held(key) = super::key_state(Some(row.get(1)), false)? {
            out.insert(id, key);
        }
    }
    Ok(out)
}
