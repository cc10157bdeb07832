"""Backstop dashboard entry point.

    streamlit run dashboard/app.py --server.address 127.0.0.1 --server.port 8501 -- --db data/backstop.duckdb

Reads ``--db``/``--config`` after ``--`` (else BACKSTOP_DB, the settings file, the default path);
BACKSTOP_SIMULATED=1 (or ``--simulated``) shows a "SIMULATED DATA" banner on every page. The sidebar's
time range and venue filter live in the URL (``?range=7d&venues=okx,bybit``).
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `streamlit run` puts only dashboard/ on the path
    sys.path.insert(0, str(ROOT))

import streamlit as st  # noqa: E402

from dashboard import data  # noqa: E402
from dashboard.context import AppContext, load_context  # noqa: E402
from dashboard.model import dataset_states, states_for_blindness  # noqa: E402
from dashboard.page import (  # noqa: E402
    BACKFILL_KEY,
    STATE_KEY,
    PageState,
    range_start,
    run_page,
    show_notice,
    venue_catalog,
)
from dashboard.params import DEFAULT_RANGE, RANGE_LABELS, RANGES, Controls, parse_params, to_params  # noqa: E402
from dashboard.status import backfill_progress  # noqa: E402
from dashboard.views import liquidations as liquidations_view  # noqa: E402
from metrics.health import blindness  # noqa: E402
from storage.analytics import DatabaseBusy  # noqa: E402

VIEWS = Path(__file__).with_name("views")
log = logging.getLogger("backstop.dashboard")


def _pages(ctx: AppContext) -> list[st.Page]:
    pages = [
        st.Page(VIEWS / "overview.py", title="Overview", icon=":material/dashboard:", url_path="overview",
                default=True),
        st.Page(VIEWS / "funds.py", title="Funds", icon=":material/savings:", url_path="funds"),
        st.Page(VIEWS / "coverage.py", title="Coverage", icon=":material/shield:", url_path="coverage"),
        st.Page(VIEWS / "divergence.py", title="Divergence", icon=":material/call_split:", url_path="divergence"),
        st.Page(VIEWS / "stress.py", title="Stress test", icon=":material/thunderstorm:", url_path="stress"),
        st.Page(VIEWS / "health.py", title="Collector health", icon=":material/monitor_heart:",
                url_path="health"),
    ]
    pages.insert(1, st.Page(VIEWS / "alerts.py", title="Alerts", icon=":material/notifications:", url_path="alerts"))

    def liquidations() -> None:
        run_page("Liquidations", liquidations_view.page_body,
                 caption="Liquidated positions per venue; the sidebar sets the range and venues.")

    pages.insert(2, st.Page(liquidations, title="Liquidations", icon=":material/waterfall_chart:",
                            url_path="liquidations"))
    return pages


def _alias_overview() -> None:
    """``/overview`` opens the Overview: Streamlit serves the default page only at ``/`` and would answer
    "Page not found" to its own url_path, so a request for it is pointed at the default page."""
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    run = get_script_run_ctx()
    if run is not None and run.pages_manager.intended_page_name == "overview" \
            and not run.pages_manager.intended_page_script_hash:
        run.pages_manager.set_script_intent("", "")


def _sync_url() -> None:
    known = st.session_state.get("ctl_known", [])
    controls = Controls(st.session_state.get("ctl_range", DEFAULT_RANGE), tuple(st.session_state.get("ctl_venues", [])))
    wanted = to_params(controls, known)
    for key, value in wanted.items():
        if st.query_params.get(key) != value:
            st.query_params[key] = value
    if "venues" not in wanted and "venues" in st.query_params:
        del st.query_params["venues"]


def _controls(known: list[str], names: dict[str, str]) -> Controls:
    """Sidebar controls, initialised from the URL on a session's first run; the URL follows them."""
    st.session_state["ctl_known"] = known
    url = (st.query_params.get("range"), st.query_params.get("venues"))
    if "ctl_range" not in st.session_state or (any(url) and url != st.session_state.get("ctl_url", url)):
        # a new session, or a link (a signal's "Funds"/"Divergence") / edited URL: the URL wins
        parsed = parse_params(st.query_params.to_dict(), known)
        st.session_state["ctl_range"] = parsed.range_key
        st.session_state["ctl_venues"] = list(parsed.venues)
        st.session_state["ctl_notices"] = list(parsed.notices)
    st.session_state["ctl_venues"] = [v for v in st.session_state.get("ctl_venues", []) if v in known]
    with st.sidebar:
        st.selectbox("Time range", list(RANGES), key="ctl_range", format_func=lambda k: RANGE_LABELS[k],
                     on_change=_sync_url)
        st.multiselect("Venues", known, key="ctl_venues", format_func=lambda v: names.get(v, v),
                       placeholder="All venues", on_change=_sync_url)
    _sync_url()
    st.session_state["ctl_url"] = (st.query_params.get("range"), st.query_params.get("venues"))
    notices = st.session_state.pop("ctl_notices", [])
    for notice in notices:
        show_notice(notice.message, notice.rejected)
    return Controls(st.session_state["ctl_range"], tuple(st.session_state["ctl_venues"]), tuple(notices))


