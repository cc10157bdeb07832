"""What the collector is doing, from ``collection_runs`` alone: backfill progress and per-venue poll outcomes.

Named, parameterised queries for the dashboard's backfill banner and its run-mode diagnosis (a collector
that runs but reaches no venue writes run rows and no data rows: these queries are how the dashboard sees
it). A missing database or table gives an empty frame with the documented columns, never an error.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pandas as pd

from storage.db import DatabaseMissing, read_connection

DbPath = Path | str

BACKFILL_COLUMNS = ["venue", "dataset", "status", "started_at", "finished_at", "rows_written", "error_class",
                    "error_message"]
ACTIVITY_COLUMNS = ["venue", "runs", "ok_runs", "first_run_at", "last_run_at", "last_ok_at", "last_error_at",
                    "last_error_class", "last_error_message"]


def _has_runs_table(con: object) -> bool:
    rows = con.execute(  # type: ignore[attr-defined]
        "SELECT count(*) FROM information_schema.tables WHERE table_name = 'collection_runs'").fetchone()
    return bool(rows and rows[0])


def backfill_runs(db: DbPath, since: datetime) -> pd.DataFrame:
    """The newest backfill run per venue × dataset that finished at or after ``since`` (``BACKFILL_COLUMNS``)."""
    try:
        with read_connection(db) as con:
            if not _has_runs_table(con):
                return pd.DataFrame(columns=BACKFILL_COLUMNS)
            return con.execute(
                """
                SELECT venue, dataset, arg_max(status, finished_at) AS status, min(started_at) AS started_at,
                       max(finished_at) AS finished_at, sum(rows_written)::BIGINT AS rows_written,
                       arg_max(error_class, finished_at) AS error_class,
                       arg_max(error_message, finished_at) AS error_message
                FROM collection_runs WHERE kind = 'backfill' AND finished_at >= $since
                GROUP BY venue, dataset ORDER BY venue, dataset
                """, {"since": since}).df()
    except DatabaseMissing:
        return pd.DataFrame(columns=BACKFILL_COLUMNS)


def newest_backfill_at(db: DbPath) -> datetime | None:
    """When the newest backfill run finished (None: no backfill ever ran)."""
    try:
        with read_connection(db) as con:
            if not _has_runs_table(con):
                return None
            row = con.execute("SELECT max(finished_at) FROM collection_runs WHERE kind = 'backfill'").fetchone()
    except DatabaseMissing:
        return None
    value = row[0] if row else None
    return value if isinstance(value, datetime) else None


def poll_activity(db: DbPath, since: datetime) -> pd.DataFrame:
    """Per venue, the poll runs that finished at or after ``since``: how many, how many succeeded, the
    first/last run, the last success and the last error (class, message) (``ACTIVITY_COLUMNS``)."""
    try:
        with read_connection(db) as con:
            if not _has_runs_table(con):
                return pd.DataFrame(columns=ACTIVITY_COLUMNS)
            return con.execute(
                """
                SELECT venue, count(*)::BIGINT AS runs, count(*) FILTER (WHERE status = 'ok')::BIGINT AS ok_runs,
                       min(finished_at) AS first_run_at, max(finished_at) AS last_run_at,
                       max(finished_at) FILTER (WHERE status = 'ok') AS last_ok_at,
                       max(finished_at) FILTER (WHERE status = 'error') AS last_error_at,
                       arg_max(error_class, finished_at) FILTER (WHERE status = 'error') AS last_error_class,
                       arg_max(error_message, finished_at) FILTER (WHERE status = 'error') AS last_error_message
                FROM collection_runs WHERE kind = 'poll' AND finished_at >= $since
                GROUP BY venue ORDER BY venue
                """, {"since": since}).df()
    except DatabaseMissing:
        return pd.DataFrame(columns=ACTIVITY_COLUMNS)
