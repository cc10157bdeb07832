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
from alerts.parameters import RULES, SEVERITIES
from dashboard import data
from dashboard.context import cache_ttl_s
from dashboard.page import PageState, explain_range, run_page
from dashboard.text import download, fmt_text, fmt_ts, md_escape, state_badge
from storage import alert_store

TTL_S = cache_ttl_s()
SEVERITY_LABELS = {"critical": "critical", "warning": "warning", "info": "info"}
STATUS_LABELS = {"firing": "firing", "resolved": "resolved"}
TABLE_COLUMNS = ["status_label", "severity_label", "rule", "name", "message", "fired_at", "last_seen_at",
                 "resolved_at", "notified", "max_severity", "resolved_reason", "venue", "alert_id"]


@st.cache_data(ttl=TTL_S, show_spinner=False)
def load_alerts(db: str, since: datetime | None) -> pd.DataFrame:
    return alert_store.alerts_frame(db, since=since)


@st.cache_data(ttl=TTL_S, show_spinner=False)
def load_deliveries(db: str) -> pd.DataFrame:
    return alert_store.deliveries_frame(db, limit=500)


def present(frame: pd.DataFrame, names: dict[str, str]) -> pd.DataFrame:
    """Display columns: plain words for status/severity, the venue's display name, times as text with '—'
    for "not yet" (never None); the data stays plain text."""
    out = frame.copy()
    out["status_label"] = out["status"].map(STATUS_LABELS).fillna(out["status"])
    out["severity_label"] = out["severity"].map(SEVERITY_LABELS).fillna(out["severity"])
    out["name"] = [names.get(v, v) for v in out["venue"]]
    for column in ("fired_at", "last_seen_at", "resolved_at"):
        if column in out.columns:
            out[column] = [fmt_ts(v) for v in out[column]]
    if "resolved_reason" in out.columns:
        out["resolved_reason"] = [fmt_text(v) for v in out["resolved_reason"]]
    return out[[c for c in TABLE_COLUMNS if c in out.columns]].reset_index(drop=True)


SEVERITY_RANK = {"critical": 0, "warning": 1, "info": 2}
SEVERITY_BADGES = {"critical": ":red-background[**critical**]", "warning": ":orange-background[**warning**]",
                   "info": ":blue-background[info]"}  # Markdown badges in the wrapped firing table


def worst_first(frame: pd.DataFrame) -> pd.DataFrame:
    """Firing before resolved, then critical before warning before info, then newest first."""
    if frame.empty:
        return frame
    order = frame.assign(_firing=(frame["status"] != "firing").astype(int),
                         _sev=frame["severity"].map(SEVERITY_RANK).fillna(9))
    return order.sort_values(["_firing", "_sev", "fired_at"], ascending=[True, True, False]).drop(
        columns=["_firing", "_sev"])


def firing_table(frame: pd.DataFrame, names: dict[str, str], states: dict[str, str] | None = None
                 ) -> pd.DataFrame:
    """The firing alerts as a wrapped table: every cell escaped for Markdown (``st.table`` renders it);
    ``states``: the venue's assessment now (the state the Overview shows)."""
    rows = []
    states = states or {}
    for r in worst_first(frame).itertuples():
        rows.append({"severity": SEVERITY_BADGES.get(str(r.severity), md_escape(r.severity)),
                     "venue state": state_badge(states[str(r.venue)]) if str(r.venue) in states else "—",
                     "venue": md_escape(names.get(str(r.venue), str(r.venue))),
                     "rule": md_escape(r.rule), "what happened": md_escape(r.message),
                     "since": fmt_ts(r.fired_at), "last seen": fmt_ts(r.last_seen_at)})
    return pd.DataFrame(rows, columns=["severity", "venue", "venue state", "rule", "what happened", "since",
                                       "last seen"])


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
    "fired_at": st.column_config.TextColumn("fired"),
    "last_seen_at": st.column_config.TextColumn("last seen"),
    "resolved_at": st.column_config.TextColumn("resolved"),
    "resolved_reason": st.column_config.TextColumn("why resolved"),
    "max_severity": st.column_config.TextColumn("worst severity"),
    "notified": st.column_config.CheckboxColumn("notified", help="False = kept quiet by the cooldown so far"),
    "venue": None, "alert_id": None,
}


def body(state: PageState) -> None:
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
        states = {a.venue: a.state for a in data.assessments(db, state.ctx.config, state.now) if a.is_venue} \
            if state.has_data else {}
        st.table(firing_table(shown_firing, names, states), border="horizontal")

    st.subheader("History", anchor=False)
    st.caption(f"Alert episodes fired or resolved in {explain_range(state)}, plus every firing one.")
    left, mid, right = st.columns(3)
    rules = left.multiselect("Rule", [*RULES, INVENTORY_LARGE], key="alerts_rules", placeholder="All rules")
    venue_choices = sorted(set(frame["venue"]) | set(state.venues)) if not frame.empty else list(state.venues)
    venues = mid.multiselect("Venue", venue_choices, key="alerts_venues", format_func=lambda v: names.get(v, v),
                             placeholder="Selected venues (sidebar)")
    severities = right.multiselect("Severity", list(SEVERITIES), key="alerts_severities",
                                   placeholder="All severities")
    history = worst_first(filter_alerts(frame, rules, venues or list(state.venues), severities))
    if history.empty:
        st.info("No alert matches." if not frame.empty else "No alert has fired in this range.")
    else:
        table = present(history, names)
        st.dataframe(table, hide_index=True, column_config=COLUMN_CONFIG)
        download(history.drop(columns=["first_message"]), "alerts", "alerts-history")
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
            download(deliveries, "alert-deliveries", "alerts-deliveries")


def _label(frame: pd.DataFrame, alert_id: str, names: dict[str, str]) -> str:
    row = frame[frame["alert_id"] == alert_id].iloc[0]
    return f"{row['fired_at']:%Y-%m-%d %H:%M} · {row['rule']} · {names.get(row['venue'], row['venue'])}"


def render() -> None:
    run_page("Alerts", body, caption="Rules over the collected data: fund drawdowns, coverage, "
             "divergence, cascades, ADL, blind spots.", needs_data=False)


if __name__ == "__main__":  # streamlit runs page scripts as __main__
    render()
