"""What every page shares: the per-run page state, banners, CSV downloads, venue colours, chart style.

Text that came from an exchange (error messages, pool ids, symbols) is only ever shown through
``st.dataframe``/``st.text``/Plotly (escaped), never through markdown with HTML enabled.
"""

from __future__ import annotations

import dataclasses
import html
import math
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from alerts.incidents import chart_annotations
from dashboard.context import AppContext
from dashboard.model import is_missing
from dashboard.params import RANGES, Controls
from metrics.assessment import Assessment
from metrics.csv_safe import to_csv_bytes
from metrics.formatting import DASH
from records.venue_catalog import VenueInfo, catalog
from storage.analytics import DatabaseBusy

STATE_KEY = "backstop_page_state"
BACKFILL_KEY = "backstop_backfilling"
STRESS_EVENTS = Path(__file__).with_name("stress_events.csv")
HEALTH_ICONS = {"healthy": ":material/check_circle:", "watch": ":material/visibility:",
                "stressed": ":material/warning:"}


@dataclass(frozen=True)
class PageState:
    ctx: AppContext
    controls: Controls
    known: tuple[str, ...]  # venues with data
    venues: tuple[str, ...]  # selected
    info: Mapping[str, VenueInfo]
    now: datetime  # rounded down to the cache TTL (query argument)
    range_start: datetime
    has_data: bool

    @property
    def range_td(self) -> timedelta:
        return self.now - self.range_start

    def name(self, venue: str) -> str:
        return self.info[venue].display_name if venue in self.info else venue

    def colours(self) -> dict[str, str]:
        """Display name -> colour (charts label venues by display name)."""
        return {self.name(v): self.info[v].colour for v in self.known if v in self.info}


def range_start(controls: Controls, now: datetime, first_ts: datetime | None) -> datetime:
    span = RANGES[controls.range_key]
    if span is None:
        return first_ts if first_ts is not None and first_ts < now else now - timedelta(days=30)
    return now - span


def page_state() -> PageState | None:
    """This run's state; on an auto-refresh (fragment rerun) "now" moves on, the range keeps its length."""
    from dashboard.data import quantised_now

    state: PageState | None = st.session_state.get(STATE_KEY)
    if state is None:
        return None
    now = quantised_now()
    if now == state.now:
        return state
    start = state.range_start if RANGES[state.controls.range_key] is None else now - state.range_td
    return dataclasses.replace(state, now=now, range_start=start)


def set_page_state(state: PageState) -> None:
    st.session_state[STATE_KEY] = state


def venue_catalog(keys: Sequence[str]) -> dict[str, VenueInfo]:
    return catalog(list(keys))


# state -> (Markdown colour of the badge, table cell fill): critical red, stressed orange, watch amber,
# blind violet (Backstop cannot see), healthy and no-fund neutral
STATE_COLOURS = {"critical": "red", "stressed": "orange", "watch": "yellow", "blind": "violet",
                 "healthy": "gray", "no_fund": "gray"}
STATE_FILL = {"critical": "rgba(198, 40, 40, 0.30)", "stressed": "rgba(239, 108, 0, 0.28)",
              "watch": "rgba(255, 193, 7, 0.30)", "blind": "rgba(123, 31, 162, 0.20)",
              "backfilling": "rgba(120, 120, 120, 0.15)"}


def state_badge(state: str) -> str:
    """A coloured Markdown badge for an assessment state (our own words only)."""
    from metrics.assessment import state_label

    return f":{STATE_COLOURS.get(state, 'gray')}-background[**{state_label(state).upper()}**]"


def url_controls(defaults: Mapping[str, object], choices: Mapping[str, Sequence[str]] | None = None) -> None:
    """A page's own controls live in the URL too: on the first run that shows them they start from the
    URL's value (validated: booleans 0/1, choices from ``choices``; anything else keeps the default), then
    the URL follows them (``sync_controls``). Never free text from the URL."""
    choices = choices or {}
    for key, default in defaults.items():
        if key in st.session_state:
            continue
        raw = st.query_params.get(key)
        value = default
        if raw is not None and isinstance(default, bool):
            value = {"1": True, "0": False}.get(raw, default)
        elif raw is not None and isinstance(default, list):
            value = [v for v in raw.split(",") if v in choices.get(key, ())]
        elif raw is not None and key in choices and raw in choices[key]:
            value = raw
        st.session_state[key] = value


