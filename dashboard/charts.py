"""Chart style and overlays every time chart shares: layout, clean log axes, stress-event and cascade
bands, alert markers. Exchange text in labels and hover goes through ``dashboard.text.plain``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import plotly.graph_objects as go

from alerts.incidents import chart_annotations
from dashboard.model import is_missing
from dashboard.text import plain

STRESS_EVENTS = Path(__file__).with_name("stress_events.csv")


def style(fig: go.Figure, height: int = 420, y_title: str | None = None, log: bool = False) -> go.Figure:
    fig.update_layout(
        height=height, margin={"l": 10, "r": 10, "t": 30, "b": 10}, hovermode="x unified",
        legend={"orientation": "h", "yanchor": "bottom", "y": 1.02, "x": 0},
    )
    if y_title is not None:
        fig.update_yaxes(title_text=y_title)
    if log:
        fig.update_yaxes(type="log")
    return fig


LOG_TICKS = [m * 10.0 ** e for e in range(-4, 14) for m in (1, 2, 5)]


def log_axis(fig: go.Figure, values: Sequence[float], suffix: str = "",
             fmt: Callable[[float], str] | None = None, **where: Any) -> None:
    """A log y-axis with clean ticks (1, 2, 5 × 10ⁿ, every label a full number with its unit), limited
    to the data's span so no tick floats without context."""
    finite = [v for v in values if v is not None and v > 0 and v == v]
    if not finite:
        fig.update_yaxes(type="log", **where)
        return
    lo, hi = min(finite), max(finite)
    ticks = [t for t in LOG_TICKS if lo / 2.5 <= t <= hi * 2.5]
    if len(ticks) > 8:
        ticks = [t for t in ticks if str(t).lstrip("0.").startswith("1")]
    fmt = fmt or (lambda t: f"{t:,.4g}{suffix}")
    fig.update_yaxes(type="log", tickvals=ticks, ticktext=[fmt(t) for t in ticks], **where)


def stress_events(start: datetime, end: datetime) -> pd.DataFrame:
    """Curated stress events (dashboard/stress_events.csv) and the replay's incident library
    (alerts/incidents.toml: incidents the CSV does not already hold for that day and venue), overlapping
    [start, end], each with its source."""
    frame = pd.read_csv(STRESS_EVENTS, dtype=str, keep_default_na=False)
    known = set(zip(frame["date"], frame["venue"], strict=True))
    extra = [{"date": a.day.isoformat(), "end_date": a.day.isoformat(), "venue": venue,
              "what_happened": f"{a.title}: {a.figures}", "source": a.source}
             for a in chart_annotations() for venue in a.venues if (a.day.isoformat(), venue) not in known]
    if extra:
        frame = pd.concat([frame, pd.DataFrame(extra)], ignore_index=True)
    frame["date"] = pd.to_datetime(frame["date"], utc=True)
    frame["end_date"] = pd.to_datetime(frame["end_date"], utc=True) + pd.Timedelta(days=1)
    mask = (frame["end_date"] >= pd.Timestamp(start)) & (frame["date"] <= pd.Timestamp(end))
    return frame[mask].sort_values(["date", "venue"]).reset_index(drop=True)


def annotate_events(fig: go.Figure, events: pd.DataFrame, names: Callable[[str], str]) -> None:
    """Shaded bands + a short label per stress event (our curated text, not exchange text); labels that
    would overlap go on separate lines."""
    if events.empty:
        return
    span = events["end_date"].max() - events["date"].min()
    levels = _label_levels(list(events["date"]), span)
    for e, level in zip(events.itertuples(), levels, strict=True):
        who = names(str(e.venue)) if e.venue else "market-wide"
        fig.add_vrect(x0=e.date, x1=e.end_date, fillcolor="#999999", opacity=0.15, line_width=0, layer="below")
        fig.add_annotation(x=e.date, y=1 - 0.07 * level, yref="paper", text=f"{e.date:%d %b %Y} · {who}",
                           showarrow=False, xanchor="left", yanchor="top", font={"size": 10}, textangle=0)


