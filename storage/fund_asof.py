"""The one definition of "a fund's value as of t", as SQL fragments every fund query composes.

A series (venue × pool × asset) has a value at t when it has a point at or before t that is no older
than ``GONE_MULTIPLE`` × its cadence; the value is that newest point. Its cadence is the venue's expected
publishing interval or the gap between its last two points, whichever is longer (Bybit's shared pools are
daily, its isolated ones per minute). A series silent for longer has stopped being published and drops
out of totals instead of reading as a fall to zero. The dashboard's totals (``storage.analytics``), the
alert inputs (``storage.fund_inputs``, ``storage.coverage_inputs``) and the assessments all use these
fragments.
"""

from __future__ import annotations

from datetime import timedelta

from records.vocabulary import default_cadence_s

GONE_MULTIPLE = 3.0
DEFAULT_FUND_CADENCE_S = default_cadence_s("funds")  # a venue we know nothing about publishes daily
# the longest a series may stay silent at the default cadence (the dashboard's lookback margin)
DEFAULT_MAX_SILENCE = timedelta(seconds=GONE_MULTIPLE * DEFAULT_FUND_CADENCE_S)


def series_cadence_sql(expected_s: str, last_gap_s: str) -> str:
    """SQL: a series' cadence in seconds from the venue's expected interval and its last gap."""
    return f"greatest({expected_s}, coalesce({last_gap_s}, 0))"


def is_current_sql(point_ts: str, at: str, cadence_s: str) -> str:
    """SQL: the point at ``point_ts`` (≤ ``at``) still gives the series' value at ``at``."""
    return f"(epoch({at}) - epoch({point_ts}) <= {GONE_MULTIPLE!r} * ({cadence_s}))"
