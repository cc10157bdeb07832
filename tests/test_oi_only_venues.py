"""Venues with OI and funding but no published fund: Binance COIN-M, KuCoin Futures (and Bitget's OI and
funding; its risk reserve is tested in test_bitget_fund.py). Parsers on the documented examples (units
checked by hand), then one collection cycle through ccxt for all three."""

from __future__ import annotations

import asyncio
import copy
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from backstop.service import Collector
from collectors.base import FUNDS
from collectors.binancecoinm import parse_open_interest as coinm_open_interest
from collectors.binancecoinm import parse_premium_index
from collectors.bitget import parse_current_fund_rate
from collectors.bitget import parse_open_interest as bitget_open_interest
from collectors.kucoinfutures import parse_contracts_active
from collectors.registry import adapter_class
from storage.db import read_connection
from tests.conftest import example_raw, settings_for

KEYS = ["binancecoinm", "bitget", "kucoinfutures"]
NO_FUND_KEYS = ["binancecoinm", "kucoinfutures"]

# KuCoin has no example file in tests/fixtures: the documented /api/v1/contracts/active row (python-kucoin
# docstring / ccxt source comment), trimmed, as a linear contract, plus the inverse XBTUSDM shape.
KUCOIN_ACTIVE: dict[str, Any] = {"code": "200000", "data": [
    {"symbol": "XBTUSDTM", "rootSymbol": "USDT", "type": "FFWCSX", "expireDate": None, "baseCurrency": "XBT",
     "quoteCurrency": "USDT", "settleCurrency": "USDT", "multiplier": 0.001, "isInverse": False, "status": "Open",
     "fundingFeeRate": 6.41e-4, "predictedFundingFeeRate": 5.5e-5, "fundingRateGranularity": 28800000,
     "openInterest": "6273644", "markPrice": 87351.75, "indexPrice": 87357.57, "nextFundingRateTime": 1816952},
    {"symbol": "XBTUSDM", "rootSymbol": "XBT", "type": "FFWCSX", "expireDate": None, "baseCurrency": "XBT",
     "quoteCurrency": "USD", "settleCurrency": "XBT", "multiplier": -1, "isInverse": True, "status": "Open",
     "fundingFeeRate": 1e-4, "fundingRateGranularity": 28800000, "openInterest": "98765432",
     "markPrice": 87351.75, "nextFundingRateTime": 1816952},
]}


