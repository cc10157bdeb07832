"""ADL signals into the adl_near rule: HTX's estimated clawback (collected, now alerted on) and Gate's
market-level ADL states (adl_risk_states: collector, simulator, rule)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from alerts import market_rules
from alerts.parameters import AdlParams
from backstop.service import Collector
from collectors.errors import PayloadError
from collectors.gate import parse_adl_risk_states
from metrics.alert_rows import AdlReading
from storage.db import read_connection
from storage.liquidation_inputs import latest_adl
from tests.conftest import settings_for

NOW = datetime(2026, 8, 13, 12, 0, tzinfo=UTC)
# Gate's FuturesADLRiskStates as the published SDK fixture (Docs/Futures/adl_risk_states.success.json) writes
# it: no verbatim example on Gate's page was found, so the shape is UNCONFIRMED
GATE_STATES = {"settle": "usdt", "states": {
    "BTC_USDT": {"state": "normal", "calculated_at_ms": 1786695185345},
    "GT_USDT": {"state": "warning", "calculated_at_ms": 1786695185345},
    "HYPE_USDT": {"state": "adl_risk", "calculated_at_ms": 1786695185345}}}


def test_gate_adl_risk_states_example() -> None:
    signals = parse_adl_risk_states("gate", "usdt", GATE_STATES, NOW)
    assert [(s.scope, s.level, s.value) for s in signals] == [
        ("BTC_USDT", "normal", 0.0), ("GT_USDT", "warning", 1.0), ("HYPE_USDT", "adl_risk", 2.0)]
    assert {s.signal_type for s in signals} == {"gate_adl_risk"}
    assert signals[0].ts == datetime.fromtimestamp(1786695185.345, tz=UTC)


def test_gate_adl_risk_states_defensive() -> None:
    rows = {"settle": "btc", "states": [{"contract": "BTC_USD", "state": "liquidating"}]}  # a list, no time
    (signal,) = parse_adl_risk_states("gate", "btc", rows, NOW)
    assert (signal.scope, signal.level, signal.value, signal.ts) == ("BTC_USD", "liquidating", None, NOW)
    assert '"ts_source":"fetch"' in signal.detail  # an unknown state is kept, never read as normal
    with pytest.raises(PayloadError, match="state"):
        parse_adl_risk_states("gate", "usdt", {"states": {"BTC_USDT": {"calculated_at_ms": 1786695185345}}}, NOW)
    with pytest.raises(PayloadError, match="states"):
        parse_adl_risk_states("gate", "usdt", {"settle": "usdt"}, NOW)


def _reading(venue: str, scope: str, kind: str, level: str | None = None, value: float | None = None,
             age: timedelta = timedelta(minutes=5)) -> AdlReading:
    return AdlReading(venue, scope, kind, NOW - age, level, value)


def test_adl_near_fires_on_htx_clawback_and_gate_states() -> None:
    params = AdlParams()
    quiet = [_reading("htx", "BTC-USDT", "htx_clawback", value=0.0),
             _reading("gate", "BTC_USDT", "gate_adl_risk", "normal", 0.0)]
    assert market_rules.adl_near(quiet, params, NOW) == []
    rows = [_reading("htx", "BTC-USDT", "htx_clawback", value=0.0),
            _reading("htx", "ETH-USDT", "htx_clawback", value=0.0125),
            _reading("htx", "SOL-USDT", "htx_clawback", value=0.002)]
    [htx] = market_rules.adl_near(rows, params, NOW, {"htx": "HTX"})
    assert htx.severity == "critical" and htx.metrics["scopes"] == ["ETH-USDT", "SOL-USDT"]
    assert htx.message == "HTX expects a clawback of 1.250 % of profits on ETH-USDT, SOL-USDT (estimated_clawback)"
    assert market_rules.adl_near([_reading("htx", "ETH-USDT", "htx_clawback", value=0.5, age=timedelta(hours=3))],
                                 params, NOW) == []  # stale readings belong to the stale rule
    [warning] = market_rules.adl_near([_reading("gate", "GT_USDT", "gate_adl_risk", "warning", 1.0)], params, NOW)
    assert warning.severity == params.severity and "ADL state warning on GT_USDT" in warning.message
    [risk] = market_rules.adl_near([_reading("gate", "GT_USDT", "gate_adl_risk", "warning", 1.0),
                                    _reading("gate", "HYPE_USDT", "gate_adl_risk", "adl_risk", 2.0)], params, NOW)
    assert risk.severity == "critical" and risk.metrics["scopes"] == ["HYPE_USDT", "GT_USDT"]


def test_collected_clawback_and_gate_states_reach_the_rule(sim_factory, tmp_path) -> None:
    """Simulator -> collector -> DuckDB -> latest_adl -> adl_near, for both venues."""
    sim = sim_factory(["htx", "gate"])
    sim.market.venue("htx").pools["ETH-USDT"].extra["estimated_clawback"] = Decimal("0.0125")
    sim.market.venue("gate").contracts["ETH_USDT"].extra["adl_risk"] = "high"
    settings = settings_for(sim, tmp_path / "a.duckdb", ["htx", "gate"])

    async def run() -> None:
        collector = Collector.for_venues(settings)
        async with collector.running():
            for venue in ("htx", "gate"):
                outcome = await collector.run_one(venue, "adl")
                assert outcome.status == "ok", outcome.error_message

    asyncio.run(run())
    as_of = datetime.fromtimestamp(sim.market.now_ms() / 1000, tz=UTC)
    with read_connection(settings.db) as con:
        readings = latest_adl(con, as_of)
    gate_levels = {r.scope: r.level for r in readings if r.signal_type == "gate_adl_risk"}
    assert gate_levels == {"BTC_USDT": "normal", "ETH_USDT": "adl_risk", "SOL_USDT": "normal", "BTC_USD": "normal"}
    signals = {s.venue: s for s in market_rules.adl_near(readings, AdlParams(), as_of)}
    assert set(signals) == {"htx", "gate"}
    assert signals["htx"].metrics["scopes"] == ["ETH-USDT"] and signals["gate"].metrics["scopes"] == ["ETH_USDT"]
