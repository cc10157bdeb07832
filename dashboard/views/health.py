"""Collector health: per venue × dataset, the newest data vs the expected cadence, last success, last
error (class and message, shown as plain text), 24 h success rate; a banner when Backstop is blind.

The headline agrees with the counts below it: "every venue delivered" only when nothing is late or stale.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import data, model
from dashboard.page import PageState, run_page
from dashboard.text import download, fmt_text, fmt_ts
from metrics.formatting import DASH, fmt_age, fmt_bytes
from metrics.health import FRESH, LATE, STALE, blindness
from storage.retention import database_size

STATE_ORDER = {STALE: 0, LATE: 1, FRESH: 2}


def body(state: PageState) -> None:
    health = data.collector_health(state.ctx.db, state.now)
    frame = model.dataset_states(health, state.info, state.now, state.ctx.intervals)
    report = blindness(model.states_for_blindness(frame, state.ctx.simulated),
                      {v: state.name(v) for v in state.known})
    if frame.empty:
        st.info("No collection run has been recorded yet.")
        return
    shown = frame[frame["venue"].isin(state.venues)].copy()
    counts = shown["freshness"].value_counts()
    late, stale = int(counts.get(LATE, 0)), int(counts.get(STALE, 0))
    if report.level == "ok" and not late and not stale:  # otherwise the banner on top already says who is dark
        st.success(report.message, icon=":material/visibility:")
    elif report.level == "ok":
        st.warning(f"{stale} dataset(s) stale and {late} late (their newest value is older than expected); "
                   "the last polls succeeded, so the venue publishes less often than expected or not at all "
                   "right now. Details below, worst first.", icon=":material/schedule:")
    a, b, c, d = st.columns(4)
    a.metric("Fresh", int(counts.get(FRESH, 0)))
    b.metric("Late", late)
    c.metric("Stale", stale)
    size = database_size(state.ctx.db)  # file stat + one small read; `backstop compact` reclaims space
    if size is not None:
        growth = "not measured yet" if size.growth_bytes_per_day is None else \
            f"{fmt_bytes(size.growth_bytes_per_day)}/day over {size.measured_hours:.0f} h"
        d.metric("Database size", fmt_bytes(size.bytes), help=f"growth: {growth}")
    shown["state"] = shown["freshness"]
    judged = {a.venue: a.label for a in data.assessments(state.ctx.db, state.ctx.config, state.now) if a.is_venue} \
        if state.has_data else {}
    shown["venue_state"] = [judged.get(v, DASH) for v in shown["venue"]]
    shown["data_age"] = [fmt_age(v) for v in shown["age_s"]]
    shown["newest"] = [fmt_ts(v) for v in shown["newest_ts"]]
    shown["last_ok"] = [fmt_ts(v) for v in shown["last_success"]]
    shown["last_error"] = [fmt_ts(v) for v in shown["last_error_at"]]
    shown["error"] = [fmt_text(v) for v in shown["last_error_class"]]
    shown["last_error_message"] = [fmt_text(v) for v in shown["last_error_message"]]
    shown["runs_24h"] = [fmt_text(None if pd.isna(v) else int(v)) for v in shown["runs_24h"]]
    shown["last_status"] = [fmt_text(v) for v in shown["last_status"]]
    shown = shown.sort_values(["freshness", "name", "dataset"], key=lambda s: s.map(STATE_ORDER)
                              if s.name == "freshness" else s)
    columns = ["name", "venue_state", "dataset", "state", "data_age", "expected", "newest", "last_ok", "last_status",
               "success_rate_24h", "runs_24h", "last_error", "error", "last_error_message",
               "venue", "freshness"]
    table = shown[columns].reset_index(drop=True)
    st.dataframe(table, hide_index=True, height=min(36 * (len(table) + 1) + 4, 1600), column_config={
        "name": st.column_config.TextColumn("venue"),
        "venue_state": st.column_config.TextColumn("venue assessment", help="The venue's state as the alert "
                                                   "rules and the Overview judge it (metrics.assessment)."),
        "state": st.column_config.TextColumn("state", help="fresh / late (1.5× expected) / stale (3×)"),
        "data_age": st.column_config.TextColumn("data age"),
        "newest": st.column_config.TextColumn("newest data"),
        "last_ok": st.column_config.TextColumn("last success"),
        "last_status": st.column_config.TextColumn("last poll"),
        "success_rate_24h": st.column_config.ProgressColumn("success 24 h", min_value=0.0, max_value=1.0,
                                                            format="percent", color="green"),
        "runs_24h": st.column_config.TextColumn("polls 24 h"),
        "last_error": st.column_config.TextColumn("last error"),
        "error": st.column_config.TextColumn("error class"),
        "last_error_message": st.column_config.TextColumn("last error message", width="large"),
        "venue": None, "freshness": None})
    st.caption("Data age = now − newest stored value (venue timestamp). Expected = the venue's publishing "
               "cadence or our poll interval, whichever is longer; late after 1.5×, stale after 3×.")
    download(table, "collector-health", "health-table")


run_page("Collector health", body, caption="Is Backstop seeing every venue?", needs_data=False)
