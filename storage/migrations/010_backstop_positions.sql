-- The backstop's own positions (collectors.inventory.BackstopPosition): what an insurance fund or liquidator
-- vault holds at each snapshot (Hyperliquid HLP Liquidator, Orderly insurance fund). Written in the same
-- transaction as the holder's fund row (fund_balances.pool_id = holder, same ts): positions at the newest
-- snapshot fund row are the current inventory; none at that ts = flat.
-- Idempotency: (venue, holder, contract, ts) through the writer's anti-join.
CREATE TABLE backstop_positions (
    venue           VARCHAR     NOT NULL,
    holder          VARCHAR     NOT NULL,
    contract        VARCHAR     NOT NULL,
    ts              TIMESTAMPTZ NOT NULL,   -- snapshot (venue time)
    size            DOUBLE      NOT NULL,   -- signed base quantity: + long, - short
    size_raw        VARCHAR     NOT NULL,   -- as served
    entry_price     DOUBLE,
    mark_price      DOUBLE,
    unrealised_pnl  DOUBLE,                 -- settle asset
    notional_usd    DOUBLE,                 -- |size| x mark
    settle_asset    VARCHAR     NOT NULL,
    fetched_at      TIMESTAMPTZ NOT NULL
);
