"""The market model seen through Backstop: a scenario collected by the real collector (through ccxt, on the
simulator) leaves its signature in the stored data (a drained fund, falling OI, a cascade's losses)."""

from __future__ import annotations

import asyncio

from backstop.service import Collector
from simulator.market_state import HOUR_MS
from storage.queries import query_df
from tests.conftest import settings_for
from tests.test_market_model import START


def test_drain_through_stored_data(sim_factory, tmp_path) -> None:
    """venue-drain on Binance, collected every 4 simulated hours: the stored fund falls 30-60 %."""
    sim = sim_factory(["binance"], scenario="venue-drain:binance", start_ms=START, seed=5,
                      publish_every_s=4 * 3600)
    settings = settings_for(sim, tmp_path / "drain.duckdb", ["binance"])
    plan = sim.market.plan

    async def collect() -> None:
        collector = Collector.for_venues(settings)
        async with collector.running():
            while True:
                outcomes = await asyncio.gather(collector.run_one("binance", "funds"),
                                                collector.run_one("binance", "open_interest"))
                assert {o.status for o in outcomes} == {"ok"}, [o.error_message for o in outcomes]
                if sim.market.model_ms >= plan.end_ms:
                    break
                sim.market.fast_forward(4 * HOUR_MS)

    asyncio.run(collect())
    funds = query_df(settings.db, "SELECT ts, balance FROM fund_balances WHERE venue='binance' "
                     "AND pool_id='BTCUSDT' AND asset='USDT' ORDER BY ts")
    assert len(funds) >= 4
    drained = funds["balance"].iloc[-1] / funds["balance"].iloc[0]
    assert 0.4 <= drained <= 0.7
    oi = query_df(settings.db, "SELECT ts, oi_base FROM open_interest WHERE venue='binance' "
                  "AND symbol='BTCUSDT' ORDER BY ts")
    assert oi["oi_base"].iloc[-1] < 0.8 * oi["oi_base"].iloc[0]  # liquidated positions left the OI


def test_cascade_through_stored_data(sim_factory, tmp_path) -> None:
    sim = sim_factory(["binance"], scenario="cascade", start_ms=START, seed=5, publish_every_s=3600)
    settings = settings_for(sim, tmp_path / "cascade.duckdb", ["binance"])

    async def collect_at(offsets_h: list[int]) -> None:
        collector = Collector.for_venues(settings)
        async with collector.running():
            for hours in offsets_h:
                sim.market.run_until(START + hours * HOUR_MS)
                outcome = await collector.run_one("binance", "funds")
                assert outcome.status == "ok", outcome.error_message

    asyncio.run(collect_at([0, 2, 6]))
    funds = query_df(settings.db, "SELECT pool_id, asset, ts, balance FROM fund_balances "
                     "WHERE venue='binance' ORDER BY ts")
    for (pool_id, asset), rows in funds.groupby(["pool_id", "asset"]):
        assert len(rows) == 3
        assert rows["balance"].iloc[-1] < 0.99 * rows["balance"].iloc[1], (pool_id, asset)
