"""Cross-venue divergence: is one venue's fund moving unlike the others? (pure)

Each venue's fund change over a window is compared with the cross-venue median using a robust z-score,
z = (x − median) ÷ (1.4826 · MAD), MAD = median absolute deviation (1.4826 makes it a standard
deviation for normal data). The median and MAD ignore one extreme venue, which is the point: a single
fund draining does not move the yardstick it is measured against. With few venues MAD can be ~0, so it
is floored (``mad_floor_pct``) and a flag also needs a minimum absolute gap (``min_gap_pct``).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from metrics.formatting import fmt_duration, fmt_pct

MAD_SCALE = 1.4826
WINDOWS_S: dict[str, int] = {"1 h": 3_600, "8 h": 28_800, "24 h": 86_400, "7 d": 604_800}


@dataclass(frozen=True)
class DivergenceRule:
    z_threshold: float = 3.5
    min_gap_pct: float = 1.0  # |change − median| must also exceed this many percentage points
    mad_floor_pct: float = 0.25
    min_venues: int = 3

    def describe(self) -> str:
        return (f"flagged when |robust z| ≥ {self.z_threshold:g} and the venue is at least "
                f"{self.min_gap_pct:g} percentage points from the median of ≥ {self.min_venues} venues "
                f"(MAD floored at {self.mad_floor_pct:g} pp)")


@dataclass(frozen=True)
class DivergenceRow:
    venue: str
    window_s: int
    change_pct: float
    median_pct: float | None
    z: float | None
    flagged: bool
    n_venues: int


def median_mad(values: list[float]) -> tuple[float, float]:
    med = statistics.median(values)
    return med, statistics.median([abs(v - med) for v in values])


def robust_z(value: float, values: list[float], mad_floor: float = 0.0) -> float:
    """(value − median) ÷ (1.4826 · max(MAD, floor)); ``values`` includes ``value``'s peers (and itself)."""
    med, mad = median_mad(values)
    scale = MAD_SCALE * max(mad, mad_floor)
    if scale == 0:
        return 0.0 if value == med else math.copysign(math.inf, value - med)
    return (value - med) / scale


def divergence(changes: Mapping[str, float | None], window_s: int,
               rule: DivergenceRule | None = None) -> list[DivergenceRow]:
    """One row per venue with a known change (percent) over ``window_s``; flags outliers."""
    rule = rule or DivergenceRule()
    known = {v: c for v, c in changes.items() if c is not None and math.isfinite(c)}
    values = list(known.values())
    if len(values) < rule.min_venues:
        return [DivergenceRow(v, window_s, c, None, None, False, len(values)) for v, c in sorted(known.items())]
    med, _ = median_mad(values)
    rows = []
    for venue, change in sorted(known.items()):
        z = robust_z(change, values, rule.mad_floor_pct)
        flagged = abs(z) >= rule.z_threshold and abs(change - med) >= rule.min_gap_pct
        rows.append(DivergenceRow(venue, window_s, change, med, z, flagged, len(values)))
    return rows


def explain(row: DivergenceRow, display_name: str) -> str:
    """'Gate's fund −18.0 % in 24 h while the median venue moved +0.4 %.' (plain text, no markup)."""
    window = fmt_duration(row.window_s)
    text = f"{display_name}'s fund {fmt_pct(row.change_pct, signed=True)} in {window}"
    if row.median_pct is None:
        return text + f" (too few venues to compare: {row.n_venues})."
    text += f" while the median venue moved {fmt_pct(row.median_pct, signed=True)}"
    if row.z is not None and math.isfinite(row.z):
        text += f" (robust z {row.z:+.1f})".replace("-", "\u2212")
    return text + "."


def robust_z_frame(frame: pd.DataFrame, rule: DivergenceRule | None = None, by: str = "ts",
                   value: str = "change_pct") -> pd.DataFrame:
    """``divergence`` for many instants at once (vectorised): one row per (instant, venue) with
    median_pct, z and flagged, computed against the venues present at that instant."""
    rule = rule or DivergenceRule()
    out = frame.dropna(subset=[value]).copy()
    grouped = out.groupby(by)[value]
    n = grouped.transform("size")
    med = grouped.transform("median")
    dev = (out[value] - med).abs()
    mad = dev.groupby(out[by]).transform("median")
    scale = MAD_SCALE * np.maximum(mad, rule.mad_floor_pct)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(scale > 0, (out[value] - med) / scale,
                     np.where(dev == 0, 0.0, np.sign(out[value] - med) * np.inf))
    enough = n >= rule.min_venues
    out["median_pct"] = med.where(enough)
    out["z"] = pd.Series(z, index=out.index).where(enough)
    out["flagged"] = enough & (out["z"].abs() >= rule.z_threshold) & (dev >= rule.min_gap_pct)
    return out
