-- Reports for BI tools (Metabase, Superset, Excel): the read-only schema `bi`, its views over
-- tables headquarters fills as it takes in each batch (bi_*), in the units a person reads
-- (yuan as NUMERIC, times as timestamptz, business dates). No personal data beyond a masked
-- phone (PIPL): names, phone numbers and birthdays stay sealed in `members`. The role
-- `hub_bi` (made at the hub's start when its login may) may read `bi` and nothing else; a
-- chain grants it to the login its tools use (README, "Headquarters on PostgreSQL").

-- One row per sale or return, from the store's log (as the 报表 cells count them).
CREATE TABLE bi_sales (
    store         TEXT    NOT NULL,
    seq           BIGINT  NOT NULL,
    sale_id       TEXT    NOT NULL,
    kind          TEXT    NOT NULL,
    business_date DATE    NOT NULL,
    at_ms         BIGINT  NOT NULL,
    member_id     TEXT,
    staff         TEXT    NOT NULL,
    gross         NUMERIC(18, 2) NOT NULL,
    discount      NUMERIC(18, 2) NOT NULL,
    net           NUMERIC(18, 2) NOT NULL,
    returned      NUMERIC(18, 2) NOT NULL,
    points        BIGINT  NOT NULL,
    PRIMARY KEY (store, seq)
);
CREATE INDEX bi_sales_by_date ON bi_sales (business_date, store);

-- Each member as a report may show them.
CREATE TABLE bi_members (
    member_id         TEXT PRIMARY KEY,
    phone_masked      TEXT    NOT NULL,
    home_store        TEXT    NOT NULL,
    tier              TEXT    NOT NULL,
    join_date         DATE    NOT NULL,
    card_status       TEXT    NOT NULL,
    marketing_consent BOOLEAN NOT NULL
);

-- Each member's balances as headquarters knows them.
CREATE TABLE bi_wallets (
    member_id TEXT PRIMARY KEY,
    principal NUMERIC(18, 2) NOT NULL,
    bonus     NUMERIC(18, 2) NOT NULL,
    points    BIGINT NOT NULL,
    owed      NUMERIC(18, 2) NOT NULL
);

CREATE SCHEMA bi;

-- 门店: each store's sync, as headquarters holds it.
CREATE VIEW bi.stores AS
SELECT store AS store_id, acked_seq AS entries_held, log_len AS entries_reported,
       to_timestamp(last_entry_ms / 1000.0) AS last_entry_at,
       to_timestamp(last_sync_ms / 1000.0) AS last_sync_at
FROM stores;

-- 销售明细: every sale (kind 'sale') and return (kind 'return'), in yuan.
CREATE VIEW bi.sales AS
SELECT store AS store_id, sale_id, kind, business_date, to_timestamp(at_ms / 1000.0) AS at,
       member_id, staff AS staff_id, gross, discount, net, returned, points
FROM bi_sales;

-- 销售日报: per store and business day, as headquarters' sales report sums it.
CREATE VIEW bi.daily_sales AS
SELECT store AS store_id, business_date,
       sum(CASE WHEN kind = 'sale' THEN 1 ELSE 0 END) AS sales,
       sum(CASE WHEN kind = 'sale' AND member_id IS NOT NULL THEN 1 ELSE 0 END) AS member_sales,
       sum(gross) AS gross, sum(discount) AS discount, sum(net) AS net,
       sum(CASE WHEN kind = 'return' THEN 1 ELSE 0 END) AS returns,
       sum(returned) AS returned, sum(net) - sum(returned) AS net_of_returns
FROM bi_sales
GROUP BY store, business_date;

-- 会员: no name, phone or birthday.
CREATE VIEW bi.members AS
SELECT member_id, phone_masked, home_store, tier, join_date, card_status, marketing_consent
FROM bi_members;

-- 会员余额: stored value (principal and bonus), points, offline overdrafts owed.
CREATE VIEW bi.wallets AS
SELECT member_id, principal, bonus, principal + bonus AS stored_value, points, owed
FROM bi_wallets;

-- 负债: what the chain owes its members, chain-wide.
CREATE VIEW bi.liabilities AS
SELECT count(*) AS members_with_wallets, coalesce(sum(principal), 0) AS principal,
       coalesce(sum(bonus), 0) AS bonus, coalesce(sum(principal + bonus), 0) AS stored_value,
       coalesce(sum(points), 0) AS points, coalesce(sum(owed), 0) AS receivables
FROM bi_wallets;