def sync_controls(keys: Sequence[str]) -> None:
    for key in keys:
        if key not in st.session_state:
            continue
        value = st.session_state[key]
        text = ("1" if value else "0") if isinstance(value, bool) else \
            ",".join(map(str, value)) if isinstance(value, list) else str(value)
        if st.query_params.get(key) != text:
            st.query_params[key] = text


ZOOMS = {"range": "Selected range", "signal": "Since the signal started"}


def zoom_control(key: str, assessments: Sequence[Assessment]) -> datetime | None:
    """'Since the signal started': the x-axis starts a little before the earliest ``state_since`` of the
    shown venues that are not healthy (None: show the whole range)."""
    url_controls({key: "range"}, {key: list(ZOOMS)})
    choice = st.radio("Zoom", list(ZOOMS), format_func=ZOOMS.__getitem__, key=key, horizontal=True,
                      label_visibility="collapsed")
    sync_controls([key])
    if choice != "signal":
        return None
    starts = [a.state_since for a in assessments if a.state_since is not None and a.state not in ("healthy", "no_fund")]
    if not starts:
        st.caption("No signal with a known start among these venues: showing the whole range.")
        return None
    start = min(starts)
    end = max(a.as_of for a in assessments)
    return start - max((end - start) * 0.15, timedelta(minutes=30))


def backfilling() -> tuple[str, ...]:
    """Venues whose history is still being backfilled: their change metrics are held back."""
    return tuple(st.session_state.get(BACKFILL_KEY, ()))


def render_no_data(ctx: AppContext, title: str | None = None) -> None:
    """The no-data page: where the dashboard looks, what the collector is doing (its state, the venues it
    reaches, their last errors, from the run rows), what to do; it re-checks every refresh and switches to
    the real page as soon as the first fund or open-interest row lands."""
    from dashboard import data
    from dashboard.status import diagnose

    if title:
        st.title(title)

    def check() -> None:
        if data.has_data_now(ctx.db):
            data.clear()
            st.rerun(scope="app")
        st.subheader("Backstop has no data yet", anchor=False)
        exists = Path(ctx.db).exists()
        st.text(f"Database: {ctx.db} " + ("(no fund or open-interest rows yet)" if exists else "(does not exist yet)"))
        now = data.quantised_now(1)
        activity = data.poll_activity(ctx.db, now) if exists else None
        activity = activity if activity is not None else pd.DataFrame()
        names = {k: v.display_name for k, v in venue_catalog(
            activity["venue"].astype(str).tolist() if not activity.empty else []).items()}
        diagnosis = diagnose(activity, names, now)
        if diagnosis.last_run_at is not None:
            box = st.warning if diagnosis.running else st.error
            box(diagnosis.headline(now), icon=":material/lan:")
            if not diagnosis.reachable:
                st.error("No venue is reachable: check the network, a proxy (venues' base_url in backstop.toml), "
                         "or try everything on simulated data with `backstop demo`.", icon=":material/wifi_off:")
            st.dataframe(diagnosis.errors, hide_index=True, height=36 * (len(diagnosis.errors) + 1) + 4, column_config={
                "last error": st.column_config.TextColumn("last error", width="large")})
        st.markdown(
            "* `backstop collect` (or `backstop run`) polls every enabled venue and writes to this database;\n"
            "* `backstop demo` runs the built-in simulator and a collector against it (no internet needed);\n"
            "* `backstop dashboard --db PATH` opens this dashboard on another database file.\n\n"
            f"This page checks again every {ctx.refresh_s} s and shows the data as soon as it arrives; "
            "Collector health and Alerts work already."
        )
        st.caption("Configuration: backstop.toml or BACKSTOP_* environment variables (see the README).")

    fragment(check, ctx)


def show_notice(message: str, rejected: Sequence[str] = ()) -> None:
    """Our own sentence in an info box; what the user (URL) or a file supplied only as plain text below it,
    never as Markdown: ``?range=![a](http://host/pixel.png)`` must not make the browser fetch anything."""
    st.info(message, icon=":material/link_off:")
    for value in rejected:
        st.text(f"not understood: {value}")


