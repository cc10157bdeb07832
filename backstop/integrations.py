"""The collector's features beyond polling, wired explicitly: liquidation streams and the dashboard's
hourly rollups (background tasks), cascade detection and alert evaluation (after-cycle hooks), the lake
sync, and the export datasets the liquidation and alert storage modules register."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from datetime import datetime

from alerts.engine import AlertEngine
from backstop.config import ConfigError
from backstop.service import Collector
from collectors.liquidations import integration as liquidations
from collectors.runner import RunOutcome
from metrics.cascades import Cascade, CascadeParams
from storage import analytics, liquidation_writes

log = logging.getLogger(__name__)

CASCADE_RULE = "liquidation_cascade"  # settings.alerts.rules[...] .params: k, m, window_min, floor_usd, ...
CASCADE_EVERY_S = 30.0
ROLLUP_EVERY_S = 300.0  # the dashboard reads raw rows for the newest hours, so minutes of lag are fine

async def refresh_rollups_forever(collector: Collector, every_s: float = ROLLUP_EVERY_S) -> None:
    """Keep the dashboard's hourly rollups current from the writer process (the dashboard only reads).
    Each refresh is a few short write transactions; a failure is logged and retried next time."""
    while True:
        try:
            written = await asyncio.to_thread(collector.store.execute_write, analytics.refresh_rollups)
            log.debug("rollups refreshed: %s", written)
        except Exception:  # noqa: BLE001 - a rollup failure must never stop collection
            log.exception("rollup refresh failed; retrying in %.0f s", every_s)
        await asyncio.sleep(every_s)


class CascadeDetector:
    """After-cycle hook: (re)detect liquidation cascades at most every ``every_s`` seconds, each run
    covering at least everything since the previous one."""

    def __init__(self, collector: Collector, every_s: float = CASCADE_EVERY_S) -> None:
        self.collector = collector
        self.every_s = every_s
        self._last_run = float("-inf")
        self._examined_to: datetime | None = None

    def params(self) -> CascadeParams:
        rule = self.collector.settings.alerts.rules.get(CASCADE_RULE)
        return CascadeParams.from_mapping(rule.params) if rule is not None and rule.params else CascadeParams()

    async def after_cycle(self, outcomes: Sequence[RunOutcome] = (), every_s: float | None = None,
                          now: datetime | None = None) -> list[Cascade]:
        """The cascades found in this run (none when throttled or the rule is disabled)."""
        clock = time.monotonic()
        if clock - self._last_run < (self.every_s if every_s is None else every_s):
            return []
        self._last_run = clock
        rule = self.collector.settings.alerts.rules.get(CASCADE_RULE)
        if rule is not None and not rule.enabled:
            return []
        run = await asyncio.to_thread(liquidation_writes.BACKEND.detect_cascades, self.collector.store, self.params(),
                                      now, self._examined_to)
        self._examined_to = run.examined_to
        return list(run.cascades)


def alert_engine_for(collector: Collector) -> AlertEngine | None:
    """The collector's alert engine, over the venues it polls; None when alerts are off or their
    configuration is invalid (logged: collection goes on without alerts)."""
    if not collector.settings.alerts.enabled:
        return None
    venues = {key: type(adapter).facts() for key, adapter in collector.adapters.items()}
    try:
        return AlertEngine.for_settings(collector.settings, venues, store=collector.store, jobs=collector.jobs())
    except ConfigError as exc:
        log.error("alerts disabled: %s", exc)
        return None


class AlertHook:
    """After-cycle hook evaluating the collector's alerts. The engine (its apprise deliverer is slow to
    import) is built on the first cycle, so a daemon answers Ctrl-C/SIGTERM from its first seconds."""

    def __init__(self, collector: Collector) -> None:
        self.collector = collector
        self.engine: AlertEngine | None = None
        self._built = False

    async def __call__(self, outcomes: list[RunOutcome]) -> None:
        if not self._built:
            self.engine, self._built = alert_engine_for(self.collector), True
        if self.engine is not None:
            await self.engine.after_cycle()


def attach(collector: Collector) -> None:
    """Every feature of a running collector (``collect``, ``run``, ``demo``)."""
    collector.background.append(refresh_rollups_forever)
    from backstop.maintenance import storage_upkeep_forever  # size samples + [retention] compact_every_h

    collector.background.append(storage_upkeep_forever)
    backend = liquidation_writes.BACKEND
    collector.background.extend(liquidations.liquidation_tasks(collector, backend))
    collector.after_cycle.append(CascadeDetector(collector).after_cycle)
    lake = collector.settings.lake
    if lake.dest and lake.sync_every_s > 0:
        from backstop.lake_cli import scheduled_sync

        collector.background.append(scheduled_sync(lake))
    collector.after_cycle.append(AlertHook(collector))
