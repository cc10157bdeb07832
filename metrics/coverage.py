"""Coverage: how much of the open interest a fund could absorb (fund USD ÷ OI USD, in percent)."""

from __future__ import annotations

import math

import pandas as pd


def coverage_pct(fund_usd: float | None, oi_usd: float | None) -> float | None:
    """fund ÷ OI × 100; None when either side is unknown or OI is not positive."""
    if fund_usd is None or oi_usd is None:
        return None
    if not (math.isfinite(fund_usd) and math.isfinite(oi_usd)) or oi_usd <= 0:
        return None
    return fund_usd / oi_usd * 100.0


def coverage_series(fund_usd: pd.Series, oi_usd: pd.Series) -> pd.Series:
    """Element-wise ``coverage_pct`` (NaN where undefined), for aligned series."""
    fund = pd.to_numeric(fund_usd, errors="coerce").astype(float)
    oi = pd.to_numeric(oi_usd, errors="coerce").astype(float)
    return (fund / oi.where(oi > 0)) * 100.0
