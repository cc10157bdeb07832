"""Assemble what the pages show from the (small) query results: pure functions over DataFrames, so the
numbers on screen are unit-tested without Streamlit."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import SupportsFloat

import pandas as pd

from metrics.coverage import coverage_pct, coverage_series
from metrics.divergence import WINDOWS_S, DivergenceRule, divergence, explain, robust_z_frame
from metrics.drawdown import drawdown_pct, pct_change
from metrics.formatting import fmt_amount, fmt_duration, fmt_pct
from metrics.health import (
    DatasetState,
    HealthInputs,
    HealthResult,
    HealthRules,
    freshness,
    health_state,
)
from records.venue_catalog import VenueInfo

CHANGE_OFFSETS_S: dict[str, int] = {"1h": 3_600, "8h": 28_800, "24h": 86_400, "7d": 604_800}


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


def native_text(native: pd.DataFrame, venue: str, top: int = 3) -> str:
    """'857.00 M USDT + 300.00 M USDC + 61.70 BTC' (largest first by USD; '+ n more')."""
    rows = native[native["venue"] == venue]
    if rows.empty:
        return "—"
    parts = [fmt_amount(_num(r.balance), str(r.asset)) for r in rows.head(top).itertuples()]
    more = len(rows) - top
    return " + ".join(parts) + (f" + {more} more" if more > 0 else "")


def expected_age_s(info: VenueInfo, dataset: str, intervals: Mapping[str, Mapping[str, float]]) -> float:
    """How old a value may normally be: the venue's own cadence or our poll interval, whichever is longer."""
    poll = float(intervals.get(info.key, {}).get(dataset, 0) or 0)
    return max(info.cadence(dataset), poll)


def change_note(row: Mapping[str, object], label: str) -> str:
    """What a change leaves out: pools without a USD value at one end (history before the first price)."""
    left_out = int(_num(row.get(f"change_{label}_excluded")) or 0)
    base = "Change of the USD total, pools valued at both ends only."
    return base if not left_out else f"{base} {left_out} pool(s) without a USD value at one end left out."


def venue_summary(venues: Sequence[str], info: Mapping[str, VenueInfo], asof: pd.DataFrame,
                  native: pd.DataFrame, series_30d: pd.DataFrame, series_8h: pd.DataFrame,
                  oi: pd.DataFrame, liquidations: pd.DataFrame | None, now: datetime,
                  intervals: Mapping[str, Mapping[str, float]] | None = None) -> pd.DataFrame:
    """One row per venue: fund now, changes (1 h … 7 d, only where the venue's cadence allows),
    drawdowns from the 8 h / 30 d max, OI, coverage, 24 h liquidations, data age and freshness."""
    intervals = intervals or {}
    rows = []
    for venue in venues:
        vi = info[venue]
        cadence = expected_age_s(vi, "funds", intervals)
        a = asof[asof["venue"] == venue]
        latest = a[a["offset_s"] == 0]
        fund = _num(latest["fund_usd"].iloc[0]) if not latest.empty else None
        latest_ts = latest["latest_ts"].iloc[0] if not latest.empty else None
        row: dict[str, object] = {"venue": venue, "name": vi.display_name, "fund_usd": fund,
                                  "native": native_text(native, venue)}
        for label, offset in CHANGE_OFFSETS_S.items():
            # like for like (storage.analytics.fund_asof): pools without a USD value at either end are left
            # out of the change and counted, so a venue's total does not jump when valuation starts
            past = a[a["offset_s"] == offset]
            then = _num(past["change_then_usd"].iloc[0]) if not past.empty else None
            now_like = _num(past["change_now_usd"].iloc[0]) if not past.empty else None
            row[f"change_{label}_pct"] = pct_change(now_like, then) if cadence <= offset else None
            row[f"change_{label}_excluded"] = int(_num(past["change_excluded"].iloc[0]) or 0) if not past.empty else 0
        s30 = series_30d[series_30d["venue"] == venue]["fund_usd"].tolist()
        s8 = series_8h[series_8h["venue"] == venue]["fund_usd"].tolist()
        row["drawdown_30d_pct"] = drawdown_pct(fund, s30) if s30 else None
        row["drawdown_8h_pct"] = drawdown_pct(fund, s8) if s8 and cadence <= 8 * 3_600 else None
        o = oi[oi["venue"] == venue]
        oi_usd = _num(o["oi_usd"].iloc[0]) if not o.empty else None
        row["oi_usd"] = oi_usd
        row["coverage_pct"] = coverage_pct(fund, oi_usd)
        if liquidations is not None:
            lq = liquidations[liquidations["venue"] == venue]
            for side in ("long", "short"):
                row[f"liq_{side}_count"] = int(lq[f"{side}_count"].iloc[0]) if not lq.empty else 0
                row[f"liq_{side}_usd"] = _num(lq[f"{side}_usd"].iloc[0]) if not lq.empty else None
        age = (now - latest_ts.to_pydatetime()).total_seconds() if latest_ts is not None and not pd.isna(latest_ts) else None
        row["fund_ts"] = latest_ts
        row["age_s"] = age
        row["expected_age_s"] = cadence
        row["freshness"] = freshness(age, cadence)
        rows.append(row)
    return pd.DataFrame(rows)


