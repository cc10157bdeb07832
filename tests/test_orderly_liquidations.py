"""Orderly liquidations: the REST parser on the documented example, then the real feed (through the
collector's liquidation service and DuckDB) against the simulator's liquidated_positions after a cascade."""

from __future__ import annotations

import asyncio
import copy
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from backstop.service import Collector
from collectors.errors import PayloadError
from collectors.liquidations.integration import build_feeds, make_service
from collectors.liquidations.orderly import (
    REST_FEED,
    OrderlyLiquidatedPositionsFeed,
    parse_liquidated_positions,
)
from simulator.market_state import HOUR_MS, MINUTE_MS
from storage.liquidation_writes import BACKEND
from storage.queries import query_df
from tests.conftest import example, settings_for

FILE = "liquidated_positions_rest_v1_public_liquidated_positions.json"
NOW = datetime(2026, 1, 1, tzinfo=UTC)


def test_documented_example_has_a_leg_that_transfers_nothing() -> None:
    records, rows = parse_liquidated_positions(example("orderly", FILE), REST_FEED, NOW)
    assert (records, rows) == ([], 1)  # position_qty 0: no liquidated size to count


def test_a_leg_with_a_position_is_one_record() -> None:
    payload = copy.deepcopy(example("orderly", FILE))
    leg = payload["data"]["rows"][0]["positions_by_perp"][0]
    leg["position_qty"], leg["transfer_price"] = Decimal("-0.0914"), Decimal("2688.29")
    (record,), _ = parse_liquidated_positions(payload, REST_FEED, NOW)
    assert (record.venue, record.symbol, record.base_asset, record.quote_asset, record.side) == (
        "orderly", "PERP_ETH_USDC", "ETH", "USDC", "short")
    assert (record.qty_base, record.price, record.event_key) == (0.0914, 2688.29, "29|PERP_ETH_USDC")
    assert record.notional_usd == pytest.approx(245.709706)
    assert record.ts == datetime.fromtimestamp(1683802462092 / 1000, tz=UTC) and record.lower_bound


def test_unsuccessful_answer_is_an_error() -> None:
    payload = copy.deepcopy(example("orderly", FILE))
    payload["success"] = False
    with pytest.raises(PayloadError):
        parse_liquidated_positions(payload, REST_FEED, NOW)


@pytest.mark.e2e
def test_feed_stores_every_simulated_liquidation(sim_factory: Any, tmp_path: Any) -> None:
    wall_ms = int(datetime.now(UTC).timestamp() * 1000)
    sim = sim_factory(["orderly"], scenario="cascade", seed=2, start_ms=(wall_ms - 6 * HOUR_MS) // MINUTE_MS * MINUTE_MS)
    market = sim.market
    market.run_until(wall_ms - 5 * MINUTE_MS)
    liquidations = list(market.venue("orderly").liquidations)
    assert len(liquidations) > 100  # page size 100: more than one page in the crash hour
    settings = settings_for(sim, tmp_path / "ol.duckdb", ["orderly"])
    assert [f.info.feed for f in build_feeds(settings)] == ["liquidated_positions"]  # registered for the venue
    since = datetime.fromtimestamp(liquidations[0].ts_ms / 1000, tz=UTC) - timedelta(minutes=1)

    async def scenario() -> int:
        collector = Collector.for_venues(settings)
        async with collector.running():
            feed = OrderlyLiquidatedPositionsFeed(sim.base_url("orderly"), interval_s=0.5,
                                                  resume=lambda: asyncio.sleep(0, result=since))
            service = make_service(collector, [feed], backend=BACKEND)
            running = [asyncio.create_task(service.sink.run()), asyncio.create_task(service.runners[0].run())]
            deadline = asyncio.get_running_loop().time() + 60
            while service.sink.written < len(liquidations):
                assert asyncio.get_running_loop().time() < deadline, service.stats()
                await asyncio.sleep(0.05)
            for task in running:
                task.cancel()
            await asyncio.gather(*running, return_exceptions=True)
            return service.sink.written

    assert asyncio.run(scenario()) == len(liquidations)
    stored = query_df(settings.db, "SELECT event_key, side, qty_base, price, notional_usd FROM liquidations "
                                   "WHERE venue = 'orderly' ORDER BY event_key")
    expected = sorted((f"{liq.seq}|{liq.symbol}", liq.position_side, float(liq.qty_contracts), float(liq.fill_price))
                      for liq in liquidations)
    assert sorted(zip(stored["event_key"], stored["side"], stored["qty_base"], stored["price"], strict=True)) == expected
    assert stored["notional_usd"].sum() == pytest.approx(sum(float(liq.qty_contracts * liq.fill_price)
                                                             for liq in liquidations))
