"""Freshness input of the alert rules: per configured collector job, its poll runs (first, last, last
ok, last status) and the newest venue timestamp of its data (``Freshness``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import duckdb

from metrics.alert_rows import Freshness
from records.vocabulary import DATASET_TABLES
from storage.rule_inputs import table_exists

# dataset (job name) -> (table, venue-timestamp column) whose newest row says the data "landed"
DATA_TABLES = DATASET_TABLES


@dataclass(frozen=True)
class JobExpectation:
    """A configured collector job and what to expect of it."""

    venue: str
    dataset: str
    poll_interval_s: float
    cadence_s: float


def freshness(con: duckdb.DuckDBPyConnection, now: datetime, jobs: Sequence[JobExpectation],
              lookback: timedelta = timedelta(days=7)) -> list[Freshness]:
    """Per configured job: first/last/last-ok poll run (within ``lookback``) and the newest venue
    timestamp of its data."""
    if not jobs:
        return []
    runs = {
        (r[0], r[1]): r[2:]
        for r in con.execute(
            """
            SELECT venue, dataset, min(started_at), max(finished_at),
                   max(finished_at) FILTER (WHERE status = 'ok'),
                   arg_max(status, finished_at), arg_max(error_class, finished_at)
            FROM collection_runs WHERE kind = 'poll' AND finished_at > ?
            GROUP BY venue, dataset
            """,
            [now - lookback],
        ).fetchall()
    }
    newest: dict[tuple[str, str], datetime] = {}
    datasets = {job.dataset for job in jobs}
    for dataset in sorted(datasets & set(DATA_TABLES)):
        table, column = DATA_TABLES[dataset]
        if not table_exists(con, table):
            continue
        for venue, ts in con.execute(
            f"SELECT venue, max({column}) FROM {table} WHERE {column} > ? GROUP BY venue",  # noqa: S608 - fixed identifiers
            [now - timedelta(days=30)],
        ).fetchall():
            newest[(venue, dataset)] = ts
    result = []
    for job in jobs:
        first, last, last_ok, status, error_class = runs.get((job.venue, job.dataset), (None,) * 5)
        result.append(Freshness(
            venue=job.venue, dataset=job.dataset, poll_interval_s=job.poll_interval_s, cadence_s=job.cadence_s,
            first_run_at=first, last_run_at=last, last_ok_at=last_ok, last_status=status,
            last_error_class=error_class, newest_data_ts=newest.get((job.venue, job.dataset)),
        ))
    return result
