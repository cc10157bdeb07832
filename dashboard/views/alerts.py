"""Alerts: what is firing now, the history of alert episodes (filter by rule and venue), the delivery
attempts, CSV export.

Alert sentences can hold exchange text (pool ids, symbols): they are shown only through
``st.dataframe``/``st.text``/``st.json`` (escaped), never as markdown or HTML.
"""

from __future__ import annotations

from datetime import datetime

import pandas as pd
import streamlit as st

from alerts.inventory import INVENTORY_LARGE
from alerts.rules import RULES, SEVERITIES
from dashboard import common
from dashboard.context import cache_ttl_s
from storage import alerts as alert_store

TTL_S = cache_ttl_s()
SEVERITY_ICONS = {"critical": "🔴 critical", "warning": "🟠 warning", "info": "🔵 info"}
STATUS_ICONS = {"firing": "🔔 firing", "resolved": "✅ resolved"}
TABLE_COLUMNS = ["status_label", "severity_label", "rule", "name", "message", "fired_at", "last_seen_at",
                 "resolved_at", "notified", "max_severity", "resolved_reason", "venue", "alert_id"]


@st.cache_data(ttl=TTL_S, show_spinner=False)
def load_alerts(db: str, since: datetime | None) -> pd.DataFrame:
    return alert_store.alerts_frame(db, since=since)


@st.cache_data(ttl=TTL_S, show_spinner=False)
def load_deliveries(db: str) -> pd.DataFrame:
    return alert_store.deliveries_frame(db, limit=500)


def present(frame: pd.DataFrame, names: dict[str, str]) -> pd.DataFrame:
    """Display columns: icons for status/severity, the venue's display name (data stays plain text)."""
    out = frame.copy()
    out["status_label"] = out["status"].map(STATUS_ICONS).fillna(out["status"])
    out["severity_label"] = out["severity"].map(SEVERITY_ICONS).fillna(out["severity"])
    out["name"] = [names.get(v, v) for v in out["venue"]]
    return out[[c for c in TABLE_COLUMNS if c in out.columns]].reset_index(drop=True)


def filter_alerts(frame: pd.DataFrame, rules: list[str], venues: list[str], severities: list[str]) -> pd.DataFrame:
    """Rows matching every non-empty filter (empty filter = everything)."""
    mask = pd.Series(True, index=frame.index)
    if rules:
        mask &= frame["rule"].isin(rules)
    if venues:
        mask &= frame["venue"].isin(venues)
    if severities:
        mask &= frame["severity"].isin(severities) | frame["max_severity"].isin(severities)
    return frame[mask]


COLUMN_CONFIG = {
    "status_label": st.column_config.TextColumn("status"),
    "severity_label": st.column_config.TextColumn("severity"),
    "name": st.column_config.TextColumn("venue"),
    "message": st.column_config.TextColumn("what happened", width="large"),
    "fired_at": st.column_config.DatetimeColumn("fired (UTC)", format="YYYY-MM-DD HH:mm"),
    "last_seen_at": st.column_config.DatetimeColumn("last seen (UTC)", format="YYYY-MM-DD HH:mm"),
    "resolved_at": st.column_config.DatetimeColumn("resolved (UTC)", format="YYYY-MM-DD HH:mm"),
    "notified": st.column_config.CheckboxColumn("notified", help="False = kept quiet by the cooldown so far"),
    "venue": None, "alert_id": None,
}


def body(state: common.PageState) -> None:
    db = state.ctx.db
    frame = load_alerts(db, state.range_start)
    names = {v: state.name(v) for v in set(frame["venue"]) | set(state.known)} if not frame.empty else {}
    firing = frame[frame["status"] == "firing"]
    counts = firing["severity"].value_counts()
    a, b, c = st.columns(3)
    a.metric("Firing", len(firing))
    b.metric("Critical", int(counts.get("critical", 0)))
    c.metric("Warning", int(counts.get("warning", 0)))

    st.subheader("Firing now", anchor=False)
    shown_firing = firing[firing["venue"].isin(state.venues)] if state.venues else firing
    if shown_firing.empty:
        st.success("No alert is firing." if firing.empty else "No alert is firing for the selected venues.",
                   icon=":material/notifications_off:")
    else:
        st.dataframe(present(shown_firing, names), hide_index=True, column_config=COLUMN_CONFIG)

    st.subheader("History", anchor=False)
    st.caption(f"Alert episodes fired or resolved in {common.explain_range(state)}, plus every firing one.")
    left, mid, right = st.columns(3)
    rules = left.multiselect("Rule", [*RULES, INVENTORY_LARGE], key="alerts_rules", placeholder="All rules")
    venue_choices = sorted(set(frame["venue"]) | set(state.venues)) if not frame.empty else list(state.venues)
    venues = mid.multiselect("Venue", venue_choices, key="alerts_venues", format_func=lambda v: names.get(v, v),
                             placeholder="Selected venues (sidebar)")
    severities = right.multiselect("Severity", list(SEVERITIES), key="alerts_severities",
                                   placeholder="All severities")
    history = filter_alerts(frame, rules, venues or list(state.venues), severities)
    if history.empty:
        st.info("No alert matches." if not frame.empty else "No alert has fired in this range.")
    else:
        table = present(history, names)
        st.dataframe(table, hide_index=True, column_config=COLUMN_CONFIG)
        common.download(history.drop(columns=["first_message"]), "alerts", "alerts-history")
        pick = st.selectbox("Details of", list(history["alert_id"]), key="alerts_detail",
                            format_func=lambda i: _label(history, i, names))
        if pick:
            row = history[history["alert_id"] == pick].iloc[0]
            st.text(f"First: {row['first_message']}\nLatest: {row['message']}\nKey: {row['dedup_key']}")
            st.json(row["metrics"], expanded=False)

    with st.expander("Delivery attempts", icon=":material/send:"):
        deliveries = load_deliveries(db)
        if deliveries.empty:
            st.caption("No notification has been sent (targets: [alerts] targets in backstop.toml).")
        else:
            st.caption("Targets are shown by scheme only; their URLs hold secrets.")
            st.dataframe(deliveries, hide_index=True, column_config={
                "attempted_at": st.column_config.DatetimeColumn("attempted (UTC)", format="YYYY-MM-DD HH:mm:ss"),
                "error": st.column_config.TextColumn("error", width="large")})
            common.download(deliveries, "alert-deliveries", "alerts-deliveries")


def _label(frame: pd.DataFrame, alert_id: str, names: dict[str, str]) -> str:
    row = frame[frame["alert_id"] == alert_id].iloc[0]
    return f"{row['fired_at']:%Y-%m-%d %H:%M} · {row['rule']} · {names.get(row['venue'], row['venue'])}"


def render() -> None:
    common.run_page("Alerts", body, caption="Rules over the collected data: fund drawdowns, coverage, "
                    "divergence, cascades, ADL, blind spots.")


if __name__ == "__main__":  # streamlit runs page scripts as __main__
    render()
