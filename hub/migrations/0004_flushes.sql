-- Appends are written behind the ingest while a flush may be waiting for the WAL
-- (`hub/src/storage/pg/pipe.rs`). The flush therefore no longer updates hub_appends' row,
-- whose lock every batch's transaction takes (a batch would wait for the flush's WAL): it
-- reads n without a lock, checks that no batch it expects is missing, and commits a row of
-- its own synchronously (`flush.rs`).
ALTER TABLE hub_appends DROP COLUMN flushed;
CREATE TABLE hub_flushes (
    id      INTEGER PRIMARY KEY,
    flushed BIGINT NOT NULL
);
INSERT INTO hub_flushes (id, flushed) VALUES (1, 0);
