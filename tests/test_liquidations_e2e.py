"""Liquidation feeds end to end: simulator streams -> real feed code (ccxt.pro / raw WS / REST) -> DuckDB.

Bybit (which pushes everything) must store exactly what the simulator emitted; a forced disconnect must
leave a gap row and no duplicate after reconnect (with replayed frames); an injected cascade must be
detected with the right start; every other feed must store its (sampled) share."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from backstop.config import Settings, load_settings
from backstop.integrations import CascadeDetector
from backstop.service import Collector
from collectors.liquidations.base import ContractSpec
from collectors.liquidations.binance import BinanceForceOrderFeed
from collectors.liquidations.gate import GateLiqOrdersFeed, GateLiquidatesFeed
from collectors.liquidations.htx import HtxLiquidationFeed, HtxLiquidationOrdersFeed
from collectors.liquidations.integration import (
    liquidation_tasks,
    make_service,
    service_for,
)
from collectors.liquidations.okx import OkxLiquidationFeed
from collectors.registry import venue_keys
from simulator.market import Market
from simulator.market_state import HOUR_MS, SimContract, SimLiquidation, SimVenue
from simulator.server import SimulatorThread
from simulator.stream_hub import hub_for
from storage import liquidation_reads as liq
from storage.liquidation_writes import BACKEND
from storage.queries import query_df

pytestmark = pytest.mark.e2e


def contract(symbol: str, base: str, quote: str, size: str, inverse: bool = False) -> SimContract:
    return SimContract(symbol, base, quote, base if inverse else quote, Decimal(size), inverse, Decimal(1000))


def market_with_streams() -> Market:
    """Binance from its venue module, the other venues as bare stream venues (no REST module needed)."""
    market = Market(venues=["binance"], speed=0)
    market.venues["binancecoinm"] = SimVenue("binancecoinm", contracts={
        "BTCUSD_PERP": contract("BTCUSD_PERP", "BTC", "USD", "100", True)})
    market.venues["bybit"] = SimVenue("bybit", contracts={
        "BTCUSDT": contract("BTCUSDT", "BTC", "USDT", "1"), "ETHUSDT": contract("ETHUSDT", "ETH", "USDT", "1"),
        "BTCUSD": contract("BTCUSD", "BTC", "USD", "1", True)})
    market.venues["okx"] = SimVenue("okx", contracts={
        "BTC-USDT-SWAP": contract("BTC-USDT-SWAP", "BTC", "USDT", "0.01"),
        "BTC-USD-SWAP": contract("BTC-USD-SWAP", "BTC", "USD", "100", True)})
    market.venues["gate"] = SimVenue("gate", contracts={"BTC_USDT": contract("BTC_USDT", "BTC", "USDT", "0.0001")})
    market.venues["htx"] = SimVenue("htx", contracts={"BTC-USDT": contract("BTC-USDT", "BTC", "USDT", "0.001")})
    return market


class Liquidator:
    """Appends liquidations to a simulated venue (what the market model does)."""

    def __init__(self, market: Market) -> None:
        self.market = market
        self.ids = itertools.count()

    def add(self, venue: str, symbol: str, ts_ms: int, side: str = "long", qty: str = "2",
            price: str = "64000") -> SimLiquidation:
        n = next(self.ids)
        item = SimLiquidation(f"{venue}-{n}", symbol, ts_ms, side, Decimal(qty), Decimal(price),
                              Decimal(price) * Decimal("1.001"), Decimal(0))
        self.market.venue(venue).liquidations.append(item)
        return item


def settings_with(sim: SimulatorThread, db: Path, venues: dict[str, dict[str, Any]], **extra: Any) -> Settings:
    cfg: dict[str, Any] = {key: {"enabled": False} for key in venue_keys()}
    for key, values in venues.items():
        cfg[key] = {"enabled": True, "base_url": sim.base_url(key), **values}
    return load_settings(db_path=db, venues=cfg, **extra)


async def until(condition: Callable[[], bool], timeout: float = 15.0, what: str = "condition") -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def start(collector: Collector, tasks: list[Any],
                feeds: tuple[str, ...] = ("allLiquidation:linear",)) -> list[asyncio.Task[None]]:
    running = [asyncio.create_task(task(collector)) for task in tasks]
    service = service_for(collector)
    assert service is not None
    await asyncio.wait_for(asyncio.gather(*(r.started.wait() for r in service.runners if r.info.feed in feeds)), 20)
    await asyncio.sleep(0.3)  # `started` is the first acknowledgement; let the other symbols' arrive too
    return running


async def stop(running: list[asyncio.Task[None]]) -> None:
    for task in running:
        task.cancel()
    await asyncio.gather(*running, return_exceptions=True)


def expected_bybit(market: Market, liquidations: list[SimLiquidation]) -> set[tuple[Any, ...]]:
    rows = set()
    for item in liquidations:
        spec = market.venue("bybit").contracts[item.symbol]
        qty = item.qty_contracts * spec.contract_size
        usd = qty if spec.inverse else qty * item.bankruptcy_price
        stamp = datetime.fromtimestamp(item.ts_ms / 1000, tz=UTC)
        rows.add((item.symbol, stamp, item.position_side, round(float(usd), 6)))
    return rows


def stored(db: Path, venue: str) -> set[tuple[Any, ...]]:
    frame = query_df(db, "SELECT symbol, ts, side, notional_usd FROM liquidations WHERE venue = ?", [venue])
    return {(r.symbol, r.ts.to_pydatetime(), r.side, round(r.notional_usd, 6)) for r in frame.itertuples()}


def test_bybit_stores_exactly_what_the_simulator_emitted(tmp_path) -> None:
    market = market_with_streams()
    with SimulatorThread(market) as sim:
        db = tmp_path / "bybit.duckdb"
        settings = settings_with(sim, db, {"bybit": {"symbols": ["BTCUSDT", "ETHUSDT", "BTCUSD"]}})
        liquidator = Liquidator(market)

        async def scenario() -> None:
            collector = Collector(settings=settings)
            running = await start(collector, liquidation_tasks(collector, BACKEND),
                                  ("allLiquidation:linear", "allLiquidation:inverse"))
            now = market.now_ms()
            for i in range(300):
                symbol = ("BTCUSDT", "ETHUSDT", "BTCUSD")[i % 3]
                liquidator.add("bybit", symbol, now - 60_000 + i * 7, "long" if i % 4 else "short",
                               qty=str(1 + i % 5), price=str(60_000 + i))
                if i % 100 == 99:
                    await asyncio.sleep(0.6)  # spread over several 500 ms pushes
            hub = hub_for(market)
            service = service_for(collector)
            await until(lambda: sum(len(log.emitted) for key, log in hub.logs.items() if key.startswith("bybit")) == 300,
                        what="the simulator to emit 300")
            await until(lambda: service.sink.written == 300 and service.sink.pending == 0, what="300 stored")
            await stop(running)

        asyncio.run(scenario())
        emitted = [item for key, log in hub_for(market).logs.items() if key.startswith("bybit")
                   for item in log.emitted.values()]
    assert len(emitted) == 300
    assert stored(db, "bybit") == expected_bybit(market, emitted)
    coverage = query_df(db, "SELECT DISTINCT coverage, lower_bound FROM liquidations")
    assert coverage.values.tolist() == [["complete", False]]


def test_disconnect_records_a_gap_and_no_duplicates_after_reconnect(tmp_path) -> None:
    market = market_with_streams()
    with SimulatorThread(market) as sim:
        db = tmp_path / "gap.duckdb"
        settings = settings_with(sim, db, {"bybit": {"symbols": ["BTCUSDT", "ETHUSDT"]}})
        liquidator = Liquidator(market)
        lost: list[SimLiquidation] = []

        async def scenario() -> None:
            collector = Collector(settings=settings)
            running = await start(collector, liquidation_tasks(collector, BACKEND))
            service = service_for(collector)
            runner = next(r for r in service.runners if r.info.feed == "allLiquidation:linear")
            now = market.now_ms()
            for i in range(20):
                liquidator.add("bybit", "BTCUSDT", now + i, qty=str(i + 1))
            await until(lambda: service.sink.written == 20, what="first 20 stored")
            sim.faults.add("bybit:/v5/public/linear:disconnect:1.5 x1")  # drop, refuse reconnects for 1.5 s
            await until(lambda: runner.stats.gaps == 1, what="the disconnect")
            lost.append(liquidator.add("bybit", "ETHUSDT", now + 100))  # while down: never emitted
            await until(lambda: runner.stats.sessions >= 2 and runner.up, timeout=20, what="resubscription")
            sim.faults.add("bybit:/v5/public/linear:duplicate:3 x2")  # replay the last 3 frames, twice
            for i in range(20):
                liquidator.add("bybit", "ETHUSDT", now + 200 + i, qty=str(i + 1))
                if i % 5 == 4:
                    await asyncio.sleep(0.6)
            await until(lambda: runner.stats.duplicates > 0, what="replayed frames")
            await until(lambda: service.sink.written == 40 and service.sink.pending == 0, what="40 stored")
            await stop(running)

        asyncio.run(scenario())
        emitted = [item for item in hub_for(market).log_for("bybit:linear").emitted.values()]
    assert len(emitted) == 40 and lost[0].liq_id not in {e.liq_id for e in emitted}
    counts = query_df(db, "SELECT count(*) AS n, count(DISTINCT (venue, feed, event_key)) AS d FROM liquidations")
    assert counts["n"][0] == counts["d"][0] == 40  # replays and the reconnect added no duplicate
    assert stored(db, "bybit") == expected_bybit(market, emitted)
    gaps = liq.liquidation_gaps(db)
    assert len(gaps) == 1
    gap = gaps.iloc[0]
    assert (gap["venue"], gap["feed"]) == ("bybit", "allLiquidation:linear")
    assert not gap["open"] and gap["end_ts"] - gap["start_ts"] >= timedelta(seconds=1)  # refused for 1.5 s
    minute = liq.liquidation_volumes(db, "1m", since=gap["start_ts"].floor("min"),
                                     until=gap["start_ts"].floor("min") + timedelta(minutes=1))
    assert minute.empty or minute["incomplete"].all()


def test_injected_cascade_is_detected_with_the_right_start(tmp_path) -> None:
    market = market_with_streams()
    with SimulatorThread(market) as sim:
        db = tmp_path / "cascade.duckdb"
        settings = settings_with(
            sim, db, {"bybit": {"symbols": ["BTCUSDT", "ETHUSDT"]}},
            alerts={"rules": {"liquidation_cascade": {"params": {"k": 5, "m": 3, "floor_usd": 50_000}}}})
        liquidator = Liquidator(market)
        anchor = market.now_ms() // 60_000 * 60_000
        burst_start = anchor - 8 * 60_000

        async def scenario() -> list[Any]:
            collector = Collector(settings=settings)
            running = await start(collector, liquidation_tasks(collector, BACKEND))
            service = service_for(collector)
            total = 0
            for minute in range(80, 0, -1):  # calm: ~$2k a minute for 80 minutes
                liquidator.add("bybit", "ETHUSDT", anchor - minute * 60_000 + 5_000, "short", qty="1", price="2000")
                total += 1
            for minute in range(4):  # the cascade: 4 minutes of ~$1.2M each, longs, price sliding
                for k in range(20):
                    liquidator.add("bybit", "BTCUSDT", burst_start + minute * 60_000 + k * 1_000, "long",
                                   qty="1", price=str(60_000 - 500 * minute))
                    total += 1
            await until(lambda: service.sink.written == total and service.sink.pending == 0, what="all stored")
            detector = CascadeDetector(collector)
            found = await detector.after_cycle([], every_s=0)
            assert await detector.after_cycle([], every_s=3600) == []  # throttled
            await stop(running)
            return found

        found = asyncio.run(scenario())
    bybit = [c for c in found if c.scope == "bybit"]
    assert len(bybit) == 1
    start_ts = datetime.fromtimestamp(burst_start / 1000, tz=UTC)
    assert abs(bybit[0].start - start_ts) <= timedelta(minutes=1)
    assert bybit[0].end == start_ts + timedelta(minutes=4) and bybit[0].total_long_usd == pytest.approx(
        sum(60_000 - 500 * m for m in range(4)) * 20)
    rows = liq.cascade_rows(db, venues=["bybit"])
    assert rows["start_ts"].tolist() == [start_ts] and rows["price_move_pct"][0] < 0
    assert not rows["lower_bound"][0]  # Bybit pushes everything


def test_every_feed_stores_its_share_with_coverage_flags(tmp_path) -> None:
    market = market_with_streams()
    okx_specs = {"BTC-USDT-SWAP": ContractSpec("BTC-USDT-SWAP", "BTC", "USDT", Decimal("0.01"), False),
                 "BTC-USD-SWAP": ContractSpec("BTC-USD-SWAP", "BTC", "USD", Decimal(100), True)}
    gate_specs = {"BTC_USDT": ContractSpec("BTC_USDT", "BTC", "USDT", Decimal("0.0001"), False)}
    with SimulatorThread(market) as sim:
        db = tmp_path / "all.duckdb"
        settings = settings_with(sim, db, {})
        liquidator = Liquidator(market)

        async def scenario() -> None:
            collector = Collector(settings=settings)
            base = sim.base_url
            feeds = [
                BinanceForceOrderFeed("usdm", base("binance")), BinanceForceOrderFeed("coinm", base("binancecoinm")),
                OkxLiquidationFeed("SWAP", base("okx"), specs=okx_specs),
                GateLiquidatesFeed("usdt", base("gate"), specs=gate_specs),
                GateLiqOrdersFeed("usdt", base("gate"), interval_s=0.5, specs=gate_specs),
                HtxLiquidationFeed(base("htx")), HtxLiquidationOrdersFeed(base("htx"), interval_s=0.5),
            ]
            service = make_service(collector, feeds, backend=BACKEND)
            running = [asyncio.create_task(service.sink.run())] + [asyncio.create_task(r.run()) for r in service.runners]
            await asyncio.wait_for(asyncio.gather(*(r.started.wait() for r in service.runners)), 20)
            now = market.now_ms() // 1000 * 1000
            for venue, symbol in [("binance", "BTCUSDT"), ("binancecoinm", "BTCUSD_PERP"), ("okx", "BTC-USDT-SWAP"),
                                  ("okx", "BTC-USD-SWAP"), ("gate", "BTC_USDT"), ("htx", "BTC-USDT")]:
                for i in range(5):  # 5 in one second: sampled feeds keep one
                    liquidator.add(venue, symbol, now + i * 10, "short" if i == 4 else "long", qty=str(i + 1))
            await until(lambda: service.sink.written >= 5 + 5 + 1 + 1 + 1 + 1 + 1 + 1, what="every feed")
            await asyncio.sleep(1.2)  # one more REST poll and stream push: nothing else may arrive
            await stop(running)

        asyncio.run(scenario())
    frame = query_df(db, "SELECT venue, feed, count(*) AS n, bool_and(lower_bound) AS lb, "
                         "sum(notional_usd) AS usd, min(side) AS side FROM liquidations GROUP BY ALL ORDER BY ALL")
    got = {(r.venue, r.feed): (r.n, r.lb, r.usd, r.side) for r in frame.itertuples()}
    px = 64_000 * 1.001
    assert got[("binance", "forceOrder:usdm")] == (1, True, pytest.approx(5 * px), "short")  # latest of the second
    assert got[("binancecoinm", "forceOrder:coinm")] == (1, True, pytest.approx(500.0), "short")  # 5 x 100 USD
    assert got[("okx", "liquidation-orders:SWAP")][0] == 2  # one per instrument per second
    assert got[("gate", "public_liquidates:usdt")] == (1, True, pytest.approx(5 * 0.0001 * px), "short")
    assert got[("gate", "liq_orders:usdt")][0] == 5  # the history endpoint has them all
    assert got[("htx", "liquidation_orders:linear-swap")] == (5, True, pytest.approx(15 * 0.001 * px), "long")
    assert got[("htx", "swap_liquidation_orders:linear")][0] == 5
    gate = liq.liquidation_volumes(db, "1h", venues=["gate"])  # ws and rest overlap: max, not sum
    assert gate["total_usd"].sum() == pytest.approx(15 * 0.0001 * px)
    feeds = liq.liquidation_feeds(db)
    assert set(feeds["coverage"]) == {"sampled", "unconfirmed"} and feeds["lower_bound"].all()


def test_market_model_cascade_scenario_is_detected_at_its_onset(tmp_path) -> None:
    """The market model's ``cascade`` scenario on the real Bybit venue module (symbols from its tickers),
    stepped four simulated hours: the cascade found by the default parameters starts at the onset."""
    market = Market(venues=["bybit"], scenario="cascade", speed=0)
    with SimulatorThread(market) as sim:
        db = tmp_path / "model.duckdb"
        settings = settings_with(sim, db, {"bybit": {}})

        async def scenario() -> list[Any]:
            collector = Collector(settings=settings)
            running = await start(collector, liquidation_tasks(collector, BACKEND),
                                  ("allLiquidation:linear", "allLiquidation:inverse"))
            service = service_for(collector)
            market.fast_forward(4 * HOUR_MS)
            hub = hub_for(market)

            def emitted() -> int:
                return sum(len(log.emitted) for log in hub.logs.values())

            await until(lambda: emitted() > 500, what="the model's liquidations to stream")
            await asyncio.sleep(1.0)  # the last 500 ms push
            await until(lambda: service.sink.written == emitted() and service.sink.pending == 0, what="all stored")
            found = await CascadeDetector(collector).after_cycle([], every_s=0)
            await stop(running)
            return found

        found = asyncio.run(scenario())
    onset = datetime.fromtimestamp(market.plan.onset_ms / 1000, tz=UTC)
    starts = [c.start for c in found if c.scope == "bybit"]
    assert starts, "no cascade detected"
    assert abs(min(starts) - onset) <= timedelta(minutes=1)
