//! Before sled opens a store's directory: set aside what sled would refuse to open but
//! rebuilds by itself — an interrupted or damaged snapshot, a damaged settings file — so a
//! store whose data is whole opens.
//!
//! Beside its log (`db`), sled 0.34 keeps a snapshot of where each page lies in that log,
//! `snap.<stable lsn, 16 upper-case hex digits>`, written only while it opens a directory:
//! first as `snap.<lsn>.generating`, synced, then renamed (`pagecache/snapshot.rs`,
//! `write_snapshot`). On open it reads the greatest file name starting with `snap.` — a
//! `.generating` one too, which sorts after the complete snapshot of its lsn — and refuses the
//! whole directory ("Read corrupted data") when that file is 12 bytes or shorter or fails its
//! CRC (`read_snapshot`). A disk that fills while sled opens leaves exactly that: an empty
//! `.generating` file, and a store that never opens again.
//!
//! A snapshot holds no keys or values, only page locations, and sled rebuilds them by replaying
//! the log: from the snapshot's lsn on every open, from the log's start when there is none
//! (`read_snapshot_or_default`). So a `.generating` file is removed (only the `write_snapshot`
//! call that created it would ever rename it), and a complete snapshot that fails sled's own
//! check is moved aside under a name sled does not read (kept, never deleted).
//!
//! `conf` holds sled's settings (segment size, compression, format version) and a CRC; sled
//! writes it, unsynced, when a directory has none, and only warns when its CRC fails, then
//! misreads it (`config.rs`, `read_config`). Every store this node opens was created by
//! `SledStore::open` with sled's defaults, so a `conf` failing its CRC is moved aside too and
//! sled writes the same settings anew. Nothing else in the directory is touched.

use std::io;
use std::path::{Path, PathBuf};

/// Prepares `dir` for sled: see the module's comment. A directory that does not exist yet is
/// left for sled to create.
pub(super) fn tidy(dir: &Path) -> io::Result<()> {
    let listing = match std::fs::read_dir(dir) {
        Ok(listing) => listing,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    let mut complete = Vec::new();
    for item in listing {
        let path = item?.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        match SnapshotName::parse(name) {
            Some(SnapshotName::Generating) => {
                tracing::warn!(
                    file = %path.display(),
                    "removing an incomplete sled snapshot (interrupted while being written, \
                     e.g. by a full disk); sled rebuilds it from its log"
                );
                std::fs::remove_file(&path)?;
            }
            Some(SnapshotName::Complete) => complete.push(path),
            None => {}
        }
    }
    // sled reads the greatest name; an older one left by a crash during its clean-up is as good.
    complete.sort();
    while let Some(path) = complete.pop() {
        if !set_aside_if(&path, snapshot_fault)? {
            break;
        }
    }
    let settings = dir.join("conf");
    if settings.exists() {
        set_aside_if(&settings, settings_fault)?;
    }
    Ok(())
}

/// The two names sled gives its snapshot files (`format!("snap.{:016X}")`, plus `.generating`
/// while it writes one).
#[derive(Debug, PartialEq)]
enum SnapshotName {
    Complete,
    Generating,
}

impl SnapshotName {
    fn parse(name: &str) -> Option<Self> {
        let rest = name.strip_prefix("snap.")?;
        let (lsn, kind) = match rest.strip_suffix(".generating") {
            Some(lsn) => (lsn, SnapshotName::Generating),
            None => (rest, SnapshotName::Complete),
        };
        let hex = |c: char| c.is_ascii_digit() || ('A'..='F').contains(&c);
        (lsn.len() == 16 && lsn.chars().all(hex)).then_some(kind)
    }
}

/// What sled's `read_snapshot` would refuse in this snapshot, if anything: its body, then the
/// body's length (8 bytes) and CRC-32 (4 bytes, little-endian).
fn snapshot_fault(bytes: &[u8]) -> Option<&'static str> {
    if bytes.len() <= 12 {
        return Some("12 bytes or shorter");
    }
    crc_fault(
        bytes.split_at(bytes.len() - 12).0,
        &bytes[bytes.len() - 4..],
    )
}

