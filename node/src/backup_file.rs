//! The backup file (备份文件) of a store node or of headquarters: every record of its storage as
//! it was at one moment, in one file that says what it is and checks itself.
//!
//! The file: an 8-byte magic naming whose it is, then `key length, value length, key, value`
//! (little-endian u32 lengths) for every record, a `u32::MAX` end mark, a header (postcard;
//! the node's and the hub's differ) and its length, the number of records, and a SHA-256 of
//! everything before it — so the header is read from the end without reading the file
//! through (`peek`), and a cut or damaged file is refused (`read`).
//!
//! A backup is written under a temporary name (`.partial`), made durable, renamed, the
//! directory made durable, and read back before it counts: a kill during a backup leaves a
//! `.partial` file, never a damaged file under a backup's name. Names are
//! `<prefix>-<UTC time>.backup`, so they sort by time.

use std::io::{BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize, de::DeserializeOwned};
use sha2::{Digest, Sha256};

const END: u32 = u32::MAX;
pub const EXTENSION: &str = "backup";
const PARTIAL: &str = "partial";
/// After the header: its length (u32), the records' count (u64), the hash (32 bytes).
const TAIL: u64 = 4 + 8 + 32;
/// A header longer than this is not one we wrote.
const HEADER_MAX: u64 = 64 * 1024;

/// Whose backup a file is: the magic it starts with, and a name for messages.
#[derive(Debug, Clone, Copy)]
pub struct Kind {
    pub magic: &'static [u8; 8],
    pub what: &'static str,
}

/// A store node's backup.
pub const STORE: Kind = Kind {
    magic: b"CHSTORE1",
    what: "a store",
};

