"""MEXC futures: parsers on the documented examples (long JSON numbers kept exact), then end to end
through ccxt against the simulator, including the paged risk-fund history."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from backstop.service import Collector
from collectors.exact_json import use_exact_numbers
from collectors.mexc import (
    MexcContract,
    parse_risk_reverse,
    parse_risk_reverse_history,
    parse_ticker,
)
from storage.db import read_connection
from tests.conftest import example, example_raw, settings_for

DIR = "mexc"
BTC_USDT = MexcContract("BTC_USDT", "BTC", "USDT", "USDT", Decimal("0.0001"), False)


def rows(db: Path, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
    with read_connection(db) as con:
        return con.execute(sql, params or []).fetchall()


def test_risk_reverse_example_exact_long_decimals() -> None:
    batch = parse_risk_reverse("mexc", example(DIR, "insurance_current_rest_api_v1_contract_risk_reverse.json"))
    usdt, btc = batch.funds
    assert usdt.balance == Decimal("425018.32968325152473812")  # all 23 digits, as MEXC wrote them
    assert usdt.balance_raw == "425018.32968325152473812"
    assert (usdt.pool_id, usdt.asset, usdt.source) == ("BTC_USDT", "USDT", "snapshot")
    assert usdt.ts == datetime(2021, 1, 5, 7, 23, 15, 734000, tzinfo=UTC)
    assert (btc.pool_id, btc.asset, btc.unit_raw, btc.balance) == ("BTC_USD", "BTC", "BTC",
                                                                    Decimal("5.00211366264782435"))
    # what a float parser (ccxt's default) would have kept: why the adapter decodes numbers as Decimal
    lossy = parse_risk_reverse("mexc", example_raw(DIR, "insurance_current_rest_api_v1_contract_risk_reverse.json"))
    assert lossy.funds[0].balance != usdt.balance


def test_exact_number_decoder() -> None:
    class Client:
        pass

    client = use_exact_numbers(Client())  # type: ignore[arg-type]
    decoded = client.on_json_response('{"available": 425018.32968325152473812, "n": 3}')
    assert decoded == {"available": Decimal("425018.32968325152473812"), "n": 3}
    assert json.loads('{"a": 1.5}') == {"a": 1.5}  # the global decoder is untouched


def test_risk_reverse_history_example_pages() -> None:
    page = parse_risk_reverse_history("mexc", example(DIR, "insurance_history_rest_api_v1_contract_risk_reverse_history.json"))
    assert [f.ts for f in page.rows] == [datetime(2021, 1, 5, 4, tzinfo=UTC), datetime(2021, 1, 5, tzinfo=UTC)]
    assert page.rows[0].balance == Decimal("424288.053161046680168662") and page.rows[0].source == "history"
    assert (page.current_page, page.total_page, page.last) == (1, 21, False)
    bounded = parse_risk_reverse_history(
        "mexc", example(DIR, "insurance_history_rest_api_v1_contract_risk_reverse_history.json"),
        since=datetime(2021, 1, 5, 2, tzinfo=UTC))
    assert len(bounded.rows) == 1 and bounded.last


def test_ticker_example_hold_volume_in_contracts() -> None:
    batch = parse_ticker("mexc", example_raw(DIR, "ticker_oi_funding_rest_api_v1_contract_ticker.json"),
                         {"BTC_USDT": BTC_USDT})
    (oi,) = batch.open_interest
    assert (oi.oi_raw, oi.oi_unit, oi.contract_size) == ("55102960", "contracts", 0.0001)
    assert oi.oi_base == 5510.296  # 55,102,960 contracts x 0.0001 BTC
    assert oi.oi_usd == 5510.296 * 31199.5  # x fairPrice (the mark)
    assert oi.ts == datetime(2021, 1, 5, 7, 22, 14, 16000, tzinfo=UTC)
    (funding,) = batch.funding
    assert (funding.funding_rate, funding.funding_rate_raw, funding.mark_price) == (0.001, "0.001", 31199.5)
    (price,) = batch.prices
    assert (price.asset, price.price_usd) == ("BTC", 31016.3)
    inverse = MexcContract("BTC_USD", "BTC", "USD", "BTC", Decimal(100), True)
    payload = example_raw(DIR, "ticker_oi_funding_rest_api_v1_contract_ticker.json")
    payload["data"]["symbol"] = "BTC_USD"
    (inv,) = parse_ticker("mexc", payload, {"BTC_USD": inverse}).open_interest
    assert inv.inverse and inv.oi_usd == 5510296000.0 and inv.oi_base == 5510296000.0 / 31199.5


def test_collect_cycle_stores_what_the_simulator_served(sim_factory, tmp_path) -> None:
    sim = sim_factory(["mexc"])
    venue = sim.market.venue("mexc")
    btc = venue.pools["BTC_USDT"]
    btc.history[-1] = (btc.history[-1][0], Decimal("425018.32968325152473812"))  # MEXC's long decimals
    settings = settings_for(sim, tmp_path / "m.duckdb", ["mexc"])

    async def cycle() -> None:
        collector = Collector.for_venues(settings)
        async with collector.running():
            outcomes = await collector.run_cycle()
            assert {o.status for o in outcomes} == {"ok"}, [o.error_message for o in outcomes]

    asyncio.run(cycle())
    db = settings.db
    now = sim.market.now_ms()
    stored = {r[0]: r[1:] for r in rows(db, "SELECT pool_id, asset, epoch_ms(ts), balance_raw FROM fund_balances")}
    assert stored == {s: (p.asset, now, str(p.published()[1])) for s, p in venue.pools.items()}
    assert rows(db, "SELECT balance FROM fund_balances WHERE pool_id='BTC_USDT'") == [
        (Decimal("425018.329683251524738120"),)]  # DECIMAL(38, 18): the exact value (migration 008)
    assert rows(db, "SELECT usd_source FROM fund_balances WHERE pool_id='BTC_USD'") == [("price",)]
    stored_oi = {r[0]: r[1:] for r in rows(db, "SELECT symbol, oi_raw, oi_base, oi_usd, inverse FROM open_interest")}
    for contract in venue.contracts.values():
        oi_raw, oi_base, oi_usd, inverse = stored_oi[contract.symbol]
        assert oi_raw == str(contract.oi_contracts) and inverse == contract.inverse
        if contract.inverse:
            assert oi_usd == float(contract.oi_contracts * contract.contract_size)  # USD per contract
        else:
            assert oi_base == float(contract.oi_contracts * contract.contract_size)
    funding = dict(rows(db, "SELECT symbol, funding_rate_raw FROM funding_rates"))
    assert funding == {c.symbol: str(c.funding_rate) for c in venue.contracts.values()}


def test_backfill_walks_history_pages(sim_factory, tmp_path) -> None:
    sim = sim_factory(["mexc"], history_days=30)  # 4-hourly: 180 snapshots per contract = 2 pages
    settings = settings_for(sim, tmp_path / "mb.duckdb", ["mexc"])

    async def backfill() -> tuple[str, int]:
        collector = Collector.for_venues(settings)
        async with collector.running():
            outcome = await collector.backfill("mexc", "funds", datetime(2015, 1, 1, tzinfo=UTC))
            return outcome.status, outcome.rows_written

    status, written = asyncio.run(backfill())
    pools = sim.market.venue("mexc").pools
    assert status == "ok" and written == sum(len(p.history) for p in pools.values()) == 4 * 180
    for symbol, pool in pools.items():
        stored = rows(settings.db, "SELECT epoch_ms(ts), balance FROM fund_balances WHERE pool_id=? ORDER BY ts",
                      [symbol])
        assert stored == pool.history
