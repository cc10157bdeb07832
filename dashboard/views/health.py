"""Collector health: per venue × dataset, the newest data vs the expected cadence, last success, last
error (class and message, shown as plain text), 24 h success rate; a banner when Backstop is blind."""

from __future__ import annotations

import streamlit as st

from dashboard import common, data, model
from metrics.formatting import fmt_age
from metrics.health import FRESH, LATE, STALE, blindness


def body(state: common.PageState) -> None:
    health = data.collector_health(state.ctx.db, state.now)
    frame = model.dataset_states(health, state.info, state.now, state.ctx.intervals)
    report = blindness(model.states_for_blindness(frame, state.ctx.simulated),
                      {v: state.name(v) for v in state.known})
    if report.level == "ok":  # otherwise the banner at the top of every page already says who is dark
        st.success(report.message, icon=":material/visibility:")
    if frame.empty:
        st.info("No collection run has been recorded yet.")
        return
    shown = frame[frame["venue"].isin(state.venues)].copy()
    shown["state"] = shown["freshness"]
    shown["data_age"] = [fmt_age(a) for a in shown["age_s"]]
    counts = shown["freshness"].value_counts()
    a, b, c = st.columns(3)
    a.metric("Fresh", int(counts.get(FRESH, 0)))
    b.metric("Late", int(counts.get(LATE, 0)))
    c.metric("Stale", int(counts.get(STALE, 0)))
    columns = ["name", "dataset", "state", "data_age", "expected", "newest_ts", "last_success", "last_status",
               "success_rate_24h", "runs_24h", "last_error_at", "last_error_class", "last_error_message",
               "age_s", "expected_s", "venue", "freshness"]
    table = shown[[c for c in columns if c in shown.columns]].reset_index(drop=True)
    st.dataframe(table, hide_index=True, column_config={
        "success_rate_24h": st.column_config.ProgressColumn("success 24 h", min_value=0.0, max_value=1.0,
                                                            format="percent"),
        "newest_ts": st.column_config.DatetimeColumn("newest data (UTC)", format="YYYY-MM-DD HH:mm"),
        "last_success": st.column_config.DatetimeColumn("last success (UTC)", format="YYYY-MM-DD HH:mm"),
        "last_error_at": st.column_config.DatetimeColumn("last error (UTC)", format="YYYY-MM-DD HH:mm"),
        "last_error_message": st.column_config.TextColumn("last error message", width="large"),
        "state": st.column_config.TextColumn("state", help="fresh / late (1.5× expected) / stale (3×)"),
        "age_s": None, "expected_s": None, "venue": None, "freshness": None})
    st.caption("Data age = now − newest stored value (venue timestamp). Expected = the venue's publishing "
               "cadence or our poll interval, whichever is longer; late after 1.5×, stale after 3×.")
    common.download(table, "collector-health", "health-table")


common.run_page("Collector health", body, caption="Is Backstop seeing every venue?", needs_data=False)
