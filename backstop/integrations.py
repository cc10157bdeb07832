"""Optional features plug into the collector here, so the core never imports them directly:
liquidation streams and the dashboard's hourly rollups (background tasks), cascade detection and
alert evaluation (after-cycle hooks), and the export datasets they register."""

from __future__ import annotations

import asyncio
import importlib
import logging
from typing import Any

log = logging.getLogger(__name__)

ROLLUP_EVERY_S = 300.0  # the dashboard reads raw rows for the newest hours, so minutes of lag are fine

_EXPORT_MODULES = ("storage.liquidations", "storage.alert_store")


def load_optional_exports() -> None:
    """Import the storage modules that register extra export datasets (liquidations, alerts)."""
    for name in _EXPORT_MODULES:
        _optional(name)


def _optional(name: str) -> Any | None:
    """The module, or None when that feature is not installed (a broken module still raises)."""
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name is not None and name.startswith(exc.name):
            return None
        raise


async def refresh_rollups_forever(collector: Any, every_s: float = ROLLUP_EVERY_S) -> None:
    """Keep the dashboard's hourly rollups current from the writer process (the dashboard only reads).
    Each refresh is a few short write transactions; a failure is logged and retried next time."""
    from storage import analytics

    while True:
        try:
            written = await asyncio.to_thread(collector.store.execute_write, analytics.refresh_rollups)
            log.debug("rollups refreshed: %s", written)
        except Exception:  # noqa: BLE001 - a rollup failure must never stop collection
            log.exception("rollup refresh failed; retrying in %.0f s", every_s)
        await asyncio.sleep(every_s)


def attach(collector: Any) -> None:
    load_optional_exports()
    collector.background.append(refresh_rollups_forever)
    liquidations = _optional("collectors.liquidations.integration")
    if liquidations is not None:
        collector.background.extend(liquidations.liquidation_tasks(collector))
        collector.after_cycle.append(lambda outcomes: liquidations.detect_cascades_after_cycle(collector, outcomes))
    alert_engine = _optional("alerts.engine")
    if alert_engine is not None:
        collector.after_cycle.append(lambda outcomes: alert_engine.evaluate_after_cycle(collector, outcomes))