/// Headquarters' backup.
pub const HUB: Kind = Kind {
    magic: b"CHHUB001",
    what: "headquarters",
};

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not a whole backup of {what}: {why}")]
    Bad {
        path: PathBuf,
        what: &'static str,
        why: &'static str,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> BackupError + '_ {
    move |source| BackupError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// A backup as taken, checked or restored: its header, how many records, how many bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Summary<H> {
    pub file: PathBuf,
    #[serde(flatten)]
    pub header: H,
    pub records: u64,
    pub bytes: u64,
}

/// A backup being written: `record` every pair, then `finish`. Dropped unfinished, it leaves
/// only a `.partial` file (which `prune` deletes).
pub struct Writer {
    kind: Kind,
    dir: PathBuf,
    partial: PathBuf,
    file: PathBuf,
    out: Hashing<BufWriter<std::fs::File>>,
    records: u64,
}

impl Writer {
    /// Starts `<dir>/<name>.backup` (as `.partial` until finished), making `dir` if need be.
    pub fn create(kind: Kind, dir: &Path, name: &str) -> Result<Self, BackupError> {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let partial = dir.join(format!("{name}.{PARTIAL}"));
        let out = std::fs::File::create(&partial).map_err(io(&partial))?;
        let mut out = Hashing::new(BufWriter::new(out));
        out.write_all(kind.magic).map_err(io(&partial))?;
        Ok(Self {
            kind,
            dir: dir.to_path_buf(),
            file: dir.join(format!("{name}.{EXTENSION}")),
            partial,
            out,
            records: 0,
        })
    }

    pub fn record(&mut self, key: &[u8], value: &[u8]) -> Result<(), BackupError> {
        let len = |bytes: &[u8]| {
            u32::try_from(bytes.len())
                .ok()
                .filter(|n| *n != END)
                .ok_or_else(|| std::io::Error::other("a record over 4 GiB"))
        };
        let mut frame = || -> std::io::Result<()> {
            self.out.write_all(&len(key)?.to_le_bytes())?;
            self.out.write_all(&len(value)?.to_le_bytes())?;
            self.out.write_all(key)?;
            self.out.write_all(value)
        };
        frame().map_err(io(&self.partial))?;
        self.records += 1;
        Ok(())
    }

    /// Ends the file with `header`, makes it durable under its name, and reads it back.
    pub fn finish<H>(mut self, header: &H) -> Result<Summary<H>, BackupError>
    where
        H: Serialize + DeserializeOwned + PartialEq,
    {
        let header_bytes = postcard::to_stdvec(header)
            .map_err(|e| std::io::Error::other(e.to_string()))
            .map_err(io(&self.partial))?;
        let mut tail = || -> std::io::Result<()> {
            self.out.write_all(&END.to_le_bytes())?;
            self.out.write_all(&header_bytes)?;
            self.out
                .write_all(&(header_bytes.len() as u32).to_le_bytes())?;
            self.out.write_all(&self.records.to_le_bytes())
        };
        tail().map_err(io(&self.partial))?;
        let (mut inner, hash) = self.out.finish();
        let durable = || -> std::io::Result<()> {
            inner.write_all(&hash)?;
            let file = inner.into_inner().map_err(|e| e.into_error())?;
            file.sync_all()
        };
        durable().map_err(io(&self.partial))?;
        // Read back under its temporary name: only a backup that checks out gets a backup's.
        let mut summary: Summary<H> = check(self.kind, &self.partial)?;
        if summary.records != self.records || summary.header != *header {
            return Err(BackupError::Bad {
                path: self.partial,
                what: self.kind.what,
                why: "it reads back other than it was written",
            });
        }
        std::fs::rename(&self.partial, &self.file).map_err(io(&self.file))?;
        sync_dir(&self.dir).map_err(io(&self.dir))?;
        summary.file = self.file;
        Ok(summary)
    }
}

/// Reads a backup through and checks its hash; what it holds.
pub fn check<H: DeserializeOwned>(kind: Kind, file: &Path) -> Result<Summary<H>, BackupError> {
    read(kind, file, |_, _| Ok::<(), BackupError>(()))
}

/// Reads the backup `file`, handing every record to `visit`, and checks its hash at the end
/// (so `visit` must not make anything final before this returns `Ok`).
pub fn read<H, E>(
    kind: Kind,
    file: &Path,
    mut visit: impl FnMut(&[u8], &[u8]) -> Result<(), E>,
) -> Result<Summary<H>, E>
where
    H: DeserializeOwned,
    E: From<BackupError>,
{
    let opened = std::fs::File::open(file).map_err(io(file))?;
    let bytes = opened.metadata().map_err(io(file))?.len();
    let mut input = Hashing::new(BufReader::new(opened));
    let bad = |why: &'static str| BackupError::Bad {
        path: file.to_path_buf(),
        what: kind.what,
        why,
    };
    let mut magic = [0u8; 8];
    input.read_exact(&mut magic).map_err(|_| bad("too short"))?;
    if &magic != kind.magic {
        return Err(bad("it is not one (another kind of file)").into());
    }
    let mut records = 0u64;
    let mut key = Vec::new();
    let mut value = Vec::new();
    loop {
        let key_len = read_u32(&mut input).map_err(|_| bad("it ends within a record"))?;
        if key_len == END {
            break;
        }
        let value_len = read_u32(&mut input).map_err(|_| bad("it ends within a record"))?;
        let left = bytes.saturating_sub(input.read + TAIL);
        if u64::from(key_len) + u64::from(value_len) > left {
            return Err(bad("a record runs past its end").into());
        }
        key.resize(key_len as usize, 0);
        value.resize(value_len as usize, 0);
        input
            .read_exact(&mut key)
            .and_then(|()| input.read_exact(&mut value))
            .map_err(|_| bad("it ends within a record"))?;
        visit(&key, &value)?;
        records += 1;
    }
    // What is left: the header, its length, the count and the hash.
    let header_len = bytes
        .checked_sub(input.read + TAIL)
        .filter(|n| *n <= HEADER_MAX)
        .ok_or_else(|| bad("no header"))?;
    let mut header = vec![0; header_len as usize];
    input
        .read_exact(&mut header)
        .map_err(|_| bad("no header"))?;
    let said_len = read_u32(&mut input).map_err(|_| bad("no header"))?;
    if u64::from(said_len) != header_len {
        return Err(bad("a header of another length").into());
    }
    let mut count = [0u8; 8];
    input.read_exact(&mut count).map_err(|_| bad("no count"))?;
    let (mut inner, hash) = input.finish();
    let mut stored = [0u8; 32];
    inner.read_exact(&mut stored).map_err(|_| bad("no hash"))?;
    if stored != hash {
        return Err(bad("its hash does not match (damaged)").into());
    }
    if u64::from_le_bytes(count) != records {
        return Err(bad("it holds another number of records than it says").into());
    }
    let header = postcard::from_bytes(&header).map_err(|_| bad("an unreadable header"))?;
    Ok(Summary {
        file: file.to_path_buf(),
        header,
        records,
        bytes,
    })
}

