"""CSV bytes of exactly the data behind a chart or table, safe to open in a spreadsheet.

A text cell starting with = + - @ TAB or CR would be read as a formula by Excel/LibreOffice (CSV
injection); such cells get a leading apostrophe. Numbers stay numbers (a negative number is not text),
and timestamps are written as UTC ISO-8601.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def neutralise_cell(value: Any) -> Any:
    """Prefix ' to a string that a spreadsheet would evaluate; anything else unchanged."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def safe_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy with text cells neutralised (object/string columns only) and tz-aware times as ISO UTC."""
    out = frame.copy()
    out.columns = [str(neutralise_cell(str(c))) for c in out.columns]
    for name in out.columns:
        column = out[name]
        if isinstance(column.dtype, pd.DatetimeTZDtype):
            out[name] = column.dt.tz_convert("UTC").dt.strftime("%Y-%m-%dT%H:%M:%SZ")
        elif pd.api.types.is_datetime64_any_dtype(column.dtype):
            out[name] = column.dt.strftime("%Y-%m-%dT%H:%M:%S")
        elif column.dtype == object or pd.api.types.is_string_dtype(column.dtype):
            out[name] = column.map(neutralise_cell)
    return out


def to_csv_bytes(frame: pd.DataFrame) -> bytes:
    """UTF-8 CSV of ``frame`` after ``safe_frame`` (no index)."""
    return safe_frame(frame).to_csv(index=False).encode("utf-8")
