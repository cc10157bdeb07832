"""Named read queries for the CLI and the collector (short read-only connections, parameterised SQL).

The dashboard's analytic queries live in ``storage.analytics``; export in ``storage.export``.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from records.vocabulary import DATASET_TABLES
from storage.db import DatabaseMissing, read_connection

# dataset (job name) -> (table, venue-timestamp column) for incremental polling
_NEWEST: dict[str, tuple[str, str]] = {**DATASET_TABLES, "liquidations": ("liquidations", "ts")}


def newest_ts_on(con: duckdb.DuckDBPyConnection, venue: str, dataset: str) -> datetime | None:
    """Newest stored venue timestamp for venue x dataset (history venues poll from there)."""
    if dataset not in _NEWEST:
        return None
    table, column = _NEWEST[dataset]
    rows = con.execute(
        f"SELECT max({column}) FROM {table} WHERE venue = ?",  # noqa: S608 - internal identifiers
        [venue],
    ).fetchall()
    return rows[0][0] if rows else None


def newest_ts(db: Path, venue: str, dataset: str) -> datetime | None:
    """The same from another process (read-only connection)."""
    try:
        with read_connection(db) as con:
            return newest_ts_on(con, venue, dataset)
    except DatabaseMissing:
        return None


def collector_status(db: Path) -> pd.DataFrame:
    """Per venue x dataset: last success, last error, success rate (24 h), rows, data age."""
    with read_connection(db) as con:
        return con.execute(
            """
            WITH runs AS (SELECT * FROM collection_runs WHERE kind = 'poll')
            SELECT venue, dataset,
                   max(finished_at) FILTER (WHERE status = 'ok') AS last_success,
                   max(finished_at) FILTER (WHERE status = 'error') AS last_error_at,
                   arg_max(error_class, finished_at) FILTER (WHERE status = 'error') AS last_error_class,
                   arg_max(error_message, finished_at) FILTER (WHERE status = 'error') AS last_error_message,
                   count(*) FILTER (WHERE finished_at >= now() - INTERVAL 24 HOUR) AS runs_24h,
                   avg(CASE WHEN status = 'ok' THEN 1.0 ELSE 0.0 END)
                       FILTER (WHERE finished_at >= now() - INTERVAL 24 HOUR) AS success_rate_24h,
                   CAST(sum(rows_written) AS BIGINT) AS rows_written,
                   arg_max(status, finished_at) AS last_status,
                   date_diff('second', max(finished_at) FILTER (WHERE status = 'ok'), now()) AS age_s
            FROM runs GROUP BY venue, dataset ORDER BY venue, dataset
            """
        ).df()


def query_df(db: Path, sql: str, params: list[Any] | None = None) -> pd.DataFrame:
    """For tests and benches only: an ad-hoc read."""
    with read_connection(db) as con:
        return con.execute(sql, params or []).df()
