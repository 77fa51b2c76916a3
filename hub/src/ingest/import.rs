//! 会员导入 on the ingest thread: each good row becomes a registration and an opening-balance
//! entry of headquarters' log, written a part at a time (one append each: a member is written
//! whole or not at all), skipping members an earlier run wrote.

use super::*;

use crate::import::Known;
use protocol::import::{BadRow, Row};

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
    /// Imports `rows` (already checked) as members registered by headquarters, each placed at
    /// their home store; `import` names the file in their opening entries.
    pub fn import_members(
        &mut self,
        rows: &[Row],
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
        for row in rows {
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
            let (doc, change) =
                MemberDoc::create(&hq, now as i64, p).map_err(|e| failed(e.to_string()))?;
            self.built.insert(member_id, (doc, p.clone()));
            let mut bytes = [0u8; 32];
            getrandom::fill(&mut bytes).map_err(|e| failed(e.to_string()))?;
            let key = MemberKey::from_bytes(bytes);
            let change = key.seal(&protocol::seal::change_aad(&member_id), &change);
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
