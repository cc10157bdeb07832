"""The backstop's own positions: the Hyperliquid parser on the docs' clearinghouseState example, the
``inventory_large`` rule on hand-made rows and its configuration, then end to end: the simulated HLP
Liquidator takes over a ~$286 M ETH long (Mar 2025), the collector stores it with the vault's equity, the
rule fires critical, the export has it, and once the position is unwound the alert resolves and the
current inventory shows only what is still held."""

from __future__ import annotations

import asyncio
import csv
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from alerts.context import rule_set
from alerts.inventory import INVENTORY_LARGE, InventoryParams, InventoryPosition, inventory_large
from alerts.parameters import build_params
from backstop.cli import app
from backstop.config import AlertRuleConfig, AlertsConfig, ConfigError
from backstop.integrations import alert_engine_for
from backstop.service import Collector
from collectors.hyperliquid import parse_asset_positions
from simulator.inventory import TAKEOVER_DELAY_MS
from simulator.market_state import HOUR_MS, MINUTE_MS
from simulator.venues.hyperliquid import INVENTORY
from storage.positions import current_inventory
from storage.queries import query_df
from tests.conftest import example_raw, settings_for

TS = datetime(2025, 3, 12, 12, 0, tzinfo=UTC)


def test_clearinghouse_state_example_positions() -> None:
    payload = example_raw("hyperliquid", "clearinghouse_state_info_clearinghouseState.json")
    (position,) = parse_asset_positions("hyperliquid", "HLP Liquidator", payload)
    assert (position.holder, position.contract, position.size, position.size_raw, position.side) == (
        "HLP Liquidator", "ETH", 0.0335, "0.0335", "long")
    assert (position.entry_price, position.unrealised_pnl, position.notional_usd) == (2986.3, -0.0134, 100.02765)
    assert position.mark_price == pytest.approx(100.02765 / 0.0335)
    assert position.ts == datetime.fromtimestamp(1708622398623 / 1000, tz=UTC)  # same as the accountValue row


def test_flat_entries_are_not_positions() -> None:
    payload = example_raw("hyperliquid", "clearinghouse_state_info_clearinghouseState.json")
    payload["assetPositions"][0]["position"]["szi"] = "0.0"
    assert parse_asset_positions("hyperliquid", "HLP Liquidator", payload) == []


def row(notional: float, equity: float | None, size: float = 1.0, holder: str = "HLP Liquidator",
        contract: str = "ETH", venue: str = "hyperliquid") -> InventoryPosition:
    return InventoryPosition(venue, holder, contract, TS, size, notional, -1_000_000.0, equity)


def test_rule_fires_on_the_largest_position_against_equity() -> None:
    rows = [row(286e6, 12.8e6, 89_375.0), row(1.4e6, 12.8e6, -9_500.0, contract="SOL")]
    (signal,) = inventory_large(rows, InventoryParams(), {"hyperliquid": "Hyperliquid"})
    assert (signal.rule, signal.venue, signal.scope, signal.severity) == (
        INVENTORY_LARGE, "hyperliquid", "HLP Liquidator", "critical")
    assert signal.message == ("Hyperliquid HLP Liquidator holds a long ETH position of 286.0 M USD, "
                              "2,234 % of its 12.8 M USD equity; unrealised \u22121.0 M USD")
    assert signal.metrics["share_pct"] == pytest.approx(286e6 / 12.8e6 * 100) and signal.data_ts == TS


@pytest.mark.parametrize(("notional", "equity", "expected"), [
    (4e6, 10e6, []),  # 40 %: below the 50 % default
    (6e6, 10e6, ["warning"]),
    (25e6, 10e6, ["critical"]),  # 250 % >= 200 %
    (0.5e6, 0.2e6, []),  # under min_notional_usd: a leftover, whatever the share
    (2e6, 0.0, ["critical"]),  # no positive equity behind a real position
    (2e6, None, []),  # equity unknown (unpriced): no share, no guess
])
def test_rule_thresholds(notional: float, equity: float | None, expected: list[str]) -> None:
    assert [s.severity for s in inventory_large([row(notional, equity)], InventoryParams())] == expected


def test_rule_is_configurable_and_can_be_disabled() -> None:
    config = AlertRuleConfig(threshold_pct=20.0, params={"critical_pct": 1000.0, "min_notional_usd": 1e5})
    params = build_params(InventoryParams, config)
    assert (params.threshold_pct, params.critical_pct, params.min_notional_usd) == (20.0, 1000.0, 1e5)
    assert [s.severity for s in inventory_large([row(3e6, 10e6)], params)] == ["warning"]
    rules = rule_set(AlertsConfig(rules={INVENTORY_LARGE: AlertRuleConfig(enabled=False)}))
    assert INVENTORY_LARGE in rules.disabled() and not inventory_large([row(3e9, 1e6)], rules.inventory)
    with pytest.raises(ConfigError, match="unknown param 'ratio'"):
        rule_set(AlertsConfig(rules={INVENTORY_LARGE: AlertRuleConfig(params={"ratio": 1.0})}))


