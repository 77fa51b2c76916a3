//! The messages on the wire, each end's, and their limits.

use super::*;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum StoreMsg {
    /// First message: what the store speaks, who it says it is, how long its log is, and how
    /// much of the hub's feed it has applied.
    Hello {
        versions: Vec<u16>,
        store: StoreId,
        log_len: u64,
        feed_applied: u64,
    },
    /// Consecutive entries of the store's own log, encoded (`Entry::encode`).
    Push { log_len: u64, entries: Vec<Vec<u8>> },
    /// The store needs spend rights it does not hold (a member paying here whose balance is
    /// held elsewhere).
    Ask(Ask),
    /// Version 2's push: consecutive entries with `prev_hash` zeroed (it is what the hub's copy
    /// of the log says it is), and `tip`, the hash of the last entry as the store wrote it.
    PushChained {
        log_len: u64,
        tip: EntryHash,
        entries: Vec<Vec<u8>>,
    },
    /// Version 3's ask: with what the store holds of each wanted counter, and how long its
    /// log was when it did.
    AskHolding {
        ask: Ask,
        log_len: u64,
        held: Vec<u64>,
    },
    /// Version 4: the store's clock (ms since the epoch) when it heard the hub's, so
    /// headquarters sees a store whose clock is off.
    Clock { now_ms: u64 },
    /// Version 5: the keys of the members the next push registers.
    Keys(Vec<(MemberId, MemberKey)>),
    /// Version 7: the store met these members (it wrote for them, was granted their rights, or
    /// a till looked them up): send it their wallet changes from now on, and once what came
    /// before ([`HubMsg::Backfill`]). At most [`FOLLOW_MAX`].
    Follow(Vec<MemberId>),
    /// Version 9: a certificate signing request (PKCS #10, DER) for a new certificate of this
    /// store, under a key made on the store's PC (the key never leaves it). At most
    /// [`CSR_BYTES_MAX`].
    Renew { csr: Vec<u8> },
}

/// The largest certificate signing request a store may send.
pub const CSR_BYTES_MAX: usize = 16 * 1024;

/// The most members one [`StoreMsg::Follow`] may name.
pub const FOLLOW_MAX: usize = 256;

/// A store's request for rights: `wants` units of each counter of `member`'s wallet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ask {
    /// Derived from the till's idempotency key, so a retry is the same ask.
    pub id: TxId,
    pub member: MemberId,
    pub wants: Vec<(Counter, u64)>,
    /// What the store holds (version 3; `None` from an older store, and for headquarters' own
    /// placements). On the wire it travels beside the ask ([`StoreMsg::AskHolding`]).
    #[serde(skip)]
    pub holding: Option<Holding>,
}

/// What a store held of each counter it asks for (`held`, in the order of `wants`) when its
/// log had `log_len` entries. Headquarters serves the ask once it holds that much of the log,
/// so it knows every spend the store made; then rights it moved there that the store had not
/// yet seen count toward the ask. Without this, a store that asked while a grant (a placement
/// ahead of need) was on its way was refused: headquarters counted the rights as there already.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holding {
    pub log_len: u64,
    pub held: Vec<u64>,
}

impl Ask {
    /// What the store still needs moved to it, given what headquarters thinks it holds of
    /// each counter (`held_at_hq`): the store aims at what it held plus what it wants.
    pub fn needs(&self, held_at_hq: impl Fn(&Counter) -> u64) -> Vec<(Counter, u64)> {
        let Some(holding) = &self.holding else {
            return self.wants.clone();
        };
        self.wants
            .iter()
            .zip(&holding.held)
            .map(|((counter, want), held)| {
                let aim = held.saturating_add(*want);
                (counter.clone(), aim.saturating_sub(held_at_hq(counter)))
            })
            .filter(|(_, need)| *need > 0)
            .collect()
    }
}

