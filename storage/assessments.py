"""Inputs of the assessments, gathered in DuckDB, and ``load_assessments`` (the one entry point).

Every figure comes from the SQL the alert rules read (``storage.fund_inputs``,
``storage.coverage_inputs``): the per-pool windows (as-of start, max, last: the one "fund as of t"
definition), the like-for-like venue changes (the divergence z), the venue coverage; plus the daily
as-of history behind the own-history anomaly z and the firing alerts. The judgement itself is
``metrics.assessment.assess`` (pure).

``at`` is the data clock: the later of the wall clock and the newest fund/OI timestamp, unless given.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb

from metrics import assessment as M
from metrics.alert_rows import FundWindow, VenueChange
from metrics.divergence import DivergenceRule, divergence
from metrics.fund_changes import TRADING, ChangeContext, classify, robust_own_z, usual_move
from metrics.health import freshness
from metrics.stress import FillModel, LeverageDistribution
from records.vocabulary import default_cadence_s
from storage import coverage_inputs, fund_inputs, rule_inputs
from storage.db import read_connection

DbOrCon = duckdb.DuckDBPyConnection | Path | str


@dataclass(frozen=True)
class AnomalySettings:
    """Own-history anomaly scoring (``[alerts.rules.fund_anomaly]`` builds one)."""

    history_days: int = 90  # trailing days of same-window changes
    min_history: int = 30  # fewer trading changes than this: no score (the fixed thresholds remain)
    scale_floor_pct: float = 0.05  # a fund that never moves must not make any move infinite


@dataclass(frozen=True)
class StressSettings:
    """How the stress figure every assessment carries is projected (``[stress]`` in config builds one): the
    share of each fund that a fall of ``AssessmentParams.stress_move_pct`` would consume (``metrics.stress``)."""

    distribution: LeverageDistribution = field(default_factory=LeverageDistribution)
    fill: FillModel = field(default_factory=FillModel)
    calibration_days: int = 30
    min_calibration_days: int | None = None
    calibrate: bool = True


@dataclass(frozen=True)
class AssessmentConfig:
    """What the deployment knows about its venues; everything optional (defaults from the data)."""

    labels: Mapping[str, str] = field(default_factory=dict)
    fund_expected_s: Mapping[str, float] = field(default_factory=dict)
    oi_expected_s: Mapping[str, float] = field(default_factory=dict)
    params: M.AssessmentParams = field(default_factory=M.AssessmentParams)
    divergence: DivergenceRule = field(default_factory=DivergenceRule)
    divergence_window_h: float = 24.0
    anomaly: AnomalySettings = field(default_factory=AnomalySettings)
    stress_pct: Mapping[tuple[str, str], float] = field(default_factory=dict)  # (venue, pool_id) -> %, given
    stress: StressSettings | None = field(default_factory=StressSettings)  # None: no stress figure
    coverage_days: int = 90


@contextmanager
def _connection(con_or_db: DbOrCon) -> Iterator[duckdb.DuckDBPyConnection]:
    if isinstance(con_or_db, duckdb.DuckDBPyConnection):
        yield con_or_db
    else:
        with read_connection(con_or_db) as con:
            yield con


def load_assessments(con_or_db: DbOrCon, at: datetime | None = None,
                     config: AssessmentConfig | None = None, cache: dict[str, Any] | None = None) -> list[M.Assessment]:
    """One assessment per venue (``pool_id == "*"``) and per live pool at ``at``, venues in name order,
    each venue row first. A brief read on the given connection or a read-only one on the path. ``cache``
    (a long-lived caller's, e.g. the alert engine's) keeps the daily coverage history for the day."""
    config = config or AssessmentConfig()
    with _connection(con_or_db) as con:
        as_of = at or rule_inputs.data_clock(con, datetime.now(UTC))
        if config.stress is not None and not config.stress_pct:
            config = replace(config, stress_pct=stress_consumption(con, as_of, config, cache))
        inputs = gather(con, as_of, config, cache)
    pools = [M.assess(i, config.params) for i in inputs if i.pool_id != M.ALL_POOLS]
    out = []
    for i in inputs:
        if i.pool_id == M.ALL_POOLS:
            i = M.with_pools(i, [p for p in pools if p.venue == i.venue])
            out.append(M.assess(i, config.params))
        else:
            out.append(next(p for p in pools if p.venue == i.venue and p.pool_id == i.pool_id and p.asset == i.asset))
    return out


def stress_consumption(con: duckdb.DuckDBPyConnection, as_of: datetime, config: AssessmentConfig,
                       cache: dict[str, Any] | None = None) -> dict[tuple[str, str], float]:
    """(venue, pool_id) -> % of the fund a ``stress_move_pct`` fall consumes (venue rows: ``ALL_POOLS``),
    from ``storage.stress_inputs``: the same projection as the Stress page, the CLI and the export. A
    long-lived caller's ``cache`` keeps it for 5 minutes of data clock (it reads OI and liquidation days)."""
    from storage import stress_inputs as SI

    settings = config.stress or StressSettings()
    move = config.params.stress_move_pct
    key = (move, int(as_of.timestamp() // 300))
    if cache is not None and cache.get("stress_key") == key:
        return dict(cache["stress"])
    inputs = SI.load_inputs(con, None, as_of, settings.distribution, settings.calibration_days, 1,
                            settings.min_calibration_days, settings.calibrate,
                            None if cache is None else cache.setdefault("stress_calibrations", {}))
    frame = SI.stress_frame(inputs, move, "down", settings.fill)
    out: dict[tuple[str, str], float] = {}
    for row in frame.itertuples():
        pct: float | None = row.consumption_pct  # type: ignore[assignment]  # a float column (NaN/None: unknown)
        if pct is not None and math.isfinite(pct):
            out[(str(row.venue), str(row.pool_id))] = float(pct)
    for row in SI.venue_consumption(frame).itertuples():
        pct = row.consumption_pct  # type: ignore[assignment]
        if pct is not None and math.isfinite(pct):
            out[(str(row.venue), M.ALL_POOLS)] = float(pct)
    if cache is not None:  # one entry, replaced: a long-lived cache must not gain one every 5 minutes
        cache["stress"], cache["stress_key"] = out, key
    return out


# -- gathering -------------------------------------------------------------------------------------------
def _expected(config: AssessmentConfig, venues: Sequence[str]) -> dict[str, float]:
    return {v: float(config.fund_expected_s.get(v, default_cadence_s("funds"))) for v in venues}


def known_venues(con: duckdb.DuckDBPyConnection, as_of: datetime, days: int = 30) -> tuple[list[str], set[str]]:
    """Venues seen in the last ``days`` (funds, OI, runs) and those among them with a published fund."""
    since = as_of - timedelta(days=days)
    rows = con.execute(
        """
        SELECT venue, bool_or(fund) FROM (
            SELECT DISTINCT venue, true AS fund FROM fund_balances WHERE ts > ? AND ts <= ?
            UNION ALL SELECT DISTINCT venue, false FROM open_interest WHERE ts > ? AND ts <= ?
            UNION ALL SELECT DISTINCT venue, false FROM collection_runs WHERE started_at > ?
        ) GROUP BY venue ORDER BY venue
        """,
        [since, as_of, since, as_of, since],
    ).fetchall()
    return [r[0] for r in rows], {r[0] for r in rows if r[1]}


def latest_pools(con: duckdb.DuckDBPyConnection, as_of: datetime, days: int = 30) -> list[tuple[Any, ...]]:
    """Each pool's newest point in the last ``days``: venue, pool_id, asset, ts, balance, usd."""
    return con.execute(
        """
        SELECT venue, pool_id, asset, max(ts), arg_max(balance::DOUBLE, ts), arg_max(usd_value::DOUBLE, ts)
        FROM fund_balances WHERE ts > ? AND ts <= ? GROUP BY venue, pool_id, asset ORDER BY venue, pool_id, asset
        """,
        [as_of - timedelta(days=days), as_of],
    ).fetchall()


def daily_history(con: duckdb.DuckDBPyConnection, as_of: datetime, days: int) -> dict[tuple[str, str, str], list[Any]]:
    """Per pool, its as-of balance at as_of − k days for k = 0 … days (None where it had no point within
    two days before), and the largest published flow type in each day: [(balance, usd, flow_type), ...]."""
    rows = con.execute(
        """
        WITH grid AS (
            SELECT k, ?::TIMESTAMPTZ - to_days(k::INTEGER) AS t FROM range(0, ? + 1) AS r(k)
        ), pools AS (
            SELECT DISTINCT venue, pool_id, asset FROM fund_balances WHERE ts > ? AND ts <= ?
        ), points AS (
            SELECT p.venue, p.pool_id, p.asset, g.k, g.t FROM pools AS p CROSS JOIN grid AS g
        ), asof_values AS (
            SELECT pt.venue, pt.pool_id, pt.asset, pt.k, f.ts, f.balance::DOUBLE AS balance,
                   f.usd_value::DOUBLE AS usd, pt.t
            FROM points AS pt ASOF LEFT JOIN (
                -- only points that can count (no older than two days before the earliest t): the join
                -- then reads the window's row groups, not the pools' whole history
                SELECT venue, pool_id, asset, ts, balance, usd_value FROM fund_balances WHERE ts > ? AND ts <= ?
            ) AS f ON f.venue = pt.venue AND f.pool_id = pt.pool_id AND f.asset = pt.asset AND f.ts <= pt.t
        ), flows AS (
            SELECT venue, pool_id, asset, ceil(epoch(?::TIMESTAMPTZ) - epoch(ts)) // 86400 AS k,
                   arg_max(flow_type, abs(coalesce(amount, 0))) AS flow_type
            FROM fund_flows WHERE ts > ? AND ts <= ? GROUP BY ALL
        )
        SELECT a.venue, a.pool_id, a.asset, a.k,
               CASE WHEN a.ts > a.t - INTERVAL 2 DAY THEN a.balance END,
               CASE WHEN a.ts > a.t - INTERVAL 2 DAY THEN a.usd END, fl.flow_type
        FROM asof_values AS a LEFT JOIN flows AS fl
          ON fl.venue = a.venue AND fl.pool_id = a.pool_id AND fl.asset = a.asset AND fl.k = a.k
        ORDER BY a.venue, a.pool_id, a.asset, a.k
        """,
        [as_of, days, as_of - timedelta(days=days + 2), as_of, as_of - timedelta(days=days + 2), as_of, as_of,
         as_of - timedelta(days=days + 1), as_of],
    ).fetchall()
    out: dict[tuple[str, str, str], list[Any]] = {}
    for venue, pool, asset, _k, balance, usd, flow in rows:
        out.setdefault((venue, pool, asset), []).append((balance, usd, flow))
    return out


def step_kinds(series: Sequence[Any]) -> list[str]:
    """The kind of each daily step k (series[k + 1] -> series[k]); ``series[k]`` = (balance, usd, flow).
    A step with no value on one side (a young database, a gap) is not judged a restructure here: a pool's
    appearance and disappearance are classified from its own observations (``storage.fund_changes``)."""
    steps = [abs(series[j][0] - series[j + 1][0]) for j in range(len(series) - 1)
             if series[j][0] is not None and series[j + 1][0] is not None]
    typical = usual_move(steps)
    return [classify(series[k + 1][0], series[k][0], series[k + 1][1], series[k][1],
                     ChangeContext(published_kind=series[k][2], usual_move=typical)).kind
            if series[k][0] is not None and series[k + 1][0] is not None else TRADING
            for k in range(len(series) - 1)]


def _trading_changes(series: Sequence[Any], kinds: Sequence[str], lag: int) -> tuple[list[float], float | None, bool]:
    """Percent changes over ``lag`` days for k ≥ lag (trading steps only: the history), the current one
    (k = 0), and whether the current one is all trading."""
    changes = []
    current, current_trading = None, True
    for k in range(0, len(series) - lag):
        new, old = series[k][0], series[k + lag][0]
        if new is None or old is None or old <= 0:
            continue
        trading = all(kinds[j] == TRADING for j in range(k, k + lag))
        pct = (new / old - 1) * 100.0
        if k == 0:
            current, current_trading = pct, trading
        elif k >= lag and trading:
            changes.append(pct)
    return changes, current, current_trading


def anomaly_scores(series: Sequence[Any], settings: AnomalySettings) -> tuple[Any, ...]:
    """(z of the 24 h change, z of the 7 d change, usual 24 h move %, usual 7 d move %, the kinds of the
    last 7 daily changes newest first) against the pool's own trailing history of trading changes."""
    if len(series) < 2:
        return None, None, None, None, ()
    kinds = step_kinds(series)
    zs: list[float | None] = []
    usual: list[float | None] = []
    for lag in (1, 7):
        history, current, trading = _trading_changes(series, kinds, lag)
        usual.append(usual_move(history))
        if current is None or not trading or len(history) < settings.min_history:
            zs.append(None)
        else:
            zs.append(robust_own_z(current, history, settings.scale_floor_pct))
    return zs[0], zs[1], usual[0], usual[1], tuple(kinds[:7])


def _windows(rows: Sequence[FundWindow]) -> tuple[M.WindowFigures, ...]:
    by_h = {w.window_h: w for w in rows}
    out = []
    for name, hours in M.WINDOWS.items():
        w = by_h.get(hours)
        if w is None:
            continue
        base = w.start_balance
        change = w.last_balance - base if base is not None else None
        pct = change / base * 100.0 if change is not None and base else None
        usd_change = (w.last_usd - w.start_usd
                      if w.last_usd is not None and w.start_usd is not None else None)
        out.append(M.WindowFigures(name, hours, base, w.max_balance, change, pct, usd_change, w.drawdown_pct))
    return tuple(out)


def _venue_windows(pools: Sequence[tuple[float | None, tuple[M.WindowFigures, ...]]],
                   changes: Mapping[float, VenueChange]) -> tuple[M.WindowFigures, ...]:
    """The venue's figures: its like-for-like change (``venue_changes``) and the USD-weighted mean of its
    pools' native drawdowns (no native total exists across assets)."""
    out = []
    for name, hours in M.WINDOWS.items():
        vc = changes.get(hours)
        weighted = [(usd, f.drawdown_pct) for usd, figures in pools for f in figures
                    if f.window == name and f.drawdown_pct is not None and usd]
        total = sum(usd for usd, _ in weighted)
        dd = sum(usd * d for usd, d in weighted) / total if total else None
        if vc is None and dd is None:
            continue
        out.append(M.WindowFigures(name, hours, None, None, None, vc.change_pct if vc else None,
                                   (vc.end_usd - vc.start_usd) if vc else None, dd))
    return tuple(out)


def _findings(con: duckdb.DuckDBPyConnection) -> dict[str, list[M.Finding]]:
    if not rule_inputs.table_exists(con, "alerts"):
        return {}
    out: dict[str, list[M.Finding]] = {}
    for venue, rule, severity, message, fired_at, metrics in con.execute(
        "SELECT venue, rule, severity, message, fired_at, metrics FROM alerts WHERE status = 'firing' "
        "ORDER BY fired_at"
    ).fetchall():
        try:
            pool = json.loads(metrics or "{}").get("pool_id")
        except (TypeError, ValueError):
            pool = None
        out.setdefault(str(venue), []).append(M.Finding(str(rule), str(severity), str(message), fired_at,
                                                        None if pool is None else str(pool)))
    return out


def _adl(findings: Sequence[M.Finding]) -> M.AdlSummary | None:
    adl = [f for f in findings if f.rule == "adl_near"]
    if not adl:
        return None
    worst = max(adl, key=lambda f: M.FINDING_SEVERITIES.index(f.severity) if f.severity in M.FINDING_SEVERITIES else 0)
    return M.AdlSummary("triggered" if worst.severity == "critical" else "near", worst.message, worst.since)


def gather(con: duckdb.DuckDBPyConnection, as_of: datetime, config: AssessmentConfig,
           cache: dict[str, Any] | None = None) -> list[M.AssessmentInputs]:
    """Every input of every assessment at ``as_of`` (venue rows first, then their pools)."""
    venues, fund_venues = known_venues(con, as_of)
    expected = _expected(config, venues)
    hours = list(M.WINDOWS.values())
    windows: dict[tuple[str, str, str], list[FundWindow]] = {}
    for w in fund_inputs.fund_windows(con, as_of, hours, expected):
        windows.setdefault((w.venue, w.pool_id, w.asset), []).append(w)
    changes: dict[str, dict[float, VenueChange]] = {}
    for c in fund_inputs.venue_changes(con, as_of, hours, expected):
        changes.setdefault(c.venue, {})[c.window_h] = c
    window_s = int(config.divergence_window_h * 3600)
    div = {r.venue: r.z for r in divergence(
        {v: c[config.divergence_window_h].change_pct for v, c in changes.items() if config.divergence_window_h in c},
        window_s, config.divergence)}
    oi_expected = {v: float(config.oi_expected_s.get(v, default_cadence_s("open_interest"))) for v in venues}
    coverage = {c.venue: c for c in coverage_inputs.venue_coverage(con, as_of, expected, oi_expected, medians={})}
    day_key = (as_of.date(), config.coverage_days)
    if cache is None or cache.get("coverage_history_key") != day_key:
        cov_history = coverage_inputs.coverage_history(con, as_of, config.coverage_days)  # moves once a day
        if cache is not None:
            cache["coverage_history"], cache["coverage_history_key"] = cov_history, day_key
    else:
        cov_history = cache["coverage_history"]
    oi_now = coverage_inputs.venue_open_interest(con, as_of, oi_expected)
    history = daily_history(con, as_of, config.anomaly.history_days + 7)
    findings = _findings(con)
    latest = latest_pools(con, as_of)

    out: list[M.AssessmentInputs] = []
    for venue in venues:
        name = config.labels.get(venue, venue)
        venue_findings = tuple(findings.get(venue, ()))
        common: dict[str, Any] = {"venue": venue, "display_name": name, "as_of": as_of,
                                  "adl": _adl(venue_findings)}
        if venue not in fund_venues:
            out.append(M.AssessmentInputs(pool_id=M.ALL_POOLS, asset="", has_fund=False,
                                          oi_usd=oi_now.get(venue), findings=venue_findings, **common))
            continue
        pools = [r for r in latest if r[0] == venue]
        live = [r for r in pools if (r[0], r[1], r[2]) in windows]
        shown = live or pools  # no live pool at all: show them all, stale (blind)
        pool_inputs = []
        for _, pool_id, asset, ts, balance, usd in shown:
            key = (venue, pool_id, asset)
            figures = _windows(windows.get(key, []))
            z24, z7, usual24, usual7, kinds = anomaly_scores(history.get(key, []), config.anomaly)
            age = (as_of - ts).total_seconds()
            pool_inputs.append(M.AssessmentInputs(
                pool_id=pool_id, asset=asset, fund_native=balance, fund_usd=usd, fund_ts=ts, windows=figures,
                anomaly_z_24h=z24, anomaly_z_7d=z7, usual_move_24h_pct=usual24, usual_move_7d_pct=usual7, data_age_s=age,
                expected_age_s=expected[venue], freshness=freshness(age, expected[venue]),
                stress_consumption_pct=config.stress_pct.get((venue, pool_id)), recent_change_kinds=kinds,
                findings=tuple(f for f in venue_findings if f.pool_id == pool_id), **common))
        cov = coverage.get(venue)
        fund_usd = sum(p.fund_usd for p in pool_inputs if p.fund_usd is not None) if pool_inputs else None
        newest = max((p.fund_ts for p in pool_inputs if p.fund_ts is not None), default=None)
        age = (as_of - newest).total_seconds() if newest is not None else None
        assets = {p.asset for p in pool_inputs}
        zs = [(p.fund_usd or 0.0, p.anomaly_z_24h, p.anomaly_z_7d) for p in pool_inputs]
        out.append(M.AssessmentInputs(
            pool_id=M.ALL_POOLS, asset=next(iter(assets)) if len(assets) == 1 else "USD",
            fund_native=(sum(p.fund_native or 0.0 for p in pool_inputs) if len(assets) == 1 else None),
            fund_usd=fund_usd, fund_ts=newest,
            windows=_venue_windows([(p.fund_usd, p.windows) for p in pool_inputs], changes.get(venue, {})),
            oi_usd=cov.oi_usd if cov else oi_now.get(venue),
            coverage_history_pct=tuple(cov_history.get(venue, ())),
            divergence_z=div.get(venue), divergence_window_h=config.divergence_window_h,
            anomaly_z_24h=_headline(zs, 1), anomaly_z_7d=_headline(zs, 2),
            data_age_s=age, expected_age_s=expected[venue],
            freshness=freshness(age, expected[venue]) if age is not None else None,
            stress_consumption_pct=config.stress_pct.get((venue, M.ALL_POOLS)),
            findings=venue_findings, **common))
        out.extend(pool_inputs)
    return out


def _headline(zs: Sequence[tuple[float, float | None, float | None]], index: int) -> float | None:
    """The venue's anomaly z: its largest pool's (by USD) that has a score."""
    scored = [(row[0], row[index]) for row in zs if row[index] is not None and math.isfinite(row[index] or 0.0)]
    return max(scored, key=lambda item: item[0])[1] if scored else None
