"""Human formatting of money, percentages, ages and native balances (pure; the dashboard's one style).

Negative numbers use the typographic minus (−) so a sign is never mistaken for a hyphen, and there is a
thin gap before units ("−18.0 %", "$1.23 B") as in the rest of the product's text.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime, timedelta

MINUS = "\u2212"
DASH = "—"


def _finite(value: float | None) -> bool:
    return value is not None and isinstance(value, int | float) and math.isfinite(value)


def _signed(text: str) -> str:
    return MINUS + text[1:] if text.startswith("-") else text


def fmt_usd(value: float | None, digits: int = 2) -> str:
    """$1.23 B / $456.7 M / $12.3 K / $950; None -> —."""
    if not _finite(value):
        return DASH
    assert value is not None
    sign = MINUS if value < 0 else ""
    v = abs(value)
    for unit, size in (("T", 1e12), ("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if v >= size:
            return f"{sign}${v / size:.{digits}f} {unit}"
    return f"{sign}${v:,.0f}"


def fmt_amount(value: float | None, asset: str) -> str:
    """A native balance with sensible precision: 61.73 BTC, 793.9 M USDT."""
    if not _finite(value):
        return DASH
    assert value is not None
    v = abs(value)
    sign = MINUS if value < 0 else ""
    for unit, size in (("B", 1e9), ("M", 1e6)):
        if v >= size:
            return f"{sign}{v / size:.2f} {unit} {asset}"
    if v >= 1000:
        return f"{sign}{v:,.0f} {asset}"
    if v >= 1:
        return f"{sign}{v:,.2f} {asset}"
    return f"{sign}{v:.6g} {asset}"


def fmt_pct(value: float | None, digits: int = 1, signed: bool = False) -> str:
    """A percentage given in percent units: fmt_pct(-18.04) -> '−18.0 %'; signed adds '+'."""
    if not _finite(value):
        return DASH
    assert value is not None
    text = f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"
    if float(text.replace("+", "").replace("-", "") or 0) == 0:
        text = text.replace("-", "+" if signed else "")
    return _signed(text) + " %"


def fmt_age(seconds: float | None) -> str:
    """How old a value is: '45 s', '12 min', '3.5 h', '2.1 d'."""
    if not _finite(seconds):
        return DASH
    assert seconds is not None
    s = max(0.0, seconds)
    if s < 90:
        return f"{s:.0f} s"
    if s < 90 * 60:
        return f"{s / 60:.0f} min"
    if s < 48 * 3600:
        return f"{s / 3600:.1f} h"
    return f"{s / 86400:.1f} d"


def fmt_bytes(value: float | None) -> str:
    """A file size in binary units: 912 B, 8.3 MiB, 1.2 GiB."""
    if not _finite(value):
        return DASH
    assert value is not None
    size, sign = abs(float(value)), "-" if value < 0 else ""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{sign}{size:.0f} {unit}" if unit == "B" else f"{sign}{size:.1f} {unit}"
        size /= 1024
    return DASH  # pragma: no cover - the loop always returns


def fmt_duration(seconds: float) -> str:
    """A window or cadence: 3600 -> '1 h', 86400 -> '24 h', 604800 -> '7 d', 60 -> '1 min'."""
    td = timedelta(seconds=seconds)
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    if seconds <= 2 * 86400 and seconds % 3600 == 0:
        return f"{int(td.total_seconds() // 3600)} h"
    return f"{seconds / 86400:.0f} d"


# -- alert sentences (the alert rules use the same module: one style, one place) ---------------------------
def fmt_signed(value: float, digits: int = 1) -> str:
    """Always signed, real minus, no sign on zero: -22.43 -> '−22.4', 3 -> '+3.0', 0 -> '0.0'."""
    text = f"{abs(value):.{digits}f}"
    if float(text) == 0:
        return text
    return (MINUS if value < 0 else "+") + text


def fmt_number(value: float, digits: int = 3) -> str:
    """Fixed decimals with a real minus sign and no plus: -0.26 -> '−0.260'."""
    return fmt_signed(value, digits).lstrip("+")


def fmt_change_pct(value: float, digits: int = 1) -> str:
    """A change in percent, always signed: '−22.4 %', '+3.0 %', '0.0 %'."""
    return f"{fmt_signed(value, digits)} %"


def fmt_compact(value: float) -> str:
    """A bare quantity in a sentence: 412_100_000 -> '412.1 M'; 61.73 -> '61.73'; real minus sign."""
    sign = MINUS if value < 0 else ""
    size = abs(value)
    for limit, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "K")):
        if size >= limit:
            return f"{sign}{size / limit:.1f} {suffix}"
    if size == 0:
        return "0"
    return f"{sign}{size:.4g}"


def fmt_window(hours: float) -> str:
    """A look-back given in hours: 8 -> '8 h', 168 -> '7 d', 0.5 -> '30 min'."""
    if hours >= 48 and hours % 24 == 0:
        return f"{hours / 24:g} d"
    if hours >= 1:
        return f"{hours:g} h"
    return f"{hours * 60:g} min"


def fmt_time(ts: datetime | None) -> str:
    return ts.strftime("%Y-%m-%d %H:%M UTC") if ts else "?"


def iso_or_none(ts: datetime | None) -> str | None:
    """A timestamp as ISO text for JSON (an alert's ``metrics``), None kept as None."""
    return ts.isoformat() if ts else None


def venue_label(labels: Mapping[str, str], venue: str) -> str:
    return labels.get(venue) or venue


def pool_name(pool_id: str, asset: str) -> str:
    """'USDT pool' when the pool id adds nothing, else 'USDT pool SWAP:BTC-USDT' (shortened)."""
    if pool_id in ("", asset):
        return f"{asset} pool"
    short = pool_id if len(pool_id) <= 28 else pool_id[:27] + "…"
    return f"{asset} pool {short}"
