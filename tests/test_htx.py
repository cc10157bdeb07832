"""HTX USDT-M swaps: parsers on the documented examples (float JSON numbers parsed exactly), the signed
request path ccxt cannot reach by an implicit method, then end to end through ccxt."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from backstop.service import Collector
from collectors.ccxt_client import make_exchange
from collectors.htx import (
    API,
    INSURANCE_HISTORY,
    parse_funding,
    parse_insurance_history,
    parse_open_interest,
    parse_risk_info,
)
from storage.db import read_connection
from tests.conftest import example, example_raw, settings_for

DIR = "htx"


def rows(db: Path, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
    with read_connection(db) as con:
        return con.execute(sql, params or []).fetchall()


def test_risk_info_example_funds_and_clawback() -> None:
    for payload in (example_raw(DIR, "insurance_current_rest_linear-swap-api_v1_swap_risk_info.json"),
                    example(DIR, "insurance_current_rest_linear-swap-api_v1_swap_risk_info.json")):
        batch = parse_risk_info("htx", payload)  # as ccxt parses it (float) and exactly (Decimal)
        assert [f.pool_id for f in batch.funds] == ["BTC-USDT", "BTC-USDT-FUTURES", "ETH-USDT", "ETH-USDT-FUTURES"]
        btc = batch.funds[0]
        assert btc.balance == Decimal("16174.621898868114") and btc.balance_raw == "16174.621898868114"
        assert (btc.asset, btc.unit_raw, btc.source) == ("USDT", "USDT", "snapshot")
        assert btc.ts == datetime(2021, 12, 6, 1, 39, 34, 555000, tzinfo=UTC)  # response ts (ms)
        signal = batch.adl[0]
        assert (signal.scope, signal.signal_type, signal.value) == ("BTC-USDT", "htx_clawback", 0.0)
        assert '"business_type":"swap"' in signal.detail
        assert [(m.pool_id, m.symbol) for m in batch.pool_members][0] == ("BTC-USDT", "BTC-USDT")


def test_insurance_history_example_daily_at_0800() -> None:
    page = parse_insurance_history(
        "htx", example_raw(DIR, "insurance_history_rest_linear-swap-api_v1_swap_insurance_fund.json"))
    assert [f.ts for f in page.rows] == [datetime(2021, 12, day, 8, tzinfo=UTC) for day in (5, 4, 3, 2)]
    assert [f.balance for f in page.rows] == [Decimal("16174.621898868114"), Decimal("130.91239886811348"),
                                              Decimal("0.00286055422"), Decimal("0")]
    assert {f.pool_id for f in page.rows} == {"BTC-USDT-FUTURES"} and page.rows[0].source == "history"
    assert (page.current_page, page.total_page, page.last) == (1, 1, True)
    bounded = parse_insurance_history(
        "htx", example_raw(DIR, "insurance_history_rest_linear-swap-api_v1_swap_insurance_fund.json"),
        since=datetime(2021, 12, 4, tzinfo=UTC))
    assert len(bounded.rows) == 2 and bounded.reached_since and bounded.last


def test_open_interest_example_both_sides_halved_swaps_only() -> None:
    (oi,) = parse_open_interest("htx", example_raw(DIR, "open_interest_rest_linear-swap-api_v1_swap_open_interest.json"))
    assert (oi.symbol, oi.base_asset, oi.settle_asset, oi.inverse) == ("BTC-USDT", "BTC", "USDT", False)
    assert oi.oi_raw == "78696" and oi.oi_unit == "contracts:volume/2"  # 78,696 contracts, both sides
    assert oi.contract_size == 0.001  # amount 78.696 BTC / volume 78,696
    assert oi.oi_base == 39.348 and oi.oi_usd == 1911569.1228  # one side: amount / 2, value / 2
    assert oi.ts == datetime(2021, 12, 6, 1, 27, 39, 540000, tzinfo=UTC)


def test_funding_example_null_texts() -> None:
    (rate,) = parse_funding("htx", example_raw(DIR, "funding_current_rest_linear-swap-api_v1_swap_funding_rate.json"))
    assert (rate.symbol, rate.funding_rate, rate.funding_rate_raw) == ("BTC-USDT", 0.0001, "0.000100000000000000")
    assert rate.next_funding_ts == datetime(2020, 10, 26, 8, tzinfo=UTC)  # funding_time
    assert rate.ts == datetime(2020, 10, 26, 7, 14, 54, 714000, tzinfo=UTC)


def test_request_signs_to_the_real_linear_path() -> None:
    async def sign() -> str:
        exchange = make_exchange("htx", "http://127.0.0.1:9/htx", 5)
        try:
            return exchange.sign(INSURANCE_HISTORY, API, "GET", {"contract_code": "BTC-USDT", "page_size": 100})["url"]
        finally:
            await exchange.close()

    assert asyncio.run(sign()) == (
        "http://127.0.0.1:9/htx/linear-swap-api/v1/swap_insurance_fund?contract_code=BTC-USDT&page_size=100")


def test_collect_cycle_stores_what_the_simulator_served(sim_factory, tmp_path) -> None:
    sim = sim_factory(["htx"])
    venue = sim.market.venue("htx")
    venue.pools["ETH-USDT"].extra["estimated_clawback"] = Decimal("0.0125")
    settings = settings_for(sim, tmp_path / "h.duckdb", ["htx"])

    async def cycle() -> None:
        collector = Collector.for_venues(settings)
        async with collector.running():
            outcomes = await collector.run_cycle()
            assert {o.status for o in outcomes} == {"ok"}, [o.error_message for o in outcomes]

    asyncio.run(cycle())
    db = settings.db
    now = sim.market.now_ms()
    stored = {r[0]: r[1:] for r in rows(db, "SELECT pool_id, epoch_ms(ts), balance, balance_raw FROM fund_balances")}
    assert stored == {code: (now, pool.published()[1], str(pool.published()[1])) for code, pool in venue.pools.items()}
    assert all(datetime.fromtimestamp(pool.published()[0] / 1000, UTC).hour == 8 for pool in venue.pools.values())
    clawback = dict(rows(db, "SELECT scope, value FROM adl_signals WHERE signal_type='htx_clawback'"))
    assert clawback == {"BTC-USDT": 0.0, "ETH-USDT": 0.0125, "SOL-USDT": 0.0, "XRP-USDT": 0.0}
    stored_oi = {r[0]: r[1:] for r in rows(db, "SELECT symbol, oi_raw, oi_base, oi_usd FROM open_interest")}
    for contract in venue.contracts.values():
        oi_raw, oi_base, oi_usd = stored_oi[contract.symbol]
        assert oi_raw == str(contract.oi_contracts * 2)  # HTX serves both sides
        assert oi_base == float(contract.oi_contracts * contract.contract_size)  # stored: one side
        price = sim.market.price(contract.base)
        assert abs(oi_usd - float(contract.oi_contracts * contract.contract_size * price)) < 0.01
    funding = dict(rows(db, "SELECT symbol, funding_rate FROM funding_rates"))
    assert funding == {c.symbol: float(c.funding_rate) for c in venue.contracts.values()}


def test_backfill_pages_every_contract_history(sim_factory, tmp_path) -> None:
    sim = sim_factory(["htx"], history_days=250)  # 250 daily points = 3 pages of 100
    settings = settings_for(sim, tmp_path / "hb.duckdb", ["htx"])

    async def backfill() -> tuple[str, int]:
        collector = Collector.for_venues(settings)
        async with collector.running():
            outcome = await collector.backfill("htx", "funds", datetime(2015, 1, 1, tzinfo=UTC))
            return outcome.status, outcome.rows_written

    status, written = asyncio.run(backfill())
    pools = sim.market.venue("htx").pools
    assert status == "ok" and written == sum(len(p.history) for p in pools.values()) == 4 * 250
    for code, pool in pools.items():
        stored = rows(settings.db, "SELECT epoch_ms(ts), balance FROM fund_balances WHERE pool_id=? ORDER BY ts",
                      [code])
        assert stored == pool.history  # exact: HTX's JSON numbers decoded as Decimal


def test_backfill_stops_at_since(sim_factory, tmp_path) -> None:
    sim = sim_factory(["htx"], history_days=250)
    settings = settings_for(sim, tmp_path / "hs.duckdb", ["htx"])
    settings.venues["htx"].symbols = ["BTC-USDT"]
    pool = sim.market.venue("htx").pools["BTC-USDT"]
    since_ms = pool.history[-30][0]

    async def backfill() -> int:
        collector = Collector.for_venues(settings)
        async with collector.running():
            return (await collector.backfill("htx", "funds", datetime.fromtimestamp(since_ms / 1000, UTC))).rows_written

    assert asyncio.run(backfill()) == 30
    assert rows(settings.db, "SELECT DISTINCT pool_id FROM fund_balances") == [("BTC-USDT",)]
