"""What the collector is doing, in words: backfill progress and, when there is no data, why (pure).

Built from ``storage.run_state`` frames and the venue catalog, so the banner and the diagnosis are
unit-tested without Streamlit. Exchange error text is returned as data for ``st.dataframe``/``st.text``,
never placed in Markdown.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import pandas as pd

from metrics.formatting import DASH, fmt_age
from records.venue_catalog import VenueInfo

BACKFILL_SESSION = timedelta(hours=2)  # backfill runs this close to the newest one belong to one backfill
BACKFILL_ACTIVE = timedelta(minutes=15)  # a backfill with no run finished for this long is over (or dead)
COLLECTOR_ALIVE = timedelta(minutes=10)  # a poll finished this recently: the collector is running


@dataclass(frozen=True)
class BackfillProgress:
    """Venues whose every backfillable dataset has a finished backfill run in the current session."""

    active: bool
    done: tuple[str, ...] = ()
    pending: tuple[str, ...] = ()
    failed: tuple[str, ...] = ()  # finished, but at least one dataset's run failed

    @property
    def total(self) -> int:
        return len(self.done) + len(self.pending)

    def text(self, names: Mapping[str, str]) -> str:
        waiting = ", ".join(names.get(v, v) for v in self.pending[:6]) + (" …" if len(self.pending) > 6 else "")
        failed = f"; failed: {', '.join(names.get(v, v) for v in self.failed)}" if self.failed else ""
        return (f"Backfill {len(self.done)}/{self.total} venues — still loading history for {waiting}{failed}. "
                "Changes and signals of those venues are held back until their history is in.")


def backfill_progress(runs: pd.DataFrame, info: Mapping[str, VenueInfo], venues: Sequence[str],
                      newest_at: datetime | None, now: datetime) -> BackfillProgress:
    """``runs``: ``storage.run_state.backfill_runs`` since ``newest_at − BACKFILL_SESSION``; ``venues``: the
    venues being collected. Active while a backfill run finished within ``BACKFILL_ACTIVE`` and some
    venue's history is not in yet."""
    if newest_at is None or now - newest_at > BACKFILL_ACTIVE:
        return BackfillProgress(False)
    finished = {(str(r["venue"]), str(r["dataset"])): str(r["status"]) for r in runs.to_dict("records")}
    done, pending, failed = [], [], []
    for venue in venues:
        datasets = info[venue].backfill_datasets if venue in info else ()
        if not datasets:
            continue
        states = [finished.get((venue, d)) for d in datasets]
        if any(s is None for s in states):
            pending.append(venue)
        else:
            done.append(venue)
            if any(s != "ok" for s in states):
                failed.append(venue)
    return BackfillProgress(bool(pending), tuple(done), tuple(pending), tuple(failed))


@dataclass(frozen=True)
class Diagnosis:
    """Why there is no data: the collector's state, which venues answer, their last errors."""

    running: bool
    last_run_at: datetime | None
    reachable: tuple[str, ...]
    unreachable: tuple[str, ...]
    errors: pd.DataFrame  # venue name, polls, succeeded, last error (class: message), when

    def headline(self, now: datetime) -> str:
        total = len(self.reachable) + len(self.unreachable)
        if self.last_run_at is None:
            return "No collector has recorded a poll in this database yet."
        age = fmt_age((now - self.last_run_at).total_seconds())
        state = "The collector is running" if self.running else "The collector is not running"
        return (f"{state} (last poll {age} ago): {len(self.reachable)} of {total} venues reachable "
                f"(a poll succeeded within {fmt_age(COLLECTOR_ALIVE.total_seconds())} of the last one).")


def _when(value: object) -> datetime | None:
    """A timestamp cell as a datetime (None for NULL/NaT)."""
    if value is None or not isinstance(value, datetime | pd.Timestamp) or pd.isna(value):
        return None
    return value.to_pydatetime() if isinstance(value, pd.Timestamp) else value


def diagnose(activity: pd.DataFrame, names: Mapping[str, str], now: datetime) -> Diagnosis:
    """``activity``: ``storage.run_state.poll_activity`` over the last day; a venue is reachable when one
    of its polls succeeded within ``COLLECTOR_ALIVE`` of the collector's newest poll."""
    if activity.empty:
        return Diagnosis(False, None, (), (), pd.DataFrame(columns=["venue", "polls", "succeeded",
                                                                     "last error", "when"]))
    last_at = _when(activity["last_run_at"].max())
    ok_at = [_when(v) for v in activity["last_ok_at"]]
    ok_recently = [t is not None and last_at is not None and t >= last_at - COLLECTOR_ALIVE for t in ok_at]
    venues = [str(v) for v in activity["venue"]]
    reachable = tuple(v for v, ok in zip(venues, ok_recently, strict=True) if ok)
    unreachable = tuple(v for v, ok in zip(venues, ok_recently, strict=True) if not ok)
    rows = []
    for r in activity.sort_values(["ok_runs", "venue"]).to_dict("records"):
        error = DASH
        if isinstance(r["last_error_class"], str) and r["last_error_class"]:
            message = r["last_error_message"]
            error = f"{r['last_error_class']}: {message}" if isinstance(message, str) else r["last_error_class"]
        failed_at = _when(r["last_error_at"])
        when = DASH if failed_at is None else f"{fmt_age((now - failed_at).total_seconds())} ago"
        rows.append({"venue": names.get(str(r["venue"]), str(r["venue"])), "polls": int(r["runs"]),
                     "succeeded": int(r["ok_runs"]), "last error": error, "when": when})
    running = last_at is not None and now - last_at <= COLLECTOR_ALIVE
    return Diagnosis(running, last_at, reachable, unreachable, pd.DataFrame(rows))