def divergence_table(summary: pd.DataFrame, rule: DivergenceRule | None = None) -> pd.DataFrame:
    """Per window × venue: change vs cross-venue median and robust z. A venue takes part in a window only
    if its fund can change within it (cadence ≤ window) and its data is not stale."""
    rule = rule or DivergenceRule()
    out = []
    for label, window_s in WINDOWS_S.items():
        column = f"change_{label.replace(' ', '')}_pct"
        usable = summary[(summary["freshness"] != "stale") & (summary["expected_age_s"] <= window_s)]
        changes = {str(r.venue): _num(getattr(r, column)) for r in usable.itertuples()}
        names = dict(zip(summary["venue"], summary["name"], strict=True))
        for d in divergence(changes, window_s, rule):
            out.append({"window": label, "window_s": window_s, "venue": d.venue, "name": names[d.venue],
                        "change_pct": d.change_pct, "median_pct": d.median_pct, "z": d.z,
                        "flagged": d.flagged, "venues_compared": d.n_venues,
                        "explanation": explain(d, names[d.venue])})
    return pd.DataFrame(out, columns=["window", "window_s", "venue", "name", "change_pct", "median_pct", "z",
                                      "flagged", "venues_compared", "explanation"])


def venue_health(summary: pd.DataFrame, div: pd.DataFrame, alerts_by_venue: Mapping[str, int] | None = None,
                 rules: HealthRules | None = None) -> dict[str, HealthResult]:
    alerts_by_venue = alerts_by_venue or {}
    out = {}
    for r in summary.itertuples():
        flags = div[(div["venue"] == r.venue) & div["flagged"]]
        inputs = HealthInputs(
            change_24h_pct=_num(r.change_24h_pct), drawdown_8h_pct=_num(r.drawdown_8h_pct),
            drawdown_30d_pct=_num(r.drawdown_30d_pct),
            divergence_flags=tuple(f"{f.window}: z {f.z:+.1f}".replace("-", "\u2212") for f in flags.itertuples()),
            stale=str(r.freshness) == "stale", firing_alerts=int(alerts_by_venue.get(str(r.venue), 0)),
        )
        out[str(r.venue)] = health_state(inputs, rules)
    return out


def signals(summary: pd.DataFrame, div: pd.DataFrame, rules: HealthRules | None = None) -> pd.DataFrame:
    """Active divergence and drawdown signals, worst first, each with a plain-text explanation."""
    rules = rules or HealthRules()
    rows = []
    for f in div[div["flagged"]].itertuples():
        rows.append({"signal": "divergence", "venue": f.venue, "window": f.window, "value_pct": f.change_pct,
                     "z": f.z, "explanation": f.explanation})
    for r in summary.itertuples():
        for column, window, limit in (("drawdown_8h_pct", "8 h", rules.watch_drawdown_8h_pct),
                                      ("drawdown_30d_pct", "30 d", rules.watch_drawdown_30d_pct)):
            value = _num(getattr(r, column))
            if value is not None and value <= limit:
                rows.append({"signal": "drawdown", "venue": r.venue, "window": window, "value_pct": value,
                             "z": None, "explanation": f"{r.name}'s fund is {fmt_pct(abs(value))} below its {window} max."})
    frame = pd.DataFrame(rows, columns=["signal", "venue", "window", "value_pct", "z", "explanation"])
    return frame.sort_values("value_pct", key=lambda s: s.abs(), ascending=False).reset_index(drop=True)


def coverage_frame(funds: pd.DataFrame, oi: pd.DataFrame, keys: Sequence[str]) -> pd.DataFrame:
    """Join fund and OI grids on keys + ts and add coverage_pct (fund ÷ OI × 100)."""
    merged = funds[[*keys, "ts", "fund_usd"]].merge(oi[[*keys, "ts", "oi_usd"]], on=[*keys, "ts"], how="outer")
    merged["coverage_pct"] = coverage_series(merged["fund_usd"], merged["oi_usd"])
    return merged.sort_values([*keys, "ts"]).reset_index(drop=True)


def rolling_change(series: pd.DataFrame, window_s: int, step_s: int, keys: Sequence[str] = ("venue",),
                   ) -> pd.DataFrame:
    """Change over ``window_s`` at every grid point (needs step dividing the window), in percent."""
    if window_s % step_s:
        raise ValueError("the grid step must divide the window")
    lag = window_s // step_s
    frame = series.sort_values([*keys, "ts"]).copy()
    previous = frame.groupby(list(keys))["fund_usd"].shift(lag)
    frame["change_pct"] = (frame["fund_usd"] - previous) / previous.where(previous > 0) * 100.0
    return frame.dropna(subset=["change_pct"])


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
