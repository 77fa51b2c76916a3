-- 跨店清分 for BI tools: per business day, what each store owes another for stored value its
-- members prepaid at the one and spent at the other (and back for returns), in yuan. A mirror
-- of headquarters' settlement cells (`protocol::settlement::cells`: the same matching as
-- GET /api/v1/settlement), written in each batch's transaction and refilled on a rebuild. A
-- store's row with itself is stored value spent where it was paid: nothing to settle.
CREATE TABLE bi_settlement (
    business_date DATE           NOT NULL,
    payer         TEXT           NOT NULL,
    payee         TEXT           NOT NULL,
    principal     NUMERIC(18, 2) NOT NULL,
    bonus         NUMERIC(18, 2) NOT NULL,
    PRIMARY KEY (business_date, payer, payee)
);

-- 跨店清分: per business day, payer store owes payee store principal (and bonus, which a
-- chain may or may not settle: `include_bonus` on the settlement screen).
CREATE VIEW bi.settlement AS
SELECT business_date, payer AS payer_store, payee AS payee_store, principal, bonus,
       principal + bonus AS total
FROM bi_settlement
WHERE payer <> payee;
