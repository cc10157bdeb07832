"""Gate futures: parsers on the documented examples, then end to end through ccxt against the simulator."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from backstop.service import Collector
from collectors.gate import (
    GateContract,
    insurance_poll_limit,
    parse_contract_stats,
    parse_insurance,
    parse_liquidation_totals,
    parse_tickers,
)
from simulator.market_state import DAY_MS, SimLiquidation
from storage.db import read_connection
from tests.conftest import example_raw, settings_for

DIR = "gate"
BTC_USDT = GateContract("BTC_USDT", "BTC", "USDT", Decimal("0.0001"), False, 28_800, 1_610_035_200)
BTC_USD = GateContract("BTC_USD", "BTC", "BTC", Decimal(1), True, 28_800, None)


def rows(db: Path, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
    """Exact values (DECIMAL stays Decimal) for assertions."""
    with read_connection(db) as con:
        return con.execute(sql, params or []).fetchall()


def test_insurance_example_seconds_and_text_balance() -> None:
    batch = parse_insurance("gate", "usdt", example_raw(DIR, "insurance_history_rest_futures_settle_insurance.json"),
                            members=["BTC_USDT", "ETH_USDT"])
    (fund,) = batch.funds
    assert fund.ts == datetime(2018, 12, 5, tzinfo=UTC)  # t=1543968000 is *seconds*
    assert fund.balance == Decimal("83.0031") and fund.balance_raw == "83.0031"
    assert (fund.pool_id, fund.asset, fund.unit_raw, fund.source) == ("futures:usdt", "USDT", "USDT", "history")
    assert {(m.pool_id, m.symbol) for m in batch.pool_members} == {("futures:usdt", "BTC_USDT"),
                                                                   ("futures:usdt", "ETH_USDT")}
    btc = parse_insurance("gate", "btc", example_raw(DIR, "insurance_history_rest_futures_settle_insurance.json"))
    assert (btc.funds[0].pool_id, btc.funds[0].asset) == ("futures:btc", "BTC")
    later = parse_insurance("gate", "usdt", example_raw(DIR, "insurance_history_rest_futures_settle_insurance.json"),
                            since=datetime(2018, 12, 6, tzinfo=UTC))
    assert later.funds == []


def test_contract_stats_example_contracts_to_base() -> None:
    payload = example_raw(DIR, "contract_stats_oi_liq_rest_futures_settle_contract_stats.json")
    oi = parse_contract_stats("gate", BTC_USDT, payload)
    assert oi is not None
    assert oi.ts == datetime(2020, 10, 28, 6, 10, tzinfo=UTC)  # time=1603865400 (seconds)
    assert (oi.oi_raw, oi.oi_unit, oi.contract_size, oi.inverse) == ("124724", "contracts", 0.0001, False)
    assert oi.oi_base == 12.4724  # 124724 contracts x 0.0001 BTC
    assert oi.oi_usd == 1511.0  # Gate's own open_interest_usd
    inverse = parse_contract_stats("gate", BTC_USD, payload)
    assert inverse is not None and inverse.inverse
    assert inverse.oi_usd == 1511.0 and inverse.oi_base == 1511 / 8865  # USD / mark
    assert parse_contract_stats("gate", BTC_USDT, []) is None


def test_contract_stats_example_liquidation_totals() -> None:
    payload = example_raw(DIR, "contract_stats_oi_liq_rest_futures_settle_contract_stats.json")
    assert parse_liquidation_totals("gate", BTC_USDT, payload) == []  # its only bucket is the running one
    [total] = parse_liquidation_totals("gate", BTC_USDT, payload, completed_only=False)
    assert total.ts == datetime(2020, 10, 28, 6, 10, tzinfo=UTC) and total.interval_s == 300
    assert (total.long_usd, total.short_usd, total.long_base, total.short_base) == (0.0, 0.0, 0.0, 0.0)
    assert (total.long_contracts_raw, total.short_contracts_raw) == ("0", "0")
    two = [dict(payload[0], time=1603865400 + 300), dict(payload[0], long_liq_usd=1234.5, long_liq_amount=0.02,
                                                          long_liq_size=200)]
    [done] = parse_liquidation_totals("gate", BTC_USDT, two)  # unsorted input; the newest is dropped
    assert done.ts == datetime(2020, 10, 28, 6, 10, tzinfo=UTC)
    assert (done.long_usd, done.long_base, done.long_contracts_raw) == (1234.5, 0.02, "200")


def test_tickers_example_funding_and_index() -> None:
    ts = datetime(2021, 1, 7, tzinfo=UTC)
    batch = parse_tickers("gate", "usdt", example_raw(DIR, "tickers_funding_rest_futures_settle_tickers.json"),
                          {"BTC_USDT": BTC_USDT}, ts)
    (funding,) = batch.funding
    assert (funding.symbol, funding.ts, funding.funding_rate, funding.funding_rate_raw) == (
        "BTC_USDT", ts, 0.0001, "0.0001")
    assert funding.mark_price == 6534.0 and funding.interval_h == 8.0
    assert funding.next_funding_ts == datetime(2021, 1, 7, 16, tzinfo=UTC)  # funding_next_apply (seconds)
    (price,) = batch.prices
    assert (price.asset, price.price_usd, price.source) == ("BTC", 6531.0, "index")
    no_meta = parse_tickers("gate", "usdt", example_raw(DIR, "tickers_funding_rest_futures_settle_tickers.json"),
                            {}, ts)
    assert no_meta.funding[0].next_funding_ts is None and no_meta.funding[0].interval_h is None


def test_insurance_poll_limit_asks_only_for_new_rows() -> None:
    now = datetime(2025, 6, 1, 12, tzinfo=UTC)
    assert insurance_poll_limit(None, now) == 100
    assert insurance_poll_limit(now - timedelta(days=1, hours=12), now) == 4
    assert insurance_poll_limit(now - timedelta(days=5000), now) == 1000


def test_collect_cycle_stores_what_the_simulator_served(sim_factory, tmp_path) -> None:
    sim = sim_factory(["gate"])
    settings = settings_for(sim, tmp_path / "g.duckdb", ["gate"])
    market = sim.market
    venue = market.venue("gate")
    served_oi = {c.symbol: (c.oi_contracts, c.contract_size, c.inverse) for c in venue.contracts.values()}
    served_funding = {c.symbol: format(c.funding_rate.normalize(), "f") for c in venue.contracts.values()}
    served_prices = {asset: float(market.price(asset)) for asset in ("BTC", "ETH", "SOL")}

    bucket_ms = market.now_ms() // 300_000 * 300_000 - 300_000  # the last completed 5-minute bucket
    venue.liquidations.append(SimLiquidation("t1", "ETH_USDT", bucket_ms + 1_000, "long", Decimal(250),
                                             Decimal(2900), Decimal(2890), Decimal(0)))
    venue.liquidations.append(SimLiquidation("t2", "BTC_USD", bucket_ms + 2_000, "short", Decimal(700),
                                             Decimal(70000), Decimal(70000), Decimal(0)))

    async def cycles() -> tuple[int, int]:
        collector = Collector.for_venues(settings)
        async with collector.running():
            first = await collector.run_cycle()
            assert {o.status for o in first} == {"ok"}, [o.error_message for o in first]
            again = await collector.run_cycle()
            unchanged = sum(o.rows_written for o in again if o.dataset == "funds")
            market.fast_forward(DAY_MS)  # the model publishes the next daily row of each book
            funds = await collector.run_one("gate", "funds")
            return unchanged, funds.rows_written

    unchanged, new_rows = asyncio.run(cycles())
    assert unchanged == 0 and new_rows == 2  # exactly the new row of each book
    db = settings.db
    for pool in venue.pools.values():
        stored = rows(db, "SELECT epoch_ms(ts), balance, balance_raw FROM fund_balances "
                          "WHERE venue='gate' AND pool_id=? ORDER BY ts", [pool.pool_id])
        assert [(ts, balance) for ts, balance, _ in stored] == pool.history  # 91 daily rows, < Gate's 100
        assert stored[-1][2] == format(pool.history[-1][1].normalize(), "f")  # "b" is text: kept verbatim
    members = rows(db, "SELECT symbol FROM fund_pool_members WHERE pool_id='futures:btc'")
    assert members == [("BTC_USD",)]
    (btc_usd_source,) = rows(db, "SELECT DISTINCT usd_source FROM fund_balances WHERE pool_id='futures:btc' "
                                 "AND ts >= now() - INTERVAL 30 HOUR")  # within the ±36 h price window
    assert btc_usd_source == ("price",)  # valued from the index price Gate served

    stored_oi = {r[0]: r[1:] for r in rows(db, "SELECT symbol, oi_raw, oi_base, oi_usd, inverse FROM open_interest")}
    assert stored_oi.keys() == served_oi.keys()
    for symbol, (contracts, size, inverse) in served_oi.items():
        oi_raw, oi_base, oi_usd, stored_inverse = stored_oi[symbol]
        assert oi_raw == str(contracts) and stored_inverse == inverse
        if inverse:
            assert oi_usd == float(contracts)  # 1 USD per contract
        else:
            assert oi_base == float(contracts * size)
    assert dict(rows(db, "SELECT symbol, funding_rate_raw FROM funding_rates")) == served_funding
    totals = rows(db, "SELECT symbol, epoch_ms(ts), long_usd, short_usd, long_base, short_base, long_contracts_raw "
                      "FROM liquidation_totals ORDER BY symbol, ts")
    assert {(t[0], t[1]) for t in totals} == {(symbol, bucket_ms - k * 300_000)
                                              for symbol in served_oi for k in (0, 1)}  # completed buckets only
    by_key = {(t[0], t[1]): t[2:] for t in totals}
    assert by_key[("ETH_USDT", bucket_ms)] == (250 * 0.01 * 2890, 0.0, 2.5, 0.0, "250")  # contracts x 0.01 ETH
    assert by_key[("BTC_USD", bucket_ms)] == (0.0, 700.0, 0.0, 0.01, "0")  # inverse: 700 USD = 0.01 BTC at 70k
    assert sum(t[2] + t[3] for t in totals) == by_key[("ETH_USDT", bucket_ms)][0] + 700.0
    assert dict(rows(db, "SELECT asset, max(price_usd) FROM prices GROUP BY asset")) == served_prices


def test_backfill_takes_everything_gate_keeps(sim_factory, tmp_path) -> None:
    sim = sim_factory(["gate"], history_days=120)
    settings = settings_for(sim, tmp_path / "gb.duckdb", ["gate"])

    async def backfill() -> str:
        collector = Collector.for_venues(settings)
        async with collector.running():
            outcome = await collector.backfill("gate", "funds", datetime(2015, 1, 1, tzinfo=UTC))
            return outcome.status

    assert asyncio.run(backfill()) == "ok"
    for pool in sim.market.venue("gate").pools.values():
        stored = rows(settings.db, "SELECT epoch_ms(ts), balance FROM fund_balances WHERE pool_id=? ORDER BY ts",
                      [pool.pool_id])
        assert stored == pool.history and len(stored) == 120  # beyond the poll's 100: limit=1000


def test_failing_btc_book_writes_no_partial_funds_while_htx_lands(sim_factory, tmp_path) -> None:
    sim = sim_factory(["gate", "htx"])
    sim.faults.add("gate:/api/v4/futures/btc/insurance:503 x10")
    settings = settings_for(sim, tmp_path / "gf.duckdb", ["gate", "htx"])

    async def cycle() -> dict[tuple[str, str], Any]:
        collector = Collector.for_venues(settings)
        async with collector.running():
            return {(o.venue, o.dataset): o for o in await collector.run_cycle()}

    outcomes = asyncio.run(cycle())
    gate_funds = outcomes[("gate", "funds")]
    assert gate_funds.status == "error" and gate_funds.error_class == "ExchangeNotAvailable"
    assert gate_funds.attempts == 3  # max_retries=2 in the test settings
    assert outcomes[("gate", "open_interest")].status == "ok"
    assert outcomes[("htx", "funds")].status == "ok"
    db = settings.db
    assert rows(db, "SELECT count(*) FROM fund_balances WHERE venue='gate'") == [(0,)]  # not even the usdt book
    assert rows(db, "SELECT count(*) FROM fund_balances WHERE venue='htx'") == [(4,)]
    assert rows(db, "SELECT status, error_class FROM collection_runs WHERE venue='gate' AND dataset='funds'") == [
        ("error", "ExchangeNotAvailable")]
