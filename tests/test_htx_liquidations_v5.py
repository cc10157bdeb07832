"""HTX liquidations from the v5 ``/v5/market/liquidation_orders`` shape, and the REST feed's switch to it
when v3 is retired (Backstop must not go blind)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from collectors.errors import PayloadError
from collectors.http import JsonHttpClient
from collectors.liquidations.htx import REST_FEED, HtxLiquidationOrdersFeed, parse_rest_v5
from simulator.market import Market
from simulator.market_state import SimContract, SimLiquidation, SimVenue
from simulator.server import SimulatorThread

NOW = datetime(2026, 6, 19, 8, 0, tzinfo=UTC)
# ccxt 4.5.90 htx.fetch_liquidations source comment (linear swap, v5); no verbatim HTX doc example found
V5_EXAMPLE = {"code": 200, "message": "Success", "data": [
    {"id": "150153038758", "contract_code": "BTC-USDT", "liquidation_time": "1781849094165", "side": "buy",
     "position_side": "short", "volume": "2", "amount": "2", "bankrupt_price": "62978.5",
     "trade_turnover": "125.957"}], "ts": 1781854869221}


def test_v5_example() -> None:
    [rec] = parse_rest_v5(V5_EXAMPLE, REST_FEED, NOW)
    assert rec.side == "short"  # position_side; the order side (buy) is its opposite
    assert (rec.symbol, rec.base_asset, rec.quote_asset) == ("BTC-USDT", "BTC", "USDT")
    assert rec.price == 62978.5 and rec.price_kind == "bankruptcy" and rec.qty_contracts == 2
    assert rec.notional_usd == pytest.approx(125.957) and rec.notional_source == "quote_turnover"
    assert rec.qty_base == pytest.approx(0.002) and rec.contract_size == pytest.approx(0.001)  # not amount (2)
    assert rec.ts == datetime.fromtimestamp(1781849094.165, tz=UTC)


def test_v5_without_position_side_and_errors() -> None:
    row = dict(V5_EXAMPLE["data"][0], side="sell")
    del row["position_side"]
    [rec] = parse_rest_v5({"code": 200, "data": [row]}, REST_FEED, NOW)
    assert rec.side == "long"  # a sell order closes a long
    with pytest.raises(PayloadError, match="code 1067"):
        parse_rest_v5({"code": 1067, "message": "invalid parameter", "data": None}, REST_FEED, NOW)
    with pytest.raises(PayloadError, match="bankrupt_price"):
        parse_rest_v5({"code": 200, "data": [{k: v for k, v in row.items() if k != "bankrupt_price"}]}, REST_FEED, NOW)


def test_feed_switches_to_v5_when_v3_is_retired() -> None:
    market = Market(venues=["binance"], speed=0)
    contract = SimContract("BTC-USDT", "BTC", "USDT", "USDT", Decimal("0.001"), False, Decimal(1000))
    market.venues["htx"] = SimVenue("htx", contracts={"BTC-USDT": contract})
    now = market.now_ms()
    for i in range(130):  # more than one v5 page
        market.venue("htx").liquidations.append(SimLiquidation(
            f"htx-{i}", "BTC-USDT", now - i * 1000, "long" if i % 3 else "short", Decimal(2), Decimal("100"),
            Decimal("101"), Decimal(0)))
    with SimulatorThread(market) as sim:
        sim.faults.add("htx:/linear-swap-api/v3/*:410")
        feed = HtxLiquidationOrdersFeed(sim.base_url("htx"), interval_s=1.0)
        end = datetime.fromtimestamp(now / 1000, tz=UTC) + timedelta(seconds=1)

        async def window() -> list:
            client = JsonHttpClient(sim.base_url("htx"), 10.0)
            try:
                return await feed.fetch_window(client, end - timedelta(hours=1), end)
            finally:
                await client.close()

        records = asyncio.run(window())
    assert feed.v3_retired and len(records) == 130 and len({r.event_key for r in records}) == 130
    assert sum(r.side == "short" for r in records) == 44 and all(r.notional_usd for r in records)
