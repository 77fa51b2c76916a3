//! Frames and bodies: the length prefix, postcard, deflate from version 2, and member changes
//! thin on the wire from version 3 (made whole again at the receiving end).

use super::*;

/// A message as bytes on the stream: a 4-byte big-endian length, then postcard.
pub fn encode_frame<T: Serialize>(msg: &T) -> Vec<u8> {
    Codec::PLAIN.encode(msg)
}

/// The best version both ends speak, if any.
pub fn negotiate(offered: &[u16]) -> Option<u16> {
    VERSIONS.iter().copied().find(|v| offered.contains(v))
}

/// An encoded entry as a push under `version` (2 or later) carries it: `prev_hash` zeroed (32
/// bytes that deflate to almost nothing) and, from version 3, a member change made thin
/// ([`crate::thin`]). Bytes that do not decode go as they are, for the hub to refuse.
pub(super) fn for_push(bytes: &[u8], version: u16) -> Vec<u8> {
    match Entry::decode(bytes) {
        Ok(mut entry) => {
            entry.prev_hash = EntryHash::GENESIS;
            if version >= 3 {
                thin_in(&mut entry);
            }
            entry.encode()
        }
        Err(_) => bytes.to_vec(),
    }
}

/// An encoded entry with its member change made thin ([`crate::thin`]), as the feed carries it
/// from version 3; anything else as it is.
pub(super) fn thin_entry(bytes: Vec<u8>) -> Vec<u8> {
    let Ok(mut entry) = Entry::decode(&bytes) else {
        return bytes;
    };
    match thin_in(&mut entry) {
        true => entry.encode(),
        false => bytes,
    }
}

/// Makes `entry`'s member change thin; false when it changes no member.
pub(super) fn thin_in(entry: &mut Entry) -> bool {
    let Some((_, change)) = member_change(&mut entry.payload) else {
        return false;
    };
    *change = crate::thin::thin(change);
    true
}

/// Makes `entry`'s member change whole, if it has one; returns the member and the change.
pub(super) fn thicken_in(
    entry: &mut Entry,
    mut known: impl FnMut(&MemberId, &[u8; crate::thin::HASH_KEPT]) -> Option<[u8; 32]>,
) -> Result<Option<(MemberId, &[u8])>, crate::thin::UnknownDependency> {
    let Some((member, change)) = member_change(&mut entry.payload) else {
        return Ok(None);
    };
    *change = crate::thin::thicken(change, |prefix| known(&member, prefix))?;
    Ok(Some((member, change)))
}

/// An encoded entry with its member change made whole again ([`crate::thin::thicken`]), the
/// dependencies found by `known` (the receiver's change of that member whose hash starts with
/// the given bytes). Bytes that do not decode, and entries that change no member, come back as
/// they are.
pub fn thicken_entry(
    bytes: Vec<u8>,
    known: impl FnMut(&MemberId, &[u8; crate::thin::HASH_KEPT]) -> Option<[u8; 32]>,
) -> Result<Vec<u8>, crate::thin::UnknownDependency> {
    let Ok(mut entry) = Entry::decode(&bytes) else {
        return Ok(bytes);
    };
    match thicken_in(&mut entry, known)? {
        Some(_) => Ok(entry.encode()),
        None => Ok(bytes),
    }
}

pub(super) fn member_change(payload: &mut Payload) -> Option<(MemberId, &mut Vec<u8>)> {
    match payload {
        Payload::MemberRegistered { member_id, change }
        | Payload::MemberEdited { member_id, change } => Some((*member_id, change)),
        _ => None,
    }
}

/// The entries of a version 3 push with their member changes made whole again: a dependency is
/// found among the changes earlier in the push or by `known` (the receiver's changes of that
/// member whose hash starts with the given bytes). Bytes that do not decode go as they are, for
/// the session to refuse.
pub(super) fn thicken_push(
    entries: Vec<Vec<u8>>,
    mut known: impl FnMut(&MemberId, &[u8; crate::thin::HASH_KEPT]) -> Option<[u8; 32]>,
) -> Result<Vec<Vec<u8>>, SyncError> {
    let mut earlier: Vec<(MemberId, [u8; 32])> = Vec::new();
    entries
        .into_iter()
        .map(|bytes| {
            let Ok(mut entry) = Entry::decode(&bytes) else {
                return Ok(bytes);
            };
            let thickened = thicken_in(&mut entry, |member, prefix| {
                earlier
                    .iter()
                    .find(|(m, h)| m == member && h.starts_with(prefix))
                    .map(|(_, h)| *h)
                    .or_else(|| known(member, prefix))
            })
            .map_err(|e| SyncError::Malformed(e.to_string()))?;
            let Some((member, change)) = thickened else {
                return Ok(bytes);
            };
            if let Some(hash) = crate::thin::change_hash(change) {
                earlier.push((member, hash));
            }
            Ok(entry.encode())
        })
        .collect()
}

/// How frame bodies are written on a session: plain postcard until the versions are agreed and
/// under version 1, deflated postcard under version 2.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Codec {
    deflate: bool,
    /// Deflate's level for what this end writes (reading does not depend on it).
    level: u32,
}

impl Codec {
    pub const PLAIN: Codec = Codec {
        deflate: false,
        level: 6,
    };

