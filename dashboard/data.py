"""Cached access to ``storage.analytics`` for the pages.

Every query goes through ``st.cache_data`` with a TTL (settings.dashboard.cache_ttl_s): no connection
outlives a query, reruns within the TTL cost nothing, and the query arguments are plain hashable values.
"Now" is rounded down to the TTL so that reruns inside one TTL window hit the same cache entry.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
import streamlit as st

from alerts.context import RuleSet
from dashboard.context import cache_ttl_s
from metrics.assessment import Assessment
from metrics.divergence import DivergenceRule
from storage import alert_store, analytics, liquidation_reads, run_state
from storage.analytics import HOUR, Grid, floor_hour

TTL_S = cache_ttl_s()


def quantised_now(ttl_s: int = TTL_S) -> datetime:
    now = datetime.now(UTC).replace(microsecond=0)
    return now - timedelta(seconds=int(now.timestamp()) % ttl_s)


def grid_for(range_td: timedelta, end: datetime, max_points: int = 480,
             min_step: timedelta = timedelta(minutes=5)) -> Grid:
    """A grid over the range; hourly or coarser grids end on a whole hour so the rollups serve them."""
    if range_td >= timedelta(days=3):  # hourly points from the rollups beat finer raw scans here
        min_step = max(min_step, HOUR)
    grid = Grid.for_range(end - range_td, end, max_points=max_points, min_step=min_step)
    if grid.step >= HOUR:
        return Grid(floor_hour(end), grid.step, grid.points)
    return grid


@st.cache_data(ttl=TTL_S, show_spinner=False)
def database_overview(db: str) -> pd.DataFrame:
    return analytics.database_overview(db)


@st.cache_data(ttl=TTL_S, show_spinner=False)
def known_venues(db: str) -> list[str]:
    return analytics.known_venues(db)["venue"].astype(str).tolist()


@st.cache_data(ttl=TTL_S, show_spinner=False)
def fund_span(db: str) -> tuple[datetime | None, datetime | None]:
    frame = analytics.fund_span(db)
    if frame.empty or pd.isna(frame["first_ts"].iloc[0]):
        return None, None
    return frame["first_ts"].iloc[0].to_pydatetime(), frame["last_ts"].iloc[0].to_pydatetime()


@st.cache_data(ttl=TTL_S, show_spinner=False)
def fund_series(db: str, venues: tuple[str, ...], end: datetime, step_s: int, points: int,
                by: str = "venue") -> pd.DataFrame:
    return analytics.fund_series(db, venues, Grid(end, timedelta(seconds=step_s), points), by=by)


@st.cache_data(ttl=TTL_S, show_spinner=False)
def oi_series(db: str, venues: tuple[str, ...], end: datetime, step_s: int, points: int,
              by_pool: bool = False) -> pd.DataFrame:
    return analytics.oi_series(db, venues, Grid(end, timedelta(seconds=step_s), points), by_pool=by_pool)


@st.cache_data(ttl=TTL_S, show_spinner=False)
def fund_pools_latest(db: str, venues: tuple[str, ...]) -> pd.DataFrame:
    return analytics.fund_pools_latest(db, venues)


@st.cache_data(ttl=TTL_S, show_spinner=False)
def oi_latest(db: str, venues: tuple[str, ...], now: datetime, by_pool: bool = False) -> pd.DataFrame:
    return analytics.oi_latest(db, venues, now, by_pool=by_pool)


@st.cache_data(ttl=TTL_S, show_spinner=False)
def liquidations_summary(db: str, venues: tuple[str, ...], since: datetime) -> pd.DataFrame | None:
    return analytics.liquidations_summary(db, venues, since)


@st.cache_data(ttl=TTL_S, show_spinner=False)
def firing_alerts(db: str) -> pd.DataFrame | None:
    return analytics.firing_alerts(db)


@st.cache_data(ttl=TTL_S, show_spinner=False)
def collector_health(db: str, now: datetime) -> pd.DataFrame:
    return analytics.collector_health(db, now)


@st.cache_data(ttl=TTL_S, show_spinner=False)
def cascades(db: str, venues: tuple[str, ...], start: datetime, end: datetime) -> pd.DataFrame:
    """Detected liquidation cascades overlapping [start, end], of these venues or of the whole market."""
    return liquidation_reads.cascade_rows(db, start, end, [*venues, "market"])


@st.cache_data(ttl=TTL_S, show_spinner=False)
def alert_markers(db: str, venues: tuple[str, ...], start: datetime, end: datetime) -> pd.DataFrame:
    return alert_store.alert_markers(db, list(venues), start, end)


@st.cache_data(ttl=TTL_S, show_spinner=False)
def backfill_state(db: str, now: datetime) -> tuple[pd.DataFrame, datetime | None]:
    """This backfill session's runs (``storage.run_state.backfill_runs``) and when the newest finished."""
    from dashboard.status import BACKFILL_SESSION

    newest = run_state.newest_backfill_at(db)
    if newest is None:
        return pd.DataFrame(columns=run_state.BACKFILL_COLUMNS), None
    return run_state.backfill_runs(db, newest - BACKFILL_SESSION), newest


def poll_activity(db: str, now: datetime) -> pd.DataFrame:
    """Not cached: the no-data page polls it to notice the first rows and the collector's errors."""
    return run_state.poll_activity(db, now - timedelta(days=1))


def has_data_now(db: str) -> bool:
    """Fund or open-interest rows exist (uncached: the no-data page uses it to switch to the real pages)."""
    overview = analytics.database_overview(db)
    return bool(not overview.empty
                and overview[overview["dataset"].isin(["funds", "open_interest"])]["has_rows"].any())


@st.cache_resource(show_spinner=False)
def daily_cache(db: str, user: str) -> dict[str, Any]:
    """A process-wide store for results that change once a day (coverage history, stress calibrations):
    the queries behind them then run once a day, not at every refresh of the page data. Keyed inside by
    the day; one per database and user (the assessments, the Stress page)."""
    return {}


@st.cache_data(ttl=TTL_S, show_spinner=False)
def assessments(db: str, config: str | None, now: datetime) -> list[Assessment]:
    """Every venue's and pool's assessment exactly as the alert rules see it (``alerts.judgement``: same
    venues, cadences and thresholds), so a page and a firing alert never disagree. ``now`` is the cache key
    (quantised); the assessment's own clock is the data clock."""
    from pathlib import Path

    from alerts.judgement import assessments_for
    from configuration.settings import ConfigError, Settings, load_settings
    from records.venue_catalog import catalog_facts

    try:
        settings = load_settings(config_path=Path(config) if config else None, db_path=Path(db))
    except ConfigError:
        settings = Settings(db=Path(db))
    return assessments_for(settings, catalog_facts(settings.enabled_venues()), cache=daily_cache(db, "assessments"))


@st.cache_data(ttl=TTL_S, show_spinner=False)
def alert_rules(db: str, config: str | None) -> RuleSet:
    """The deployment's alert rule parameters (``[alerts.rules.*]``): the pages flag and draw what the
    alerts use (divergence rule, coverage floor)."""
    from pathlib import Path

    from alerts.context import rule_set
    from configuration.settings import ConfigError, load_settings

    try:
        return rule_set(load_settings(config_path=Path(config) if config else None, db_path=Path(db)).alerts)
    except ConfigError:
        return RuleSet()


def divergence_rule(db: str, config: str | None) -> DivergenceRule:
    return alert_rules(db, config).divergence.rule()


def coverage_floor_pct(db: str, config: str | None) -> float:
    return float(alert_rules(db, config).coverage.threshold_pct)


def clear() -> None:
    st.cache_data.clear()
