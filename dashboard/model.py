"""Assemble what the pages show from the (small) query results: pure functions over DataFrames, so the
numbers on screen are unit-tested without Streamlit."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import SupportsFloat

import pandas as pd

from metrics.assessment import Assessment
from metrics.coverage import coverage_series
from metrics.divergence import DivergenceRule, robust_z_frame
from metrics.formatting import fmt_amount, fmt_duration
from metrics.health import (
    DatasetState,
    freshness,
)
from records.venue_catalog import VenueInfo


def is_missing(value: object) -> bool:
    """One table cell is None, NaN, NaT or pd.NA (``pd.isna`` on a scalar)."""
    # pandas-stubs list only known scalar types for isna(); at runtime it takes any object (a
    # DataFrame row's attributes are typed as a union that includes np.bool_, Period and Interval)
    return value is None or bool(pd.isna(value))  # type: ignore[call-overload]


def as_float(value: object) -> float:
    """A numeric cell (int, float, numpy number, Decimal) as a float."""
    if not isinstance(value, SupportsFloat):
        raise TypeError(f"not a number: {value!r}")
    return float(value)


def _num(value: object) -> float | None:
    if value is None:
        return None
    try:
        out = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return out if math.isfinite(out) else None


def native_text(assessments: Sequence[Assessment], venue: str, top: int = 3) -> str:
    """'857.00 M USDT + 300.00 M USDC + 61.70 BTC': the venue's pool assessments summed per asset, largest
    first by USD ('+ n more'). The same pools as the assessment's USD figure beside it, so the two agree."""
    by_asset: dict[str, list[float]] = {}
    for a in assessments:
        if a.venue == venue and not a.is_venue and a.fund_native is not None:
            native_usd = by_asset.setdefault(a.asset, [0.0, 0.0])
            native_usd[0] += a.fund_native
            native_usd[1] += a.fund_usd or 0.0
    if not by_asset:
        return "—"
    ranked = sorted(by_asset.items(), key=lambda item: (-item[1][1], item[0]))
    parts = [fmt_amount(native, asset) for asset, (native, _usd) in ranked[:top]]
    more = len(ranked) - top
    return " + ".join(parts) + (f" + {more} more" if more > 0 else "")


def expected_age_s(info: VenueInfo, dataset: str, intervals: Mapping[str, Mapping[str, float]]) -> float:
    """How old a value may normally be: the venue's own cadence or our poll interval, whichever is longer."""
    poll = float(intervals.get(info.key, {}).get(dataset, 0) or 0)
    return max(info.cadence(dataset), poll)


def coverage_frame(funds: pd.DataFrame, oi: pd.DataFrame, keys: Sequence[str]) -> pd.DataFrame:
    """Join fund and OI grids on keys + ts and add coverage_pct (fund ÷ OI × 100)."""
    merged = funds[[*keys, "ts", "fund_usd"]].merge(oi[[*keys, "ts", "oi_usd"]], on=[*keys, "ts"], how="outer")
    merged["coverage_pct"] = coverage_series(merged["fund_usd"], merged["oi_usd"])
    return merged.sort_values([*keys, "ts"]).reset_index(drop=True)


def rolling_venue_change(pools: pd.DataFrame, window_s: int, step_s: int) -> pd.DataFrame:
    """Each venue's fund change over ``window_s`` at every grid point, weighed as the assessments weigh it
    (``storage.fund_inputs.venue_changes``): the mean of its pools' native changes, each weighted by its
    USD value at the window start (else now). A pool without a positive base balance or any USD value takes
    no part, so a BTC fund is not moved by the BTC price and a pool's first valuation is not a jump.
    ``pools``: ``fund_series(by="pool_asset")`` on a grid whose step divides the window."""
    if window_s % step_s:
        raise ValueError("the grid step must divide the window")
    keys = ["venue", "pool_id", "asset"]
    frame = pools.sort_values([*keys, "ts"]).copy()
    grouped = frame.groupby(keys)
    lag = window_s // step_s
    base_balance = grouped["balance"].shift(lag)
    weight = grouped["fund_usd"].shift(lag).fillna(frame["fund_usd"])
    change = frame["balance"] / base_balance.where(base_balance > 0) - 1.0
    usable = change.notna() & (weight > 0)
    parts = pd.DataFrame({"venue": frame["venue"], "ts": frame["ts"], "weighted": weight * change,
                          "weight": weight})[usable]
    out = parts.groupby(["venue", "ts"], as_index=False)[["weighted", "weight"]].sum()
    out["change_pct"] = out["weighted"] / out["weight"] * 100.0
    return out[["venue", "ts", "change_pct"]].sort_values(["venue", "ts"]).reset_index(drop=True)


def robust_z_over_time(changes: pd.DataFrame, rule: DivergenceRule | None = None) -> pd.DataFrame:
    """Robust z of each venue's change at each instant, against that instant's cross-venue median."""
    frame = robust_z_frame(changes[["ts", "venue", "change_pct"]], rule)
    return frame[["ts", "venue", "change_pct", "median_pct", "z", "flagged"]].reset_index(drop=True)


def dataset_states(health: pd.DataFrame, info: Mapping[str, VenueInfo], now: datetime,
                   intervals: Mapping[str, Mapping[str, float]] | None = None) -> pd.DataFrame:
    """The collector-health table: per venue × dataset, data age vs expected age and freshness."""
    intervals = intervals or {}
    frame = health.copy()
    if frame.empty:
        return frame.assign(name=[], age_s=[], expected_s=[], freshness=[])
    frame["name"] = [info[v].display_name if v in info else v for v in frame["venue"]]
    ages = []
    for ts in frame["newest_ts"]:
        ages.append(None if ts is None or pd.isna(ts) else (now - ts.to_pydatetime()).total_seconds())
    frame["age_s"] = ages
    frame["expected_s"] = [expected_age_s(info[v], d, intervals) if v in info else 3_600.0
                           for v, d in zip(frame["venue"], frame["dataset"], strict=True)]
    frame["freshness"] = [freshness(a, e) for a, e in zip(frame["age_s"], frame["expected_s"], strict=True)]
    frame["expected"] = [fmt_duration(e) for e in frame["expected_s"]]
    return frame


def states_for_blindness(frame: pd.DataFrame, simulated: bool = False) -> list[DatasetState]:
    """Dataset states for the blindness banner. On simulated data venue time is not wall time (a demo
    market replays the last day at 720x), so there a dataset whose last poll succeeded counts as fresh:
    only failing polls make Backstop blind."""
    return [DatasetState(str(r.venue), str(r.dataset),
                         0.0 if simulated and r.last_status == "ok" else _num(r.age_s), as_float(r.expected_s),
                         None if is_missing(r.last_status) else str(r.last_status),
                         None if is_missing(r.last_error_class) else str(r.last_error_class))
            for r in frame.itertuples()]
