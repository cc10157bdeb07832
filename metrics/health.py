"""Health of a venue's fund (healthy / watch / stressed) and of Backstop's own view (fresh / late / stale,
blind). Pure rules with their wording, so the dashboard can show the rule next to the verdict."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from metrics.formatting import fmt_age, fmt_pct

HEALTHY, WATCH, STRESSED = "healthy", "watch", "stressed"
FRESH, LATE, STALE = "fresh", "late", "stale"


@dataclass(frozen=True)
class HealthRules:
    stressed_drawdown_30d_pct: float = -10.0
    stressed_change_24h_pct: float = -5.0
    watch_drawdown_30d_pct: float = -5.0
    watch_drawdown_8h_pct: float = -2.0
    watch_change_24h_pct: float = -2.0

    def describe(self) -> str:
        return (
            f"stressed: fund {fmt_pct(self.stressed_change_24h_pct, 0)} or worse in 24 h, or "
            f"{fmt_pct(self.stressed_drawdown_30d_pct, 0)} or worse from its 30 d max. "
            f"watch: {fmt_pct(self.watch_change_24h_pct, 0)} in 24 h, "
            f"{fmt_pct(self.watch_drawdown_8h_pct, 0)} from the 8 h max, "
            f"{fmt_pct(self.watch_drawdown_30d_pct, 0)} from the 30 d max, a divergence signal, "
            "a firing alert, or stale data. healthy: none of these."
        )


def freshness(age_s: float | None, cadence_s: float) -> str:
    """fresh / late / stale for data ``age_s`` old that should change every ``cadence_s``."""
    if age_s is None or not math.isfinite(age_s):
        return STALE
    if age_s > 3 * cadence_s + 1_800:
        return STALE
    if age_s > 1.5 * cadence_s + 600:
        return LATE
    return FRESH


@dataclass(frozen=True)
class DatasetState:
    venue: str
    dataset: str
    age_s: float | None  # age of the newest stored value
    cadence_s: float
    last_status: str | None = None  # ok | error | None (never run)
    last_error: str | None = None


@dataclass(frozen=True)
class BlindReport:
    level: str  # ok | partial | blind
    blind_venues: tuple[str, ...]
    message: str


def blindness(states: Iterable[DatasetState], display: dict[str, str] | None = None) -> BlindReport:
    """Blind = no venue has any fresh dataset; partial = some venues have nothing fresh (named)."""
    display = display or {}
    by_venue: dict[str, list[DatasetState]] = {}
    for s in states:
        by_venue.setdefault(s.venue, []).append(s)
    if not by_venue:
        return BlindReport("blind", (), "Backstop is blind: nothing has been collected yet.")
    blind: list[str] = []
    for venue, rows in sorted(by_venue.items()):
        if all(freshness(r.age_s, r.cadence_s) == STALE for r in rows):
            blind.append(venue)
    if len(blind) == len(by_venue):
        ages = [r.age_s for rows in by_venue.values() for r in rows if r.age_s is not None]
        newest = fmt_age(min(ages)) if ages else "never"
        return BlindReport("blind", tuple(blind),
                           f"Backstop is blind: no venue has delivered data within its expected cadence "
                           f"(newest data: {newest} old). Check that `backstop collect` is running.")
    if blind:
        parts = []
        for venue in blind:
            rows = by_venue[venue]
            ages = [r.age_s for r in rows if r.age_s is not None]
            error = next((r.last_error for r in rows if r.last_status == "error" and r.last_error), None)
            part = f"{display.get(venue, venue)} (newest data {fmt_age(min(ages)) if ages else 'never'} old"
            parts.append(part + (f"; last error: {error})" if error else ")"))
        return BlindReport("partial", tuple(blind), "Backstop is blind on " + ", ".join(parts) + ".")
    stale = [s for s in (r for rows in by_venue.values() for r in rows) if freshness(s.age_s, s.cadence_s) == STALE]
    if stale:  # never "all delivered" above a stale count: say which datasets are late
        names = ", ".join(f"{display.get(s.venue, s.venue)} {s.dataset}" for s in stale[:6])
        more = f" and {len(stale) - 6} more" if len(stale) > 6 else ""
        return BlindReport("ok", (), f"Every venue has some fresh data; {len(stale)} dataset"
                                     f"{'s are' if len(stale) > 1 else ' is'} stale: {names}{more}.")
    return BlindReport("ok", (), "All venues have delivered data within their expected cadence.")