@pytest.mark.e2e
def test_liquidator_takeover_stored_alerted_exported_and_unwound(sim_factory: Any, tmp_path: Path) -> None:
    sim = sim_factory(["hyperliquid"], scenario="venue-drain:hyperliquid", seed=3)
    market = sim.market
    settings = settings_for(sim, tmp_path / "inv.duckdb", ["hyperliquid"])
    for dataset in ("open_interest", "funding", "prices"):
        setattr(settings.venues["hyperliquid"].intervals, dataset, 0)  # the funds job carries the positions
    taken = market.plan.onset_ms + TAKEOVER_DELAY_MS
    offsets = [market.start_ms, taken + 30 * MINUTE_MS, market.plan.end_ms + HOUR_MS]
    snapshots: list[Any] = []

    async def run() -> None:
        collector = Collector.for_venues(settings)
        engine = alert_engine_for(collector)
        assert engine is not None
        collector.after_cycle.append(lambda outcomes: engine.after_cycle())
        async with collector.running():
            for ts_ms in offsets:
                market.run_until(ts_ms)
                outcomes = await collector.run_cycle()
                assert {o.status for o in outcomes} == {"ok"}, [o.error_message for o in outcomes]
                snapshots.append((market.now_ms(), query_alerts(collector)))

    def query_alerts(collector: Collector) -> list[tuple[str, str, str]]:
        return collector.store.read(lambda con: con.execute(
            "SELECT status, severity, message FROM alerts WHERE rule = ?", [INVENTORY_LARGE]).fetchall())

    asyncio.run(run())
    (before_ms, before), (during_ms, during), (after_ms, after) = snapshots
    assert before == []  # the standing SOL short is ~11 % of the liquidator's equity
    ((status, severity, message),) = during
    assert (status, severity) == ("firing", "critical")
    assert message.startswith("Hyperliquid HLP Liquidator holds a long ETH position of 28") and "USD equity" in message
    assert after[0][0] == "resolved"

    stored = query_df(settings.db, "SELECT epoch_ms(ts) AS t, contract, size, notional_usd FROM backstop_positions "
                                   "ORDER BY t, contract")
    eth = stored[stored["contract"] == "ETH"]
    assert list(eth["t"]) == [during_ms] and eth["notional_usd"].iloc[0] == pytest.approx(286e6, rel=0.05)
    assert set(stored["t"]) == {before_ms, during_ms, after_ms}  # the standing short at every snapshot

    now = datetime.fromtimestamp(after_ms / 1000, tz=UTC)
    inventory = current_inventory(settings.db, ["hyperliquid"], as_of=now)
    (coin, _, _), = INVENTORY["HLP Liquidator"].standing
    assert inventory[["holder", "contract"]].values.tolist() == [["HLP Liquidator", coin]]  # ETH unwound
    assert 0 < inventory["share_pct"].iloc[0] < 50

    out = tmp_path / "positions.csv"
    result = CliRunner().invoke(app, ["--db", str(settings.db), "export", "backstop-positions", "--out", str(out)])
    assert result.exit_code == 0, result.output
    with out.open(encoding="utf-8") as handle:
        exported = list(csv.DictReader(handle))
    assert len(exported) == len(stored) and {r["venue"] for r in exported} == {"hyperliquid"}
    assert {r["contract"] for r in exported} == {"ETH", coin} and exported[0]["ts"].endswith("Z")


def test_a_holder_whose_newest_snapshot_has_no_position_is_flat(tmp_path: Path) -> None:
    """Positions are read at the holder's newest snapshot fund row only: an older position never shows."""
    from decimal import Decimal

    from collectors.base import Batch, FundBalance
    from collectors.inventory import BACKSTOP_POSITIONS, BackstopPosition
    from storage.writer import Store

    store = Store(tmp_path / "flat.duckdb")
    t1, t2 = TS, TS.replace(hour=13)

    def fund(ts: datetime) -> FundBalance:
        return FundBalance("orderly", "insurance fund", "USDC", ts, Decimal("1e7"), "10000000", "USDC")

    held = BackstopPosition("orderly", "insurance fund", "PERP_ETH_USDC", t1, 1000.0, "1000", 3000.0, 3100.0,
                            100_000.0, 3_100_000.0, "USDC")
    store.write(Batch(funds=[fund(t1)], extra={BACKSTOP_POSITIONS: [held]}))
    first = current_inventory(store.path)
    assert first[["contract", "share_pct"]].values.tolist() == [["PERP_ETH_USDC", pytest.approx(31.0)]]
    store.write(Batch(funds=[fund(t2)], extra={BACKSTOP_POSITIONS: []}))
    (flat,) = current_inventory(store.path).to_dict("records")
    assert flat["holder"] == "insurance fund" and pd_isna(flat["contract"]) and flat["ts"] == t2
    assert current_inventory(store.path, as_of=t1 + (t2 - t1) / 2)["contract"].tolist() == ["PERP_ETH_USDC"]


def pd_isna(value: Any) -> bool:
    import pandas as pd

    return bool(pd.isna(value))
