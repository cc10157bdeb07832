"""Coverage inputs of the alert rules: each venue's live funds against its current open interest
(``VenueCoverage``), the open interest alone, and the daily coverage behind the coverage median and the
coverage history (hourly rollups up to their watermarks, raw rows after them).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta

import duckdb

from metrics.alert_rows import VenueCoverage
from storage.fund_asof import GONE_MULTIPLE, is_current_sql, series_cadence_sql
from storage.rollups import HOUR_END_SQL, rollup_complete_to
from storage.rule_inputs import DEFAULT_EXPECTED_S, cadence_lists

# Daily coverage per venue: the last fund value of each series and the venue's open interest at the end of
# its last hour with data (its contracts' last values in that hour; the hour ending at midnight belongs to
# the day before) per UTC day, over [$lo, $hi) - one definition
# for the coverage median and the coverage history. Whole hours come from the hourly rollups (migration
# 004) up to their watermarks, raw rows after them: 90 days of 1,000 contracts in 0.1 s, not 1.8 s.
_DAILY_COVERAGE = """
    WITH fund_points AS (
        SELECT venue, pool_id, asset, ts, usd_value AS usd FROM fund_hourly
        WHERE hour <= $fund_wm AND ts >= $lo AND ts < $hi
        UNION ALL
        SELECT venue, pool_id, asset, ts, usd_value::DOUBLE FROM fund_balances
        WHERE ts > $fund_raw_after AND ts >= $lo AND ts < $hi
    ), fund_daily AS (
        SELECT venue, day, sum(usd) AS fund_usd FROM (
            SELECT venue, pool_id, asset, date_trunc('day', ts) AS day, arg_max(usd, ts) AS usd
            FROM fund_points GROUP BY ALL
        ) GROUP BY venue, day
    ), oi_points AS (
        SELECT venue, hour, ts, oi_usd FROM oi_hourly
        WHERE pool_id = '*' AND hour <= $oi_wm AND hour > $lo AND hour <= $hi
        UNION ALL
        SELECT venue, hour, max(ts), sum(oi) FROM (
            SELECT venue, symbol, {hour_end} AS hour, arg_max(oi_usd, ts) AS oi, max(ts) AS ts
            FROM open_interest
            WHERE ts > $oi_raw_after AND ts > $lo AND ts <= $hi AND oi_usd IS NOT NULL GROUP BY ALL
        ) GROUP BY venue, hour
    ), oi_daily AS (  -- an hour (h - 1 h, h] belongs to the day it covers: the one ending at midnight too
        SELECT venue, date_trunc('day', hour - INTERVAL 1 MICROSECOND) AS day, arg_max(oi_usd, ts) AS oi_usd
        FROM oi_points GROUP BY ALL
    ), daily AS (
        SELECT f.venue, f.day, f.fund_usd / o.oi_usd AS ratio
        FROM fund_daily AS f JOIN oi_daily AS o USING (venue, day)
        WHERE o.oi_usd > 0 AND f.fund_usd > 0
    )
""".replace("{hour_end}", HOUR_END_SQL)


def _daily_coverage_params(con: duckdb.DuckDBPyConnection, lo: datetime, hi: datetime) -> dict[str, datetime]:
    """The window and each rollup's watermark (raw rows count after it; no rollup: all raw rows)."""
    params = {"lo": lo, "hi": hi}
    for prefix, rollup in (("fund", "fund_hourly"), ("oi", "oi_hourly")):
        watermark = rollup_complete_to(con, rollup)
        params[f"{prefix}_wm"] = watermark if watermark is not None else lo - timedelta(days=1)
        params[f"{prefix}_raw_after"] = watermark if watermark is not None else lo - timedelta(microseconds=1)
    return params


def coverage_medians(con: duckdb.DuckDBPyConnection, as_of: datetime,
                     median_days: int = 30) -> dict[str, tuple[float, int]]:
    """Per venue: the median of the daily coverage ratio over the ``median_days`` days before ``as_of``'s
    day, and how many days had both. Changes once a day: the engine caches it per day."""
    today = as_of.replace(hour=0, minute=0, second=0, microsecond=0)
    rows = con.execute(
        _DAILY_COVERAGE + "SELECT venue, median(ratio), count(*) FROM daily GROUP BY venue",  # noqa: S608 - constant
        _daily_coverage_params(con, today - timedelta(days=median_days), today),
    ).fetchall()
    return {venue: (float(median), int(days)) for venue, median, days in rows if median is not None}


def coverage_history(con: duckdb.DuckDBPyConnection, as_of: datetime, days: int = 90) -> dict[str, list[float]]:
    """Per venue: the daily coverage (percent of OI) of the ``days`` days before ``as_of``'s day, oldest first."""
    today = as_of.replace(hour=0, minute=0, second=0, microsecond=0)
    rows = con.execute(
        _DAILY_COVERAGE + "SELECT venue, list(ratio * 100 ORDER BY day) FROM daily GROUP BY venue",  # noqa: S608
        _daily_coverage_params(con, today - timedelta(days=days), today),
    ).fetchall()
    return {venue: [float(v) for v in values] for venue, values in rows}


