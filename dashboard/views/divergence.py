"""Divergence: each venue's fund change against the cross-venue median over 1 h / 8 h / 24 h / 7 d
(only where the venue publishes often enough), the robust z-score, and the outliers in words."""

from __future__ import annotations

from datetime import timedelta

import pandas as pd
import plotly.graph_objects as go
import streamlit as st
from plotly.subplots import make_subplots

from dashboard import common, data, model
from metrics.divergence import WINDOWS_S, DivergenceRule

RULE = DivergenceRule()
EMPTY_SERIES = pd.DataFrame(columns=["venue", "ts", "fund_usd"])
EMPTY_OI = pd.DataFrame(columns=["venue", "oi_usd"])
EMPTY_NATIVE = pd.DataFrame(columns=["venue", "asset", "balance"])


def _bars(state: common.PageState, div: pd.DataFrame) -> go.Figure:
    titles = []
    for window in WINDOWS_S:
        n = int(div[div["window"] == window]["venues_compared"].max()) if (div["window"] == window).any() else 0
        titles.append(window if n >= RULE.min_venues else f"{window} ({n} venue{'s' if n != 1 else ''}: not compared)")
    fig = make_subplots(rows=1, cols=len(WINDOWS_S), subplot_titles=titles, shared_yaxes=False)
    for col, window in enumerate(WINDOWS_S, start=1):
        part = div[div["window"] == window]
        for r in part.itertuples():
            fig.add_trace(go.Bar(
                x=[state.name(r.venue)], y=[r.change_pct], name=state.name(r.venue), showlegend=False,
                marker={"color": state.info[r.venue].colour, "line": {"color": "#000000", "width": 3 if r.flagged else 0},
                        "opacity": 1.0 if r.flagged else 0.55},
                hovertemplate=f"{state.name(r.venue)}: %{{y:+.2f}} %" +
                (f" · z {r.z:+.1f}" if r.z is not None and pd.notna(r.z) else "") + "<extra></extra>",
            ), row=1, col=col)
        median = part["median_pct"].dropna()
        if not median.empty:
            fig.add_hline(y=float(median.iloc[0]), line_dash="dash", line_color="#555555", row=1, col=col)
    fig.update_yaxes(title_text="change (%)", row=1, col=1)
    fig.update_layout(height=380, margin={"l": 10, "r": 10, "t": 40, "b": 10}, bargap=0.25)
    return fig


def body(state: common.PageState) -> None:
    db, everyone = state.ctx.db, state.known
    asof = data.fund_asof(db, everyone, tuple(model.CHANGE_OFFSETS_S.values()))
    summary = model.venue_summary(list(everyone), state.info, asof, EMPTY_NATIVE, EMPTY_SERIES, EMPTY_SERIES,
                                  EMPTY_OI, None, state.now, state.ctx.intervals)
    div = model.divergence_table(summary, RULE)
    shown = div[div["venue"].isin(state.venues)].reset_index(drop=True)

    flagged = shown[shown["flagged"]]
    if flagged.empty:
        st.success("No venue's fund is moving unlike the others.", icon=":material/check_circle:")
    for text in flagged["explanation"]:
        st.warning(text, icon=":material/call_split:")

    st.plotly_chart(_bars(state, shown), key="divergence-bars")
    st.caption("Bars: each venue's fund change (USD) over the window ending at its newest value; dashed line: "
               "median of all venues that publish within the window; outlined: past the threshold. "
               f"Rule: {RULE.describe()}.")
    left_out = summary[(summary["freshness"] == "stale")]["venue"].tolist()
    if left_out:
        st.caption("Left out (stale data): " + ", ".join(state.name(v) for v in left_out) + ".")
    st.dataframe(shown, hide_index=True, column_config={
        "window_s": None, "venue": None,
        "change_pct": st.column_config.NumberColumn("change (%)", format="%.2f"),
        "median_pct": st.column_config.NumberColumn("median (%)", format="%.2f"),
        "z": st.column_config.NumberColumn("robust z", format="%.1f")})
    common.download(shown, "divergence-now", "divergence-table")
    with st.expander("In words"):
        for text in shown["explanation"]:
            st.text(text)

    st.subheader("24 h change and robust z over time", anchor=False)
    span = min(state.range_td, timedelta(days=90))
    grid = data.grid_for(span, state.now, max_points=360, min_step=timedelta(hours=1))
    step_s = int(grid.step.total_seconds())
    lag = 86_400 // step_s
    daily_ok = [v for v in everyone if state.info[v].cadence("funds") <= 86_400]
    series = data.fund_series(db, tuple(daily_ok), grid.end, step_s, grid.points + lag, "venue")
    changes = model.rolling_change(series, 86_400, step_s)
    z = model.robust_z_over_time(changes[["ts", "venue", "change_pct"]], RULE)
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
    for level in (RULE.z_threshold, -RULE.z_threshold):
        fig.add_hline(y=level, line_dash="dot", line_color="#AA0000")
    st.plotly_chart(common.style(fig, 360, "robust z of 24 h change"), key="divergence-z")
    common.download(z, "divergence-24h-z", "divergence-z")


common.run_page("Divergence", body, caption="Is one venue's fund moving unlike the others?")