def _blind_banner(state: PageState) -> None:
    health = data.collector_health(state.ctx.db, state.now)
    frame = dataset_states(health, state.info, state.now, state.ctx.intervals)
    report = blindness(states_for_blindness(frame, state.ctx.simulated),
                      {v: state.name(v) for v in state.known})
    if report.level == "blind":
        st.error(report.message, icon=":material/visibility_off:")
    elif report.level == "partial":
        st.warning(report.message, icon=":material/visibility_off:")


def _backfill_banner(state: PageState) -> None:
    runs, newest = data.backfill_state(state.ctx.db, state.now)
    progress = backfill_progress(runs, state.info, state.known, newest, state.now)
    st.session_state[BACKFILL_KEY] = progress.pending if progress.active else ()
    if progress.active:
        st.info(progress.text({v: state.name(v) for v in state.known}), icon=":material/history:")


def _state_without_data(ctx: AppContext) -> PageState:
    """No fund or OI rows: the venues the collector tried (its run rows), for Collector health and Alerts."""
    now = data.quantised_now()
    health = data.collector_health(ctx.db, now) if Path(ctx.db).exists() else None
    known = sorted(set(health["venue"].astype(str))) if health is not None and not health.empty else []
    info = venue_catalog(known)
    return PageState(ctx, Controls(), tuple(known), tuple(known), info, now,
                     now - RANGES[DEFAULT_RANGE], False)  # type: ignore[operator]


def main() -> None:
    ctx = load_context(sys.argv[1:], os.environ)
    st.set_page_config(page_title="Backstop", page_icon=":material/shield:", layout="wide")
    _alias_overview()
    nav = st.navigation(_pages(ctx))
    if ctx.simulated:
        st.warning("SIMULATED DATA — these numbers come from Backstop's built-in simulator, not from exchanges.",
                   icon=":material/science:")
    if ctx.notice:
        show_notice("Configuration problem: using the defaults.", (ctx.notice,))
    overview = data.database_overview(ctx.db)
    has_data = bool(not overview.empty
                    and overview[overview["dataset"].isin(["funds", "open_interest"])]["has_rows"].any())
    state = None
    try:
        if has_data:
            known = data.known_venues(ctx.db)
            info = venue_catalog(known)
            controls = _controls(known, {v: info[v].display_name for v in known})
            now = data.quantised_now()
            first_ts, _ = data.fund_span(ctx.db)
            state = PageState(ctx, controls, tuple(known), tuple(controls.selected(known)), info, now,
                              range_start(controls, now, first_ts), True)
            _blind_banner(state)
            _backfill_banner(state)
        else:
            state = _state_without_data(ctx)
    except DatabaseBusy as exc:
        st.error(f"The database is busy (locked by another process): {exc}. Retrying on the next refresh.")
        state = None
    st.session_state[STATE_KEY] = state
    st.session_state["backstop_ctx"] = ctx
    nav.run()


main()
