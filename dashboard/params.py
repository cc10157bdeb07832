"""Global controls <-> URL query parameters (pure, so the fallback rules are unit-tested).

``?range=7d&venues=binance,okx``. A bad value never raises: it falls back to the default and says so.
The rejected value is kept apart from the sentence (``ParamNotice.rejected``) because it is attacker
text: the page shows it only as plain text, never as Markdown (a ``![a](http://…)`` range would fetch an
external image, a ``[Log in](https://…)`` one would plant a link).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta

RANGES: dict[str, timedelta | None] = {
    "24h": timedelta(days=1),
    "7d": timedelta(days=7),
    "30d": timedelta(days=30),
    "90d": timedelta(days=90),
    "1y": timedelta(days=365),
    "2y": timedelta(days=730),
    "all": None,  # from the oldest fund row
}
RANGE_LABELS: dict[str, str] = {
    "24h": "Last 24 hours", "7d": "Last 7 days", "30d": "Last 30 days", "90d": "Last 90 days",
    "1y": "Last year", "2y": "Last 2 years", "all": "All history",
}
DEFAULT_RANGE = "7d"
MAX_PARAM_LEN = 2_000


@dataclass(frozen=True)
class ParamNotice:
    """A URL parameter was not understood: our sentence (safe) and the rejected values (user text)."""

    message: str
    rejected: tuple[str, ...] = ()

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True)
class Controls:
    range_key: str = DEFAULT_RANGE
    venues: tuple[str, ...] = ()  # empty = every venue
    notices: tuple[ParamNotice, ...] = field(default_factory=tuple)

    def selected(self, known: Sequence[str]) -> list[str]:
        return list(self.venues) if self.venues else list(known)


def _first(value: str | Sequence[str] | None) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    return value[0] if value else None


def parse_params(params: Mapping[str, str | Sequence[str]], known_venues: Sequence[str]) -> Controls:
    """Controls from query parameters; unknown range/venues fall back to defaults with a notice."""
    notices: list[ParamNotice] = []
    raw_range = _first(params.get("range"))
    range_key = DEFAULT_RANGE
    if raw_range is not None:
        if raw_range in RANGES:
            range_key = raw_range
        else:
            notices.append(ParamNotice(f"Unknown time range in the URL: showing "
                                       f"{RANGE_LABELS[DEFAULT_RANGE].lower()} instead.", (raw_range[:40],)))
    venues: list[str] = []
    raw_venues = params.get("venues")
    if raw_venues is not None:
        text = ",".join([raw_venues] if isinstance(raw_venues, str) else list(raw_venues))[:MAX_PARAM_LEN]
        wanted = [v.strip().lower() for v in text.split(",") if v.strip()]
        unknown = [v for v in wanted if v not in known_venues]
        venues = [v for v in dict.fromkeys(wanted) if v in known_venues]
        if unknown:
            fallback = "the others" if venues else "all venues"
            notices.append(ParamNotice(f"Unknown venue(s) in the URL: showing {fallback}.",
                                       tuple(v[:30] for v in unknown[:5])))
    return Controls(range_key, tuple(venues), tuple(notices))


def to_params(controls: Controls, known_venues: Sequence[str]) -> dict[str, str]:
    """Query parameters for ``controls`` (venues omitted when all are selected)."""
    out = {"range": controls.range_key}
    if controls.venues and set(controls.venues) != set(known_venues):
        out["venues"] = ",".join(controls.venues)
    return out


# -- the Stress page's sliders (?move=20&fill=0.5&dir=down&scope=all) ------------------------------------

STRESS_MOVE_RANGE = (5, 40)
STRESS_FILL_RANGE = (0.0, 2.0)


@dataclass(frozen=True)
class StressControls:
    move_pct: int
    fill_degradation: float
    direction: str = "down"
    scope: str = "all"
    notices: tuple[str, ...] = field(default_factory=tuple)


def parse_stress_params(params: Mapping[str, str | Sequence[str]], default_fill: float) -> StressControls:
    """Stress sliders from query parameters; a bad value falls back to its default with a notice."""
    notices: list[str] = []

    def number(key: str, default: float, lo: float, hi: float) -> float:
        raw = _first(params.get(key))
        if raw is None:
            return default
        try:
            value = float(raw[:20])
        except ValueError:
            value = float("nan")
        if not lo <= value <= hi:  # also rejects NaN
            notices.append(f"Ignored {key}={raw[:20]!r} in the URL (expected {lo:g}–{hi:g}): using {default:g}.")
            return default
        return value

    move = int(round(number("move", 20, *STRESS_MOVE_RANGE)))
    fill = number("fill", min(max(default_fill, STRESS_FILL_RANGE[0]), STRESS_FILL_RANGE[1]), *STRESS_FILL_RANGE)
    direction = _first(params.get("dir")) or "down"
    if direction not in ("down", "up"):
        notices.append(f"Ignored dir={direction[:20]!r} in the URL: showing a move down.")
        direction = "down"
    scope = _first(params.get("scope")) or "all"
    if scope not in ("all", "family"):
        notices.append(f"Ignored scope={scope[:20]!r} in the URL: moving all assets.")
        scope = "all"
    return StressControls(move, round(fill, 2), direction, scope, tuple(notices))


def stress_to_params(controls: StressControls) -> dict[str, str]:
    return {"move": str(controls.move_pct), "fill": f"{controls.fill_degradation:g}", "dir": controls.direction,
            "scope": controls.scope}
