"""What holds now: every enabled rule's inputs read from DuckDB (``gather``; a failing query silences only
the rules that need it) and the rules run over them (``run_rules``; a rule that raises leaves its alerts
as they are). The rules themselves are pure (``alerts.fund_rules``, ``alerts.market_rules``,
``alerts.monitor_rules``, ``alerts.inventory``); this is where they meet the database.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from alerts import fund_rules, market_rules, monitor_rules
from alerts import inventory as inv
from alerts.context import Context, assessment_config
from alerts.parameters import ADL_NEAR, CASCADE, COVERAGE_LOW, DIVERGENCE, FUND_ANOMALY, FUND_DRAWDOWN, STALE
from metrics.alert_rows import (
    AdlReading,
    CascadeEvent,
    Freshness,
    FundWindow,
    InventoryPosition,
    Signal,
    StreamGap,
    VenueChange,
    VenueCoverage,
)
from metrics.assessment import Assessment
from storage import coverage_inputs, freshness_inputs, fund_inputs, liquidation_inputs
from storage import positions as db_positions
from storage.assessments import load_assessments

log = logging.getLogger(__name__)


@dataclass
class Inputs:
    windows: list[FundWindow] = field(default_factory=list)
    changes: list[VenueChange] = field(default_factory=list)
    coverage: list[VenueCoverage] = field(default_factory=list)
    cascades: list[CascadeEvent] = field(default_factory=list)
    adl: list[AdlReading] = field(default_factory=list)
    freshness: list[Freshness] = field(default_factory=list)
    gaps: list[StreamGap] = field(default_factory=list)
    assessments: list[Assessment] = field(default_factory=list)
    inventory: list[InventoryPosition] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # rule -> error (its alerts are left untouched)


def gather(con: Any, ctx: Context, now: datetime, as_of: datetime,
           cache: dict[str, Any] | None = None) -> Inputs:
    """Run every enabled rule's input query; a failing query disables only the rules that need it.
    ``cache`` (the engine's) keeps the coverage medians for the day: they move once a day."""
    rs = ctx.rules
    inputs = Inputs()
    cache = {} if cache is None else cache

    def medians() -> Any:
        key = (as_of.date(), rs.coverage.median_days)
        if cache.get("medians_key") != key:
            cache["medians"] = coverage_inputs.coverage_medians(con, as_of, rs.coverage.median_days)
            cache["medians_key"] = key
        return cache["medians"]

    def run(needed_by: Sequence[str], fn: Callable[[], Any]) -> Any:
        wanted = [name for name in needed_by if rs.by_name()[name].enabled]
        if not wanted:
            return []
        try:
            return fn()
        except Exception as exc:  # noqa: BLE001 - one broken query must not silence the other rules
            log.exception("alert inputs for %s failed", ", ".join(wanted))
            for name in wanted:
                inputs.failed[name] = f"{type(exc).__name__}: {exc}"
            return []

    change_windows = sorted(set(rs.divergence.windows_h) | set(rs.drawdown.windows_h))
    if rs.divergence.enabled or rs.drawdown.enabled:  # drawdown sentences quote the peers' median
        try:
            inputs.changes = fund_inputs.venue_changes(con, as_of, change_windows, ctx.fund_expected_s)
        except Exception as exc:  # noqa: BLE001 - see run()
            log.exception("alert inputs for divergence failed")
            if rs.divergence.enabled:
                inputs.failed[DIVERGENCE] = f"{type(exc).__name__}: {exc}"
    inputs.windows = run([FUND_DRAWDOWN], lambda: fund_inputs.fund_windows(
        con, as_of, rs.drawdown.windows_h, ctx.fund_expected_s))
    inputs.coverage = run([COVERAGE_LOW], lambda: coverage_inputs.venue_coverage(
        con, as_of, ctx.fund_expected_s, ctx.oi_expected_s, medians=medians()))
    inputs.cascades = run([CASCADE], lambda: liquidation_inputs.recent_cascades(
        con, as_of, lookback=timedelta(hours=rs.cascade.lookback_h)))
    inputs.adl = run([ADL_NEAR], lambda: liquidation_inputs.latest_adl(
        con, as_of, lookback=timedelta(hours=max(rs.adl.lookback_h, rs.adl.okx_lookback_h))))
    inputs.freshness = run([STALE], lambda: freshness_inputs.freshness(con, now, ctx.jobs))
    inputs.gaps = run([STALE], lambda: liquidation_inputs.open_stream_gaps(con))
    if rs.anomaly.enabled or rs.drawdown.enabled:  # drawdowns skip transfers/restructures the assessments classify
        try:
            inputs.assessments = load_assessments(con, as_of, assessment_config(ctx), cache)
        except Exception as exc:  # noqa: BLE001 - see run(); drawdowns then judge without the change kinds
            log.exception("alert inputs for fund_anomaly failed")
            if rs.anomaly.enabled:
                inputs.failed[FUND_ANOMALY] = f"{type(exc).__name__}: {exc}"
    inputs.inventory = run([inv.INVENTORY_LARGE], lambda: db_positions.inventory_positions(
        con, as_of, timedelta(hours=rs.inventory.lookback_h)))
    return inputs


def run_rules(inputs: Inputs, ctx: Context, now: datetime, as_of: datetime) -> tuple[list[Signal], set[str]]:
    """All signals, and the rules that were evaluated (enabled and their inputs read)."""
    rs, labels = ctx.rules, ctx.labels
    produced: dict[str, Callable[[], list[Signal]]] = {
        FUND_DRAWDOWN: lambda: fund_rules.fund_drawdown(inputs.windows, rs.drawdown, inputs.changes, labels, {
            (a.venue, a.pool_id, a.asset): a.recent_change_kinds for a in inputs.assessments if not a.is_venue}),
        COVERAGE_LOW: lambda: fund_rules.coverage_low(inputs.coverage, rs.coverage, labels),
        DIVERGENCE: lambda: fund_rules.divergence(inputs.changes, rs.divergence, labels),
        CASCADE: lambda: market_rules.cascade(inputs.cascades, rs.cascade, as_of, labels),
        ADL_NEAR: lambda: market_rules.adl_near(inputs.adl, rs.adl, as_of, labels),
        STALE: lambda: monitor_rules.stale(inputs.freshness, inputs.gaps, rs.stale, now, labels,
                                           data_ages=not ctx.simulated),
        FUND_ANOMALY: lambda: fund_rules.fund_anomaly(inputs.assessments, rs.anomaly, labels),
        inv.INVENTORY_LARGE: lambda: inv.inventory_large(inputs.inventory, rs.inventory, labels),
    }
    signals: list[Signal] = []
    evaluated: set[str] = set()
    for name, fn in produced.items():
        if not rs.by_name()[name].enabled or name in inputs.failed:
            continue
        try:
            signals.extend(fn())
            evaluated.add(name)
        except Exception:  # noqa: BLE001 - a rule bug leaves its alerts as they are
            log.exception("alert rule %s failed", name)
    return signals, evaluated