/// What a backup says of itself, read from its end without reading it through (its hash is not
/// checked: `check` does that).
pub fn peek<H: DeserializeOwned>(kind: Kind, file: &Path) -> Result<Summary<H>, BackupError> {
    let bad = |why: &'static str| BackupError::Bad {
        path: file.to_path_buf(),
        what: kind.what,
        why,
    };
    let mut opened = std::fs::File::open(file).map_err(io(file))?;
    let bytes = opened.metadata().map_err(io(file))?.len();
    let mut magic = [0u8; 8];
    opened
        .read_exact(&mut magic)
        .map_err(|_| bad("too short"))?;
    if &magic != kind.magic {
        return Err(bad("it is not one (another kind of file)"));
    }
    let end = bytes.checked_sub(TAIL).ok_or_else(|| bad("too short"))?;
    opened.seek(SeekFrom::Start(end)).map_err(io(file))?;
    let header_len = u64::from(read_u32(&mut opened).map_err(io(file))?);
    let mut count = [0u8; 8];
    opened.read_exact(&mut count).map_err(io(file))?;
    let start = end
        .checked_sub(header_len)
        .filter(|start| *start >= 8 + 4 && header_len <= HEADER_MAX)
        .ok_or_else(|| bad("no header"))?;
    opened.seek(SeekFrom::Start(start)).map_err(io(file))?;
    let mut header = vec![0; header_len as usize];
    opened.read_exact(&mut header).map_err(io(file))?;
    Ok(Summary {
        file: file.to_path_buf(),
        header: postcard::from_bytes(&header).map_err(|_| bad("an unreadable header"))?,
        records: u64::from_le_bytes(count),
        bytes,
    })
}

/// `S001-20261205-132400-123`: whose and when (UTC), so names sort by time.
pub fn file_name(prefix: &str, now_ms: u64) -> String {
    let at = chrono::DateTime::from_timestamp_millis(now_ms as i64).unwrap_or_default();
    format!("{prefix}-{}", at.format("%Y%m%d-%H%M%S-%3f"))
}

/// The backups named `<prefix>-<time>.backup` in `dir`, oldest first by the time in their
/// names (a file named otherwise is not one of them, whatever its extension).
pub fn list(dir: &Path, prefix: &str) -> Result<Vec<PathBuf>, BackupError> {
    let mut files: Vec<(chrono::NaiveDateTime, PathBuf)> = match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_file())
            .filter_map(|p| Some((taken_at(&p, prefix, EXTENSION)?, p)))
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(io(dir)(e)),
    };
    files.sort();
    Ok(files.into_iter().map(|(_, p)| p).collect())
}

