"""Divergence: each venue's fund change against the cross-venue median over 1 h / 8 h / 24 h / 7 d
(only where the venue publishes often enough), the robust z-score, and the outliers in words."""

from __future__ import annotations

from datetime import timedelta

import pandas as pd
import plotly.graph_objects as go
import streamlit as st
from plotly.subplots import make_subplots

from dashboard import data, model
from dashboard.charts import style
from dashboard.page import PageState, run_page
from dashboard.text import download, md_escape
from metrics.assessment import BLIND, NO_FUND, Assessment
from metrics.divergence import WINDOWS_S, DivergenceRule, divergence, explain
from metrics.formatting import DASH, fmt_pct, fmt_signed

WINDOW_KEYS = {"1 h": "1h", "8 h": "8h", "24 h": "24h", "7 d": "7d"}  # page window -> assessment window


def divergence_now(assessments: list[Assessment], rule: DivergenceRule) -> pd.DataFrame:
    """Per window × venue, from the assessments' native changes: the change, the other venues' median,
    the robust z and the flag of ``metrics.divergence`` (the 24 h z is the assessment's own). Venues
    without a published fund and venues whose data is stale (blind) take no part."""
    rows = [a for a in assessments if a.is_venue and a.state not in (NO_FUND, BLIND)]
    names = {a.venue: a.display_name for a in rows}
    out = []
    for label, window_s in WINDOWS_S.items():
        changes = {a.venue: a.change_pct(WINDOW_KEYS[label]) for a in rows}
        for d in divergence(changes, window_s, rule):
            out.append({"window": label, "window_s": window_s, "venue": d.venue, "name": names[d.venue],
                        "change_pct": d.change_pct, "median_pct": d.median_pct, "z": d.z, "flagged": d.flagged,
                        "venues_compared": d.n_venues, "explanation": explain(d, names[d.venue])})
    return pd.DataFrame(out, columns=["window", "window_s", "venue", "name", "change_pct", "median_pct", "z",
                                      "flagged", "venues_compared", "explanation"])


def _bars(state: PageState, div: pd.DataFrame, rule: DivergenceRule) -> go.Figure:
    titles = []
    for window in WINDOWS_S:
        n = int(div[div["window"] == window]["venues_compared"].max()) if (div["window"] == window).any() else 0
        titles.append(window if n >= rule.min_venues else f"{window} ({n} venue{'s' if n != 1 else ''}: not compared)")
    fig = make_subplots(rows=1, cols=len(WINDOWS_S), subplot_titles=titles, shared_yaxes=False)
    for col, window in enumerate(WINDOWS_S, start=1):
        part = div[div["window"] == window]
        for r in part.itertuples():
            venue, z = str(r.venue), None if model.is_missing(r.z) else model.as_float(r.z)
            fig.add_trace(go.Bar(
                x=[state.name(venue)], y=[r.change_pct], name=state.name(venue), showlegend=False,
                marker={"color": state.info[venue].colour, "line": {"color": "#000000", "width": 3 if r.flagged else 0},
                        "opacity": 1.0 if r.flagged else 0.55},
                hovertemplate=f"{state.name(venue)}: %{{y:+.2f}} %" +
                (f" · z {z:+.1f}" if z is not None else "") + "<extra></extra>",
            ), row=1, col=col)
    fig.update_yaxes(title_text="change (%)", row=1, col=1)
    fig.update_xaxes(tickangle=-45, automargin=True)
    fig.update_layout(height=440, margin={"l": 10, "r": 10, "t": 40, "b": 10}, bargap=0.25)
    return fig


def body(state: PageState) -> None:
    db, everyone = state.ctx.db, state.known
    rule = data.divergence_rule(db, state.ctx.config)
    assessments = data.assessments(db, state.ctx.config, state.now)
    div = divergence_now(assessments, rule)
    shown = div[div["venue"].isin(state.venues)].reset_index(drop=True)

    flagged = shown[shown["flagged"]]
    if flagged.empty:
        st.success("No venue's fund is moving unlike the others.", icon=":material/check_circle:")
    for text in flagged["explanation"]:
        st.warning(md_escape(text), icon=":material/call_split:")

    st.plotly_chart(_bars(state, shown, rule), key="divergence-bars")
    st.caption("Bars: each venue's fund change in its own units (native: a BTC fund is not moved by the BTC "
               "price) over the window; outlined: past the threshold. Each venue is compared with the median "
               f"of the others. Rule: {rule.describe()}.")
    venue_rows = [a for a in assessments if a.is_venue and a.venue in state.venues]
    no_fund = [a.display_name for a in venue_rows if a.state == NO_FUND]
    stale = [a.display_name for a in venue_rows if a.state == BLIND]
    if stale:
        st.caption("Left out (stale data): " + ", ".join(stale) + ".")
    if no_fund:
        st.caption("Not compared (no published fund, open interest only): " + ", ".join(no_fund) + ".")
    table = pd.DataFrame({
        "window": shown["window"], "venue": shown["name"],
        "change": [fmt_pct(v, 2, signed=True) for v in shown["change_pct"]],
        "others' median": [fmt_pct(v, 2, signed=True) for v in shown["median_pct"]],
        "robust z": [DASH if v is None or pd.isna(v) else fmt_signed(v) for v in shown["z"]],
        "flagged": shown["flagged"].astype(bool), "venues compared": shown["venues_compared"],
    })
    st.dataframe(table, hide_index=True)
    download(shown, "divergence-now", "divergence-table")
    with st.expander("In words"):
        for text in shown["explanation"]:
            st.text(text)

    st.subheader("24 h change and robust z over time", anchor=False)
    span = min(state.range_td, timedelta(days=90))
    grid = data.grid_for(span, state.now, max_points=360, min_step=timedelta(hours=1))
    step_s = int(grid.step.total_seconds())
    lag = 86_400 // step_s
    daily_ok = [v for v in everyone if state.info[v].cadence("funds") <= 86_400]
    pools = data.fund_series(db, tuple(daily_ok), grid.end, step_s, grid.points + lag, "pool_asset")
    changes = model.rolling_venue_change(pools, 86_400, step_s)  # native, weighted as the assessments do
    z = model.robust_z_over_time(changes[["ts", "venue", "change_pct"]], rule)
    z = z[z["venue"].isin(state.venues) & (z["ts"] >= pd.Timestamp(state.now - span))]
    fig = go.Figure()
    for venue, group in z.groupby("venue"):
        fig.add_trace(go.Scattergl(x=group["ts"], y=group["z"], mode="lines", name=state.name(str(venue)),
                                   line={"color": state.info[str(venue)].colour}))
        hits = group[group["flagged"]]
        if not hits.empty:
            fig.add_trace(go.Scattergl(x=hits["ts"], y=hits["z"], mode="markers", showlegend=False,
                                       marker={"color": state.info[str(venue)].colour, "size": 9,
                                               "line": {"color": "#000000", "width": 1}}))
    for level in (rule.z_threshold, -rule.z_threshold):
        fig.add_hline(y=level, line_dash="dot", line_color="#AA0000")
    fig.update_xaxes(nticks=8, tickformat="%d %b\n%H:%M")
    st.plotly_chart(style(fig, 360, "robust z of 24 h change"), key="divergence-z")
    download(z, "divergence-24h-z", "divergence-z")


run_page("Divergence", body, caption="Is one venue's fund moving unlike the others?")
