"""Cross-venue divergence: is one venue's fund moving unlike the others? (pure; the one algorithm)

The Divergence page, the assessment and the ``divergence`` alert rule all call ``divergence`` here, so
the same event has the same z everywhere.

Each venue's fund change over a window is compared with the *other* venues (leave-one-out, so a single
fund draining does not widen the yardstick it is measured against) by a robust z-score:

    z = (x − median(peers)) ÷ max(1.4826 · MAD(peers), mad_floor_pct, common_move_factor · |median(peers)|)

MAD = median absolute deviation (1.4826 makes it a standard deviation for normal data). The floors keep
identical peers from making any wiggle an outlier, and a market-wide move (a cascade: every fund falls,
by different amounts) from reading as a divergence. A flag also needs ``min_venues`` venues with a value
and a gap of at least ``min_gap_pct`` percentage points; rises count only with ``include_rises``.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pandas as pd

from metrics.formatting import fmt_duration, fmt_pct, fmt_signed

MAD_SCALE = 1.4826
WINDOWS_S: dict[str, int] = {"1 h": 3_600, "8 h": 28_800, "24 h": 86_400, "7 d": 604_800}


@dataclass(frozen=True)
class DivergenceRule:
    """The one divergence rule (the alert's ``[alerts.rules.divergence]`` builds one from its params)."""

    z_threshold: float = 3.5
    min_gap_pct: float = 5.0  # |change − peers' median| must also reach this many percentage points
    mad_floor_pct: float = 0.5
    common_move_factor: float = 1.0
    min_venues: int = 4  # venues with a value in the window, the tested one included
    include_rises: bool = False

    def describe(self) -> str:
        return (f"flagged when a venue's fall is ≥ {self.min_gap_pct:g} percentage points from the median of "
                f"the other venues and its robust z (leave-one-out, scale floored at {self.mad_floor_pct:g} pp "
                f"and at {self.common_move_factor:g}× the peers' median move) is at or past "
                f"{self.z_threshold:g}; needs ≥ {self.min_venues} venues"
                + ("; rises count too" if self.include_rises else ""))


@dataclass(frozen=True)
class DivergenceRow:
    venue: str
    window_s: int
    change_pct: float
    median_pct: float | None  # the peers' median (the venue itself left out)
    z: float | None
    flagged: bool
    n_venues: int
    mad_pct: float | None = None  # the peers' MAD


def median_mad(values: Sequence[float]) -> tuple[float, float]:
    med = statistics.median(values)
    return med, statistics.median([abs(v - med) for v in values])


def robust_z(value: float, peers: Sequence[float], mad_floor: float = 0.0, common_move_factor: float = 0.0) -> float:
    """(value − median(peers)) ÷ max(1.4826 · MAD(peers), mad_floor, common_move_factor · |median|).
    ``peers`` excludes ``value``'s own venue. A zero scale gives 0 (no gap) or ±inf."""
    med, mad = median_mad(peers)
    scale = max(MAD_SCALE * mad, mad_floor, common_move_factor * abs(med))
    if scale == 0:
        return 0.0 if value == med else math.copysign(math.inf, value - med)
    return (value - med) / scale


def divergence(changes: Mapping[str, float | None], window_s: int,
               rule: DivergenceRule | None = None) -> list[DivergenceRow]:
    """One row per venue with a known change (percent) over ``window_s``; flags outliers."""
    rule = rule or DivergenceRule()
    known = {v: c for v, c in changes.items() if c is not None and math.isfinite(c)}
    n = len(known)
    if n < max(rule.min_venues, 2):
        return [DivergenceRow(v, window_s, c, None, None, False, n) for v, c in sorted(known.items())]
    rows = []
    for venue, change in sorted(known.items()):
        peers = [c for v, c in known.items() if v != venue]
        med, mad = median_mad(peers)
        z = robust_z(change, peers, rule.mad_floor_pct, rule.common_move_factor)
        gap = change - med
        flagged = (abs(z) >= rule.z_threshold and abs(gap) >= rule.min_gap_pct
                   and (gap < 0 or rule.include_rises))
        rows.append(DivergenceRow(venue, window_s, change, med, z, flagged, n, mad))
    return rows


def explain(row: DivergenceRow, display_name: str) -> str:
    """'Gate's fund −18.0 % in 24 h while the other venues' median moved +0.4 % (robust z −36.3).'"""
    window = fmt_duration(row.window_s)
    text = f"{display_name}'s fund {fmt_pct(row.change_pct, signed=True)} in {window}"
    if row.median_pct is None:
        return text + f" (too few venues to compare: {row.n_venues})."
    text += f" while the other venues' median moved {fmt_pct(row.median_pct, signed=True)}"
    if row.z is not None and math.isfinite(row.z):
        text += f" (robust z {fmt_signed(row.z)})"
    return text + "."


def robust_z_frame(frame: pd.DataFrame, rule: DivergenceRule | None = None, by: str = "ts",
                   value: str = "change_pct") -> pd.DataFrame:
    """``divergence`` for many instants at once: one row per (instant, venue) with median_pct (peers'),
    z and flagged, computed against the venues present at that instant (same function, row by row)."""
    rule = rule or DivergenceRule()
    out = frame.dropna(subset=[value]).copy()
    medians: dict[object, float | None] = {}
    zs: dict[object, float | None] = {}
    flags: dict[object, bool] = {}
    venue_col = "venue"
    for _, group in out.groupby(by):
        changes = dict(zip(group[venue_col].astype(str), group[value].astype(float), strict=True))
        rows = {r.venue: r for r in divergence(changes, 0, rule)}
        for index, venue in zip(group.index, group[venue_col].astype(str), strict=True):
            r = rows[venue]
            medians[index], zs[index], flags[index] = r.median_pct, r.z, r.flagged
    out["median_pct"] = pd.Series(medians, dtype="float64")
    out["z"] = pd.Series(zs, dtype="float64")
    out["flagged"] = pd.Series(flags, dtype="bool")
    out["flagged"] = out["flagged"].fillna(False).astype(bool)
    return out