/// What sled's `read_config` would misread in `conf`, if anything: its text, then its CRC-32
/// (4 bytes, little-endian). sled itself rewrites a file of 8 bytes or fewer.
fn settings_fault(bytes: &[u8]) -> Option<&'static str> {
    if bytes.len() <= 8 {
        return None;
    }
    let (text, crc) = bytes.split_at(bytes.len() - 4);
    crc_fault(text, crc)
}

fn crc_fault(body: &[u8], crc: &[u8]) -> Option<&'static str> {
    let crc: [u8; 4] = crc.try_into().ok()?;
    (crc32fast::hash(body) != u32::from_le_bytes(crc)).then_some("its checksum does not match")
}

/// Moves `path` aside if `fault` finds it damaged, and says whether it did.
fn set_aside_if(path: &Path, fault: fn(&[u8]) -> Option<&'static str>) -> io::Result<bool> {
    let Some(fault) = fault(&std::fs::read(path)?) else {
        return Ok(false);
    };
    let aside = aside_name(path);
    std::fs::rename(path, &aside)?;
    tracing::warn!(
        file = %path.display(),
        moved_to = %aside.display(),
        fault,
        "a sled file that sled rebuilds by itself is damaged; moved aside"
    );
    Ok(true)
}

/// `damaged-<name>` beside `path` (with a number if that exists): a name sled does not read.
fn aside_name(path: &Path) -> PathBuf {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let mut aside = path.with_file_name(format!("damaged-{name}"));
    let mut n = 1;
    while aside.exists() {
        aside = path.with_file_name(format!("damaged-{name}.{n}"));
        n += 1;
    }
    aside
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::path::{Path, PathBuf};

    use super::*;
    use crate::store::{Batch, SledStore, Store, reopen, when_unlocked};

    fn scratch(label: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("node-{label}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    fn write(store: &SledStore, from: u32, to: u32) {
        for n in from..to {
            let mut batch = Batch::default();
            batch.put(format!("k/{n:06}").into_bytes(), vec![n as u8; 100]);
            store.apply(batch).unwrap();
        }
        store.flush().unwrap();
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    /// A store written, reopened (so sled wrote a snapshot) and written again, closed: its
    /// newest snapshot's path and lsn.
    fn store_with_a_snapshot(dir: &Path) -> (PathBuf, u64) {
        write(&reopen(dir), 0, 500);
        write(&reopen(dir), 500, 1000);
        let lsn = names(dir)
            .iter()
            .filter_map(|n| u64::from_str_radix(n.strip_prefix("snap.")?, 16).ok())
            .max()
            .unwrap();
        (dir.join(format!("snap.{lsn:016X}")), lsn)
    }

    fn sled_alone_refuses(dir: &Path) {
        let refused = when_unlocked(|| match sled::Config::new().path(dir).open() {
            Ok(_) => Ok(None),
            Err(e @ sled::Error::Corruption { .. }) => Ok(Some(e)),
            Err(e) => Err(e),
        })
        .expect("sled opened it");
        assert!(
            matches!(refused, sled::Error::Corruption { .. }),
            "{refused}"
        );
        assert!(refused.to_string().contains("Read corrupted data"));
    }

    fn all_there(dir: &Path) {
        let store = reopen(dir);
        let pairs = store.scan_prefix(b"k/").unwrap();
        assert_eq!(pairs.len(), 1000);
        for (key, value) in pairs {
            let n: u32 = std::str::from_utf8(&key[2..]).unwrap().parse().unwrap();
            assert_eq!(value, vec![n as u8; 100]);
        }
    }

    /// The tester's counterexample: a restart on a full disk left an empty `.generating` file,
    /// and every later start failed with "Read corrupted data".
    #[test]
    fn an_empty_generating_snapshot_left_by_a_full_disk_is_removed() {
        let dir = scratch("generating");
        let (_, lsn) = store_with_a_snapshot(&dir);
        // What the third open leaves when its snapshot cannot be written: sled created the file
        // under the lsn it recovered (past the last snapshot's), then ran out of space.
        let leftover = format!("snap.{:016X}.generating", lsn + 0x1_0000);
        std::fs::write(dir.join(&leftover), b"").unwrap();
        sled_alone_refuses(&dir);
        all_there(&dir);
        assert!(!names(&dir).contains(&leftover));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_damaged_snapshot_is_moved_aside_and_rebuilt_from_the_log() {
        for damage in ["emptied", "a bit flipped"] {
            let dir = scratch("damaged-snapshot");
            let (snapshot, _) = store_with_a_snapshot(&dir);
            let mut bytes = std::fs::read(&snapshot).unwrap();
            match damage {
                "emptied" => bytes.clear(),
                _ => bytes[20] ^= 4,
            }
            std::fs::write(&snapshot, &bytes).unwrap();
            sled_alone_refuses(&dir);
            all_there(&dir);
            let name = snapshot.file_name().unwrap().to_string_lossy();
            assert_eq!(
                std::fs::read(dir.join(format!("damaged-{name}"))).unwrap(),
                bytes
            );
            let _ = std::fs::remove_dir_all(&dir);
        }
    }

    #[test]
    fn a_damaged_settings_file_is_moved_aside_and_written_anew() {
        let dir = scratch("damaged-conf");
        store_with_a_snapshot(&dir);
        let settings = dir.join("conf");
        let whole = std::fs::read(&settings).unwrap();
        let mut bytes = whole.clone();
        bytes[15] ^= 2;
        std::fs::write(&settings, &bytes).unwrap();
        let opened = when_unlocked(|| match sled::Config::new().path(&dir).open() {
            Ok(_) => Ok(true),
            Err(e) if e.to_string().contains("could not acquire lock") => Err(e),
            Err(_) => Ok(false),
        });
        assert!(!opened, "sled alone opened a store with a damaged conf");
        all_there(&dir);
        assert_eq!(std::fs::read(&settings).unwrap(), whole);
        assert_eq!(std::fs::read(dir.join("damaged-conf")).unwrap(), bytes);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn only_the_names_sled_gives_its_snapshots_are_recognised() {
        use SnapshotName::*;
        let table = [
            ("snap.00000000002E464A", Some(Complete)),
            ("snap.00000000002E464A.generating", Some(Generating)),
            ("snap.00000000002e464a", None),
            ("snap.2E464A", None),
            ("snap.00000000002E464A.in___motion", None),
            ("damaged-snap.00000000002E464A", None),
            ("conf", None),
            ("db", None),
        ];
        for (name, kind) in table {
            assert_eq!(SnapshotName::parse(name), kind, "{name}");
        }
    }

    /// Why removing a snapshot is safe: sled rebuilds every page's location from the log alone,
    /// also after enough overwrites and deletions that it has reused segments of its file.
    #[test]
    fn sled_rebuilds_page_locations_from_the_log_alone() {
        let dir = scratch("churn");
        let mut model = BTreeMap::new();
        let mut x: u64 = 7;
        for _ in 0..4 {
            let store = reopen(&dir);
            for _ in 0..3000 {
                x = x
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                let key = format!("k/{:05}", (x >> 33) % 2000).into_bytes();
                let mut batch = Batch::default();
                if (x >> 20).is_multiple_of(5) {
                    batch.delete(key.clone());
                    model.remove(&key);
                } else {
                    let value = vec![(x >> 40) as u8; 200 + ((x >> 13) % 3000) as usize];
                    batch.put(key.clone(), value.clone());
                    model.insert(key, value);
                }
                store.apply(batch).unwrap();
            }
            store.flush().unwrap();
        }
        let (lsn, file) = names(&dir)
            .iter()
            .find_map(|n| {
                Some((
                    u64::from_str_radix(n.strip_prefix("snap.")?, 16).ok()?,
                    n.clone(),
                ))
            })
            .unwrap();
        let log_len = std::fs::metadata(dir.join("db")).unwrap().len();
        assert!(
            lsn > log_len,
            "segments were reused ({lsn} logged into {log_len} bytes)"
        );
        std::fs::remove_file(dir.join(file)).unwrap();
        for _ in 0..2 {
            let store = reopen(&dir);
            let all: BTreeMap<_, _> = store.scan_prefix(b"k/").unwrap().into_iter().collect();
            assert!(all == model);
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