def rows(db: Path, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
    with read_connection(db) as con:
        return con.execute(sql, params or []).fetchall()


def test_no_fund_capability() -> None:
    for key in NO_FUND_KEYS:
        klass = adapter_class(key)
        assert klass.fund_label == "no published fund" and klass.capability(FUNDS) is None
        assert not klass.implements("funds")


def test_coinm_premium_index_example_skips_delivery() -> None:
    (rate,) = parse_premium_index("binancecoinm", example_raw("binance-coinm", "funding_current_dapi_v1_premiumIndex.json"))
    assert (rate.symbol, rate.funding_rate, rate.funding_rate_raw) == ("BTCUSD_PERP", 0.00071003, "0.00071003")
    assert rate.next_funding_ts == datetime(2020, 7, 30, 8, tzinfo=UTC) and rate.mark_price == 11029.69574559


def test_coinm_open_interest_example_contracts_of_100_usd() -> None:
    oi = coinm_open_interest("binancecoinm", example_raw("binance-coinm", "open_interest_dapi_v1_openInterest.json"),
                             Decimal(100), 11029.69574559)
    assert (oi.symbol, oi.base_asset, oi.settle_asset, oi.inverse) == ("BTCUSD_200626", "BTC", "BTC", True)
    assert (oi.oi_raw, oi.oi_unit, oi.contract_size) == ("15004", "contracts", 100.0)
    assert oi.oi_usd == 1_500_400.0  # 15,004 contracts x 100 USD
    assert oi.oi_base == 1_500_400.0 / 11029.69574559  # USD / mark, in BTC
    assert oi.ts == datetime(2020, 6, 4, 8, 57, 22, 378000, tzinfo=UTC)


def test_bitget_examples_base_coin_and_hourly_interval() -> None:
    (oi,) = bitget_open_interest("bitget", example_raw("bitget", "open_interest_rest_api_v2_mix_market_open-interest.json"),
                                 26000.0)
    assert (oi.symbol, oi.base_asset, oi.oi_raw, oi.oi_unit) == ("BTCUSDT", "BTC", "34278.06", "base")
    assert oi.oi_base == 34278.06 and oi.oi_usd == 34278.06 * 26000.0
    assert oi.ts == datetime(2023, 9, 27, 6, 39, 41, 616000, tzinfo=UTC)
    (rate,) = parse_current_fund_rate(
        "bitget", example_raw("bitget", "funding_current_rest_api_v2_mix_market_current-fund-rate.json"),
        {"BTCUSDT": 87000.0})
    assert (rate.symbol, rate.funding_rate, rate.funding_rate_raw, rate.interval_h) == ("BTCUSDT", 6.8e-05, "0.000068", 8.0)
    assert rate.next_funding_ts == datetime(2025, 3, 27, 8, tzinfo=UTC) and rate.mark_price == 87000.0
    assert rate.ts == datetime(2025, 3, 27, 5, 49, 8, 546000, tzinfo=UTC)  # requestTime


def test_kucoin_contracts_active_lots_times_multiplier() -> None:
    ts = datetime(2025, 1, 1, 7, 30, tzinfo=UTC)
    batch = parse_contracts_active("kucoinfutures", KUCOIN_ACTIVE, ts)
    linear, inverse = batch.open_interest
    assert (linear.symbol, linear.base_asset, linear.settle_asset, linear.inverse) == ("XBTUSDTM", "BTC", "USDT", False)
    assert (linear.oi_raw, linear.contract_size) == ("6273644", 0.001)
    assert linear.oi_base == 6273.644 and linear.oi_usd == 6273.644 * 87351.75  # lots x 0.001 BTC
    assert (inverse.base_asset, inverse.settle_asset, inverse.inverse, inverse.contract_size) == ("BTC", "BTC", True, 1.0)
    assert inverse.oi_usd == 98765432.0 and inverse.oi_base == 98765432.0 / 87351.75  # 1 USD per lot
    funding = batch.funding[0]
    assert (funding.funding_rate, funding.funding_rate_raw, funding.interval_h) == (0.000641, "0.000641", 8.0)
    assert funding.next_funding_ts == ts + timedelta(milliseconds=1816952)  # time *left*, not a timestamp
    delivered = copy.deepcopy(KUCOIN_ACTIVE)
    delivered["data"][0]["expireDate"] = 1767225600000
    assert [r.symbol for r in parse_contracts_active("kucoinfutures", delivered, ts).open_interest] == ["XBTUSDM"]


def test_collect_cycle_stores_what_the_simulators_served(sim_factory, tmp_path) -> None:
    sim = sim_factory(KEYS)
    settings = settings_for(sim, tmp_path / "oi.duckdb", KEYS)
    settings.venues["bitget"].intervals.funds = 0  # OI and funding only here (funds: test_bitget_fund.py)

    async def cycle() -> list[Any]:
        collector = Collector.for_venues(settings)
        async with collector.running():
            return await collector.run_cycle()

    outcomes = asyncio.run(cycle())
    assert {(o.venue, o.dataset, o.status) for o in outcomes} == {
        (key, dataset, "ok") for key in KEYS for dataset in ("open_interest", "funding")}
    db = settings.db
    assert rows(db, "SELECT count(*) FROM fund_balances") == [(0,)]
    for key in KEYS:
        venue = sim.market.venue(key)
        stored = {r[0]: r[1:] for r in rows(db, "SELECT symbol, oi_raw, oi_base, oi_usd, inverse FROM open_interest "
                                                "WHERE venue=?", [key])}
        assert stored.keys() == venue.contracts.keys()
        for contract in venue.contracts.values():
            oi_raw, oi_base, oi_usd, inverse = stored[contract.symbol]
            assert oi_raw == str(contract.oi_contracts) and inverse == contract.inverse, (key, contract.symbol)
            if contract.inverse:
                assert oi_usd == float(contract.oi_contracts * contract.contract_size)  # USD face value
            else:
                assert oi_base == float(contract.oi_contracts * contract.contract_size)
        funding = dict(rows(db, "SELECT symbol, funding_rate FROM funding_rates WHERE venue=?", [key]))
        assert funding == {c.symbol: float(c.funding_rate) for c in venue.contracts.values()}


def test_failing_oi_endpoint_is_an_error_run_while_kucoin_lands(sim_factory, tmp_path) -> None:
    sim = sim_factory(["bitget", "kucoinfutures"])
    sim.faults.add("bitget:/api/v2/mix/market/open-interest:502")
    settings = settings_for(sim, tmp_path / "f.duckdb", ["bitget", "kucoinfutures"])

    async def cycle() -> dict[tuple[str, str], Any]:
        collector = Collector.for_venues(settings)
        async with collector.running():
            return {(o.venue, o.dataset): o for o in await collector.run_cycle()}

    outcomes = asyncio.run(cycle())
    failed = outcomes[("bitget", "open_interest")]
    assert (failed.status, failed.error_class, failed.attempts) == ("error", "ExchangeNotAvailable", 3)
    assert outcomes[("bitget", "funding")].status == "ok"
    assert outcomes[("kucoinfutures", "open_interest")].status == "ok"
    db = settings.db
    assert rows(db, "SELECT venue, count(*) FROM open_interest GROUP BY venue") == [("kucoinfutures", 4)]
    assert rows(db, "SELECT status FROM collection_runs WHERE venue='bitget' AND dataset='open_interest'") == [
        ("error",)]
