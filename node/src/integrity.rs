//! The check a node makes of its store before it serves (and `node verify` before its rebuild):
//! every pair read once, so sled checks the CRC of every page it holds, and every log's hash
//! chain, so damage is found at start with a clear refusal, not halfway through a day of sales.
//!
//! It does not replay the views (`views::rebuild`, what `node verify` adds): that is the
//! expensive part, and views are derived from the log in the same atomic batch anyway.

use protocol::StoreId;
use protocol::entry::{ChainTip, Entry};
use serde::Serialize;

use crate::store::{SledStore, StoreError};
use crate::views::keys;

/// What the check read.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Checked {
    /// Every key/value pair in the store.
    pub pairs: u64,
    pub bytes: u64,
    /// Log entries whose hash chain was followed, and the number of logs they belong to.
    pub entries: u64,
    pub origins: u64,
}

/// Reads every pair of `store` and follows every log's hash chain from its first entry; any
/// damage is `StoreError::DamagedStore`, naming the directory and what to do.
pub fn check(store: &SledStore) -> Result<Checked, StoreError> {
    let mut checked = Checked::default();
    let mut chain: Option<(StoreId, ChainTip)> = None;
    store.visit_all(|key, value| {
        checked.pairs += 1;
        checked.bytes += (key.len() + value.len()) as u64;
        if key.starts_with(keys::LOG) {
            let (origin, tip) = link(chain.take(), key, value)?;
            if tip.next_seq == 2 {
                checked.origins += 1;
            }
            checked.entries += 1;
            chain = Some((origin, tip));
        }
        Ok(())
    })?;
    Ok(checked)
}