# Each venue's current open interest in USD: every symbol's latest value, if it is within $gone x the
# venue's OI cadence (default hourly) of the venue's newest poll, and that poll itself recent - one
# definition for the OI alone and for coverage. Needs an ``ocfg`` (venue, expected_s) CTE before it.
_OI_NOW = """
    oi_series AS (
        SELECT venue, symbol, max(ts) AS last_ts, arg_max(oi_usd, ts) AS oi_usd
        FROM open_interest WHERE ts > $oi_lo AND ts <= $as_of AND oi_usd IS NOT NULL GROUP BY venue, symbol
    ), oi_now AS (
        SELECT s.venue, sum(s.oi_usd) AS oi_usd, max(s.last_ts) AS oi_ts
        FROM oi_series AS s
        JOIN (SELECT venue, max(last_ts) AS newest FROM oi_series GROUP BY venue) AS n USING (venue)
        LEFT JOIN ocfg AS c ON c.venue = s.venue
        WHERE epoch(n.newest) - epoch(s.last_ts) <= $gone * coalesce(c.expected_s, 3600)
          AND epoch($as_of::TIMESTAMPTZ) - epoch(n.newest) <= $gone * greatest(coalesce(c.expected_s, 3600), 3600)
        GROUP BY s.venue
    )"""
_OI_CONFIG = "ocfg AS (SELECT unnest($o_venues::VARCHAR[]) AS venue, unnest($o_cadences::DOUBLE[]) AS expected_s)"


def _oi_params(as_of: datetime, oi_expected_s: Mapping[str, float], gone_multiple: float) -> dict[str, object]:
    venues, cadences = cadence_lists(oi_expected_s)
    return {"o_venues": venues, "o_cadences": cadences, "as_of": as_of, "gone": gone_multiple,
            "oi_lo": as_of - timedelta(seconds=gone_multiple * max([3600.0, *cadences]) + 3600)}


def venue_open_interest(con: duckdb.DuckDBPyConnection, as_of: datetime,
                        oi_expected_s: Mapping[str, float], gone_multiple: float = 3.0) -> dict[str, float]:
    """Per venue: current open interest in USD (``_OI_NOW``)."""
    rows = con.execute(
        f"WITH {_OI_CONFIG}, {_OI_NOW} SELECT venue, oi_usd FROM oi_now",  # noqa: S608 - constant fragments
        _oi_params(as_of, oi_expected_s, gone_multiple),
    ).fetchall()
    return {venue: float(oi) for venue, oi in rows if oi is not None}


def venue_coverage(con: duckdb.DuckDBPyConnection, as_of: datetime, fund_expected_s: Mapping[str, float],
                   oi_expected_s: Mapping[str, float], median_days: int = 30, gone_multiple: float = 3.0,
                   medians: Mapping[str, tuple[float, int]] | None = None) -> list[VenueCoverage]:
    """Per venue: live funds in USD ÷ current open interest in USD (``_OI_NOW``), with the venue's
    ``coverage_medians`` (computed here unless given)."""
    f_venues, f_cadences = cadence_lists(fund_expected_s)
    fund_lookback = as_of - timedelta(seconds=GONE_MULTIPLE * max([DEFAULT_EXPECTED_S, *f_cadences]) + 86_400)
    rows = con.execute(
        """
        WITH fcfg AS (SELECT unnest($f_venues::VARCHAR[]) AS venue, unnest($f_cadences::DOUBLE[]) AS expected_s),
        {oi_config},
        fund_gaps AS (
            SELECT venue, pool_id, asset, ts, usd_value,
                   epoch(ts) - epoch(lag(ts) OVER (PARTITION BY venue, pool_id, asset ORDER BY ts)) AS gap_s
            FROM fund_balances WHERE ts > $fund_lo AND ts <= $as_of
        ), fund_series AS (
            SELECT s.venue, s.last_ts, s.last_usd,
                   {cadence} AS cadence_s FROM (
                SELECT venue, pool_id, asset, max(ts) AS last_ts, arg_max(usd_value, ts) AS last_usd,
                       arg_max(gap_s, ts) AS last_gap_s
                FROM fund_gaps GROUP BY venue, pool_id, asset
            ) AS s LEFT JOIN fcfg AS c ON c.venue = s.venue
        ), fund_now AS (
            SELECT venue, sum(last_usd) AS fund_usd, max(last_ts) AS fund_ts,
                   count(*) FILTER (WHERE last_usd IS NULL) AS unpriced
            FROM fund_series WHERE {live}
            GROUP BY venue
        ), {oi_now}
        SELECT f.venue, f.fund_usd, o.oi_usd, f.fund_ts, o.oi_ts, f.unpriced
        FROM fund_now AS f JOIN oi_now AS o USING (venue)
        WHERE f.fund_usd IS NOT NULL ORDER BY f.venue
        """.format(  # noqa: S608 - constant fragments (storage.fund_asof, _OI_NOW)
            oi_config=_OI_CONFIG, oi_now=_OI_NOW,
            cadence=series_cadence_sql("coalesce(c.expected_s, $default_s)", "s.last_gap_s"),
            live=is_current_sql("last_ts", "$as_of::TIMESTAMPTZ", "cadence_s")),
        {"f_venues": f_venues, "f_cadences": f_cadences, "fund_lo": fund_lookback,
         "default_s": DEFAULT_EXPECTED_S, **_oi_params(as_of, oi_expected_s, gone_multiple)},
    ).fetchall()
    if medians is None:
        medians = coverage_medians(con, as_of, median_days)
    result = []
    for venue, fund_usd, oi_usd, fund_ts, oi_ts, unpriced in rows:
        median, days = medians.get(venue, (None, 0))
        result.append(VenueCoverage(venue=venue, fund_usd=float(fund_usd), oi_usd=float(oi_usd), fund_ts=fund_ts,
                                    oi_ts=oi_ts, median_ratio=median, median_days=days,
                                    unpriced_pools=int(unpriced)))
    return result
