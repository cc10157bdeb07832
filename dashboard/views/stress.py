"""Stress test: how much of each fund would a one-day move of X % consume? A thin view over
``storage.stress_inputs`` (the inputs are read once per cache TTL; the sliders only re-project them in
memory). Every number is an estimate; the model and its defaults are in the README ("Stress test") and
the ``[stress]`` config section. Sliders live in the URL (``?move=20&fill=0.5&dir=down&scope=all``).
"""

from __future__ import annotations

import sys
from datetime import datetime

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from configuration.settings import ConfigError, StressConfig, load_settings
from dashboard.context import _args
from dashboard.data import TTL_S, daily_cache
from dashboard.page import PageState, run_page
from dashboard.params import (
    STRESS_FILL_RANGE,
    STRESS_MOVE_RANGE,
    StressControls,
    parse_stress_params,
    stress_to_params,
)
from dashboard.text import download
from storage.stress_inputs import StressInputs, load_inputs, stress_frame, venue_consumption

ESTIMATE = ("Estimates, not forecasts: open interest × the share of positions a leverage distribution puts "
            "within the move, times a deficit rate that grows with liquidated size (README: Stress test).")
TABLE_COLUMNS = {
    "venue": "venue", "pool_id": "pool", "direction": "direction", "move_pct": "move %", "scope": "assets moved",
    "liquidated_usd": "liquidated USD (est.)", "deficit_rate_pct": "deficit rate % (est.)",
    "deficit_usd": "deficit USD (est.)", "fund_usd": "fund USD", "fund_after_move_usd": "fund after move USD (est.)",
    "consumption_pct": "consumption % of fund (est.)", "fund_asset": "fund asset",
    "consumption_native": "consumption, fund asset (est.)", "adl_likely": "ADL likely (est.)",
    "calibration": "calibration", "worst_day_loss_usd": "worst day loss USD", "p99_day_loss_usd": "99th-pct day loss USD",
    "days_covered_p99": "days of 99th-pct losses covered", "worst_day_liquidated_usd": "worst day liquidated USD",
}


@st.cache_resource(show_spinner=False)
def stress_config() -> StressConfig:
    """The ``[stress]`` section (defaults when the config has a problem: the app banner says so)."""
    try:
        return load_settings(config_path=_args(sys.argv[1:]).config).stress
    except ConfigError:
        return StressConfig()


@st.cache_data(ttl=TTL_S, show_spinner=False)
def _inputs(db: str, venues: tuple[str, ...], now: datetime, cfg_json: str) -> StressInputs:
    cfg = StressConfig.model_validate_json(cfg_json)
    calibrations = daily_cache(db, "stress").setdefault("calibrations", {})
    return load_inputs(db, venues, now, cfg.distribution(), cfg.calibration_days, cfg.history_days,
                       cfg.min_calibration_days, cfg.calibrate, calibrations)


def _sync_url() -> None:
    wanted = stress_to_params(StressControls(
        int(st.session_state["stress_move"]), float(st.session_state["stress_fill"]),
        str(st.session_state["stress_dir"]), "family" if st.session_state["stress_family"] else "all"))
    for key, value in wanted.items():
        if st.query_params.get(key) != value:
            st.query_params[key] = value


def _controls(cfg: StressConfig) -> StressControls:
    if "stress_move" not in st.session_state:
        parsed = parse_stress_params(st.query_params.to_dict(), cfg.fill_degradation)
        st.session_state.update(stress_move=parsed.move_pct, stress_fill=parsed.fill_degradation,
                                stress_dir=parsed.direction, stress_family=parsed.scope == "family",
                                stress_notices=list(parsed.notices))
    for notice in st.session_state.pop("stress_notices", []):
        st.info(notice, icon=":material/link_off:")
    left, middle, right = st.columns([2, 2, 1])
    left.slider("Move (%)", *STRESS_MOVE_RANGE, key="stress_move", on_change=_sync_url,
                help="A one-day move of every asset (or only the fund's own asset family).")
    middle.slider("Fill degradation", *STRESS_FILL_RANGE, step=0.05, key="stress_fill", on_change=_sync_url,
                  help="Deficit rate added per unit of liquidated notional ÷ usual daily volume "
                       f"(config default {cfg.fill_degradation:g}).")
    right.radio("Direction", ["down", "up"], key="stress_dir", horizontal=True, on_change=_sync_url)
    right.toggle("Fund's asset only", key="stress_family", on_change=_sync_url,
                 help="Move only the fund's own asset family (a stablecoin fund: its largest-OI base asset).")
    _sync_url()
    return StressControls(int(st.session_state["stress_move"]), float(st.session_state["stress_fill"]),
                          str(st.session_state["stress_dir"]),
                          "family" if st.session_state["stress_family"] else "all")


