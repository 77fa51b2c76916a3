-- Two or more hub processes on one database: one is active at a time. The active one holds
-- this row's lease (renewed every second; until_ms by the database's clock), and every write
-- transaction of the hub first reads the row FOR SHARE and checks its epoch: a hub that lost
-- the lease (a standby took it over once it ran out) can write nothing more.
CREATE TABLE hub_lease (
    id       INTEGER PRIMARY KEY,
    holder   TEXT   NOT NULL,
    epoch    BIGINT NOT NULL,
    until_ms BIGINT NOT NULL
);
INSERT INTO hub_lease (id, holder, epoch, until_ms) VALUES (1, '', 0, 0);
