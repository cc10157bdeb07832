"""Paradex: the fund parser on the docs' example, the markets-summary parser on ccxt's captured row, then
a collection cycle through ccxt against the simulator."""

from __future__ import annotations

import asyncio
import copy
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from backstop.service import Collector
from collectors.errors import PayloadError
from collectors.paradex import FUND_POOL, parse_insurance, parse_markets_summary
from storage.queries import query_df
from tests.conftest import example_raw, settings_for

DIR = "paradex"
FUND = "insurance_rest_v1_insurance.json"
SUMMARY = "markets_summary_oi_funding_rest_v1_markets_summary_ccxt_comment.json"


def test_insurance_example() -> None:
    fund = parse_insurance("paradex", example_raw(DIR, FUND))
    assert (fund.pool_id, fund.asset, fund.balance, fund.balance_raw, fund.unit_raw) == (
        FUND_POOL, "USDC", Decimal("136285.069"), "136285.069", "USDC")
    assert fund.ts == datetime.fromtimestamp(1681471234972 / 1000, tz=UTC)


@pytest.mark.parametrize("field", ["account_value", "settlement_asset", "updated_at"])
def test_insurance_fields_are_optional_in_the_schema_but_required_here(field: str) -> None:
    payload = copy.deepcopy(example_raw(DIR, FUND))
    del payload[field]
    with pytest.raises(PayloadError, match=field):
        parse_insurance("paradex", payload)


def test_markets_summary_example() -> None:
    batch = parse_markets_summary("paradex", example_raw(DIR, SUMMARY))
    (oi,) = batch.open_interest
    assert (oi.symbol, oi.base_asset, oi.settle_asset, oi.oi_raw) == ("BTC-USD-PERP", "BTC", "USD", "162.272")
    assert oi.oi_usd == pytest.approx(162.272 * 68465.17449906)
    assert oi.ts == datetime.fromtimestamp(1718170156580 / 1000, tz=UTC)
    (rate,) = batch.funding
    assert (rate.funding_rate_raw, rate.interval_h) == ("0.01629574927887", 8.0)
    assert [(p.asset, p.price_usd, p.source) for p in batch.prices] == [("BTC", 68465.17449906, "index")]


def test_markets_summary_skips_options() -> None:
    payload = example_raw(DIR, SUMMARY)
    payload["results"].append({"symbol": "BTC-USD-100000-C", "open_interest": "12.5", "created_at": 1718170156580})
    assert [r.symbol for r in parse_markets_summary("paradex", payload).open_interest] == ["BTC-USD-PERP"]


def test_collect_cycle(sim_factory: Any, tmp_path: Any) -> None:
    sim = sim_factory(["paradex"])
    venue = sim.market.venue("paradex")
    settings = settings_for(sim, tmp_path / "p.duckdb", ["paradex"])

    async def cycle() -> list[Any]:
        collector = Collector.for_venues(settings)
        async with collector.running():
            return await collector.run_cycle()

    outcomes = asyncio.run(cycle())
    assert {o.status for o in outcomes} == {"ok"}, [o.error_message for o in outcomes]
    fund = query_df(settings.db, "SELECT pool_id, balance_raw, usd_value FROM fund_balances")
    expected = format(venue.pools[FUND_POOL].balance.quantize(Decimal("0.001")), "f")
    assert fund.values.tolist() == [[FUND_POOL, expected, float(expected)]]  # USDC valued as a stablecoin
    oi = query_df(settings.db, "SELECT symbol, oi_raw FROM open_interest")
    assert dict(zip(oi["symbol"], oi["oi_raw"], strict=True)) == {
        c.symbol: str(c.oi_contracts) for c in venue.contracts.values()}
    assert query_df(settings.db, "SELECT count(*) AS n FROM funding_rates")["n"].iloc[0] == 3
