"""Optional features plug into the collector here, so the core never imports them directly:
liquidation streams (background tasks), cascade detection and alert evaluation (after-cycle hooks),
and the export datasets they register."""

from __future__ import annotations

import importlib
import logging
from typing import Any

log = logging.getLogger(__name__)

_EXPORT_MODULES = ("storage.liquidations", "storage.alerts")


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


def attach(collector: Any) -> None:
    load_optional_exports()
    liquidations = _optional("collectors.liquidations.integration")
    if liquidations is not None:
        collector.background.extend(liquidations.liquidation_tasks(collector))
        collector.after_cycle.append(lambda outcomes: liquidations.detect_cascades_after_cycle(collector, outcomes))
    alert_engine = _optional("alerts.engine")
    if alert_engine is not None:
        collector.after_cycle.append(lambda outcomes: alert_engine.evaluate_after_cycle(collector, outcomes))
