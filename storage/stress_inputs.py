"""Inputs of the stress test (``metrics.stress``) and ``stress_table``, the one query the dashboard, the CLI,
the CSV export and the assessment call.

``load_inputs`` reads what does not depend on the move (a few short read-only queries): the newest OI per
contract, fund per pool (``storage.analytics.fund_pools_latest`` / ``fund_native_latest``, the existing
fund-as-of-now queries), and from ``storage.stress_history`` each venue's calibration and each pool's
daily fund changes. ``stress_frame`` then projects any move from those inputs in memory, so sliders cost
no query.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pandas as pd

from metrics.stress import (
    MIN_CALIBRATION_DAYS,
    Calibration,
    ContractExposure,
    FillModel,
    FundAsset,
    LeverageDistribution,
    PoolInput,
    calibrate,
    history_stats,
    project,
)
from records.vocabulary import STABLE_ASSETS
from storage import analytics
from storage import stress_history as H
from storage.db import read_connection

DbPath = Path | str

OI_LOOKBACK = timedelta(days=1)
CALIBRATION_DAYS = 30
HISTORY_DAYS = 365
NO_POOL = "(no published fund)"
UNCOVERED = "(contracts no pool covers)"
COLUMNS = ["venue", "pool_id", "direction", "move_pct", "scope", "oi_usd", "moved_oi_usd", "liquidated_usd",
           "deficit_rate_pct", "deficit_usd", "fund_usd", "fund_after_move_usd", "consumption_pct", "fund_asset",
           "fund_native", "consumption_native", "adl_likely", "calibration", "history_days",
           "worst_day_loss_usd", "p99_day_loss_usd", "days_covered_p99", "worst_day_liquidated_usd"]


@dataclass(frozen=True)
class StressInputs:
    now: datetime
    pools: tuple[PoolInput, ...]
    calibrations: dict[str, Calibration]
    daily_fund_change: dict[tuple[str, str], list[float]] = field(default_factory=dict)
    daily_liquidated: dict[str, list[float]] = field(default_factory=dict)


# -- SQL -------------------------------------------------------------------------------------------------

def _contracts(con: duckdb.DuckDBPyConnection, venues: Sequence[str], now: datetime) -> pd.DataFrame:
    """Newest OI (USD, one side) per contract: each contract's last value within 2 h of its venue's
    newest poll in the last day (as ``analytics.oi_latest``, per contract)."""
    return con.execute(
        """
        WITH last AS (
            SELECT venue, symbol, arg_max(base_asset, ts) AS base_asset, arg_max(oi_usd, ts) AS oi_usd,
                   max(ts) AS ts
            FROM open_interest
            WHERE ts > $since AND ts <= $now AND list_contains($venues, venue) AND oi_usd IS NOT NULL
            GROUP BY venue, symbol
        ), newest AS (SELECT venue, max(ts) AS t FROM last GROUP BY venue)
        SELECT l.venue, l.symbol, l.base_asset, l.oi_usd
        FROM last AS l JOIN newest AS n ON n.venue = l.venue AND l.ts > n.t - $gap
        ORDER BY l.venue, l.symbol
        """,
        {"since": now - OI_LOOKBACK, "now": now, "venues": list(venues), "gap": analytics.OI_MAX_GAP},
    ).df()


def _members(con: duckdb.DuckDBPyConnection, venues: Sequence[str]) -> pd.DataFrame:
    return con.execute(
        "SELECT DISTINCT venue, pool_id, symbol FROM fund_pool_members WHERE list_contains(?, venue)",
        [list(venues)],
    ).df()


# -- assembling ------------------------------------------------------------------------------------------

def _fund_assets(fund_usd: float | None, assets_text: str | None,
                 native: dict[str, tuple[float | None, float | None]]) -> tuple[FundAsset, ...]:
    """The pool's fund split per asset: one asset takes it all; several are split by the venue's USD per
    asset (``fund_native_latest``: asset -> (USD, native balance)). Price = USD / native balance."""
    if fund_usd is None or fund_usd != fund_usd:
        return ()
    assets = [a.strip() for a in str(assets_text or "").split(",") if a.strip()]
    prices = {a: usd / bal for a, (usd, bal) in native.items()
              if usd is not None and bal is not None and usd == usd and bal == bal and bal > 0}
    weights = {a: native[a][0] or 0.0 for a in assets if a in native and native[a][0] == native[a][0]}
    total = sum(weights.values())
    if len(assets) <= 1 or total <= 0:
        asset = assets[0] if assets else "USD"
        return (FundAsset(asset, fund_usd, prices.get(asset), asset.upper() in STABLE_ASSETS),)
    return tuple(FundAsset(a, fund_usd * weights.get(a, 0.0) / total, prices.get(a), a.upper() in STABLE_ASSETS)
                 for a in assets)


def _float(value: object) -> float | None:
    """A number, or None for NULL/NaN/NA."""
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return None if number != number else number


def _pools(contracts: pd.DataFrame, members: pd.DataFrame, pools: pd.DataFrame,
           native: pd.DataFrame) -> list[PoolInput]:
    """Contracts assigned to the pools that back them (a contract several pools back is split by their
    funds; a venue with one pool and no membership rows: that pool backs everything)."""
    by_venue: dict[str, list[ContractExposure]] = {}
    for venue, symbol, base, oi in zip(contracts["venue"].astype(str), contracts["symbol"].astype(str),
                                       contracts["base_asset"].astype(str), contracts["oi_usd"].astype(float),
                                       strict=True):
        by_venue.setdefault(venue, []).append(ContractExposure(symbol, base, oi))
    backers_of: dict[tuple[str, str], list[str]] = {}
    for venue, pool_id, symbol in zip(members["venue"].astype(str), members["pool_id"].astype(str),
                                      members["symbol"].astype(str), strict=True):
        backers_of.setdefault((venue, symbol), []).append(pool_id)
    natives: dict[str, dict[str, tuple[float | None, float | None]]] = {}
    for venue, asset, usd, bal in zip(native["venue"].astype(str), native["asset"].astype(str), native["fund_usd"],
                                      native["balance"], strict=True):
        natives.setdefault(venue, {})[asset] = (_float(usd), _float(bal))
    venue_pools: dict[str, list[tuple[str, float | None, str | None]]] = {}
    for venue, pool_id, fund_usd, assets in zip(pools["venue"].astype(str), pools["pool_id"].astype(str),
                                                pools["fund_usd"], pools["assets"], strict=True):
        venue_pools.setdefault(venue, []).append((pool_id, _float(fund_usd), None if assets is None else str(assets)))
    out: list[PoolInput] = []
    for venue in sorted(set(by_venue) | set(venue_pools)):
        contracts_v = by_venue.get(venue, [])
        if venue not in venue_pools:
            out.append(PoolInput(venue, NO_POOL, tuple(contracts_v)))
            continue
        funds = {pool_id: fund or 0.0 for pool_id, fund, _ in venue_pools[venue]}
        assigned: dict[str, list[ContractExposure]] = {pool_id: [] for pool_id in funds}
        uncovered: list[ContractExposure] = []
        for c in contracts_v:
            backers = [p for p in backers_of.get((venue, c.symbol), []) if p in funds]
            if not backers and len(funds) == 1:
                backers = list(funds)
            if not backers:
                uncovered.append(c)
                continue
            total = sum(funds[p] for p in backers)
            for p in backers:
                share = funds[p] / total if total > 0 else 1.0 / len(backers)
                assigned[p].append(ContractExposure(c.symbol, c.base_asset, c.oi_usd * share))
        for pool_id, fund, assets in venue_pools[venue]:
            out.append(PoolInput(venue, pool_id, tuple(assigned[pool_id]),
                                 _fund_assets(fund, assets, natives.get(venue, {}))))
        if uncovered:
            out.append(PoolInput(venue, UNCOVERED, tuple(uncovered)))
    return out


def load_inputs(con_or_db: DbPath | duckdb.DuckDBPyConnection, venues: Sequence[str] | None = None,
                now: datetime | None = None, prior: LeverageDistribution | None = None,
                calibration_days: int = CALIBRATION_DAYS, history_days: int = HISTORY_DAYS,
                min_calibration_days: int | None = None, calibrate_from_history: bool = True,
                calibration_cache: H.CalibrationCache | None = None) -> StressInputs:
    """Everything the stress test reads from the database (independent of the move and the fills): on a
    connection the caller holds (the assessment, in the writer process too) or a brief read-only one."""
    now = now or datetime.now(UTC)
    prior = prior or LeverageDistribution()
    min_days = MIN_CALIBRATION_DAYS if min_calibration_days is None else min_calibration_days
    calibration = H.CalibrationRequest(prior, calibration_days, min_days, calibrate_from_history, calibration_cache)
    if isinstance(con_or_db, duckdb.DuckDBPyConnection):
        return _load(con_or_db, None, venues, now, history_days, calibration)
    with read_connection(con_or_db) as con:
        return _load(con, con_or_db, venues, now, history_days, calibration)


def _load(con: duckdb.DuckDBPyConnection, db: DbPath | None, venues: Sequence[str] | None, now: datetime,
          history_days: int, calibration: H.CalibrationRequest) -> StressInputs:
    with ThreadPoolExecutor(max_workers=2) as workers:
        chosen = list(venues) if venues else [
            r[0] for r in con.execute(
                "SELECT DISTINCT venue FROM open_interest WHERE ts > ? UNION SELECT DISTINCT venue FROM fund_pool_members",
                [now - OI_LOOKBACK]).fetchall()]
        if db is not None:  # the fund-as-of-now queries open their own connections: run them beside ours
            pools_future = workers.submit(analytics.fund_pools_latest, db, chosen)
            native_future = workers.submit(analytics.fund_native_latest, db, chosen)
        contracts = _contracts(con, chosen, now)
        members = _members(con, chosen)
        fitted = H.calibrations(con, chosen, now, calibration)
        hist_since = now - timedelta(days=history_days)
        fund_days = H.fund_days(con, chosen, hist_since)
        liq_days = H.liquidated_days(con, chosen, hist_since)
        if db is not None:
            pools, native = pools_future.result(), native_future.result()
        else:
            pools, native = analytics.fund_pools_latest_on(con, chosen), analytics.fund_native_latest_on(con, chosen)
    inputs = _pools(contracts, members, pools, native)
    calibrations = {v: fitted.get(v) or calibrate([], calibration.prior, calibration.min_days)
                    for v in {p.venue for p in inputs}}
    changes = {(str(k[0]), str(k[1])): g["change_usd"].astype(float).tolist()
               for k, g in fund_days.groupby(["venue", "pool_id"])}
    liquidated = {str(k): g["usd"].astype(float).tolist() for k, g in liq_days.groupby("venue")}
    return StressInputs(now, tuple(inputs), calibrations, changes, liquidated)


def stress_frame(inputs: StressInputs, move_pct: float = 20.0, direction: str = "down",
                 fill: FillModel | None = None, scope: str = "all",
                 distribution: LeverageDistribution | None = None) -> pd.DataFrame:
    """One row per venue × pool (columns ``COLUMNS``), largest consumption first. ``distribution`` replaces
    every venue's calibration ("given")."""
    fill = fill or FillModel()
    rows = []
    for pool in inputs.pools:
        cal = inputs.calibrations.get(pool.venue) or calibrate([], LeverageDistribution())
        dist, label = (distribution, "given") if distribution is not None else (cal.distribution, cal.label)
        r = project(pool, move_pct, direction, dist, fill, scope, label)
        hist = history_stats(inputs.daily_fund_change.get((pool.venue, pool.pool_id), []), r.fund_usd,
                             inputs.daily_liquidated.get(pool.venue, []))
        rows.append({
            "venue": r.venue, "pool_id": r.pool_id, "direction": r.direction, "move_pct": r.move_pct,
            "scope": r.scope, "oi_usd": r.oi_usd, "moved_oi_usd": r.moved_oi_usd, "liquidated_usd": r.liquidated_usd,
            "deficit_rate_pct": r.deficit_rate * 100, "deficit_usd": r.deficit_usd, "fund_usd": r.fund_usd,
            "fund_after_move_usd": r.fund_after_move_usd, "consumption_pct": r.consumption_pct,
            "fund_asset": r.fund_asset, "fund_native": r.fund_native, "consumption_native": r.consumption_native,
            "adl_likely": r.adl_likely, "calibration": r.calibration, "history_days": hist.days,
            "worst_day_loss_usd": hist.worst_day_loss_usd, "p99_day_loss_usd": hist.p99_day_loss_usd,
            "days_covered_p99": hist.days_covered, "worst_day_liquidated_usd": hist.worst_day_liquidated_usd,
        })
    frame = pd.DataFrame(rows, columns=COLUMNS)
    return frame.sort_values(["consumption_pct", "liquidated_usd"], ascending=False, na_position="last",
                             ignore_index=True)