_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$:=&\"'/@^%;?])")


def md_escape(text: object) -> str:
    """Text from an exchange, an alert or a user, made inert for Markdown (``st.markdown``, ``st.table``
    cells): every punctuation mark backslash-escaped, so no link, image, autolink, directive
    (``:red[...]``, ``:material/...:``), LaTeX or HTML can form; newlines become spaces."""
    return _MD_SPECIAL.sub(r"\\\1", " ".join(str(text).split()))


_TIME_LIKE = (date, str, int, float, np.integer, np.datetime64)  # what pd.Timestamp() converts (datetime is a date)


def fmt_ts(value: object) -> str:
    """'2026-11-26 12:03 UTC'; missing -> '—'."""
    if is_missing(value):
        return DASH
    if not isinstance(value, _TIME_LIKE):
        raise TypeError(f"not a time: {value!r}")
    ts = pd.Timestamp(value)
    return f"{ts.tz_convert('UTC'):%Y-%m-%d %H:%M} UTC" if ts.tzinfo else f"{ts:%Y-%m-%d %H:%M} UTC"


def fmt_text(value: object) -> str:
    """Text cells: '—' for missing, never 'None' or 'nan'."""
    if is_missing(value):
        return DASH
    return str(value)


def plain(text: object) -> str:
    """Exchange text for Plotly labels: Plotly reads a subset of HTML in names and hover text, so escape it."""
    return html.escape(str(text), quote=False)


def download(frame: pd.DataFrame, name: str, key: str, label: str = "Download CSV") -> None:
    """A CSV of exactly ``frame`` (text cells neutralised against spreadsheet formulas)."""
    safe = re.sub(r"[^a-z0-9_-]+", "-", name.lower()).strip("-")
    st.download_button(label, data=to_csv_bytes(frame), file_name=f"backstop-{safe}.csv", mime="text/csv",
                       key=f"dl-{key}", on_click="ignore", icon=":material/download:")


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


REFRESH_COST_KEY = "backstop_refresh_cost_s"


def refresh_every_s(ctx: AppContext, cost_s: float) -> int:
    """The auto-refresh interval: ``dashboard.refresh_s``, stretched to 3× what a refresh last cost, so a
    slow machine shows a page that is idle most of the time instead of one that is always re-running."""
    return max(ctx.refresh_s, math.ceil(3 * cost_s))


def fragment(body: Callable[[], None], ctx: AppContext) -> None:
    """Run a page body as an auto-refreshing fragment (``refresh_every_s``)."""

    def timed() -> None:
        started = time.monotonic()
        try:
            body()
        finally:
            st.session_state[REFRESH_COST_KEY] = time.monotonic() - started

    every = refresh_every_s(ctx, float(st.session_state.get(REFRESH_COST_KEY, 0.0)))
    st.fragment(run_every=timedelta(seconds=every))(timed)()


def explain_range(state: PageState) -> str:
    return f"{state.range_start:%Y-%m-%d %H:%M} → {state.now:%Y-%m-%d %H:%M} UTC"


def run_page(title: str, body: Callable[[PageState], None], caption: str | None = None,
             needs_data: bool = True) -> None:
    """Page frame: the no-data diagnosis (pages that need data), or the title and an auto-refreshing body.
    Pages that work without data (Collector health, Alerts) show the diagnosis above their body."""
    ctx: AppContext | None = st.session_state.get("backstop_ctx")
    state = page_state()
    if ctx is None:
        return
    if state is None or (not state.has_data and needs_data):
        render_no_data(ctx, None if state is None else title)
        return
    st.title(title)
    if caption:
        st.caption(caption)
    if not state.has_data:
        render_no_data(ctx)
        if not Path(ctx.db).exists():
            return

    def refreshing() -> None:
        current = page_state()
        if current is None:
            return
        try:
            body(current)
        except DatabaseBusy as exc:  # the collector held the write lock past the retry budget
            st.warning(f"The database is busy ({exc}); showing nothing until the next refresh.")

    fragment(refreshing, ctx)
