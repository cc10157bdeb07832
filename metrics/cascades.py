"""Liquidation cascades, detected from per-minute liquidation USD (pure functions, no I/O).

A cascade starts when a scope's (a venue's, or the whole market's) liquidation USD per minute exceeds
``k`` x its trailing median (over ``window_min`` earlier minutes, never below ``floor_usd``) for ``m``
consecutive minutes; its start is the first of those minutes. It lasts while minutes stay above that
threshold and ends at the first of ``quiet_min`` consecutive minutes below it (``end`` is exclusive).
A cascade still above threshold at the end of the series is *ongoing* (``end`` None).

Minutes that overlap a feed gap are *incomplete*: they are left out of the trailing median and a cascade
touching one is flagged. Sums from sampled feeds are lower bounds and the flag travels with the cascade.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from statistics import median
from typing import Any

MINUTE = timedelta(minutes=1)


@dataclass(frozen=True, slots=True)
class MinuteVolume:
    minute: datetime  # start of the minute, UTC
    long_usd: float
    short_usd: float
    incomplete: bool = False  # the minute overlaps a gap in the feed(s)
    lower_bound: bool = False  # some of it comes from a sampled feed

    @property
    def total_usd(self) -> float:
        return self.long_usd + self.short_usd


@dataclass(frozen=True, slots=True)
class CascadeParams:
    k: float = 5.0
    m: int = 3
    window_min: int = 60
    floor_usd: float = 100_000.0
    quiet_min: int = 2
    min_history_min: int = 10  # complete minutes needed in the trailing window to judge a start

    def __post_init__(self) -> None:
        if self.k <= 0 or self.m < 1 or self.window_min < 1 or self.quiet_min < 1 or self.floor_usd < 0:
            raise ValueError(f"invalid cascade parameters: {self}")
        if self.min_history_min > self.window_min:
            raise ValueError("min_history_min cannot exceed window_min")

    @classmethod
    def from_mapping(cls, values: Mapping[str, float]) -> CascadeParams:
        """From config (``alerts.rules.liquidation_cascade.params``); unknown keys are an error."""
        known = {"k", "m", "window_min", "floor_usd", "quiet_min", "min_history_min"}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown cascade parameter {unknown[0]!r} (known: {', '.join(sorted(known))})")
        ints = {"m", "window_min", "quiet_min", "min_history_min"}
        typed: dict[str, Any] = {key: int(value) if key in ints else float(value) for key, value in values.items()}
        return cls(**typed)


@dataclass(frozen=True, slots=True)
class Cascade:
    scope: str  # venue key, or "market"
    start: datetime
    end: datetime | None  # exclusive; None while ongoing
    last_minute: datetime  # last minute above threshold
    peak_minute: datetime
    peak_usd: float
    total_long_usd: float
    total_short_usd: float
    baseline_usd: float  # trailing median at the start
    threshold_usd: float
    minutes: int  # minutes from start through last_minute
    incomplete: bool
    lower_bound: bool

    @property
    def ongoing(self) -> bool:
        return self.end is None

    @property
    def total_usd(self) -> float:
        return self.total_long_usd + self.total_short_usd


def floor_minute(ts: datetime) -> datetime:
    return ts.replace(second=0, microsecond=0)


def fill_minutes(
    values: Mapping[datetime, tuple[float, float, bool]],
    start: datetime,
    end: datetime,
    gaps: Iterable[tuple[datetime, datetime | None]] = (),
) -> list[MinuteVolume]:
    """A contiguous minute series over [start, end): minutes without rows are zero, minutes overlapping a
    gap ``[gap_start, gap_end)`` (open end = still down) are incomplete. ``values`` maps minute ->
    (long_usd, short_usd, lower_bound)."""
    spans = [(floor_minute(g_start), g_end) for g_start, g_end in gaps]
    series = []
    minute = floor_minute(start)
    while minute < end:
        long_usd, short_usd, lower_bound = values.get(minute, (0.0, 0.0, False))
        nxt = minute + MINUTE
        incomplete = any(g_start < nxt and (g_end is None or g_end > minute) for g_start, g_end in spans)
        series.append(MinuteVolume(minute, long_usd, short_usd, incomplete, lower_bound))
        minute = nxt
    return series


def baseline(history: Sequence[MinuteVolume], min_history: int) -> float | None:
    """Median USD/min over the complete minutes of ``history``; None when too few are known."""
    known = [point.total_usd for point in history if not point.incomplete]
    if len(known) < min_history:
        return None
    return float(median(known))


def detect_cascades(scope: str, series: Sequence[MinuteVolume], params: CascadeParams) -> list[Cascade]:
    """Cascades in a contiguous, ascending minute series (see ``fill_minutes``)."""
    cascades: list[Cascade] = []
    n = len(series)
    i = 0
    while i + params.m <= n:
        base = baseline(series[max(0, i - params.window_min):i], params.min_history_min)
        if base is None:
            i += 1
            continue
        threshold = max(params.k * base, params.floor_usd)
        if not all(series[j].total_usd > threshold for j in range(i, i + params.m)):
            i += 1
            continue
        last = i + params.m - 1
        quiet = 0
        j = last + 1
        while j < n:
            if series[j].total_usd > threshold:
                last, quiet = j, 0
            else:
                quiet += 1
                if quiet >= params.quiet_min:
                    break
            j += 1
        ended = quiet >= params.quiet_min
        run = series[i:last + 1]
        peak = max(run, key=lambda point: point.total_usd)
        cascades.append(Cascade(
            scope=scope, start=series[i].minute, end=series[last].minute + MINUTE if ended else None,
            last_minute=series[last].minute, peak_minute=peak.minute, peak_usd=peak.total_usd,
            total_long_usd=sum(p.long_usd for p in run), total_short_usd=sum(p.short_usd for p in run),
            baseline_usd=base, threshold_usd=threshold, minutes=len(run),
            incomplete=any(p.incomplete for p in run), lower_bound=any(p.lower_bound for p in run),
        ))
        i = last + 1 if ended else n
    return cascades


def value_across(points: Sequence[tuple[datetime, float]], start: datetime, end: datetime | None,
                 tolerance: timedelta) -> tuple[float, float] | None:
    """(value at/before ``start``, value at/after ``end``) when the series' cadence brackets the window
    within ``tolerance`` on both sides; None otherwise (a daily fund series cannot say what a ten-minute
    cascade cost). ``points`` ascending by time."""
    if end is None:
        return None
    before = [value for ts, value in points if ts <= start and start - ts <= tolerance]
    after = [value for ts, value in points if ts >= end and ts - end <= tolerance]
    if not before or not after:
        return None
    return before[-1], after[0]


def pct_move(before: float | None, after: float | None) -> float | None:
    if before is None or after is None or before == 0:
        return None
    return (after - before) / before * 100.0
