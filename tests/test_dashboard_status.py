"""Run-mode diagnosis and backfill progress, from run rows written to a real DuckDB file through Store."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from backstop.catalog import catalog
from backstop.service import cycle_summary
from collectors.base import Batch
from collectors.runner import RunOutcome
from dashboard.status import backfill_progress, diagnose
from storage import run_state
from storage.batch_writes import RunRecord
from storage.writer import Store

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def _run(store: Store, venue: str, dataset: str, kind: str, at: datetime, ok: bool, message: str = "") -> None:
    store.write(Batch(), run=RunRecord(uuid.uuid4().hex, venue, dataset, kind, at - timedelta(seconds=1), at,
                                       "ok" if ok else "error", None if ok else "VenueUnavailable",
                                       None if ok else message, 1, 0), fetched_at=at)


def test_no_venue_reachable_is_diagnosed_with_the_last_errors(tmp_path: Path) -> None:
    store = Store(tmp_path / "runs.duckdb")
    for k in range(3):
        for venue in ("binance", "okx"):
            _run(store, venue, "funds", "poll", NOW - timedelta(seconds=30 * k), False,
                 f"DNS lookup failed for {venue}.example")
    names = {k: v.display_name for k, v in catalog(["binance", "okx"]).items()}
    found = diagnose(run_state.poll_activity(tmp_path / "runs.duckdb", NOW - timedelta(days=1)), names, NOW)
    assert found.running and found.reachable == () and set(found.unreachable) == {"binance", "okx"}
    assert found.headline(NOW).startswith("The collector is running (last poll 0 s ago): 0 of 2 venues reachable")
    row = found.errors.set_index("venue").loc["OKX"]
    assert row["polls"] == 3 and row["succeeded"] == 0
    assert row["last error"] == "VenueUnavailable: DNS lookup failed for okx.example"
    # an hour later, with no new poll: the collector is not running
    assert not diagnose(run_state.poll_activity(tmp_path / "runs.duckdb", NOW - timedelta(days=1)), names,
                        NOW + timedelta(hours=1)).running


def test_missing_database_gives_an_empty_diagnosis(tmp_path: Path) -> None:
    activity = run_state.poll_activity(tmp_path / "none.duckdb", NOW)
    assert activity.empty and list(activity.columns) == run_state.ACTIVITY_COLUMNS
    assert diagnose(activity, {}, NOW).headline(NOW) == "No collector has recorded a poll in this database yet."
    assert not (tmp_path / "none.duckdb").exists()


def test_backfill_progress_counts_venues_whose_history_is_in(tmp_path: Path) -> None:
    db = tmp_path / "bf.duckdb"
    store = Store(db)
    info = catalog(["okx", "gate", "bitmex", "kucoinfutures"])
    assert info["okx"].backfill_datasets and not info["kucoinfutures"].backfill_datasets
    for dataset in info["okx"].backfill_datasets:
        _run(store, "okx", dataset, "backfill", NOW - timedelta(minutes=1), True)
    _run(store, "gate", "funds", "backfill", NOW - timedelta(minutes=2), False, "503")
    _run(store, "bitmex", "funds", "backfill", NOW, True)  # bitmex still has funding to do
    newest = run_state.newest_backfill_at(db)
    assert newest == NOW
    runs = run_state.backfill_runs(db, NOW - timedelta(hours=2))
    progress = backfill_progress(runs, info, ["okx", "gate", "bitmex", "kucoinfutures"], newest, NOW)
    assert progress.active and progress.done == ("okx", "gate") and progress.pending == ("bitmex",)
    assert progress.failed == ("gate",) and progress.total == 3  # kucoinfutures has nothing to backfill
    text = progress.text({"okx": "OKX", "gate": "Gate", "bitmex": "BitMEX"})
    assert text.startswith("Backfill 2/3 venues — still loading history for BitMEX; failed: Gate.")
    # a backfill whose newest run is long gone is over, done or not
    assert not backfill_progress(runs, info, ["okx", "bitmex"], newest, NOW + timedelta(hours=1)).active


def _outcome(venue: str, ok: bool, message: str = "") -> RunOutcome:
    return RunOutcome(uuid.uuid4().hex, venue, "funds", "poll", NOW, NOW, "ok" if ok else "error",
                      None if ok else "VenueUnavailable", None if ok else message, 1, Batch())


def test_cycle_summary_line() -> None:
    line, ok = cycle_summary(12, {"binance": [_outcome("binance", False, "DNS lookup failed for fapi.binance.com")],
                                  "okx": [_outcome("okx", False, "timed out")]}, 14)
    assert line == "cycle 12: 0/14 venues ok — last error: okx funds: VenueUnavailable: timed out" and not ok
    line, ok = cycle_summary(13, {"okx": [_outcome("okx", False, "x"), _outcome("okx", True)]}, 14)
    assert line.startswith("cycle 13: 1/14 venues ok") and ok
