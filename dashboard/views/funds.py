"""Funds: history per venue, pool or asset; USD or native units; log scale; indexed to 100 at the range
start; curated stress events and detected liquidation cascades as shaded bands; alert markers."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from dashboard import data
from dashboard.charts import (
    add_alert_markers,
    annotate_cascades,
    annotate_events,
    log_axis,
    stress_events,
    style,
)
from dashboard.page import PageState, explain_range, run_page
from dashboard.page_controls import sync_controls, url_controls, zoom_control
from dashboard.text import download, plain
from dashboard.views import positions
from metrics.formatting import fmt_usd

GROUPS = {"venue": "Venue", "pool": "Pool", "asset": "Asset", "pool_asset": "Pool × asset"}


def _label(state: PageState, row: pd.Series, by: str) -> str:
    name = state.name(str(row["venue"]))
    if by == "pool":
        return f"{name} · {row['pool_id']}"
    if by == "asset":
        return f"{name} · {row['asset']}"
    if by == "pool_asset":
        return f"{name} · {row['pool_id']} · {row['asset']}"
    return name  # plain text: escaped for Plotly where it is drawn


SCALES = {"linear": "Linear", "log": "Log", "indexed": "Indexed (start = 100)"}
OVERLAYS = {"events": "Stress events", "cascades": "Cascades", "alerts": "Alerts"}
SPREAD_FOR_LOG = 10.0  # funds differing by more than this factor: a linear axis hides the small ones
CONTROL_KEYS = ["funds-by", "funds-unit", "funds-scale", "funds-overlays", "funds-zoom"]


def default_scale(frame: pd.DataFrame, value: str) -> str:
    """Log when the series' newest values differ by more than ``SPREAD_FOR_LOG``×, else linear."""
    newest = frame.dropna(subset=[value]).groupby("series")[value].last()
    newest = newest[newest > 0]
    return "log" if len(newest) > 1 and newest.max() / newest.min() > SPREAD_FOR_LOG else "linear"


def body(state: PageState) -> None:
    url_controls({"funds-by": "venue", "funds-unit": "USD", "funds-overlays": list(OVERLAYS)},
                 {"funds-by": list(GROUPS), "funds-unit": ["USD", "native"],
                  "funds-overlays": list(OVERLAYS)})
    c1, c2, c3 = st.columns([1, 1, 2])
    by = c1.selectbox("Group by", list(GROUPS), format_func=GROUPS.__getitem__, key="funds-by")
    unit = c2.radio("Unit", ["USD", "native"], horizontal=True, key="funds-unit",
                    help="Native = the fund's own asset (BTC, USDT, …): price moves removed.")
    if unit == "native" and by in ("venue", "pool"):
        by = "pool_asset" if by == "pool" else "asset"
        st.caption("Native units need one asset per line: grouped by asset.")

    grid = data.grid_for(state.range_td, state.now)
    frame = data.fund_series(state.ctx.db, state.venues, grid.end, int(grid.step.total_seconds()), grid.points, by)
    if frame.empty:
        st.info("No fund data for these venues in this range.")
        positions.section(state)
        return
    value = "fund_usd" if unit == "USD" else "balance"
    keys = [c for c in ("venue", "pool_id", "asset") if c in frame.columns]
    chart = frame[[*keys, "ts", value, "unvalued"]].copy()
    chart["series"] = [_label(state, r, by) for _, r in chart.iterrows()] if not chart.empty else []
    url_controls({"funds-scale": default_scale(chart, value)}, {"funds-scale": list(SCALES)})
    scale = c3.segmented_control("Scale", list(SCALES), format_func=SCALES.__getitem__, key="funds-scale",
                                 help="Log or indexed when the funds differ by more than 10× (the default then).")
    overlays = st.pills("Overlays", list(OVERLAYS), format_func=OVERLAYS.__getitem__, selection_mode="multi",
                        key="funds-overlays", help="Curated stress events, detected liquidation cascades (orange "
                        "bands) and alerts (triangles along the top; hover for the reason).")
    log, indexed = scale == "log", scale == "indexed"
    show_events, show_cascades, show_alerts = (k in (overlays or []) for k in OVERLAYS)
    if indexed:
        first = chart.dropna(subset=[value]).groupby("series")[value].transform("first")
        chart["indexed"] = chart[value] / first.where(first > 0) * 100.0
    y = "indexed" if indexed else value

    fig = go.Figure()
    for series, group in chart.groupby("series", sort=True):
        venue = str(group["venue"].iloc[0])
        fig.add_trace(go.Scattergl(x=group["ts"], y=group[y], mode="lines", name=plain(series),
                                   line={"color": state.info[venue].colour, "width": 1.6},
                                   legendgroup=venue))
    y_title = "index (range start = 100)" if indexed else ("USD" if unit == "USD" else "native units")
    events = stress_events(state.range_start, state.now)
    if show_events:
        annotate_events(fig, events, state.name)
    if show_cascades:
        annotate_cascades(fig, data.cascades(state.ctx.db, state.venues, state.range_start, state.now),
                          state.name, state.now)
    if show_alerts:
        add_alert_markers(
            fig, data.alert_markers(state.ctx.db, state.venues, state.range_start, state.now), state.name)
    zoom = zoom_control("funds-zoom", [a for a in data.assessments(state.ctx.db, state.ctx.config, state.now)
                                       if a.is_venue and a.venue in state.venues])
    if zoom is not None:
        fig.update_xaxes(range=[max(zoom, state.range_start), state.now])
    style(fig, 480, y_title)
    if log:
        log_axis(fig, chart[y].dropna().tolist(),
                 fmt=(lambda t: fmt_usd(t, 0)) if unit == "USD" and not indexed else None)
    st.plotly_chart(fig, key="funds-chart")
    sync_controls(CONTROL_KEYS)
    st.caption(f"{explain_range(state)} · one point every {grid.step} (value as of that instant).")
    if (chart["unvalued"] > 0).any() and unit == "USD":
        st.caption("Some points lack a USD price (no price collected near that time): they are left out, "
                   "not guessed.")
    download(chart, f"funds-{by}-{unit}", "funds-chart")
    positions.section(state)

    with st.expander(f"Stress events in this range ({len(events)})", expanded=False):
        shown = events.assign(venue=[state.name(v) if v else "market-wide" for v in events["venue"]])
        st.dataframe(shown, hide_index=True, column_config={
            "source": st.column_config.LinkColumn("source"),
            "date": st.column_config.DatetimeColumn("from", format="YYYY-MM-DD"),
            "end_date": st.column_config.DatetimeColumn("until", format="YYYY-MM-DD")})
        download(shown, "stress-events", "funds-events")


run_page("Funds", body, caption="Insurance-fund history; the sidebar sets the range and venues.")
