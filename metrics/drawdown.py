"""Changes and drawdowns of a fund, in percent (pure)."""

from __future__ import annotations

import math
from collections.abc import Iterable


def pct_change(new: float | None, old: float | None) -> float | None:
    """(new − old) ÷ old × 100; None when old is missing or not positive."""
    if new is None or old is None or not (math.isfinite(new) and math.isfinite(old)) or old <= 0:
        return None
    return (new - old) / old * 100.0


def drawdown_pct(current: float | None, values: Iterable[float | None]) -> float | None:
    """How far ``current`` is below the highest of ``values`` (and itself), in percent (≤ 0)."""
    if current is None or not math.isfinite(current):
        return None
    finite = [v for v in values if v is not None and math.isfinite(v)]
    peak = max([current, *finite])
    if peak <= 0:
        return None
    return (current - peak) / peak * 100.0


def max_drawdown_pct(values: Iterable[float | None]) -> float | None:
    """The deepest peak-to-trough fall within a series, in percent (≤ 0)."""
    peak: float | None = None
    worst = 0.0
    seen = False
    for v in values:
        if v is None or not math.isfinite(v):
            continue
        seen = True
        peak = v if peak is None else max(peak, v)
        if peak > 0:
            worst = min(worst, (v - peak) / peak * 100.0)
    return worst if seen else None
