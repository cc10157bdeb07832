"""Orderly Network: the insurance-fund parser on Orderly's documented example (value + the fund's own
positions), the futures parser on ccxt's captured row, then a collection cycle through ccxt against the
simulator filling funds, backstop positions, OI, funding and prices."""

from __future__ import annotations

import asyncio
import copy
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from backstop.service import Collector
from collectors.errors import PayloadError
from collectors.inventory import BACKSTOP_POSITIONS
from collectors.orderly import FUND_POOL, parse_futures, parse_insurance_fund
from simulator.venues.orderly import INVENTORY
from storage.queries import query_df
from tests.conftest import example, settings_for

DIR = "orderly"
FUND = "insurancefund_rest_v1_public_insurancefund.json"
FUTURES = "futures_oi_funding_rest_v1_public_futures_ccxt_comment.json"
POSITION = "position_rest_v1_position_symbol.json"


def test_insurance_fund_example_value_and_no_open_position() -> None:
    batch = parse_insurance_fund("orderly", example(DIR, FUND))
    (fund,) = batch.funds
    assert (fund.pool_id, fund.asset, fund.balance, fund.balance_raw) == (
        FUND_POOL, "USDC", Decimal("10008662.996861"), "10008662.996861")  # total_account_value, exact
    assert fund.ts == datetime.fromtimestamp(1685439471395 / 1000, tz=UTC)
    assert batch.extra[BACKSTOP_POSITIONS] == []  # the example's row is flat (position_qty 0): not a position


def test_fund_position_pnl_uses_orderlys_documented_arithmetic() -> None:
    """A fund row shaped like the documented position example: unrealised = qty x mark - cost_position."""
    documented = example(DIR, POSITION)["data"]
    payload = copy.deepcopy(example(DIR, FUND))
    row = payload["data"]["rows"][0]
    for key in ("position_qty", "cost_position", "average_open_price", "mark_price", "symbol"):
        row[key] = documented[key]
    (position,) = parse_insurance_fund("orderly", payload).extra[BACKSTOP_POSITIONS]
    assert (position.holder, position.contract, position.size, position.side) == (
        FUND_POOL, "PERP_BTC_USDC", -5.0, "short")
    assert position.unrealised_pnl == pytest.approx(float(documented["unsettled_pnl"]))  # 354.858492
    assert position.notional_usd == pytest.approx(5 * 27794.9)
    assert position.entry_price == pytest.approx(27908.14386047)
    assert position.ts == datetime.fromtimestamp(1685439471395 / 1000, tz=UTC)  # the fund row's snapshot


@pytest.mark.parametrize("field", ["total_account_value", "rows"])
def test_insurance_fund_missing_field_is_an_error(field: str) -> None:
    payload = copy.deepcopy(example(DIR, FUND))
    del payload["data"][field]
    with pytest.raises(PayloadError):
        parse_insurance_fund("orderly", payload)


def test_futures_example_oi_funding_index() -> None:
    batch = parse_futures("orderly", example(DIR, FUTURES))
    (oi,) = batch.open_interest
    assert (oi.symbol, oi.base_asset, oi.oi_raw, oi.oi_base) == ("PERP_BTC_USDC", "BTC", "110.64612", 110.64612)
    assert oi.oi_usd == pytest.approx(110.64612 * 64171.0)
    (rate,) = batch.funding
    assert (rate.funding_rate, rate.next_funding_ts) == (0.0001, datetime.fromtimestamp(1786032000, tz=UTC))
    assert [(p.asset, p.price_usd) for p in batch.prices] == [("BTC", 64185.4)]


def test_collect_cycle_fills_funds_positions_oi_funding(sim_factory: Any, tmp_path: Any) -> None:
    sim = sim_factory(["orderly"])
    settings = settings_for(sim, tmp_path / "o.duckdb", ["orderly"])

    async def cycle() -> list[Any]:
        collector = Collector.for_venues(settings)
        async with collector.running():
            return await collector.run_cycle()

    outcomes = asyncio.run(cycle())
    assert {o.status for o in outcomes} == {"ok"}, [o.error_message for o in outcomes]
    now = sim.market.now_ms()
    fund = query_df(settings.db, "SELECT pool_id, epoch_ms(ts) AS t, balance FROM fund_balances")
    assert list(fund["pool_id"]) == [FUND_POOL] and list(fund["t"]) == [now]
    positions = query_df(settings.db, "SELECT holder, contract, size, epoch_ms(ts) AS t FROM backstop_positions")
    (coin, usd, _), = INVENTORY.standing
    assert positions[["holder", "contract"]].values.tolist() == [[FUND_POOL, f"PERP_{coin}_USDC"]]
    assert positions["size"].iloc[0] < 0 and positions["t"].iloc[0] == now  # the standing short, same snapshot
    for table in ("open_interest", "funding_rates", "prices"):
        assert query_df(settings.db, f"SELECT count(*) AS n FROM {table}")["n"].iloc[0] == 3, table  # noqa: S608