/// Deletes all but the newest `keep` (at least one) backups named `<prefix>-<time>` in `dir`
/// — never `taken`, the one just made, whatever the time in its name (a PC clock that was
/// ahead) — and any left unfinished by a kill; what it deleted.
pub fn prune(
    dir: &Path,
    prefix: &str,
    keep: usize,
    taken: &Path,
) -> Result<Vec<PathBuf>, BackupError> {
    let others: Vec<PathBuf> = list(dir, prefix)?
        .into_iter()
        .filter(|p| p != taken)
        .collect();
    let keep_others = keep.max(1) - 1;
    let mut gone: Vec<PathBuf> = others[..others.len().saturating_sub(keep_others)].to_vec();
    let entries = std::fs::read_dir(dir).map_err(io(dir))?;
    gone.extend(
        entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_file() && taken_at(p, prefix, PARTIAL).is_some()),
    );
    for file in &gone {
        std::fs::remove_file(file).map_err(io(file))?;
    }
    Ok(gone)
}

/// Makes `data_dir` (absent or empty) by `fill`ing a directory beside it and renaming that
/// into place only once `fill` succeeded: a restore that fails or is killed halfway leaves no
/// data directory that looks whole (a leftover `.restoring` one is cleared by the next try).
pub fn restore_into<T>(
    data_dir: &Path,
    fill: impl FnOnce(&Path) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    use anyhow::Context;
    anyhow::ensure!(
        is_empty(data_dir).with_context(|| data_dir.display().to_string())?,
        "{} holds data: move it aside first (never delete it: it may hold what no other copy \
         has)",
        data_dir.display()
    );
    let mut name = data_dir.file_name().unwrap_or_default().to_os_string();
    name.push(".restoring");
    let staging = data_dir.with_file_name(name);
    if staging.exists() {
        std::fs::remove_dir_all(&staging)
            .with_context(|| format!("clearing {}", staging.display()))?;
    }
    std::fs::create_dir_all(&staging).with_context(|| format!("creating {}", staging.display()))?;
    let filled = match fill(&staging) {
        Ok(filled) => filled,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&staging);
            return Err(e);
        }
    };
    if data_dir.exists() {
        std::fs::remove_dir(data_dir)
            .with_context(|| format!("replacing {}", data_dir.display()))?;
    }
    std::fs::rename(&staging, data_dir)
        .with_context(|| format!("moving the restored data to {}", data_dir.display()))?;
    if let Some(parent) = data_dir.parent() {
        sync_dir(parent).with_context(|| parent.display().to_string())?;
    }
    Ok(filled)
}

/// Whether `dir` is absent or empty (a restore goes only there).
pub fn is_empty(dir: &Path) -> std::io::Result<bool> {
    match std::fs::read_dir(dir) {
        Ok(mut entries) => Ok(entries.next().is_none()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(true),
        Err(e) => Err(e),
    }
}

/// When the backup `path` was taken, if it is named `<prefix>-YYYYMMDD-HHMMSS-mmm.<extension>`.
fn taken_at(path: &Path, prefix: &str, extension: &str) -> Option<chrono::NaiveDateTime> {
    if path.extension()? != extension {
        return None;
    }
    let stem = path.file_stem()?.to_str()?;
    let time = stem.strip_prefix(prefix)?.strip_prefix('-')?;
    chrono::NaiveDateTime::parse_from_str(time, "%Y%m%d-%H%M%S-%3f").ok()
}

fn read_u32(input: &mut impl Read) -> std::io::Result<u32> {
    let mut bytes = [0u8; 4];
    input.read_exact(&mut bytes)?;
    Ok(u32::from_le_bytes(bytes))
}

/// Makes a rename in `dir` durable (on Windows a rename is durable once it returns).
pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    std::fs::File::open(dir)?.sync_all()?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// The `[backup]` of a node's or the hub's config: where backups go, how often, how many kept.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackupConfig {
    /// A directory, best on another disk than the data directory.
    pub dir: PathBuf,
    /// Hours between scheduled backups (the first that long after start); 0: only on request.
    #[serde(default = "default_every_hours")]
    pub every_hours: u32,
    /// How many backups to keep; older ones are deleted after a new one is checked.
    #[serde(default = "default_keep")]
    pub keep: u32,
}

fn default_every_hours() -> u32 {
    24
}

