//! The rows behind the `bi` schema's views (`hub/migrations/0002_bi.sql`), written in the same
//! transaction as the batch they come from: a sale or return per entry of a store's log (as the
//! 报表 cells count them, `protocol::reports`), a member as a report may show them, a wallet's
//! balances, and settlement's day cells (`0005_bi_settlement.sql`). Built before the batch is
//! queued, so an amount the columns cannot hold is refused then; a batch's sales are copied
//! once (a batch is written once), the other rows keyed by what they come from.

use deadpool_postgres::GenericClient;
use protocol::entry::{Entry, Payload};
use protocol::wallet::Counter;
use rust_decimal::Decimal;

use super::{big, execute};
use crate::storage::*;

/// The largest amount a `NUMERIC(18, 2)` column holds, in fen.
const FEN_MAX: u64 = 10u64.pow(18) - 1;

/// Fen as yuan, refused (before anything is queued) beyond what the column holds: a batch the
/// database would refuse every time must not reach it.
fn yuan(fen: i64) -> Result<Decimal> {
    match fen.unsigned_abs() <= FEN_MAX {
        true => Ok(Decimal::new(fen, 2)),
        false => Err(HubStoreError::Damaged(format!(
            "an amount of {fen} fen is beyond what headquarters' database holds"
        ))),
    }
}

fn yuan_units(fen: u64) -> Result<Decimal> {
    match fen <= FEN_MAX {
        true => Ok(Decimal::from(fen) / Decimal::ONE_HUNDRED),
        false => Err(HubStoreError::Damaged(format!(
            "an amount of {fen} fen is beyond what headquarters' database holds"
        ))),
    }
}

/// A sale or return as one row of `bi_sales`.
pub(super) struct SaleRow {
    seq: i64,
    sale_id: String,
    kind: &'static str,
    business_date: chrono::NaiveDate,
    at_ms: i64,
    member_id: Option<String>,
    staff: String,
    gross: Decimal,
    discount: Decimal,
    net: Decimal,
    returned: Decimal,
    points: i64,
}

impl SaleRow {
    /// The row of an entry that is a sale or a return (none for any other).
    pub(super) fn of(entry: &Entry) -> Result<Option<Self>> {
        let sold = |sale_id: String, member: Option<MemberId>, gross: i64, net: i64| {
            (sale_id, "sale", member, gross, net, 0)
        };
        let (sale_id, kind, member, gross, net, returned) = match &entry.payload {
            Payload::Sale { sale: s, .. } | Payload::QuickSale(s) => {
                sold(s.sale_id.to_string(), s.member_id, s.amount.0, s.amount.0)
            }
            Payload::Checkout { sale: s, .. } => {
                sold(s.sale_id.to_string(), s.member_id, s.subtotal.0, s.due.0)
            }
            Payload::Return {
                sale,
                member_id,
                amount,
                ..
            } => (sale.to_string(), "return", *member_id, 0, 0, amount.0),
            Payload::ItemReturn { ret, .. } => (
                ret.sale_id.to_string(),
                "return",
                ret.member_id,
                0,
                0,
                ret.amount.0,
            ),
            _ => return Ok(None),
        };
        Ok(Some(Self {
            seq: big(entry.seq)?,
            sale_id,
            kind,
            business_date: entry.business_date,
            at_ms: super::bound(entry.hlc.wall_ms),
            member_id: member.map(|m| m.to_string()),
            staff: entry.staff.to_string(),
            gross: yuan(gross)?,
            discount: yuan(gross.saturating_sub(net))?,
            net: yuan(net)?,
            returned: yuan(returned)?,
            points: protocol::reports::member_points(&entry.payload),
        }))
    }
}

/// The rows of `store`'s entries that are sales or returns.
pub(super) fn sales_of(entries: &[&[u8]]) -> Result<Vec<SaleRow>> {
    let mut rows = Vec::new();
    for bytes in entries {
        let entry = Entry::decode(bytes)
            .map_err(|e| HubStoreError::Damaged(format!("an entry of a batch: {e}")))?;
        rows.extend(SaleRow::of(&entry)?);
    }
    Ok(rows)
}

