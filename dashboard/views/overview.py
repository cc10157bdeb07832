"""Overview: one card per venue (fund, changes, drawdowns, coverage, liquidations, data age, health),
active signals and firing alerts. Cross-venue numbers (median, z) always use every venue with data; the
venue filter only chooses which cards are shown."""

from __future__ import annotations

from datetime import timedelta

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from dashboard import common, data, model
from metrics.divergence import DivergenceRule
from metrics.formatting import DASH, fmt_age, fmt_pct, fmt_usd
from metrics.health import HealthRules

RULES = HealthRules()
DIVERGENCE = DivergenceRule()


def _delta(value: float | None, label: str) -> str | None:
    if value is None or pd.isna(value):
        return None
    return f"{value:+.2f} % {label}"


def _liq_text(row: pd.Series, has_table: bool) -> str:
    if not has_table:
        return DASH
    parts = []
    for side in ("long", "short"):
        usd = row.get(f"liq_{side}_usd")
        count = int(row.get(f"liq_{side}_count") or 0)
        parts.append(fmt_usd(usd) if usd is not None and not pd.isna(usd) else str(count))
    return " / ".join(parts)


def _card(row: pd.Series, health: model.HealthResult, has_liq: bool) -> None:
    with st.container(border=True):
        st.subheader(str(row["name"]), anchor=False)
        reasons = "; ".join(health.reasons) if health.reasons else "no rule triggered"
        with st.container(horizontal=True, gap="medium"):
            st.metric("Fund (USD)", fmt_usd(row["fund_usd"]), delta=_delta(row["change_24h_pct"], "24 h"),
                      help="Sum of the venue's pools' newest balances in USD (nearest collected price).",
                      width="content")
            st.metric("Health", health.state, help=f"{RULES.describe()}\n\nNow: {reasons}.", width="content",
                      icon=common.HEALTH_ICONS[health.state])
        st.caption(f"Native: {row['native']}")
        with st.container(horizontal=True, gap="medium"):
            st.metric("Change 7 d", fmt_pct(row["change_7d_pct"], signed=True), width="content",
                      help=model.change_note(row, "7d"))
            st.metric("From 8 h max", fmt_pct(row["drawdown_8h_pct"]), width="content",
                      help="Drawdown from the highest total in the last 8 h (— when the venue publishes less "
                           "often than that).")
            st.metric("From 30 d max", fmt_pct(row["drawdown_30d_pct"]), width="content")
            st.metric("Coverage", fmt_pct(row["coverage_pct"], 2), help="Fund ÷ open interest (USD), in percent.",
                      width="content")
            st.metric("Liq. 24 h long / short", _liq_text(row, has_liq), width="content",
                      help="Liquidations in the last 24 h, long / short positions (USD where known, else count).")
            st.metric("Data age", fmt_age(row["age_s"]), width="content",
                      help=f"Age of the newest fund value; expected at most {fmt_age(row['expected_age_s'])}. "
                           f"State: {row['freshness']}.")


def body(state: common.PageState) -> None:
    db, venues = state.ctx.db, state.known
    now = state.now
    asof = data.fund_asof(db, venues, tuple(model.CHANGE_OFFSETS_S.values()))
    native = data.fund_native_latest(db, venues)
    s30 = data.fund_series(db, venues, data.floor_hour(now), 3_600, 720)
    s8 = data.fund_series(db, venues, now, 300, 96)
    oi = data.oi_latest(db, venues, now)
    liq = data.liquidations_summary(db, venues, now - timedelta(days=1))
    alerts = data.firing_alerts(db)
    summary = model.venue_summary(list(venues), state.info, asof, native, s30, s8, oi, liq, now,
                                  state.ctx.intervals)
    div = model.divergence_table(summary, DIVERGENCE)
    alerts_by_venue: dict[str, int] = {}
    if alerts is not None and "venue" in alerts.columns:
        alerts_by_venue = alerts["venue"].astype(str).value_counts().to_dict()
    health = model.venue_health(summary, div, alerts_by_venue, RULES)
    shown = summary[summary["venue"].isin(state.venues)].reset_index(drop=True)

    columns = st.columns(2)
    for i, row in shown.iterrows():
        with columns[int(i) % 2]:
            _card(row, health[str(row["venue"])], liq is not None)

    st.subheader("Active signals", anchor=False)
    sig = model.signals(summary, div, RULES)
    sig = sig[sig["venue"].isin(state.venues)].reset_index(drop=True)
    if sig.empty:
        st.success("No divergence or drawdown signal is active.", icon=":material/check_circle:")
    else:
        for text in sig["explanation"].head(6):
            st.warning(text, icon=":material/warning:")
        st.dataframe(sig, hide_index=True, column_config={
            "value_pct": st.column_config.NumberColumn("value (%)", format="%.2f"),
            "z": st.column_config.NumberColumn("robust z", format="%.1f")})
        common.download(sig, "signals", "overview-signals")
    st.caption(f"Divergence rule: {DIVERGENCE.describe()}.")

    st.subheader("Firing alerts", anchor=False)
    if alerts is None:
        st.caption(f"{DASH} (this database has no alerts table yet)")
    elif alerts.empty:
        st.success("No alert is firing.", icon=":material/notifications_off:")
    else:
        st.dataframe(alerts, hide_index=True)
        common.download(alerts, "firing-alerts", "overview-alerts")

    st.subheader("Funds over the last 30 days, indexed to 100", anchor=False)
    chart = s30[s30["venue"].isin(state.venues)].copy()
    fig = go.Figure()
    for venue, group in chart.groupby("venue"):
        base = group["fund_usd"].dropna()
        if base.empty or base.iloc[0] <= 0:
            continue
        fig.add_trace(go.Scatter(x=group["ts"], y=group["fund_usd"] / base.iloc[0] * 100, mode="lines",
                                 name=state.name(str(venue)), line={"color": state.info[str(venue)].colour}))
    st.plotly_chart(common.style(fig, 320, "index (30 d ago = 100)"), key="overview-chart")
    common.download(chart, "funds-30d", "overview-chart")

    with st.expander("All venues as a table"):
        table = shown.assign(health=[health[str(v)].state for v in shown["venue"]])
        st.dataframe(table, hide_index=True)
        common.download(table, "overview", "overview-table")


common.run_page("Overview", body, caption="Insurance funds (and their proxies) across venues, now.")
