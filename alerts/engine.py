"""Alert evaluation after each collection cycle: rule inputs (DuckDB) -> rules -> lifecycle -> delivery.

The steps live by concern: the deployment's view (``alerts.context``), the inputs and rules
(``alerts.signals``), the lifecycle (``alerts.lifecycle``: firing, cooldown, escalation, resolution; all
state in the ``alerts`` table) and delivery through apprise (``alerts.delivery``). This module runs them.

``AlertEngine.after_cycle`` is the collector hook (the composition root builds one engine per collector,
``backstop.integrations.alert_engine_for``): one evaluation at a time (calls arriving meanwhile fold into
one re-run), run in a thread with a timeout, deliveries handed to a background thread - collection never
waits for a notification.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from alerts.context import Context, context_for
from alerts.delivery import Deliverer
from alerts.lifecycle import Plan, plan_changes
from alerts.signals import Inputs, gather, run_rules
from configuration.settings import Settings
from metrics.alert_rows import Signal
from records.venues import VenueFacts
from storage import alert_store as db_alerts
from storage import rule_inputs
from storage.db import DatabaseBusy
from storage.writer import Store

log = logging.getLogger(__name__)

EVALUATION_TIMEOUT_S = 60.0


@dataclass
class Evaluation:
    now: datetime
    as_of: datetime
    signals: list[Signal]
    evaluated: set[str]
    failed: dict[str, str]
    plan: Plan


class AlertEngine:
    """Evaluates one database's alerts; writes through ``store``; sends through ``deliverer``."""

    def __init__(self, ctx: Context, store: Store, deliverer: Deliverer,
                 timeout_s: float = EVALUATION_TIMEOUT_S) -> None:
        self.ctx = ctx
        self.store = store
        self.deliverer = deliverer
        self.timeout_s = timeout_s
        self._thread_lock = threading.Lock()
        self._running = False
        self._again = False
        self._cache: dict[str, Any] = {}

    @classmethod
    def for_settings(cls, settings: Settings, venues: Mapping[str, VenueFacts], store: Store | None = None,
                     jobs: Sequence[tuple[str, str]] | None = None) -> AlertEngine:
        ctx = context_for(settings, venues, jobs)
        store = store or Store(Path(settings.db))
        deliverer = Deliverer(
            settings.alerts.targets, retries=settings.alerts.delivery_retries,
            backoff_base_s=max(settings.collector.backoff_base_s, 0.01),
            backoff_max_s=max(settings.collector.backoff_max_s, 0.01),
            record=lambda attempts: store.execute_write(lambda con: db_alerts.record_deliveries(con, attempts)),
            title_prefix="[SIMULATED] " if settings.simulated else "",
        )
        return cls(ctx, store, deliverer)

    def evaluate(self, now: datetime | None = None, as_of: datetime | None = None) -> Evaluation | None:
        """One synchronous evaluation; None when another one is still running (it is skipped)."""
        if not self._thread_lock.acquire(blocking=False):
            return None
        try:
            now = now or datetime.now(UTC)
            def read(con: Any) -> tuple[datetime, Inputs]:
                clock = as_of or rule_inputs.data_clock(con, now)
                return clock, gather(con, self.ctx, now, clock, self._cache)

            as_of, inputs = self.store.read(read)  # the writer's own connection (one handle per process)
            signals, evaluated = run_rules(inputs, self.ctx, now, as_of)
            plan = self.store.execute_write(lambda con: self._reconcile(con, signals, evaluated, now))
            if plan.notifications:
                self.deliverer.submit(plan.notifications)
            if plan.opened or plan.resolved:
                log.info("alerts: %d opened, %d resolved, %d firing signals",
                         len(plan.opened), len(plan.resolved), len(signals))
            return Evaluation(now, as_of, signals, evaluated, inputs.failed, plan)
        finally:
            self._thread_lock.release()

    def _reconcile(self, con: Any, signals: list[Signal], evaluated: set[str], now: datetime) -> Plan:
        firing = db_alerts.firing_alerts(con)
        notified = db_alerts.last_notified(con)
        plan = plan_changes(firing, notified, signals, evaluated, self.ctx.rules.disabled(), now,
                            self.ctx.cooldown_s, self.ctx.labels)
        db_alerts.apply_changes(con, now, plan.opened, plan.updated, plan.resolved)
        return plan

    async def after_cycle(self) -> None:
        """Evaluate in a thread; concurrent calls fold into one re-run; never longer than ``timeout_s``."""
        if self._running:
            self._again = True
            return
        self._running = True
        try:
            while True:
                self._again = False
                try:
                    await asyncio.wait_for(asyncio.to_thread(self.evaluate), timeout=self.timeout_s)
                except TimeoutError:
                    log.warning("alert evaluation took longer than %.0fs; it finishes in the background",
                                self.timeout_s)
                    return
                except DatabaseBusy as exc:  # another process held the file: next cycle evaluates again
                    log.warning("alert evaluation skipped: %s", exc)
                    return
                if not self._again:
                    return
        finally:
            self._running = False

    def wait_deliveries(self, timeout: float | None = None) -> bool:
        return self.deliverer.wait(timeout)

