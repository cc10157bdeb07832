"""CSV bytes of exactly the data behind a chart or table, safe to open in a spreadsheet.

A text cell starting with = + - @ TAB or CR would be read as a formula by Excel/LibreOffice (CSV
injection); such cells get a leading apostrophe - unless the whole cell is a plain number such as a raw
``-0.00081069`` or ``-7.5e-07``, which a spreadsheet reads as that number (an apostrophe would corrupt it).
The rule is written once, as two RE2-compatible patterns, so the DuckDB export (storage.export) applies
exactly the same test as the dashboard's downloads. Timestamps are written as UTC ISO-8601.
"""

from __future__ import annotations

import re
from typing import Any

import pandas as pd

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
#: a cell a spreadsheet may evaluate (Python ``re`` and DuckDB ``regexp_matches`` read it alike)
FORMULA_START_PATTERN = r"^[=+\-@\t\r]"
#: a plain decimal number (optional sign, digits, optional fraction and exponent); matched against the
#: WHOLE cell (Python ``re.fullmatch``, DuckDB ``regexp_full_match``), so "-1\n" or "-2+3" never pass
PLAIN_NUMBER_PATTERN = r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?"
_FORMULA_START_RE = re.compile(FORMULA_START_PATTERN)
_PLAIN_NUMBER_RE = re.compile(PLAIN_NUMBER_PATTERN)


def needs_neutralising(text: str) -> bool:
    """True for text a spreadsheet would evaluate as a formula; never for a plain number."""
    return bool(_FORMULA_START_RE.search(text)) and not _PLAIN_NUMBER_RE.fullmatch(text)


def neutralise_cell(value: Any) -> Any:
    """Prefix ' to a string that a spreadsheet would evaluate; anything else unchanged."""
    if isinstance(value, str) and needs_neutralising(value):
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