fn default_keep() -> u32 {
    7
}

impl BackupConfig {
    /// Without `[backup]`: a `backups` directory beside the data directory, a backup a day, a
    /// week of them kept.
    pub fn beside(data_dir: &Path) -> Self {
        let parent = data_dir.parent().unwrap_or(Path::new("."));
        Self {
            dir: parent.join("backups"),
            every_hours: default_every_hours(),
            keep: default_keep(),
        }
    }
}

/// The backups of one store (or of headquarters) in the configured directory: taken one at a
/// time, the oldest beyond the number kept deleted after each.
pub struct Shelf {
    pub config: BackupConfig,
    kind: Kind,
    prefix: String,
    running: std::sync::Mutex<()>,
}

impl Shelf {
    pub fn new(kind: Kind, prefix: impl Into<String>, config: BackupConfig) -> Self {
        Self {
            config,
            kind,
            prefix: prefix.into(),
            running: Default::default(),
        }
    }

    /// Takes a backup with `take` (given the directory), then deletes the oldest beyond the
    /// number kept.
    pub fn take_now<H>(
        &self,
        take: impl FnOnce(&Path) -> anyhow::Result<Summary<H>>,
    ) -> anyhow::Result<Summary<H>> {
        let _one = self
            .running
            .lock()
            .map_err(|_| anyhow::anyhow!("an earlier backup panicked"))?;
        let summary = take(&self.config.dir)?;
        for gone in prune(
            &self.config.dir,
            &self.prefix,
            self.config.keep as usize,
            &summary.file,
        )? {
            tracing::info!(file = %gone.display(), "an old backup deleted");
        }
        Ok(summary)
    }

    /// Where, how often, how many, and the backups kept, newest first, each as it says of
    /// itself (each was checked when taken; a restore checks again), or why it cannot be read.
    pub fn listing<H: DeserializeOwned + Serialize>(&self) -> anyhow::Result<serde_json::Value> {
        let mut files = list(&self.config.dir, &self.prefix)?;
        files.reverse();
        let kept: Vec<serde_json::Value> = files
            .iter()
            .map(|f| match peek::<H>(self.kind, f) {
                Ok(summary) => serde_json::json!(summary),
                Err(e) => serde_json::json!({ "damaged": e.to_string() }),
            })
            .collect();
        Ok(serde_json::json!({
            "dir": self.config.dir,
            "every_hours": self.config.every_hours,
            "keep": self.config.keep,
            "backups": kept,
        }))
    }
}

/// A reader or writer that hashes (and counts) what passes through it.
struct Hashing<T> {
    inner: T,
    hasher: Sha256,
    read: u64,
}

impl<T> Hashing<T> {
    fn new(inner: T) -> Self {
        Self {
            inner,
            hasher: Sha256::new(),
            read: 0,
        }
    }

    fn finish(self) -> (T, [u8; 32]) {
        (self.inner, self.hasher.finalize().into())
    }
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.read += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    struct Header {
        name: String,
    }

