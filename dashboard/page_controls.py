"""A page's own controls (beyond the sidebar's range and venues), kept in the URL so a link reopens the
page as it was shown; and the chart zoom control built on them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

import streamlit as st

from metrics.assessment import Assessment


def url_controls(defaults: Mapping[str, object], choices: Mapping[str, Sequence[str]] | None = None) -> None:
    """A page's own controls live in the URL too: on the first run that shows them they start from the
    URL's value (validated: booleans 0/1, choices from ``choices``; anything else keeps the default), then
    the URL follows them (``sync_controls``). Never free text from the URL."""
    choices = choices or {}
    for key, default in defaults.items():
        if key in st.session_state:
            continue
        raw = st.query_params.get(key)
        value = default
        if raw is not None and isinstance(default, bool):
            value = {"1": True, "0": False}.get(raw, default)
        elif raw is not None and isinstance(default, list):
            value = [v for v in raw.split(",") if v in choices.get(key, ())]
        elif raw is not None and key in choices and raw in choices[key]:
            value = raw
        st.session_state[key] = value


def sync_controls(keys: Sequence[str]) -> None:
    for key in keys:
        if key not in st.session_state:
            continue
        value = st.session_state[key]
        text = ("1" if value else "0") if isinstance(value, bool) else \
            ",".join(map(str, value)) if isinstance(value, list) else str(value)
        if st.query_params.get(key) != text:
            st.query_params[key] = text


ZOOMS = {"range": "Selected range", "signal": "Since the signal started"}


def zoom_control(key: str, assessments: Sequence[Assessment]) -> datetime | None:
    """'Since the signal started': the x-axis starts a little before the earliest ``state_since`` of the
    shown venues that are not healthy (None: show the whole range)."""
    url_controls({key: "range"}, {key: list(ZOOMS)})
    choice = st.radio("Zoom", list(ZOOMS), format_func=ZOOMS.__getitem__, key=key, horizontal=True,
                      label_visibility="collapsed")
    sync_controls([key])
    if choice != "signal":
        return None
    starts = [a.state_since for a in assessments if a.state_since is not None and a.state not in ("healthy", "no_fund")]
    if not starts:
        st.caption("No signal with a known start among these venues: showing the whole range.")
        return None
    start = min(starts)
    end = max(a.as_of for a in assessments)
    return start - max((end - start) * 0.15, timedelta(minutes=30))