/// A batch's sales and returns, copied in binary (new rows only, like the log's).
pub(super) async fn copy_sales(
    tx: &deadpool_postgres::Transaction<'_>,
    store: &str,
    rows: &[SaleRow],
) -> Result<()> {
    use tokio_postgres::types::Type;
    if rows.is_empty() {
        return Ok(());
    }
    let sink = tx
        .copy_in(
            "COPY bi_sales (store, seq, sale_id, kind, business_date, at_ms, member_id, staff, \
             gross, discount, net, returned, points) FROM STDIN BINARY",
        )
        .await
        .map_err(super::pg)?;
    let types = [
        Type::TEXT,
        Type::INT8,
        Type::TEXT,
        Type::TEXT,
        Type::DATE,
        Type::INT8,
        Type::TEXT,
        Type::TEXT,
        Type::NUMERIC,
        Type::NUMERIC,
        Type::NUMERIC,
        Type::NUMERIC,
        Type::INT8,
    ];
    let writer = tokio_postgres::binary_copy::BinaryCopyInWriter::new(sink, &types);
    let mut writer = std::pin::pin!(writer);
    for r in rows {
        writer
            .as_mut()
            .write(&[
                &store,
                &r.seq,
                &r.sale_id,
                &r.kind,
                &r.business_date,
                &r.at_ms,
                &r.member_id,
                &r.staff,
                &r.gross,
                &r.discount,
                &r.net,
                &r.returned,
                &r.points,
            ])
            .await
            .map_err(super::pg)?;
    }
    writer.finish().await.map_err(super::pg)?;
    Ok(())
}

/// Members as a report may show them (no name, phone or birthday), replacing their rows.
pub(super) async fn put_members(
    client: &impl GenericClient,
    members: &[MemberRecord],
) -> Result<()> {
    if members.is_empty() {
        return Ok(());
    }
    let mut by_id = std::collections::BTreeMap::new();
    for m in members {
        by_id.insert(m.member_id, &m.profile);
    }
    let (mut ids, mut phones, mut homes, mut tiers, mut joined, mut cards, mut consent) =
        (vec![], vec![], vec![], vec![], vec![], vec![], vec![]);
    for (id, p) in by_id {
        ids.push(id.to_string());
        phones.push(p.phone.masked());
        homes.push(p.home_store.to_string());
        tiers.push(p.tier.clone());
        joined.push(p.join_date);
        cards.push(p.card_status.as_str().to_owned());
        consent.push(p.marketing_consent);
    }
    execute(
        client,
        "INSERT INTO bi_members (member_id, phone_masked, home_store, tier, join_date, \
         card_status, marketing_consent) \
         SELECT * FROM UNNEST($1::TEXT[], $2::TEXT[], $3::TEXT[], $4::TEXT[], $5::DATE[], \
         $6::TEXT[], $7::BOOLEAN[]) ON CONFLICT (member_id) DO UPDATE SET \
         phone_masked = EXCLUDED.phone_masked, home_store = EXCLUDED.home_store, \
         tier = EXCLUDED.tier, join_date = EXCLUDED.join_date, \
         card_status = EXCLUDED.card_status, marketing_consent = EXCLUDED.marketing_consent",
        &[&ids, &phones, &homes, &tiers, &joined, &cards, &consent],
    )
    .await?;
    Ok(())
}

/// Members erased (被遗忘): gone from the reports too.
pub(super) async fn forget_members(client: &impl GenericClient, ids: &[String]) -> Result<()> {
    if !ids.is_empty() {
        execute(
            client,
            "DELETE FROM bi_members WHERE member_id = ANY($1::TEXT[])",
            &[&ids],
        )
        .await?;
    }
    Ok(())
}

/// A wallet's balances as a row of `bi_wallets`.
pub(super) struct WalletRow {
    id: String,
    principal: Decimal,
    bonus: Decimal,
    points: i64,
    owed: Decimal,
}

/// The rows of `wallets`, each member's last.
pub(super) fn wallet_rows(wallets: &[(MemberId, Wallet)]) -> Result<Vec<WalletRow>> {
    let mut by_id = std::collections::BTreeMap::new();
    for (id, w) in wallets {
        by_id.insert(*id, w);
    }
    by_id
        .into_iter()
        .map(|(id, w)| {
            let points: u64 = w
                .counters
                .iter()
                .filter(|(c, _)| matches!(c, Counter::Points { .. }))
                .map(|(c, _)| w.balance(c))
                .fold(0u64, u64::saturating_add);
            Ok(WalletRow {
                id: id.to_string(),
                principal: yuan_units(w.balance(&Counter::Principal))?,
                bonus: yuan_units(w.balance(&Counter::Bonus))?,
                points: big(points)?,
                owed: yuan_units(w.owed_total())?,
            })
        })
        .collect()
}