    fn dir(label: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("backup-file-{label}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    fn write(dir: &Path, name: &str, pairs: &[(&str, &str)]) -> Summary<Header> {
        let mut out = Writer::create(STORE, dir, name).unwrap();
        for (k, v) in pairs {
            out.record(k.as_bytes(), v.as_bytes()).unwrap();
        }
        out.finish(&Header { name: name.into() }).unwrap()
    }

    #[test]
    fn a_backup_reads_back_whole_and_a_damaged_or_cut_one_is_refused() {
        let root = dir("whole");
        let taken = write(&root, "S001-1", &[("a", "1"), ("b", "22")]);
        assert_eq!(taken.records, 2);
        assert_eq!(check::<Header>(STORE, &taken.file).unwrap(), taken);
        assert_eq!(peek::<Header>(STORE, &taken.file).unwrap(), taken);
        assert!(check::<Header>(HUB, &taken.file).is_err(), "another kind");

        let bytes = std::fs::read(&taken.file).unwrap();
        let damaged = root.join("damaged.backup");
        let mut flipped = bytes.clone();
        flipped[17] ^= 1; // the first record's value
        std::fs::write(&damaged, &flipped).unwrap();
        let refused = check::<Header>(STORE, &damaged).unwrap_err().to_string();
        assert!(refused.contains("hash"), "{refused}");
        for cut in [5, 40, bytes.len() - 20] {
            std::fs::write(&damaged, &bytes[..bytes.len() - cut]).unwrap();
            assert!(check::<Header>(STORE, &damaged).is_err(), "cut by {cut}");
        }
        let _ = std::fs::remove_dir_all(&root);
    }

    #[test]
    fn a_restore_that_fails_leaves_no_data_directory() {
        let root = dir("restore");
        let data = root.join("data");
        let failed = restore_into(&data, |staging| -> anyhow::Result<()> {
            std::fs::write(staging.join("half"), b"half")?;
            anyhow::bail!("cut")
        });
        assert!(failed.is_err());
        assert!(!data.exists() && !root.join("data.restoring").exists());
        let restored = restore_into(&data, |staging| {
            std::fs::write(staging.join("whole"), b"whole")?;
            Ok(7)
        });
        assert_eq!(restored.unwrap(), 7);
        assert!(data.join("whole").exists());
        let refused = restore_into(&data, |_| Ok(())).unwrap_err().to_string();
        assert!(refused.contains("holds data"), "{refused}");
        let _ = std::fs::remove_dir_all(&root);
    }

    #[test]
    fn a_record_length_past_the_files_end_is_refused_without_reading_it() {
        let root = dir("huge");
        let taken = write(&root, "S001-1", &[("a", "1")]);
        let mut bytes = std::fs::read(&taken.file).unwrap();
        bytes[8..12].copy_from_slice(&(u32::MAX - 1).to_le_bytes());
        std::fs::write(&taken.file, &bytes).unwrap();
        let refused = check::<Header>(STORE, &taken.file).unwrap_err().to_string();
        assert!(refused.contains("runs past its end"), "{refused}");
        let tail = bytes.len() - TAIL as usize;
        bytes[tail..tail + 4].copy_from_slice(&u32::MAX.to_le_bytes());
        std::fs::write(&taken.file, &bytes).unwrap();
        assert!(peek::<Header>(STORE, &taken.file).is_err());
        let _ = std::fs::remove_dir_all(&root);
    }

    #[test]
    fn only_the_newest_backups_and_no_unfinished_one_are_kept() {
        let root = dir("prune");
        for at in 0..4 {
            write(
                &root,
                &file_name("S001", 1_796_475_522_825 + at * 1000),
                &[],
            );
        }
        std::fs::write(root.join("S001-20261205-000000-000.partial"), b"cut").unwrap();
        std::fs::write(root.join("S002-20261205-000000-000.backup"), b"other").unwrap();
        std::fs::write(root.join("S001-before-upgrade.backup"), b"mine").unwrap();
        let newest = root.join("S001-20261205-125845-825.backup");
        let gone = prune(&root, "S001", 2, &newest).unwrap();
        assert_eq!(gone.len(), 3, "{gone:?}");
        let kept = list(&root, "S001").unwrap();
        assert_eq!(kept.len(), 2);
        assert_eq!(kept[1], newest);
        assert!(root.join("S002-20261205-000000-000.backup").exists());
        assert!(
            root.join("S001-before-upgrade.backup").exists(),
            "not named by time"
        );
        // The one just taken stays even when a clock that was ahead named the others later.
        let taken = write(&root, &file_name("S001", 1_700_000_000_000), &[]).file;
        let gone = prune(&root, "S001", 1, &taken).unwrap();
        assert_eq!(gone.len(), 2, "{gone:?}");
        assert_eq!(list(&root, "S001").unwrap(), vec![taken]);
        let _ = std::fs::remove_dir_all(&root);
    }
}
