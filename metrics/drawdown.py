"""The drawdown of a fund from its window maximum, in percent (pure): the one definition the alerts and
the assessments use (``metrics.alert_rows.FundWindow.drawdown_pct``)."""

from __future__ import annotations

import math
from collections.abc import Iterable


def drawdown_pct(current: float | None, values: Iterable[float | None]) -> float | None:
    """How far ``current`` is below the highest of ``values`` (and itself), in percent (≤ 0)."""
    if current is None or not math.isfinite(current):
        return None
    finite = [v for v in values if v is not None and math.isfinite(v)]
    peak = max([current, *finite])
    if peak <= 0:
        return None
    return (current - peak) / peak * 100.0

