//! How many batches sled had made durable, kept beside sled's own files, so a store that comes
//! back from sled's recovery without the last of them is refused instead of served.
//!
//! sled 0.34 replays its log at open and takes a message that fails its CRC for the end of
//! what was written (a torn write), and opens without error, short of every write after it in
//! the log's last segment. Each batch numbers itself (`written`), and each flush, once sled and
//! `fdatasync` have made it durable, records the number it covered in `FILE`. At open, a
//! number in sled below the recorded one means durable writes were lost. The record is written
//! after the flush and never synced by itself, so it can only lag what is durable (a power cut
//! may leave it older, or unreadable, which is ignored), never lead it.

use std::fs::File;
use std::io::{self, Read, Seek, Write};
use std::path::Path;

/// The record's file in the store's directory (a name sled does not read).
const FILE: &str = "durable-batches";

/// The record: the number (u64, little-endian) and its CRC-32 (u32, little-endian).
const LEN: usize = 12;

pub(super) struct DurableMark {
    file: File,
}

impl DurableMark {
    /// Opens (or creates) the record in `dir`, with the number it holds, if it reads whole.
    pub(super) fn open(dir: &Path) -> io::Result<(Self, Option<u64>)> {
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(dir.join(FILE))?;
        let mut bytes = Vec::with_capacity(LEN);
        file.read_to_end(&mut bytes)?;
        Ok((Self { file }, decode(&bytes)))
    }

    /// Records that batches up to `batches` are durable.
    pub(super) fn record(&mut self, batches: u64) -> io::Result<()> {
        self.file.seek(io::SeekFrom::Start(0))?;
        self.file.write_all(&encode(batches))
    }
}

fn encode(batches: u64) -> [u8; LEN] {
    let number = batches.to_le_bytes();
    let mut record = [0; LEN];
    record[..8].copy_from_slice(&number);
    record[8..].copy_from_slice(&crc32fast::hash(&number).to_le_bytes());
    record
}

fn decode(bytes: &[u8]) -> Option<u64> {
    let record: &[u8; LEN] = bytes.try_into().ok()?;
    let (number, crc) = record.split_at(8);
    (crc32fast::hash(number).to_le_bytes() == crc).then(|| {
        let mut n = [0; 8];
        n.copy_from_slice(number);
        u64::from_le_bytes(n)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_reads_back_and_a_torn_one_reads_as_none() {
        assert_eq!(decode(&encode(0)), Some(0));
        assert_eq!(decode(&encode(123_456_789)), Some(123_456_789));
        assert_eq!(decode(&[]), None);
        assert_eq!(decode(&encode(7)[..11]), None);
        let mut flipped = encode(7);
        flipped[3] ^= 1;
        assert_eq!(decode(&flipped), None);
    }
}