CASCADE_FILL = "rgba(255, 127, 14, 0.18)"  # detected cascades, on every chart that shows them
SEVERITY_COLOURS = {"critical": "#c62828", "warning": "#ef6c00", "info": "#1565c0"}


MAX_CASCADE_LABELS = 4  # more bands than this are left unlabelled (hover the Liquidations page for detail)


def annotate_cascades(fig: go.Figure, cascades: pd.DataFrame, names: Callable[[str], str],
                      until: datetime) -> None:
    """Orange bands over detected liquidation cascades (an ongoing one runs to ``until``); overlapping
    cascades of several venues and of the market merge into one band, labelled with who cascaded."""
    bands: list[list[Any]] = []  # [start, end, {who}]
    for c in cascades.sort_values("start_ts").itertuples():
        end = until if is_missing(c.end_ts) else c.end_ts
        who = "market" if c.venue == "market" else names(str(c.venue))
        if bands and c.start_ts <= bands[-1][1]:
            bands[-1][1] = max(bands[-1][1], end)
            bands[-1][2].add(who)
        else:
            bands.append([c.start_ts, end, {who}])
    labelled = len(bands) <= MAX_CASCADE_LABELS
    span = (until - min(b[0] for b in bands)) if bands else timedelta(0)
    levels = _label_levels([b[0] for b in bands], span) if labelled else []
    for (start, end, who), level in zip(bands, levels or [0] * len(bands), strict=True):
        fig.add_vrect(x0=start, x1=end, fillcolor=CASCADE_FILL, line_width=0, layer="below")
        if labelled:
            venues = sorted(w for w in who if w != "market")
            text = "cascade · " + (plain(", ".join(venues[:3])) + (" …" if len(venues) > 3 else "")
                                   if venues else "market")
            fig.add_annotation(x=start, y=0.01 + 0.07 * level, yref="paper", text=text, showarrow=False,
                               xanchor="left", yanchor="bottom", font={"size": 10, "color": "#b35900"},
                               bgcolor="rgba(255,255,255,0.7)")


def _label_levels(starts: Sequence[Any], span: Any, min_gap: float = 0.18, levels: int = 4) -> list[int]:
    """Vertical level per label so that labels closer than ``min_gap`` of the span never share a line."""
    out: list[int] = []
    last_at: dict[int, Any] = {}
    total = pd.Timedelta(span).total_seconds() or 1.0
    for x in starts:
        level = next((lv for lv in range(levels)
                      if lv not in last_at or (pd.Timestamp(x) - pd.Timestamp(last_at[lv])).total_seconds()
                      >= min_gap * total), len(out) % levels)
        last_at[level] = x
        out.append(level)
    return out


def add_alert_markers(fig: go.Figure, markers: pd.DataFrame, names: Callable[[str], str]) -> None:
    """Alert markers in a strip along the top of a time chart (their own 0..1 axis, so they sit at the same
    height on linear, log and indexed charts); hover shows the alert's sentence, escaped for Plotly."""
    if markers.empty:
        return
    fig.update_layout(yaxis2={"overlaying": "y", "range": [0, 1], "visible": False, "fixedrange": True})
    for severity, group in markers.groupby("severity", sort=True):
        hover = [f"{names(str(m.venue))} · {m.rule} ({m.status})<br>{plain(m.message)}"
                 for m in group.itertuples()]
        fig.add_trace(go.Scatter(
            x=group["ts"], y=[0.97] * len(group), yaxis="y2", mode="markers", name=f"alert: {severity}",
            marker={"symbol": "triangle-down", "size": 11,
                    "color": SEVERITY_COLOURS.get(str(severity), "#555555")},
            hovertext=hover, hoverinfo="text", legendgroup="alerts",
        ))