/// Each wallet's balances, replacing their rows.
pub(super) async fn put_wallets(client: &impl GenericClient, rows: &[WalletRow]) -> Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let ids: Vec<&str> = rows.iter().map(|r| r.id.as_str()).collect();
    let principal: Vec<Decimal> = rows.iter().map(|r| r.principal).collect();
    let bonus: Vec<Decimal> = rows.iter().map(|r| r.bonus).collect();
    let points: Vec<i64> = rows.iter().map(|r| r.points).collect();
    let owed: Vec<Decimal> = rows.iter().map(|r| r.owed).collect();
    execute(
        client,
        "INSERT INTO bi_wallets (member_id, principal, bonus, points, owed) \
         SELECT * FROM UNNEST($1::TEXT[], $2::NUMERIC[], $3::NUMERIC[], $4::BIGINT[], \
         $5::NUMERIC[]) ON CONFLICT (member_id) DO UPDATE SET principal = EXCLUDED.principal, \
         bonus = EXCLUDED.bonus, points = EXCLUDED.points, owed = EXCLUDED.owed",
        &[&ids, &principal, &bonus, &points, &owed],
    )
    .await?;
    Ok(())
}

/// The role BI tools' logins are granted: it may read the `bi` schema and nothing else. Made
/// when the hub's login may make roles; otherwise the chain's DBA runs the same statements.
pub(super) const READER_ROLE: &str = "hub_bi";

pub(super) async fn grant_reader(client: &impl GenericClient) -> Result<()> {
    let exists = super::query(
        client,
        "SELECT 1 FROM pg_roles WHERE rolname = $1",
        &[&READER_ROLE],
    )
    .await?;
    if exists.is_empty() {
        client
            .batch_execute(&format!("CREATE ROLE {READER_ROLE} NOLOGIN"))
            .await
            .map_err(super::pg)?;
    }
    client
        .batch_execute(&format!(
            "GRANT USAGE ON SCHEMA bi TO {READER_ROLE}; \
             GRANT SELECT ON ALL TABLES IN SCHEMA bi TO {READER_ROLE}"
        ))
        .await
        .map_err(super::pg)
}

/// A settlement cell as a row of `bi_settlement`.
pub(super) struct SettlementRow {
    date: chrono::NaiveDate,
    payer: String,
    payee: String,
    principal: Decimal,
    bonus: Decimal,
}

/// The settlement cells among view writes (`protocol::settlement::cells`), as rows.
pub(super) fn settlement_of<'a>(
    views: impl Iterator<Item = (&'a Vec<u8>, Option<&'a Vec<u8>>)>,
) -> Result<Vec<SettlementRow>> {
    let mut rows = Vec::new();
    for (key, value) in views {
        let Some((date, payer, payee)) = protocol::settlement::cells::parse_day_key(key) else {
            continue;
        };
        // A cell only grows: never deleted.
        let Some(value) = value else { continue };
        let owed: protocol::settlement::Owed = decode(key, value)?;
        rows.push(SettlementRow {
            date,
            payer: payer.to_string(),
            payee: payee.to_string(),
            principal: yuan_units(owed.principal)?,
            bonus: yuan_units(owed.bonus)?,
        });
    }
    Ok(rows)
}

pub(super) async fn put_settlement(
    client: &impl GenericClient,
    rows: &[SettlementRow],
) -> Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let mut dates = Vec::with_capacity(rows.len());
    let (mut payers, mut payees) = (Vec::with_capacity(rows.len()), Vec::new());
    let (mut principals, mut bonuses) = (Vec::with_capacity(rows.len()), Vec::new());
    for r in rows {
        dates.push(r.date);
        payers.push(r.payer.as_str());
        payees.push(r.payee.as_str());
        principals.push(r.principal);
        bonuses.push(r.bonus);
    }
    execute(
        client,
        "INSERT INTO bi_settlement (business_date, payer, payee, principal, bonus) \
         SELECT * FROM UNNEST($1::DATE[], $2::TEXT[], $3::TEXT[], $4::NUMERIC[], $5::NUMERIC[]) \
         ON CONFLICT (business_date, payer, payee) DO UPDATE SET \
         principal = EXCLUDED.principal, bonus = EXCLUDED.bonus",
        &[&dates, &payers, &payees, &principals, &bonuses],
    )
    .await?;
    Ok(())
}
