//! 会员导入 on the ingest thread: each good row becomes a registration and an opening-balance
//! entry of headquarters' log, written a part at a time (one append each: a member is written
//! whole or not at all), skipping members an earlier run wrote. Each member's document is built
//! and sealed before the part reaches the ingest thread (`Prepared`): a third of writing a
//! member, done beside the thread every store's pushes wait for.

use super::*;

use crate::import::Known;
use protocol::import::{BadRow, Row};

/// A checked row with its member's profile document built and sealed under a new key: what
/// the ingest thread writes if headquarters does not hold the member yet.
pub struct Prepared {
    row: Row,
    doc: MemberDoc,
    /// The document's creation change, sealed under `key`.
    change: Vec<u8>,
    key: MemberKey,
}

impl Prepared {
    /// Builds `row`'s document as headquarters registers it at `now_ms`.
    pub fn new(row: Row, now_ms: u64) -> Result<Self, String> {
        let (doc, change) = MemberDoc::create(&StoreId::hq(), now_ms as i64, &row.profile)
            .map_err(|e| e.to_string())?;
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).map_err(|e| e.to_string())?;
        let key = MemberKey::from_bytes(bytes);
        let change = key.seal(&protocol::seal::change_aad(&row.member_id), &change);
        Ok(Prepared {
            row,
            doc,
            change,
            key,
        })
    }
}

/// What one part of an import did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Imported {
    pub imported: u64,
    /// Written by an earlier run (or earlier in this one): skipped.
    pub skipped: u64,
    /// Rows a store's registration took the phone of since the file was checked.
    pub refused: Vec<BadRow>,
}

impl Ingest {
    /// Imports `rows` (checked, their documents built) as members registered by headquarters,
    /// each placed at their home store; `import` names the file in their opening entries.
    pub fn import_members(
        &mut self,
        rows: Vec<Prepared>,
        import: &str,
        by: &StaffId,
    ) -> Result<Imported, IngestError> {
        let failed = |e: String| IngestError::Storage(e);
        let hq = StoreId::hq();
        let now = (self.now_ms)();
        let today = self.calendar.business_date(now);
        let policy = protocol::wallet::PointsPolicy::default();
        let mut out = Imported::default();
        let mut writes = Vec::with_capacity(rows.len() * 2);
        let mut keys = Vec::with_capacity(rows.len());
        let mut seq = self.tip(&hq).next_seq;
        self.built.clear();
        for prepared in rows {
            let Prepared {
                row,
                doc,
                change,
                key,
            } = prepared;
            let row = &row;
            let p = &row.profile;
            let member_id = row.member_id;
            let refuse = |message: String| BadRow {
                line: row.line,
                field: "phone",
                message,
            };
            match crate::import::known(&*self.storage, row).map_err(failed)? {
                Known::Imported => {
                    out.skipped += 1;
                    continue;
                }
                Known::Erased => {
                    out.refused.push(refuse(crate::import::erased(&member_id)));
                    continue;
                }
                Known::PhoneTaken(id) => {
                    let phone = p.phone.masked();
                    out.refused.push(refuse(format!(
                        "{phone} was registered as member {id} meanwhile"
                    )));
                    continue;
                }
                Known::New => {}
            }
            self.built.insert(member_id, (doc, p.clone()));
            let phone = p.phone.as_str();
            writes.push((
                TxId::derived(&["import", import, phone, "member"]),
                Payload::MemberRegistered { member_id, change },
            ));
            seq += 1;
            let home = &p.home_store;
            let placed = (self.statuses.contains_key(home) && !self.fences.contains_key(home))
                .then_some(home);
            let entry_id = format!("{hq}-{seq}");
            let (event, ops) =
                protocol::import::opening(row, &hq, placed, &entry_id, &policy, today, import)
                    .map_err(failed)?;
            writes.push((
                TxId::derived(&["import", import, phone, "opening"]),
                Payload::Wallet {
                    member_id,
                    event,
                    ops,
                },
            ));
            seq += 1;
            keys.push((member_id, key));
            out.imported += 1;
        }
        let written = self.write_hq_keyed(writes, keys, by);
        // What the directory did not take (a failed write) is not left for a later batch.
        self.built.clear();
        written?;
        Ok(out)
    }
}
