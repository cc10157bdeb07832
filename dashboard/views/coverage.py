"""Coverage: fund ÷ open interest over time, per venue and per fund pool (pool -> contracts through
fund_pool_members), with the fund and the OI it backs on one time axis."""

from __future__ import annotations

from datetime import timedelta

import pandas as pd
import plotly.graph_objects as go
import streamlit as st
from plotly.subplots import make_subplots

from dashboard import data, model
from dashboard.charts import log_axis, style
from dashboard.page import PageState, explain_range, run_page
from dashboard.page_controls import sync_controls, url_controls
from dashboard.text import download, fmt_text, plain
from metrics.coverage import coverage_pct
from metrics.formatting import fmt_pct, fmt_usd


def body(state: PageState) -> None:
    db = state.ctx.db
    grid = data.grid_for(state.range_td, state.now, min_step=timedelta(minutes=15))  # ≥ 3 OI polls a point
    step_s, points = int(grid.step.total_seconds()), grid.points
    funds = data.fund_series(db, state.venues, grid.end, step_s, points, "venue")
    oi = data.oi_series(db, state.venues, grid.end, step_s, points)
    cov = model.coverage_frame(funds, oi, ["venue"])

    st.subheader("Coverage by venue (fund ÷ OI)", anchor=False)
    url_controls({"coverage-log": True})
    log = st.toggle("Log scale", key="coverage-log", help="Coverage ranges from under 1 % to over 100 %.")
    floor = data.coverage_floor_pct(db, state.ctx.config)
    fig = go.Figure()
    drawn = cov.dropna(subset=["coverage_pct"])
    for venue, group in drawn.groupby("venue"):
        # continuous at any range: fund and OI grids do not always share points, so gaps are bridged
        fig.add_trace(go.Scatter(x=group["ts"], y=group["coverage_pct"], mode="lines", connectgaps=True,
                                 name=state.name(str(venue)), line={"color": state.info[str(venue)].colour}))
    fig.add_hline(y=floor, line_dash="dash", line_color="#c62828",
                  annotation_text=f"alert floor {floor:g} %", annotation_position="bottom right")
    style(fig, 380, "coverage (%)")
    if log:
        log_axis(fig, [*drawn["coverage_pct"].tolist(), floor], " %")
    st.plotly_chart(fig, key="coverage-venues")
    missing = sorted(set(state.venues) - set(drawn["venue"]))
    st.caption(f"{explain_range(state)} · one point every {grid.step}. Dashed red: the coverage alert's "
               f"floor ({floor:g} % of open interest)."
               + (f" No coverage (fund or open interest missing): {', '.join(state.name(v) for v in missing)}."
                  if missing else ""))
    sync_controls(["coverage-log"])
    download(cov, "coverage-venues", "coverage-venues")

    with_oi = [v for v in state.venues if v in set(oi["venue"])] or list(state.venues)
    venue = st.selectbox("Venue detail", with_oi, format_func=state.name, key="coverage-venue")
    colour = state.info[venue].colour
    pools_f = data.fund_series(db, (venue,), grid.end, step_s, points, "pool")
    pools_oi = data.oi_series(db, (venue,), grid.end, step_s, points, by_pool=True)
    pool_cov = model.coverage_frame(pools_f, pools_oi, ["venue", "pool_id"])
    one = cov[cov["venue"] == venue]

    fig = make_subplots(rows=3, cols=1, shared_xaxes=True, vertical_spacing=0.04,
                        subplot_titles=("Fund (USD)", "Open interest (USD)", "Coverage per pool (%)"))
    fig.add_trace(go.Scatter(x=one["ts"], y=one["fund_usd"], name="fund", line={"color": colour},
                             connectgaps=True), row=1, col=1)
    fig.add_trace(go.Scatter(x=one["ts"], y=one["oi_usd"], name="open interest", connectgaps=True,
                             line={"color": colour, "dash": "dot"}), row=2, col=1)
    dashes = ["solid", "dash", "dot", "dashdot", "longdash", "longdashdot"]
    for i, (pool, group) in enumerate(pool_cov.dropna(subset=["coverage_pct"]).groupby("pool_id")):
        fig.add_trace(go.Scatter(x=group["ts"], y=group["coverage_pct"], name=f"pool {plain(pool)}",
                                 connectgaps=True, line={"color": colour, "dash": dashes[i % len(dashes)]}),
                      row=3, col=1)
    fig.update_layout(hovermode="x unified", height=640, margin={"l": 10, "r": 10, "t": 40, "b": 10})
    st.plotly_chart(fig, key="coverage-detail")
    detail = pool_cov.merge(one[["ts", "fund_usd", "oi_usd"]].rename(
        columns={"fund_usd": "venue_fund_usd", "oi_usd": "venue_oi_usd"}), on="ts", how="outer")
    download(detail, f"coverage-{venue}", "coverage-detail")
    if pool_cov.empty:
        st.caption("No pool membership recorded for this venue: only the venue total is shown.")

    st.subheader("Coverage per pool now", anchor=False)
    pools = data.fund_pools_latest(db, state.venues)
    pool_oi = data.oi_latest(db, state.venues, state.now, by_pool=True)
    table = pools.merge(pool_oi[["venue", "pool_id", "oi_usd", "contracts"]].rename(
        columns={"contracts": "contracts_with_oi"}), on=["venue", "pool_id"], how="left")
    table["coverage_pct"] = [coverage_pct(f, o) for f, o in zip(table["fund_usd"], table["oi_usd"], strict=True)]
    table.insert(0, "name", [state.name(v) for v in table["venue"]])
    table = table.sort_values("coverage_pct", na_position="last").reset_index(drop=True)
    shown = pd.DataFrame({
        "venue": table["name"], "pool": [fmt_text(p) for p in table["pool_id"]],
        "fund": [fmt_usd(v) for v in table["fund_usd"]], "open interest": [fmt_usd(v) for v in table["oi_usd"]],
        "coverage": [fmt_pct(v, 2) for v in table["coverage_pct"]],
        "contracts with OI": [fmt_text(None if pd.isna(v) else int(v)) for v in table["contracts_with_oi"]],
    })
    st.dataframe(shown, hide_index=True)
    download(table, "coverage-pools-now", "coverage-pools")


run_page("Coverage", body, caption="How much of the open interest each fund could absorb.")
