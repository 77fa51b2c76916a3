//! The staff directory (员工): who may serve at which store, written by headquarters and known at
//! every store (in the feed), so a till refuses a staff id nobody registered, also offline.
//! The same view code runs at the stores and at the hub.

use serde::{Deserialize, Serialize};

use crate::ids::{StaffId, StoreId};
use crate::inventory::ViewKv;

/// The longest staff name, in characters.
pub const NAME_CHARS_MAX: usize = 32;
/// The most staff records one change may carry.
pub const CHANGE_MAX: usize = 500;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StaffRole {
    /// 收银员: sells, looks up, tops up.
    Cashier,
    /// 店长: also returns, refunds, adjustments, password resets, the store's staff.
    Manager,
    /// 总部管理员
    HqAdmin,
    /// 审计: reads everything, changes nothing.
    Auditor,
}

/// One member of staff. A new record for the same id replaces the old one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StaffRecord {
    pub id: StaffId,
    pub name: String,
    /// The store they work at; `None`: every store (headquarters staff).
    pub store: Option<StoreId>,
    pub role: StaffRole,
    /// A member of staff who left stays in the directory (old sales name them), inactive.
    pub active: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StaffError {
    #[error("a staff change names 1 to {CHANGE_MAX} staff, each once")]
    Count,
    #[error("staff {0}: a name of 1 to {NAME_CHARS_MAX} characters is needed")]
    Name(StaffId),
    #[error("staff id {0} is reserved")]
    Reserved(StaffId),
    #[error("staff {0} is not in the staff directory")]
    Unknown(StaffId),
    #[error("staff {0} has left")]
    Inactive(StaffId),
    #[error("staff {id} works at {store}, not here")]
    OtherStore { id: StaffId, store: StoreId },
    #[error("storage failed: {0}")]
    Storage(String),
}

/// Checks a change before headquarters writes it.
pub fn check(records: &[StaffRecord]) -> Result<(), StaffError> {
    let mut ids: Vec<&StaffId> = records.iter().map(|r| &r.id).collect();
    ids.sort();
    ids.dedup();
    if records.is_empty() || records.len() > CHANGE_MAX || ids.len() != records.len() {
        return Err(StaffError::Count);
    }
    for r in records {
        if r.id == StaffId::system() {
            return Err(StaffError::Reserved(r.id.clone()));
        }
        let len = r.name.trim().chars().count();
        if len == 0 || len > NAME_CHARS_MAX || r.name.chars().any(char::is_control) {
            return Err(StaffError::Name(r.id.clone()));
        }
    }
    Ok(())
}

pub mod keys {
    use super::*;

    pub const PREFIX: &[u8] = b"sf/";
    /// Login secrets (argon2 hashes), `sc/<id>`.
    pub const CREDENTIALS: &[u8] = b"sc/";

    pub fn staff(id: &StaffId) -> Vec<u8> {
        format!("sf/{id}").into_bytes()
    }

    pub fn credentials(id: &StaffId) -> Vec<u8> {
        format!("sc/{id}").into_bytes()
    }
}

/// The shortest and longest login secret: a six-digit PIN at least.
pub const SECRET_CHARS: std::ops::RangeInclusive<usize> = 6..=64;

/// The fewest characters of a chain-wide login's password (headquarters' admins and auditors):
/// its hash reaches every store, and a PIN's hash could be guessed offline on a stolen till PC.
pub const CHAIN_WIDE_SECRET_CHARS_MIN: usize = 10;

/// Refuses a login secret too short, too long or with control characters, and for chain-wide
/// staff (`record` without a store) one under [`CHAIN_WIDE_SECRET_CHARS_MIN`] characters.
pub fn check_secret(record: Option<&StaffRecord>, secret: &str) -> Result<(), String> {
    let n = secret.chars().count();
    let visible = secret.chars().filter(|c| !c.is_whitespace()).count();
    if !SECRET_CHARS.contains(&n)
        || visible < *SECRET_CHARS.start()
        || secret.chars().any(char::is_control)
    {
        return Err(format!(
            "a password or PIN is {} to {} characters",
            SECRET_CHARS.start(),
            SECRET_CHARS.end()
        ));
    }
    let chain_wide = record.is_some_and(|r| r.store.is_none());
    if chain_wide && n < CHAIN_WIDE_SECRET_CHARS_MIN {
        return Err(format!(
            "a headquarters login (chain-wide) needs a password of at least \
             {CHAIN_WIDE_SECRET_CHARS_MIN} characters: its hash reaches every store"
        ));
    }
    Ok(())
}

/// The argon2 hash (PHC string) of `id`'s login secret, if headquarters set one.
pub fn credentials(kv: &dyn ViewKv, id: &StaffId) -> Result<Option<String>, String> {
    Ok(kv
        .get(&keys::credentials(id))?
        .map(|b| String::from_utf8_lossy(&b).into_owned()))
}

/// The staff member `id` as `kv` knows them.
pub fn read(kv: &dyn ViewKv, id: &StaffId) -> Result<Option<StaffRecord>, String> {
    kv.get(&keys::staff(id))?
        .map(|b| postcard::from_bytes(&b).map_err(|e| e.to_string()))
        .transpose()
}

/// May `id` act at `store`? A chain with no directory yet (`directory_empty`) takes any id, so
/// a new chain works before headquarters registers its staff; `system` (no header) always.
pub fn may_act(
    kv: &dyn ViewKv,
    directory_empty: bool,
    id: &StaffId,
    store: &StoreId,
) -> Result<(), StaffError> {
    if directory_empty || *id == StaffId::system() {
        return Ok(());
    }
    let record = read(kv, id)
        .map_err(StaffError::Storage)?
        .ok_or_else(|| StaffError::Unknown(id.clone()))?;
    if !record.active {
        return Err(StaffError::Inactive(id.clone()));
    }
    match record.store {
        Some(s) if s != *store => Err(StaffError::OtherStore {
            id: id.clone(),
            store: s,
        }),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chain_wide_login_needs_a_longer_password_than_a_pin() {
        let record = |store: Option<&str>| StaffRecord {
            id: StaffId::parse("hq-1").unwrap(),
            name: "总部".to_owned(),
            store: store.map(|s| StoreId::parse(s).unwrap()),
            role: StaffRole::HqAdmin,
            active: true,
        };
        let cashier = record(Some("S001"));
        let admin = record(None);
        assert!(check_secret(Some(&cashier), "246810").is_ok());
        assert!(check_secret(Some(&cashier), "24681").is_err());
        assert!(check_secret(Some(&cashier), "246810\n").is_err());
        assert!(
            check_secret(Some(&cashier), "      ").is_err(),
            "six spaces"
        );
        assert!(check_secret(Some(&cashier), " 2468 ").is_err());
        assert!(check_secret(Some(&admin), "246810").is_err());
        assert!(check_secret(Some(&admin), "correct horse").is_ok());
        assert!(
            check_secret(None, "246810").is_ok(),
            "unknown staff: refused later"
        );
    }
}