    /// The codec of the frames after `Hello` / `Welcome` under `version`.
    pub fn for_version(version: u16) -> Codec {
        Codec {
            deflate: version >= 2,
            ..Codec::PLAIN
        }
    }

    /// Deflate's fastest level: for the hub's feed, which it writes once for every store
    /// that reads it.
    pub fn fast(self) -> Codec {
        Codec { level: 1, ..self }
    }

    /// A frame: a 4-byte big-endian length, then the body.
    ///
    /// # Panics
    /// If postcard cannot serialise the message (a type it does not support: a bug) or deflate
    /// fails writing into memory; an empty frame must never stand for a message.
    #[allow(clippy::expect_used)]
    pub fn encode<T: Serialize>(&self, msg: &T) -> Vec<u8> {
        let mut body = postcard::to_stdvec(msg).expect("every sync message serialises");
        if self.deflate {
            let mut z = flate2::write::DeflateEncoder::new(
                Vec::with_capacity(body.len() / 2),
                flate2::Compression::new(self.level),
            );
            z.write_all(&body).expect("deflating into memory");
            body = z.finish().expect("deflating into memory");
        }
        let mut frame = Vec::with_capacity(4 + body.len());
        frame.extend((body.len() as u32).to_be_bytes());
        frame.extend(body);
        frame
    }

    /// The codec of the store's frames after `msg`, as the hub reads them: a `Hello` settles it.
    pub fn after_store_msg(self, msg: &StoreMsg) -> Codec {
        match msg {
            StoreMsg::Hello { versions, .. } => {
                Codec::for_version(negotiate(versions).unwrap_or(1))
            }
            _ => self,
        }
    }

    /// The codec of the hub's frames after `msg`, as the store reads them: a `Welcome` settles
    /// it.
    pub fn after_hub_msg(self, msg: &HubMsg) -> Codec {
        match msg {
            HubMsg::Welcome { version, .. } => Codec::for_version(*version),
            _ => self,
        }
    }

    pub fn decode<T: DeserializeOwned>(&self, body: &[u8]) -> Result<T, SyncError> {
        if !self.deflate {
            return decode_body(body);
        }
        let mut plain = Vec::new();
        let read = flate2::read::DeflateDecoder::new(body)
            .take(INFLATED_BYTES_MAX as u64 + 1)
            .read_to_end(&mut plain)
            .map_err(|e| SyncError::Malformed(format!("deflate: {e}")))?;
        if read > INFLATED_BYTES_MAX {
            return Err(SyncError::FrameTooLarge(read));
        }
        decode_body(&plain)
    }
}

/// Reads a frame's length prefix, refusing oversized frames before anything is allocated.
pub fn frame_len(prefix: [u8; 4]) -> Result<usize, SyncError> {
    let len = u32::from_be_bytes(prefix) as usize;
    if len > FRAME_BYTES_MAX {
        Err(SyncError::FrameTooLarge(len))
    } else {
        Ok(len)
    }
}

pub fn decode_body<'a, T: Deserialize<'a>>(body: &'a [u8]) -> Result<T, SyncError> {
    postcard::from_bytes(body).map_err(|e| SyncError::Malformed(e.to_string()))
}

/// The framing decoder both ends of a session use, sans IO: the shell hands it the bytes it
/// read from the stream, in whatever pieces they came; it yields each whole message, refuses a
/// length over [`FRAME_BYTES_MAX`] as soon as the prefix is in (before the body is buffered),
/// and follows the codec the `Hello`/`Welcome` agree.
#[derive(Debug)]
pub struct Frames {
    buf: Vec<u8>,
    codec: Codec,
}

impl Default for Frames {
    fn default() -> Self {
        Self {
            buf: Vec::new(),
            codec: Codec::PLAIN,
        }
    }
}

impl Frames {
    /// Bytes read from the stream.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The next whole frame's body, if it has all arrived.
    fn body(&mut self) -> Result<Option<Vec<u8>>, SyncError> {
        let Some(prefix) = self.buf.first_chunk::<4>() else {
            return Ok(None);
        };
        let len = frame_len(*prefix)?;
        if self.buf.len() < 4 + len {
            return Ok(None);
        }
        let body = self.buf[4..4 + len].to_vec();
        self.buf.drain(..4 + len);
        Ok(Some(body))
    }

    /// The store's next message (the hub's end).
    pub fn store_msg(&mut self) -> Result<Option<StoreMsg>, SyncError> {
        let Some(body) = self.body()? else {
            return Ok(None);
        };
        let msg = self.codec.decode(&body)?;
        self.codec = self.codec.after_store_msg(&msg);
        Ok(Some(msg))
    }

    /// The hub's next message (the store's end).
    pub fn hub_msg(&mut self) -> Result<Option<HubMsg>, SyncError> {
        let Some(body) = self.body()? else {
            return Ok(None);
        };
        let msg = self.codec.decode(&body)?;
        self.codec = self.codec.after_hub_msg(&msg);
        Ok(Some(msg))
    }

    /// The peer finished the stream: cleanly only between frames.
    pub fn finish(&self) -> Result<(), SyncError> {
        match self.buf.len() {
            0 => Ok(()),
            n => Err(SyncError::Link(format!(
                "the stream ended inside a frame ({n} bytes of it)"
            ))),
        }
    }
}
