"""How values and text leave the dashboard: table cells, assessment-state badges and fills, Markdown- and
Plotly-safe text, CSV downloads.

Text that came from an exchange (error messages, pool ids, symbols) is only ever shown through
``st.dataframe``/``st.text``/Plotly (escaped), never through markdown with HTML enabled.
"""

from __future__ import annotations

import html
import re
from datetime import date

import numpy as np
import pandas as pd
import streamlit as st

from dashboard.model import is_missing
from metrics.csv_safe import to_csv_bytes
from metrics.formatting import DASH

# state -> (Markdown colour of the badge, table cell fill): critical red, stressed orange, watch amber,
# blind violet (Backstop cannot see), healthy and no-fund neutral
STATE_COLOURS = {"critical": "red", "stressed": "orange", "watch": "yellow", "blind": "violet",
                 "healthy": "gray", "no_fund": "gray"}
STATE_FILL = {"critical": "rgba(198, 40, 40, 0.30)", "stressed": "rgba(239, 108, 0, 0.28)",
              "watch": "rgba(255, 193, 7, 0.30)", "blind": "rgba(123, 31, 162, 0.20)",
              "backfilling": "rgba(120, 120, 120, 0.15)"}


def state_badge(state: str) -> str:
    """A coloured Markdown badge for an assessment state (our own words only)."""
    from metrics.assessment import state_label

    return f":{STATE_COLOURS.get(state, 'gray')}-background[**{state_label(state).upper()}**]"


_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$:=&\"'/@^%;?])")


def md_escape(text: object) -> str:
    """Text from an exchange, an alert or a user, made inert for Markdown (``st.markdown``, ``st.table``
    cells): every punctuation mark backslash-escaped, so no link, image, autolink, directive
    (``:red[...]``, ``:material/...:``), LaTeX or HTML can form; newlines become spaces."""
    return _MD_SPECIAL.sub(r"\\\1", " ".join(str(text).split()))


_TIME_LIKE = (date, str, int, float, np.integer, np.datetime64)  # what pd.Timestamp() converts (datetime is a date)


def fmt_ts(value: object) -> str:
    """'2026-11-26 12:03 UTC'; missing -> '—'."""
    if is_missing(value):
        return DASH
    if not isinstance(value, _TIME_LIKE):
        raise TypeError(f"not a time: {value!r}")
    ts = pd.Timestamp(value)
    return f"{ts.tz_convert('UTC'):%Y-%m-%d %H:%M} UTC" if ts.tzinfo else f"{ts:%Y-%m-%d %H:%M} UTC"


def fmt_text(value: object) -> str:
    """Text cells: '—' for missing, never 'None' or 'nan'."""
    if is_missing(value):
        return DASH
    return str(value)


def plain(text: object) -> str:
    """Exchange text for Plotly labels: Plotly reads a subset of HTML in names and hover text, so escape it."""
    return html.escape(str(text), quote=False)


def download(frame: pd.DataFrame, name: str, key: str, label: str = "Download CSV") -> None:
    """A CSV of exactly ``frame`` (text cells neutralised against spreadsheet formulas)."""
    safe = re.sub(r"[^a-z0-9_-]+", "-", name.lower()).strip("-")
    st.download_button(label, data=to_csv_bytes(frame), file_name=f"backstop-{safe}.csv", mime="text/csv",
                       key=f"dl-{key}", on_click="ignore", icon=":material/download:")

