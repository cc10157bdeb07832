"""Overview: what needs attention now (venues ranked by their assessment, each with its one-line reason,
since when, size in USD and native units, a sparkline and links to the view that explains it), then a
compact ranked table of every fund venue, the open-interest-only venues apart, the firing alerts and the
funds chart over the sidebar's range.

Every state, reason and figure comes from ``metrics.assessment.Assessment`` objects as the alert rules
build them (``data.assessments``), so a critical alert and this page never disagree.
"""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from dashboard import data, model
from dashboard.charts import style
from dashboard.page import PageState, backfilling, explain_range, run_page
from dashboard.page_controls import zoom_control
from dashboard.text import STATE_FILL, download, md_escape, state_badge
from metrics.assessment import HEALTHY, NO_FUND, Assessment, state_rank
from metrics.formatting import DASH, fmt_age, fmt_pct, fmt_usd

ATTENTION_MAX = 6  # rows in "what needs attention now"; the ranked table below lists every venue


def ranked(assessments: list[Assessment], venues: tuple[str, ...], held_back: tuple[str, ...] = ()
           ) -> list[Assessment]:
    """Venue-level assessments of venues with a fund, worst first (state, then the 24 h fall); venues still
    backfilling go last (their changes are not trusted yet)."""
    rows = [a for a in assessments if a.is_venue and a.state != NO_FUND and a.venue in venues]
    return sorted(rows, key=lambda a: (a.venue in held_back, -state_rank(a.state),
                                       a.change_pct("24h") if a.change_pct("24h") is not None else 0.0,
                                       a.display_name))


def since_text(a: Assessment) -> str:
    if a.state_since is None:
        return DASH
    age = (a.as_of - a.state_since).total_seconds()
    return f"{a.state_since:%Y-%m-%d %H:%M} UTC ({fmt_age(age)} ago)"


def _spark(values: list[float], colour: str, key: str) -> None:
    fig = go.Figure(go.Scatter(y=values, mode="lines", line={"color": colour, "width": 2}, hoverinfo="skip"))
    fig.update_layout(height=70, margin={"l": 0, "r": 0, "t": 4, "b": 4}, showlegend=False,
                      xaxis={"visible": False}, yaxis={"visible": False})
    st.plotly_chart(fig, key=key, config={"displayModeBar": False, "staticPlot": True})


def _attention(a: Assessment, native: str, spark: list[float], state: PageState) -> None:
    with st.container(border=True):
        left, middle, right = st.columns([5, 2, 3], vertical_alignment="center")
        with left:
            st.markdown(f"{state_badge(a.state)} **{md_escape(a.display_name)}** · "
                        f"{md_escape(a.reasons[0]) if a.reasons else 'no rule triggered'}")
            more = f" · {len(a.reasons) - 1} more reason(s): " + md_escape("; ".join(a.reasons[1:])) \
                if len(a.reasons) > 1 else ""
            st.caption(f"since {md_escape(since_text(a))} · 24 h "
                       f"{md_escape(fmt_pct(a.change_pct('24h'), signed=True))} · from 8 h max "
                       f"{md_escape(fmt_pct(a.drawdown_8h_pct))}{more}")
        with middle:
            st.metric("Fund", fmt_usd(a.fund_usd), help="USD (newest collected price) and native units.")
            st.caption(md_escape(native))
        with right:
            _spark(spark, state.info[a.venue].colour if a.venue in state.info else "#555555",
                   f"spark-{a.venue}")
            links = st.columns(2)
            params = {"venues": a.venue, "range": state.controls.range_key, "funds-zoom": "signal"}
            links[0].page_link("views/funds.py", label="Funds", icon=":material/savings:", query_params=params)
            links[1].page_link("views/divergence.py", label="Divergence", icon=":material/call_split:",
                               query_params={"venues": a.venue, "range": state.controls.range_key})


def venue_table(rows: list[Assessment], assessments: list[Assessment], sparks: dict[str, list[float]],
                held_back: tuple[str, ...]) -> pd.DataFrame:
    """The ranked table: display names, formatted numbers, '—' for what is unknown."""
    out = []
    for a in rows:
        waiting = a.venue in held_back
        out.append({
            "state": "backfilling" if waiting else a.label, "venue": a.display_name,
            "reason": "history still loading" if waiting else ("; ".join(a.reasons) or DASH),
            "since": since_text(a), "fund": fmt_usd(a.fund_usd), "native": model.native_text(assessments, a.venue),
            "24 h": DASH if waiting else fmt_pct(a.change_pct("24h"), signed=True),
            "7 d": DASH if waiting else fmt_pct(a.change_pct("7d"), signed=True),
            "from 30 d max": DASH if waiting else fmt_pct(a.drawdown_30d_pct),
            "coverage": fmt_pct(a.coverage_pct, 2), "data age": fmt_age(a.data_age_s),
            STRESS_COLUMN: stress_text(a), "trend": sparks.get(a.venue, []),
        })
    return pd.DataFrame(out, columns=["state", "venue", "fund", "24 h", "7 d", "from 30 d max", "coverage",
                                      STRESS_COLUMN, "data age", "trend", "reason", "since", "native"])


