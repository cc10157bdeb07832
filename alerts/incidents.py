"""The incident library (``alerts/incidents.toml``) as data: real insurance-fund incidents with their
published figures, a source per row, and the outcome the default rules must produce. Read by the replay
(``alerts.replay``) and, as chart annotations, by the dashboard (plain data: no collector, no database)."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from datetime import date
from importlib import resources
from pathlib import Path

EXPECTATIONS = ("alert", "critical", "no_divergence", "quiet", "restructure", "transfer", "none")


@dataclass(frozen=True)
class Series:
    venue: str
    pool_id: str
    asset: str
    level: float
    points: tuple[tuple[float, float], ...]  # (hours after the incident start, native balance)
    history_days: int = 0
    noise_pct: float = 0.0
    price_usd: float | None = None
    published: bool = True
    note: str = ""


@dataclass(frozen=True)
class Incident:
    id: str
    title: str
    date: date | None
    figures: str
    source: str
    expect: str
    venue: str
    series: tuple[Series, ...]
    rules: tuple[str, ...] = ()
    labels: tuple[tuple[str, str], ...] = ()


def load_library(path: Path | None = None) -> list[Incident]:
    """The incidents of ``path`` (default: the library shipped with Backstop)."""
    if path is None:
        text = resources.files("alerts").joinpath("incidents.toml").read_text(encoding="utf-8")
    else:
        text = path.read_text(encoding="utf-8")
    data = tomllib.loads(text)
    out = []
    for raw in data.get("incident", []):
        if raw["expect"] not in EXPECTATIONS:
            raise ValueError(f"incident {raw['id']}: expect {raw['expect']!r} (one of {', '.join(EXPECTATIONS)})")
        series = tuple(Series(
            venue=s["venue"], pool_id=s["pool_id"], asset=s["asset"], level=float(s["level"]),
            points=tuple((float(h), float(v)) for h, v in s["points"]), history_days=int(s.get("history_days", 0)),
            noise_pct=float(s.get("noise_pct", 0.0)), price_usd=s.get("price_usd"),
            published=bool(s.get("published", True)), note=str(s.get("note", "")),
        ) for s in raw["series"])
        out.append(Incident(raw["id"], raw["title"], raw.get("date"), raw["figures"], raw["source"], raw["expect"], raw["venue"],
                            series, tuple(raw.get("rules", ())), tuple(data.get("labels", {}).items())))
    return out



@dataclass(frozen=True)
class Annotation:
    """One incident to draw on a chart: when, which venues, what, and where the figures come from."""

    day: date
    venues: tuple[str, ...]
    title: str
    figures: str
    source: str


def chart_annotations(path: Path | None = None) -> list[Annotation]:
    """The dated incidents of the library (the calm reference has no date), oldest first."""
    out = [Annotation(i.date, tuple(sorted({s.venue for s in i.series if s.published})) or (i.venue,),
                      i.title, i.figures, i.source) for i in load_library(path) if i.date is not None]
    return sorted(out, key=lambda a: a.day)
