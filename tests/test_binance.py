"""Binance USDⓈ-M: parsers on the documented examples, then end to end through ccxt."""

from __future__ import annotations

import asyncio
from decimal import Decimal

from backstop.service import Collector
from collectors.binance import (
    group_id,
    parse_adl_risk,
    parse_insurance_balance,
    parse_open_interest,
    parse_premium_index,
)
from storage.queries import query_df
from tests.conftest import example_raw, settings_for

DIR = "binance-usdm"


def test_insurance_balance_no_symbol_groups() -> None:
    batch = parse_insurance_balance("binance", example_raw(DIR, "insurance_balance_fapi_v1_insuranceBalance_no_symbol.json"))
    first = batch.funds[0]
    assert first.asset == "USDT"
    assert first.balance == Decimal("314151411.06482935")
    assert first.balance_raw == "314151411.06482935"
    assert first.ts.isoformat() == "2025-04-23T00:00:02+00:00"
    assert first.pool_id == "XRPUSDT"  # best-known member names the group
    assert {m.symbol for m in batch.pool_members if m.pool_id == "XRPUSDT"} >= {"ADAUSDT", "XMRUSDT"}


def test_insurance_balance_with_symbol_is_one_group_many_assets() -> None:
    batch = parse_insurance_balance("binance", example_raw(DIR, "insurance_balance_fapi_v1_insuranceBalance_with_symbol.json"))
    assets = {f.asset: f.balance for f in batch.funds}
    assert assets["BTC"] == Decimal("61.73143554")
    assert assets["USDC"] == Decimal("299999998.6497832")
    assert {f.pool_id for f in batch.funds} == {"BTCUSDT"}


def test_group_id_prefers_known_members() -> None:
    assert group_id(["ZZZUSDT", "ETHUSDT"]) == "ETHUSDT"
    assert group_id(["ZZZUSDT", "AAAUSDT"]) == "AAAUSDT"


def test_premium_index_and_open_interest() -> None:
    batch = parse_premium_index("binance", example_raw(DIR, "funding_current_fapi_v1_premiumIndex.json"))
    assert batch.funding[0].funding_rate == 0.00038246
    assert batch.funding[0].funding_rate_raw == "0.00038246"
    assert batch.prices[0].asset == "BTC" and batch.prices[0].price_usd == 11781.8049597
    oi = parse_open_interest("binance", example_raw(DIR, "open_interest_fapi_v1_openInterest.json"), 10000.0)
    assert oi.oi_base == 10659.509 and oi.oi_unit == "base" and oi.oi_usd == 10659.509 * 10000.0


def test_adl_risk() -> None:
    signals = parse_adl_risk("binance", example_raw(DIR, "adl_risk_fapi_v1_symbolAdlRisk_no_symbol.json"))
    assert [(s.scope, s.level) for s in signals] == [("BTCUSDT", "low"), ("ETHUSDT", "high")]


def test_collect_once_through_ccxt(sim_factory, tmp_path) -> None:
    sim = sim_factory(["binance"])
    settings = settings_for(sim, tmp_path / "b.duckdb", ["binance"])

    async def cycle() -> None:
        collector = Collector.for_venues(settings)
        async with collector.running():
            outcomes = await collector.run_cycle()
            assert {o.status for o in outcomes} == {"ok"}, [o.error_message for o in outcomes]
            again = await collector.run_cycle()
            assert sum(o.rows_written for o in again if o.dataset == "funds") == 0  # snapshot unchanged

    asyncio.run(cycle())
    pool = sim.market.venue("binance").pools["BTCUSDT:BTC"]
    stored = query_df(settings.db, "SELECT balance, usd_value, usd_source FROM fund_balances "
                      "WHERE venue='binance' AND pool_id='BTCUSDT' AND asset='BTC'")
    assert stored["balance"][0] == float(pool.published()[1])
    assert stored["usd_source"][0] == "price"  # valued from the collected BTC index price