/// How the hub answered an [`Ask`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum AskAnswer {
    /// Headquarters granted the rights in an entry of its log at feed position `feed_upto`:
    /// apply the feed that far, then spend.
    Granted {
        feed_upto: u64,
    },
    Refused {
        reason: String,
    },
    /// Version 6: the balance would cover it, but the rights headquarters lacks are at these
    /// stores, which cannot be reached now (or did not hand them back in time; then the list
    /// may be empty). The store's offline overdraft policy may decide, as when headquarters
    /// itself is out of reach. Before version 6 this is sent as `Refused`.
    Unreachable {
        holders: Vec<StoreId>,
    },
}

impl AskAnswer {
    /// The answer as a store speaking `version` can read it.
    pub fn for_version(self, version: u16) -> AskAnswer {
        match self {
            AskAnswer::Unreachable { holders } if version < 6 => AskAnswer::Refused {
                reason: unreachable_reason(&holders),
            },
            answer => answer,
        }
    }
}

/// Why rights could not be moved when their holders are out of reach, in words.
pub fn unreachable_reason(holders: &[StoreId]) -> String {
    match holders {
        [] => "the stores holding these rights did not hand them back in time".to_owned(),
        _ => {
            let names: Vec<&str> = holders.iter().map(StoreId::as_str).collect();
            format!(
                "the rights are held at {}, which headquarters cannot reach now",
                names.join(", ")
            )
        }
    }
}

/// Headquarters asks a store to hand back up to `units` of a counter it holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recall {
    pub id: TxId,
    pub member: MemberId,
    pub counter: Counter,
    pub units: u64,
}

/// A store may ask for at most this many counters at once.
pub const ASK_WANTS_MAX: usize = 16;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeedItem {
    pub position: u64,
    #[serde(with = "serde_bytes")]
    pub entry: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum HubMsg {
    /// Answer to `Hello`: the last seq of this store's log the hub holds durably.
    Welcome {
        version: u16,
        acked_seq: u64,
    },
    /// Everything up to `seq` is durable at the hub.
    Ack {
        seq: u64,
    },
    /// Feed items; the store has seen the feed up to `upto` once it applies them (items from
    /// the store's own origin are not sent back, so `upto` can run ahead of the last item).
    Feed {
        upto: u64,
        items: Vec<FeedItem>,
    },
    /// The hub refuses the session; it closes the connection after this.
    Refuse {
        reason: String,
    },
    Answer {
        id: TxId,
        answer: AskAnswer,
    },
    Recall(Recall),
    /// Version 4: the hub's clock (ms since the epoch) as it welcomed the store: the chain's
    /// time, which a store whose own clock is off goes by.
    Clock {
        now_ms: u64,
    },
    /// Version 5: the keys of the members the next feed batch registers or erases; `None` for
    /// a member headquarters erased.
    Keys(Vec<(MemberId, Option<MemberKey>)>),
    /// Version 7: a followed member's wallet changes in the feed so far, up to feed position
    /// `upto` (whatever the store's position; some it may hold already). Several messages for
    /// one member end with `last`.
    Backfill {
        member: MemberId,
        upto: u64,
        items: Vec<FeedItem>,
        last: bool,
    },
    /// Version 8: entries of the store's own log it does not hold, next in order, from
    /// headquarters' copy (the store is behind it); once they are in, the store has seen the
    /// feed up to `upto` (the position of the last of them that was in the feed).
    Restore {
        upto: u64,
        entries: Vec<Vec<u8>>,
    },
    /// Version 9: the answer to `Renew`: the new certificate and its issuer's (DER, the
    /// store's first), for the next connection.
    Renewed {
        chain: Vec<Vec<u8>>,
    },
    /// Version 9: headquarters will not renew the certificate, and why.
    RenewRefused {
        reason: String,
    },
}

/// The most keys one `Keys` message may carry: one per entry of a push or feed batch.
pub const KEYS_MAX: usize = 4 * PUSH_ENTRIES_MAX;