def _chart(per_venue: pd.DataFrame, state: PageState, move: int) -> go.Figure:
    shown = per_venue.dropna(subset=["consumption_pct"]).sort_values("consumption_pct")
    names = [state.name(str(v)) for v in shown["venue"]]
    colours = [state.info[str(v)].colour if str(v) in state.info else "#888888" for v in shown["venue"]]
    fig = go.Figure(go.Bar(
        x=shown["consumption_pct"], y=names, orientation="h", marker_color=colours,
        text=[f"~{v:,.1f} %" for v in shown["consumption_pct"]], textposition="outside",
        hovertemplate="%{y}: ~%{x:,.1f} % of the fund (estimate)<extra></extra>"))
    fig.add_vline(x=100, line_dash="dash", line_color="#c62828",
                  annotation_text="100 %: fund gone, ADL likely", annotation_position="top")
    fig.update_layout(height=max(260, 36 * len(shown) + 80), margin={"l": 10, "r": 10, "t": 40, "b": 10},
                      xaxis_title=f"estimated consumption of the fund by a {move} % move (%)", showlegend=False)
    return fig


def body(state: PageState) -> None:
    cfg = stress_config()
    controls = _controls(cfg)
    st.caption(ESTIMATE)
    inputs = _inputs(state.ctx.db, state.venues, state.now, cfg.model_dump_json())
    fill = cfg.fill_model(controls.fill_degradation)
    frame = stress_frame(inputs, float(controls.move_pct), controls.direction, fill, controls.scope)
    if frame.empty:
        st.info("No open interest or fund data for these venues yet: nothing to stress.")
        return
    per_venue = venue_consumption(frame)
    st.subheader(f"A {controls.move_pct} % move {controls.direction}: estimated consumption per venue",
                 anchor=False)
    if per_venue["consumption_pct"].notna().any():
        st.plotly_chart(_chart(per_venue, state, controls.move_pct), key="stress-chart")
    likely = [state.name(str(v)) for v in per_venue.loc[per_venue["adl_likely"].eq(True), "venue"]]
    if likely:
        st.warning("ADL likely (estimate): " + ", ".join(likely), icon=":material/warning:")
    no_fund = sorted({state.name(str(v)) for v in frame.loc[frame["fund_usd"].isna(), "venue"]})
    if no_fund:
        st.caption("No published fund (liquidations and deficit only): " + ", ".join(no_fund))
    no_oi = sorted({state.name(str(v)) for v in frame.loc[frame["oi_usd"] <= 0, "venue"]})
    if no_oi:
        st.caption("No open interest collected in the last day, consumption unknown: " + ", ".join(no_oi))

    st.subheader("Per pool", anchor=False)
    table = frame[list(TABLE_COLUMNS)].rename(columns=TABLE_COLUMNS)
    table.insert(0, "basis", "estimate")
    st.dataframe(table, hide_index=True, column_config={
        c: st.column_config.NumberColumn(c, format="%.2f") for c in table.columns if c.endswith("%")
        or c.endswith("(est.)") and "ADL" not in c})
    download(table, f"stress-{controls.move_pct}pct-{controls.direction}", "stress-table")
    st.caption(f"Calibration: each venue's leverage distribution is fitted to its recorded daily liquidations "
               f"(complete feeds, last {cfg.calibration_days} days) where there are at least "
               f"{cfg.min_calibration_days} asset-days, else the documented default. Historical columns: daily "
               f"fund changes over the last {cfg.history_days} days; 'days covered' = fund ÷ the 99th-percentile "
               "daily loss.")


run_page("Stress test", body, caption="Would the fund survive the next crash? Estimates.")
