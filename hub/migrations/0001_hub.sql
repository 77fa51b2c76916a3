-- Headquarters' state on PostgreSQL (hub::storage::pg), version 1: the same records the sled
-- store keeps under its key prefixes (hub/src/storage/mod.rs), one table each. Values that are
-- the hub's own encodings (postcard) stay bytea; what a person or a report reads by (store,
-- member, state, time) is a column. Only SQL that CockroachDB and YugabyteDB accept as well.

-- meta: the index key that blinds phones and search terms, the derived state's version.
CREATE TABLE hub_meta (
    key   TEXT PRIMARY KEY,
    value BYTEA NOT NULL
);

-- Each store's verified log, entry by entry (log/<store>\0<seq>).
CREATE TABLE store_log (
    store TEXT   NOT NULL,
    seq   BIGINT NOT NULL,
    entry BYTEA  NOT NULL,
    PRIMARY KEY (store, seq)
);

-- Each store's chain tip and sync status (tip/, st/).
CREATE TABLE stores (
    store         TEXT PRIMARY KEY,
    tip           BYTEA  NOT NULL,
    acked_seq     BIGINT NOT NULL,
    log_len       BIGINT NOT NULL,
    last_entry_ms BIGINT NOT NULL,
    last_sync_ms  BIGINT NOT NULL
);

-- The feed stores receive (feed/<position>), its length in hub_meta.
CREATE TABLE feed (
    position BIGINT PRIMARY KEY,
    origin   TEXT  NOT NULL,
    entry    BYTEA NOT NULL
);

-- The member directory: each record sealed under the member's key (m/), the phone index (p/,
-- blinded), 会员搜索's index (sx/, blinded terms), members' keys (k/), erased members' tombstones
-- with the hashes of their changes (e/).
CREATE TABLE members (
    member_id TEXT PRIMARY KEY,
    record    BYTEA NOT NULL
);
CREATE TABLE member_phones (
    phone_blind TEXT PRIMARY KEY,
    member_id   TEXT NOT NULL
);
CREATE TABLE member_search (
    key BYTEA PRIMARY KEY
);
CREATE TABLE member_keys (
    member_id TEXT PRIMARY KEY,
    key       BYTEA NOT NULL
);
CREATE TABLE erased_members (
    member_id TEXT PRIMARY KEY,
    changes   BYTEA NOT NULL
);

-- Each member's wallet as headquarters knows it (w/).
CREATE TABLE wallets (
    member_id TEXT PRIMARY KEY,
    wallet    BYTEA NOT NULL
);

-- Derived views by key (v/): inventory, marketing, referral, gifts, report cells.
CREATE TABLE views (
    key   BYTEA PRIMARY KEY,
    value BYTEA NOT NULL
);

-- Holds and fences (fence/), revoked certificates (revoked/), the routed feed's follows (follow/).
CREATE TABLE fences (
    store TEXT PRIMARY KEY,
    fence BYTEA NOT NULL
);
CREATE TABLE revocations (
    store      TEXT PRIMARY KEY,
    revocation BYTEA NOT NULL
);
CREATE TABLE follows (
    member_id TEXT NOT NULL,
    store     TEXT NOT NULL,
    PRIMARY KEY (member_id, store)
);

-- 消息: the outbox (ob/…): each notice with its delivery, by state, queue and due time.
CREATE TABLE notices (
    id       TEXT PRIMARY KEY,
    notice   BYTEA    NOT NULL,
    delivery BYTEA    NOT NULL,
    state    TEXT     NOT NULL,
    queue    SMALLINT NOT NULL,
    next_ms  BIGINT   NOT NULL,
    made_ms  BIGINT   NOT NULL
);
CREATE INDEX notices_due ON notices (state, queue, next_ms, id);
CREATE INDEX notices_made ON notices (made_ms, id);
-- Marketing messages sent to a member on a day (ob/c/).
CREATE TABLE marketing_sent (
    day       DATE    NOT NULL,
    member_id TEXT    NOT NULL,
    sent      INTEGER NOT NULL,
    PRIMARY KEY (day, member_id)
);

-- Batches appended, counted in each batch's own transaction (n = n + 1 where n is what the hub
-- expects), and the count the last flush found (flushed). A batch whose commit's answer was
-- lost is known committed or not by n; a flush whose row does not find n as expected knows
-- the database lost batches (a crash lost asynchronous commits), and the hub stops. The flush's
-- synchronous commit of this row waits for the WAL of every batch before it.
CREATE TABLE hub_appends (
    id      INTEGER PRIMARY KEY,
    n       BIGINT NOT NULL,
    flushed BIGINT NOT NULL
);
INSERT INTO hub_appends (id, n, flushed) VALUES (1, 0, 0);
