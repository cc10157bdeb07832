"""End to end with the simulator's market scenarios: collector cycles against the local simulator (the
clock fast-forwarded between cycles), the alert hook after each cycle, notifications to a local
``json://`` receiver.

* ``venue-drain:okx`` -> exactly one divergence and one fund_drawdown alert, both for OKX;
* ``cascade`` -> cascade alerts and fund drawdowns on several venues, no divergence. The ``cascades`` rows
  are written here, shaped from the simulator's own liquidation statistics: the liquidation streams and
  the cascade detector that fill that table run as collector background tasks, outside ``run_cycle``;
* a venue that stops answering -> stale; it answers again -> resolved.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from alerts.engine import AlertEngine
from backstop.config import Settings
from backstop.integrations import alert_engine_for
from backstop.service import Collector
from simulator.market_state import HOUR_MS
from simulator.server import SimulatorThread
from storage.queries import query_df
from storage.rule_inputs import table_columns
from tests.conftest import settings_for
from tests.test_alerts_delivery import Receiver

pytestmark = pytest.mark.e2e

FUND_VENUES = ["binance", "bybit", "okx", "bitmex", "gate"]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver().start()
    yield server
    server.stop()


def scenario_settings(sim: SimulatorThread, db: Path, venues: list[str], receiver: Receiver,
                      rules: dict[str, Any] | None = None) -> Settings:
    settings = settings_for(sim, db, venues, alerts={"targets": [receiver.url("/hook/alerts")], "rules": rules or {}})
    for venue in venues:  # funds, open interest and prices are what the fund rules read
        settings.venues[venue].intervals.funding = 0
        settings.venues[venue].intervals.adl = 0
    return settings


def collect(sim: SimulatorThread, settings: Settings, offsets_h: list[float],
            before_cycle: Callable[[Collector, float], None] | None = None) -> AlertEngine:
    """One cycle (with the alert hook) at each simulated offset from the start; returns the engine."""

    async def run() -> AlertEngine:
        collector = Collector.for_venues(settings)
        engine = alert_engine_for(collector)
        assert engine is not None
        collector.after_cycle.append(lambda outcomes: engine.after_cycle())
        async with collector.running():
            for hours in offsets_h:
                sim.market.run_until(sim.market.start_ms + int(hours * HOUR_MS))
                if before_cycle is not None:
                    before_cycle(collector, hours)
                outcomes = await collector.run_cycle()
                assert {o.status for o in outcomes} == {"ok"}, [(o.venue, o.dataset, o.error_message)
                                                              for o in outcomes if o.status != "ok"]
            return engine

    return asyncio.run(run())


def alerts(db: Path) -> Any:
    return query_df(db, "SELECT rule, venue, status, severity, message, notified_severity FROM alerts "
                        "ORDER BY rule, venue, fired_at")


def received(receiver: Receiver) -> list[dict[str, Any]]:
    return [payload for _, payload in receiver.requests]


def test_venue_drain_alerts_only_the_drained_venue(sim_factory: Any, tmp_path: Path, receiver: Receiver) -> None:
    sim = sim_factory(FUND_VENUES, scenario="venue-drain:okx", seed=5, publish_every_s=4 * 3600)
    settings = scenario_settings(sim, tmp_path / "drain.duckdb", FUND_VENUES, receiver)
    plan = sim.market.plan
    end_h = (plan.end_ms - sim.market.start_ms) / HOUR_MS + 2
    engine = collect(sim, settings, [0, 4, 8, 12, end_h])
    assert engine.wait_deliveries(timeout=30)

    fired = alerts(settings.db)
    fund_alerts = fired[fired["rule"].isin(["divergence", "fund_drawdown"])]
    assert fund_alerts[["rule", "venue"]].values.tolist() == [["divergence", "okx"], ["fund_drawdown", "okx"]]
    assert set(fund_alerts["status"]) == {"firing"} and set(fund_alerts["severity"]) == {"critical"}
    assert "stale" not in set(fired["rule"])
    divergence = fund_alerts[fund_alerts["rule"] == "divergence"]["message"].iloc[0]
    assert divergence.startswith("OKX insurance funds −") and "vs peers median" in divergence
    drawdown = fund_alerts[fund_alerts["rule"] == "fund_drawdown"]["message"].iloc[0]
    assert drawdown.startswith("OKX USDT pool SWAP:BTC-USDT −") and "; peers median" in drawdown
    # announced to the receiver as apprise's JSON: once when it fired, plus at most one escalation (a drain
    # caught early is a warning that turns critical as it deepens)
    titles = [p["title"] for p in received(receiver)]
    assert not [t for t in titles if ("divergence" in t or "fund_drawdown" in t) and not t.endswith(": OKX")]
    for rule in ("divergence", "fund_drawdown"):
        announced = [t for t in titles if f"] {rule}:" in t]
        assert announced[0] in (f"[WARNING] {rule}: OKX", f"[CRITICAL] {rule}: OKX"), titles
        assert announced[1:] in ([], [f"[CRITICAL ↑] {rule}: OKX"]), titles
    first = next(p for p in received(receiver) if "] fund_drawdown:" in p["title"])
    assert first["type"] in ("warning", "failure") and first["message"].startswith("OKX USDT pool")


def _cascade_rows(collector: Collector, sim: SimulatorThread, start_ms: int, end_ms: int,
                  liquidated: dict[str, float]) -> None:
    """What the cascade detector would store for the crash: one row per venue."""
    start = datetime.fromtimestamp(start_ms / 1000, UTC)
    end = datetime.fromtimestamp(end_ms / 1000, UTC)
    now = datetime.now(UTC)

    def write(con: Any) -> None:
        scope = "venue" if "venue" in table_columns(con, "cascades") else "scope"
        venues = sorted(liquidated)
        minutes = int((end_ms - start_ms) / 60_000)
        rows = pa.table({
            scope: venues, "start_ts": [start] * len(venues), "end_ts": [end] * len(venues),
            "last_minute": [end] * len(venues), "peak_ts": [start] * len(venues),
            "peak_usd": [liquidated[v] / 10 for v in venues], "total_long_usd": [liquidated[v] * 0.8 for v in venues],
            "total_short_usd": [liquidated[v] * 0.2 for v in venues], "baseline_usd": [1e4] * len(venues),
            "threshold_usd": [1e5] * len(venues), "minutes": [minutes] * len(venues),
            "ongoing": [False] * len(venues), "incomplete": [False] * len(venues), "lower_bound": [True] * len(venues),
            "dominant_asset": ["BTC"] * len(venues), "params": ["{}"] * len(venues),
            "detected_at": [now] * len(venues), "updated_at": [now] * len(venues),
        })
        con.register("cascade_rows", rows)
        try:
            con.execute("INSERT INTO cascades BY NAME SELECT * FROM cascade_rows")
        finally:
            con.unregister("cascade_rows")

    collector.store.execute_write(write)


def test_cascade_fires_cascades_and_drawdowns_but_no_divergence(sim_factory: Any, tmp_path: Path,
                                                                 receiver: Receiver) -> None:
    sim = sim_factory(FUND_VENUES, scenario="cascade", seed=5, publish_every_s=3600)
    # a market-wide crash drains funds by a few percent to ~15 %: a 5 % drawdown threshold here
    settings = scenario_settings(sim, tmp_path / "cascade.duckdb", FUND_VENUES, receiver,
                                 rules={"fund_drawdown": {"threshold_pct": 5}})
    plan = sim.market.plan
    onset_h = (plan.onset_ms - sim.market.start_ms) / HOUR_MS
    stats0: dict[str, float] = {}

    def before(collector: Collector, hours: float) -> None:
        if hours == onset_h:
            stats0.update({v: sim.market.stats(v)["liq_notional_usd"] for v in FUND_VENUES})
        if hours == onset_h + 2:  # the crash is over: the detector would have stored it by now
            liquidated = {v: sim.market.stats(v)["liq_notional_usd"] - stats0[v] for v in FUND_VENUES}
            _cascade_rows(collector, sim, plan.onset_ms, plan.onset_ms + 2 * HOUR_MS, liquidated)

    engine = collect(sim, settings, [0, onset_h, onset_h + 2, onset_h + 4, onset_h + 6], before)
    assert engine.wait_deliveries(timeout=30)
    fired = alerts(settings.db)
    cascades = fired[fired["rule"] == "cascade"]
    assert sorted(cascades["venue"]) == sorted(FUND_VENUES)
    assert set(cascades["status"]) == {"resolved"}  # ended 2 h before the last evaluation (hold 1 h)
    assert "liquidation cascade since" in cascades["message"].iloc[0]
    drawdowns = fired[fired["rule"] == "fund_drawdown"]
    assert drawdowns["venue"].nunique() >= 3, fired.to_string()
    assert fired[fired["rule"] == "divergence"].empty, fired.to_string()
    titles = [p["title"] for p in received(receiver)]
    assert sum(t.startswith("[RESOLVED] cascade:") for t in titles) == len(FUND_VENUES)


def test_stopped_venue_is_stale_until_it_answers_again(sim_factory: Any, tmp_path: Path,
                                                        receiver: Receiver) -> None:
    venues = ["binance", "bybit"]
    sim = sim_factory(venues)
    settings = scenario_settings(sim, tmp_path / "stale.duckdb", venues, receiver,
                                 rules={"stale": {"params": {"min_stale_s": 0, "multiple": 3}}})
    bybit = settings.venues["bybit"].intervals
    bybit.funds = bybit.open_interest = bybit.prices = 1.0  # expected every second: stale after 3 s

    async def run() -> list[list[Any]]:
        collector = Collector.for_venues(settings)
        engine = alert_engine_for(collector)
        assert engine is not None
        collector.after_cycle.append(lambda outcomes: engine.after_cycle())
        steps: list[list[Any]] = []
        async with collector.running():
            await collector.run_cycle()
            last_ok = time.monotonic()
            sim.faults.add("bybit:*:503")  # the venue stops answering
            await collector.run_cycle()
            steps.append(alerts(settings.db).values.tolist())
            await asyncio.sleep(max(0.0, 3.5 - (time.monotonic() - last_ok)))
            outcomes = await collector.run_cycle()
            assert {o.status for o in outcomes if o.venue == "bybit"} == {"error"}
            assert {o.status for o in outcomes if o.venue == "binance"} == {"ok"}
            steps.append(alerts(settings.db).values.tolist())
            sim.faults.clear()  # back
            outcomes = await collector.run_cycle()
            assert {o.status for o in outcomes} == {"ok"}
            steps.append(alerts(settings.db).values.tolist())
            assert engine.wait_deliveries(timeout=30)
        return steps

    before, blind, after = asyncio.run(run())
    assert before == []
    [[rule, venue, status, severity, message, _]] = blind
    assert (rule, venue, status, severity) == ("stale", "bybit", "firing", "critical")
    assert message.startswith("Bybit") and "funds: no successful poll for" in message
    assert [(r[0], r[1], r[2]) for r in after] == [("stale", "bybit", "resolved")]
    payloads = received(receiver)
    assert [p["title"] for p in payloads] == ["[CRITICAL] stale: Bybit v5", "[RESOLVED] stale: Bybit v5"]
    assert payloads[1]["type"] == "success" and payloads[1]["message"].startswith("Cleared after ")