STRESS_COLUMN = "20 % fall (est.)"


def stress_text(a: Assessment) -> str:
    """The assessment's stress figure: the share of this fund a 20 % fall would consume (an estimate)."""
    if a.stress_consumption_pct is None:
        return DASH
    return f"~{fmt_pct(a.stress_consumption_pct, 0)} of fund"


def body(state: PageState) -> None:
    db = state.ctx.db
    held_back = backfilling()
    assessments = data.assessments(db, state.ctx.config, state.now)
    rows = ranked(assessments, state.venues, held_back)
    grid = data.grid_for(state.range_td, state.now)
    series = data.fund_series(db, state.venues, grid.end, int(grid.step.total_seconds()), grid.points)
    sparks = {str(v): g["fund_usd"].dropna().tolist() for v, g in series.groupby("venue")}

    st.subheader("What needs attention now", anchor=False)
    attention = [a for a in rows if a.state != HEALTHY and a.venue not in held_back]
    if not attention:
        st.success("No venue's fund needs attention: every assessed fund is healthy.",
                   icon=":material/check_circle:")
    for a in attention[:ATTENTION_MAX]:
        _attention(a, model.native_text(assessments, a.venue), sparks.get(a.venue, []), state)
    if len(attention) > ATTENTION_MAX:
        st.caption(f"{len(attention) - ATTENTION_MAX} more below in the table.")

    st.subheader("Every venue with a fund, worst first", anchor=False)
    table = venue_table(rows, assessments, sparks, held_back)
    colours = STATE_FILL
    st.dataframe(table.style.map(lambda v: f"background-color: {colours.get(str(v), 'transparent')}",
                                 subset=["state"]),
                 hide_index=True, column_config={
                     "trend": st.column_config.LineChartColumn("trend (range)", width="small"),
                     STRESS_COLUMN: st.column_config.TextColumn(
                         STRESS_COLUMN, help="Estimated share of the fund a 20 % one-day fall of every asset "
                         "would consume (liquidations beyond bankruptcy, worse fills at size): see the Stress "
                         "page. At 100 % or more the venue is at least 'watch' (ADL likely)."),
                     "reason": st.column_config.TextColumn("reason", width="large"),
                     "native": st.column_config.TextColumn("native", width="medium")})
    download(table.drop(columns=["trend"]), "overview", "overview-table")

    oi_only = [a for a in assessments if a.is_venue and a.state == NO_FUND and a.venue in state.venues]
    if oi_only:
        st.subheader("Venues without a published fund (open interest only)", anchor=False)
        st.dataframe(pd.DataFrame([{"venue": a.display_name, "open interest": fmt_usd(a.oi_usd)}
                                   for a in oi_only]), hide_index=True)

    _alerts(state)
    _chart(state, series, rows, grid.step)


def _alerts(state: PageState) -> None:
    st.subheader("Firing alerts", anchor=False)
    alerts = data.firing_alerts(state.ctx.db)
    if alerts is None:
        st.caption(f"{DASH} (this database has no alerts table yet)")
        return
    alerts = alerts[alerts["venue"].isin(state.venues)] if "venue" in alerts.columns else alerts
    if alerts.empty:
        st.success("No alert is firing.", icon=":material/notifications_off:")
        return
    from dashboard.views.alerts import firing_table

    states = {a.venue: a.state for a in data.assessments(state.ctx.db, state.ctx.config, state.now) if a.is_venue}
    st.table(firing_table(alerts, {v: state.name(v) for v in state.known}, states), border="horizontal")
    st.page_link("views/alerts.py", label="All alerts", icon=":material/notifications:")


def _chart(state: PageState, series: pd.DataFrame, rows: list[Assessment], step: object) -> None:
    st.subheader("Funds over the selected range, indexed to 100 at its start", anchor=False)
    zoom = zoom_control("overview-zoom", rows)
    fig = go.Figure()
    for venue, group in series.groupby("venue"):
        base = group["fund_usd"].dropna()
        if base.empty or base.iloc[0] <= 0:
            continue
        fig.add_trace(go.Scatter(x=group["ts"], y=group["fund_usd"] / base.iloc[0] * 100, mode="lines",
                                 name=state.name(str(venue)), line={"color": state.info[str(venue)].colour}))
    style(fig, 340, "index (range start = 100)")
    if zoom is not None:
        fig.update_xaxes(range=[zoom, state.now])
    st.plotly_chart(fig, key="overview-chart")
    st.caption(f"{explain_range(state)} · one point every {step}.")
    download(series, "funds-range", "overview-chart")


run_page("Overview", body, caption="Insurance funds (and their proxies) across venues, now.")
