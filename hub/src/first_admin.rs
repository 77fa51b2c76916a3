//! 首个管理员: a new chain's headquarters is never open. On a start that finds no active
//! headquarters admin with a login (and is not in the demo's open mode), the hub makes one —
//! `admin`, with a random password — through the same writes an admin makes (a staff record and
//! a login, both in headquarters' log), and writes the password to a file only its owner can
//! read in the data directory. The operator logs in with it and sets their own.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use protocol::StaffId;
use protocol::staff::{StaffRecord, StaffRole};

use crate::ingest::{HqWrite, IngestHandle};
use crate::storage::HubStore;

/// The first admin's staff id.
pub const FIRST_ADMIN: &str = "admin";
/// Where its password is written, in the data directory.
pub const PASSWORD_FILE: &str = "first-admin-password.txt";

/// Makes the first admin if no active admin has a login; returns the password file if it did.
pub async fn ensure(
    ingest: &IngestHandle,
    storage: &dyn HubStore,
    data_dir: &Path,
) -> anyhow::Result<Option<PathBuf>> {
    if crate::api::login::logins_required(storage).map_err(anyhow::Error::msg)? {
        return Ok(None);
    }
    let id = StaffId::parse(FIRST_ADMIN).map_err(anyhow::Error::msg)?;
    // With no admin who can log in, the chain has no way in: `admin` is made an active admin
    // again even if it was deactivated or is something else now, and the log says so.
    let views = crate::ingest::HubViews::reader(storage);
    if let Some(old) = protocol::staff::read(&views, &id).map_err(anyhow::Error::msg)? {
        tracing::warn!(
            role = ?old.role,
            active = old.active,
            "no active headquarters admin has a login: staff `admin` is made one again"
        );
    }
    let password = random_password()?;
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| anyhow::anyhow!("random salt: {e}"))?;
    let secret = password.clone();
    let hash = tokio::task::spawn_blocking(move || protocol::secret::hash(&secret, salt))
        .await?
        .context("hashing the first admin's password")?;
    // The file first: a crash after the writes would otherwise leave a login nobody knows.
    let path = data_dir.join(PASSWORD_FILE);
    write_private(&path, &format!("{FIRST_ADMIN}\n{password}\n"))?;
    let record = StaffRecord {
        id: id.clone(),
        name: "总部管理员".to_owned(),
        store: None,
        role: StaffRole::HqAdmin,
        active: true,
    };
    let system = StaffId::system();
    ingest
        .hq_write(HqWrite::Staff(vec![record]), system.clone())
        .await??;
    ingest
        .hq_write(HqWrite::Credentials(id, Some(hash)), system)
        .await??;
    Ok(Some(path))
}

/// 16 characters from an alphabet without look-alikes (no 0/O, 1/l/I).
fn random_password() -> anyhow::Result<String> {
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("random password: {e}"))?;
    Ok(bytes
        .iter()
        .map(|b| char::from(ALPHABET[usize::from(*b) % ALPHABET.len()]))
        .collect())
}

/// Writes `text` to a new file only its owner may read (0600 on Unix); one left from an earlier
/// start (perhaps restored with other permissions) is replaced, not reused.
fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(e).with_context(|| format!("removing {}", path.display()));
        }
        _ => {}
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    file.write_all(text.as_bytes())?;
    file.sync_all()?;
    Ok(())
}