/// The chain `tip` (of the log read so far) extended by the log record `key` → `value`. Logs
/// are read in key order, `log/<origin>\0<seq>`, so each origin's entries come together and in
/// order; the first of each must be its seq 1.
fn link(
    tip: Option<(StoreId, ChainTip)>,
    key: &[u8],
    value: &[u8],
) -> Result<(StoreId, ChainTip), String> {
    let shown = || String::from_utf8_lossy(key).into_owned();
    let entry = Entry::decode(value)
        .map_err(|e| format!("log record {} does not decode ({e})", shown()))?;
    if key != keys::log(&entry.origin, entry.seq) {
        return Err(format!(
            "log record {} holds entry {} of {}",
            shown(),
            entry.seq,
            entry.origin
        ));
    }
    let current = match tip {
        Some((origin, tip)) if origin == entry.origin => tip,
        _ => ChainTip::GENESIS,
    };
    let next = current.extend(&entry.origin, &entry).map_err(|e| {
        format!(
            "the log of {} breaks at entry {} ({e})",
            entry.origin, entry.seq
        )
    })?;
    Ok((entry.origin, next))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::path::{Path, PathBuf};
    use std::sync::Arc;

    use super::*;
    use crate::journal::{Command, Environment, Journal, NewMember, Outcome, Request};
    use crate::store::{Store, reopen};
    use protocol::sale::QuickSaleRequest;
    use protocol::{Currency, Money, Phone, StaffId, TxId};

    fn scratch(label: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("node-{label}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    fn seeded_env(seed: u64) -> Environment {
        let mut now = 1_795_451_400_000 + seed;
        let mut state = u128::from(seed) + 1;
        Environment {
            now_ms: Box::new(move || {
                now += 7;
                now
            }),
            random: Box::new(move || {
                state = state
                    .wrapping_mul(0x2d99_7879_26d4_6932_a4c1)
                    .wrapping_add(1);
                state
            }),
        }
    }

    fn request<T>(key: String, body: T) -> Request<T> {
        Request {
            key: TxId::parse(&key).unwrap(),
            fingerprint: [0; 32],
            staff: StaffId::system(),
            body,
        }
    }

    /// A store with `members` members and `sales` quick sales through the real journal,
    /// flushed every `group` commands (as group commit does).
    pub(super) fn fill(store: Arc<dyn Store>, members: u64, sales: u64, group: u64) {
        let settings = crate::Config::default().settings().unwrap();
        let mut journal = Journal::open(store, settings, seeded_env(1)).unwrap();
        let mut ids = Vec::new();
        for m in 0..members {
            let phone = Phone::parse(&format!("1380000{m:04}")).unwrap();
            let body = NewMember::named(format!("会员{m}"), phone);
            let reply = journal.handle(Command::RegisterMember(request(
                format!("member-{m:04}"),
                body,
            )));
            let Ok(reply) = reply else {
                panic!("{reply:?}")
            };
            let Outcome::Member { member, .. } = reply.outcome else {
                panic!()
            };
            ids.push(member.member_id);
        }
        journal.flush().unwrap();
        for n in 0..sales {
            let member = (n % 3 != 0).then(|| ids[n as usize % ids.len()]);
            let reply = journal.handle(Command::QuickCheckout(request(
                format!("sale-{n:07}"),
                quick_sale(member, n),
            )));
            assert!(reply.is_ok(), "{reply:?}");
            if n % group == group - 1 {
                journal.flush().unwrap();
            }
        }
        journal.flush().unwrap();
    }

    /// `sales` quick sales without a member, keyed `<label>-<n>`, flushed every `group`.
    fn sell(store: Arc<dyn Store>, label: &str, sales: u64, group: u64) {
        let settings = crate::Config::default().settings().unwrap();
        let mut journal = Journal::open(store, settings, seeded_env(2)).unwrap();
        for n in 0..sales {
            let body = quick_sale(None, n);
            let reply = journal.handle(Command::QuickCheckout(request(
                format!("{label}-{n:07}"),
                body,
            )));
            assert!(reply.is_ok(), "{reply:?}");
            if n % group == group - 1 {
                journal.flush().unwrap();
            }
        }
        journal.flush().unwrap();
    }

    fn quick_sale(member: Option<protocol::MemberId>, n: u64) -> QuickSaleRequest {
        QuickSaleRequest {
            member_id: member,
            amount: Money::new(
                rust_decimal::Decimal::new(1_000 + n as i64 % 9_000, 2),
                Currency::CNY,
            ),
            category: None,
            cash_tendered: None,
            pay_with: Default::default(),
            offline_overdraft: false,
        }
    }

    fn everything(store: &SledStore) -> BTreeMap<Vec<u8>, Vec<u8>> {
        let mut all = BTreeMap::new();
        store
            .visit_all(|k, v| {
                all.insert(k.to_vec(), v.to_vec());
                Ok(())
            })
            .unwrap();
        all
    }

    fn copy_dir(from: &Path, to: &Path) {
        std::fs::create_dir_all(to).unwrap();
        for item in std::fs::read_dir(from).unwrap() {
            let item = item.unwrap();
            if item.file_type().unwrap().is_dir() {
                copy_dir(&item.path(), &to.join(item.file_name()));
            } else {
                std::fs::copy(item.path(), to.join(item.file_name())).unwrap();
            }
        }
    }

    /// The store a flip test damages: sales before a restart (read through sled's snapshot at
    /// the next open) and after it (replayed from sled's log at the next open), closed.
    fn store_to_damage(dir: &Path) -> BTreeMap<Vec<u8>, Vec<u8>> {
        fill(Arc::new(reopen(dir)), 10, 200, 10);
        let store = Arc::new(reopen(dir));
        sell(store.clone(), "after-restart", 1200, 10);
        everything(&store)
    }

    /// Flips one bit at a time, at seeded offsets, in each of sled's files and our record beside
    /// them (a copy of the store each time); the store must then either open, pass the check and
    /// hold exactly what it held, or be refused as damaged, naming its directory and what to do.
    /// `FLIP_SEED` replays or varies the offsets; `FLIPS` sets how many (50).
    #[test]
    fn a_flipped_bit_is_refused_clearly_or_changes_nothing() {
        let seed = env_or("FLIP_SEED", 0x5eed);
        let flips = env_or("FLIPS", 50);
        let base = scratch("flip-base");
        let original = store_to_damage(&base);
        let mut files: Vec<(String, u64)> = std::fs::read_dir(&base)
            .unwrap()
            .map(|e| e.unwrap())
            .filter(|e| e.file_type().unwrap().is_file())
            .map(|e| {
                (
                    e.file_name().to_string_lossy().into_owned(),
                    e.metadata().unwrap().len(),
                )
            })
            .collect();
        files.sort();
        let mut random = seed;
        let mut next = move || {
            random = random
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            random >> 17
        };
        let (mut refused, mut intact) = (0, 0);
        for flip in 0..flips {
            // Two flips in three in the log (`db`), the others in the small files.
            let (name, len) = match next() % 3 {
                0 => &files[(next() % files.len() as u64) as usize],
                _ => files.iter().find(|(n, _)| n == "db").unwrap(),
            };
            let (offset, bit) = (next() % len, 1u8 << (next() % 8));
            let what = format!("seed {seed:#x} flip {flip}: {name} at {offset}, bit {bit}");
            let dir = scratch(&format!("flip-{flip}"));
            copy_dir(&base, &dir);
            let mut bytes = std::fs::read(dir.join(name)).unwrap();
            bytes[offset as usize] ^= bit;
            std::fs::write(dir.join(name), &bytes).unwrap();
            match SledStore::open(&dir).and_then(|store| check(&store).map(|_| store)) {
                Ok(store) => {
                    let now = everything(&store);
                    assert!(
                        now == original,
                        "{what}: opened with other data: {}",
                        difference(&original, &now)
                    );
                    intact += 1;
                }
                Err(e) => {
                    assert!(e.is_damaged_store(), "{what}: {e}");
                    let message = e.to_string();
                    assert!(message.contains(&dir.display().to_string()), "{message}");
                    assert!(message.contains("move the directory aside"), "{message}");
                    refused += 1;
                }
            }
            let _ = std::fs::remove_dir_all(&dir);
        }
        let _ = std::fs::remove_dir_all(&base);
        assert!(
            refused > 0 && intact > 0,
            "{refused} refused, {intact} intact: a weak seed"
        );
    }

    /// An entry edited or removed through the store itself (so every page reads whole and the
    /// digest agrees) still breaks the log's chain, and the check says where.
    #[test]
    fn a_log_with_an_entry_edited_or_missing_is_refused() {
        let s001 = StoreId::parse("S001").unwrap();
        for edit in ["edited", "missing"] {
            let dir = scratch(&format!("chain-{edit}"));
            let store = Arc::new(reopen(&dir));
            fill(store.clone(), 1, 5, 1);
            assert_eq!(check(&store).unwrap().entries, 6);
            let key = keys::log(&s001, 3);
            let mut batch = crate::store::Batch::default();
            match edit {
                "edited" => {
                    let mut entry = Entry::decode(&store.get(&key).unwrap().unwrap()).unwrap();
                    entry.business_date = entry.business_date.succ_opt().unwrap();
                    batch.put(key, entry.encode());
                }
                _ => batch.delete(key),
            }
            store.apply(batch).unwrap();
            let refused = check(&store).unwrap_err().to_string();
            assert!(
                refused.contains("the log of S001 breaks at entry 4"),
                "{refused}"
            );
            drop(store);
            let _ = std::fs::remove_dir_all(&dir);
        }
    }

    /// The keys that differ, for a failure's message.
    fn difference(was: &BTreeMap<Vec<u8>, Vec<u8>>, is: &BTreeMap<Vec<u8>, Vec<u8>>) -> String {
        let shown = |k: &Vec<u8>| String::from_utf8_lossy(k).into_owned();
        let lost: Vec<_> = was
            .keys()
            .filter(|k| !is.contains_key(*k))
            .map(shown)
            .collect();
        let added: Vec<_> = is
            .keys()
            .filter(|k| !was.contains_key(*k))
            .map(shown)
            .collect();
        let changed: Vec<_> = was
            .iter()
            .filter(|(k, v)| is.get(*k).is_some_and(|now| now != *v))
            .map(|(k, _)| shown(k))
            .collect();
        format!("lost {lost:?}, added {added:?}, changed {changed:?}")
    }

    fn env_or(name: &str, default: u64) -> u64 {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    }
}

#[cfg(test)]
mod measure {
    use super::*;
    use crate::store::reopen;
    use std::sync::Arc;
    use std::time::Instant;

    /// What the check at start costs next to the full rebuild `node verify` adds:
    /// `cargo test -p node --release measure_check -- --ignored --nocapture`; `ENTRIES` sets the
    /// log's length (100 000).
    #[test]
    #[ignore = "a measurement"]
    fn measure_check_at_start() {
        let entries = std::env::var("ENTRIES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(100_000u64);
        let dir = std::env::temp_dir().join(format!("node-measure-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let started = Instant::now();
        super::tests::fill(Arc::new(reopen(&dir)), 1_000, entries - 1_000, 100);
        eprintln!(
            "written in {:?} (a flush every 100 entries)",
            started.elapsed()
        );
        for _ in 0..2 {
            let started = Instant::now();
            let store = reopen(&dir);
            let opened = started.elapsed();
            let checked = check(&store).unwrap();
            let check_took = started.elapsed() - opened;
            let calendar = crate::Config::default().settings().unwrap().calendar;
            let report = crate::views::rebuild(&store, &calendar).unwrap();
            assert!(report.is_clean());
            let rebuild_took = started.elapsed() - opened - check_took;
            eprintln!(
                "open {opened:?}; check {check_took:?} ({checked:?}); rebuild {rebuild_took:?}"
            );
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
