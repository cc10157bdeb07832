"""The page frame every page shares: the per-run page state (range, venues, "now"), the no-data
diagnosis, notices, the auto-refreshing fragment and ``run_page``.

Text that came from an exchange or a URL is shown here only through ``st.text``/``st.dataframe``
(escaped), never through markdown with HTML enabled (``dashboard.text``).
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import pandas as pd
import streamlit as st

from dashboard.context import AppContext
from dashboard.params import RANGES, Controls
from records.venue_catalog import VenueInfo, catalog
from storage.analytics import DatabaseBusy

STATE_KEY = "backstop_page_state"
BACKFILL_KEY = "backstop_backfilling"


@dataclass(frozen=True)
class PageState:
    ctx: AppContext
    controls: Controls
    known: tuple[str, ...]  # venues with data
    venues: tuple[str, ...]  # selected
    info: Mapping[str, VenueInfo]
    now: datetime  # rounded down to the cache TTL (query argument)
    range_start: datetime
    has_data: bool

    @property
    def range_td(self) -> timedelta:
        return self.now - self.range_start

    def name(self, venue: str) -> str:
        return self.info[venue].display_name if venue in self.info else venue

    def colours(self) -> dict[str, str]:
        """Display name -> colour (charts label venues by display name)."""
        return {self.name(v): self.info[v].colour for v in self.known if v in self.info}


def range_start(controls: Controls, now: datetime, first_ts: datetime | None) -> datetime:
    span = RANGES[controls.range_key]
    if span is None:
        return first_ts if first_ts is not None and first_ts < now else now - timedelta(days=30)
    return now - span


def page_state() -> PageState | None:
    """This run's state; on an auto-refresh (fragment rerun) "now" moves on, the range keeps its length."""
    from dashboard.data import quantised_now

    state: PageState | None = st.session_state.get(STATE_KEY)
    if state is None:
        return None
    now = quantised_now()
    if now == state.now:
        return state
    start = state.range_start if RANGES[state.controls.range_key] is None else now - state.range_td
    return dataclasses.replace(state, now=now, range_start=start)


def venue_catalog(keys: Sequence[str]) -> dict[str, VenueInfo]:
    return catalog(list(keys))


def backfilling() -> tuple[str, ...]:
    """Venues whose history is still being backfilled: their change metrics are held back."""
    return tuple(st.session_state.get(BACKFILL_KEY, ()))


def render_no_data(ctx: AppContext, title: str | None = None) -> None:
    """The no-data page: where the dashboard looks, what the collector is doing (its state, the venues it
    reaches, their last errors, from the run rows), what to do; it re-checks every refresh and switches to
    the real page as soon as the first fund or open-interest row lands."""
    from dashboard import data
    from dashboard.status import diagnose

    if title:
        st.title(title)

    def check() -> None:
        if data.has_data_now(ctx.db):
            data.clear()
            st.rerun(scope="app")
        st.subheader("Backstop has no data yet", anchor=False)
        exists = Path(ctx.db).exists()
        st.text(f"Database: {ctx.db} " + ("(no fund or open-interest rows yet)" if exists else "(does not exist yet)"))
        now = data.quantised_now(1)
        activity = data.poll_activity(ctx.db, now) if exists else None
        activity = activity if activity is not None else pd.DataFrame()
        names = {k: v.display_name for k, v in venue_catalog(
            activity["venue"].astype(str).tolist() if not activity.empty else []).items()}
        diagnosis = diagnose(activity, names, now)
        if diagnosis.last_run_at is not None:
            box = st.warning if diagnosis.running else st.error
            box(diagnosis.headline(now), icon=":material/lan:")
            if not diagnosis.reachable:
                st.error("No venue is reachable: check the network, a proxy (venues' base_url in backstop.toml), "
                         "or try everything on simulated data with `backstop demo`.", icon=":material/wifi_off:")
            st.dataframe(diagnosis.errors, hide_index=True, height=36 * (len(diagnosis.errors) + 1) + 4, column_config={
                "last error": st.column_config.TextColumn("last error", width="large")})
        st.markdown(
            "* `backstop collect` (or `backstop run`) polls every enabled venue and writes to this database;\n"
            "* `backstop demo` runs the built-in simulator and a collector against it (no internet needed);\n"
            "* `backstop dashboard --db PATH` opens this dashboard on another database file.\n\n"
            f"This page checks again every {ctx.refresh_s} s and shows the data as soon as it arrives; "
            "Collector health and Alerts work already."
        )
        st.caption("Configuration: backstop.toml or BACKSTOP_* environment variables (see the README).")

    fragment(check, ctx)


def show_notice(message: str, rejected: Sequence[str] = ()) -> None:
    """Our own sentence in an info box; what the user (URL) or a file supplied only as plain text below it,
    never as Markdown: ``?range=![a](http://host/pixel.png)`` must not make the browser fetch anything."""
    st.info(message, icon=":material/link_off:")
    for value in rejected:
        st.text(f"not understood: {value}")


REFRESH_COST_KEY = "backstop_refresh_cost_s"


def refresh_every_s(ctx: AppContext, cost_s: float) -> int:
    """The auto-refresh interval: ``dashboard.refresh_s``, stretched to 3× what a refresh last cost, so a
    slow machine shows a page that is idle most of the time instead of one that is always re-running."""
    return max(ctx.refresh_s, math.ceil(3 * cost_s))


def fragment(body: Callable[[], None], ctx: AppContext) -> None:
    """Run a page body as an auto-refreshing fragment (``refresh_every_s``)."""

    def timed() -> None:
        started = time.monotonic()
        try:
            body()
        finally:
            st.session_state[REFRESH_COST_KEY] = time.monotonic() - started

    every = refresh_every_s(ctx, float(st.session_state.get(REFRESH_COST_KEY, 0.0)))
    st.fragment(run_every=timedelta(seconds=every))(timed)()


def explain_range(state: PageState) -> str:
    return f"{state.range_start:%Y-%m-%d %H:%M} → {state.now:%Y-%m-%d %H:%M} UTC"


def run_page(title: str, body: Callable[[PageState], None], caption: str | None = None,
             needs_data: bool = True) -> None:
    """Page frame: the no-data diagnosis (pages that need data), or the title and an auto-refreshing body.
    Pages that work without data (Collector health, Alerts) show the diagnosis above their body."""
    ctx: AppContext | None = st.session_state.get("backstop_ctx")
    state = page_state()
    if ctx is None:
        return
    if state is None or (not state.has_data and needs_data):
        render_no_data(ctx, None if state is None else title)
        return
    st.title(title)
    if caption:
        st.caption(caption)
    if not state.has_data:
        render_no_data(ctx)
        if not Path(ctx.db).exists():
            return

    def refreshing() -> None:
        current = page_state()
        if current is None:
            return
        try:
            body(current)
        except DatabaseBusy as exc:  # the collector held the write lock past the retry budget
            st.warning(f"The database is busy ({exc}); showing nothing until the next refresh.")

    fragment(refreshing, ctx)