def stress_table(db: DbPath, move_pct: float = 20.0, direction: str = "down", fill_degradation: float | None = None,
                 venues: Sequence[str] | None = None, scope: str = "all", fill: FillModel | None = None,
                 prior: LeverageDistribution | None = None, now: datetime | None = None,
                 calibration_days: int = CALIBRATION_DAYS, history_days: int = HISTORY_DAYS,
                 min_calibration_days: int | None = None, calibrate_from_history: bool = True) -> pd.DataFrame:
    """The stress table (see ``stress_frame``) for one move; ``direction`` "both" gives down then up rows."""
    fill = fill or FillModel()
    if fill_degradation is not None:
        fill = FillModel(fill.calm_deficit_rate, fill_degradation, fill.max_deficit_rate, fill.daily_turnover)
    inputs = load_inputs(db, venues, now, prior, calibration_days, history_days, min_calibration_days,
                         calibrate_from_history)
    directions = ("down", "up") if direction == "both" else (direction,)
    return pd.concat([stress_frame(inputs, move_pct, d, fill, scope) for d in directions], ignore_index=True)


def venue_consumption(frame: pd.DataFrame) -> pd.DataFrame:
    """Per venue × direction: pools summed (deficit over the fund left after the move, over the pools whose
    consumption is known; the others count in liquidated and deficit only), largest consumption first. Columns: venue,
    direction, move_pct, liquidated_usd, deficit_usd, fund_after_move_usd, consumption_pct, adl_likely."""
    columns = ["venue", "direction", "move_pct", "liquidated_usd", "deficit_usd", "fund_after_move_usd",
               "consumption_pct", "adl_likely"]
    if frame.empty:
        return pd.DataFrame(columns=columns)
    known = frame["consumption_pct"].notna()  # a fund and recent OI: pools without either are left out
    funded = frame.assign(funded_deficit=frame["deficit_usd"].where(known),
                          funded_fund=frame["fund_after_move_usd"].where(known))
    out = funded.groupby(["venue", "direction", "move_pct"], as_index=False).agg(
        liquidated_usd=("liquidated_usd", "sum"), deficit_usd=("deficit_usd", "sum"),
        funded_deficit=("funded_deficit", "sum"), fund_after_move_usd=("funded_fund", "sum"),
        funds=("funded_fund", "count"), adl_likely=("adl_likely", lambda s: bool(s.eq(True).any())))
    fund = out["fund_after_move_usd"].where(out["funds"] > 0)
    out["fund_after_move_usd"] = fund
    out["consumption_pct"] = (out["funded_deficit"] / fund * 100).where(fund > 0)
    out["adl_likely"] = out["adl_likely"].where(out["funds"] > 0)
    return out[columns].sort_values("consumption_pct", ascending=False, na_position="last", ignore_index=True)
