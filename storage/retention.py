"""Retention, compaction and the database's size: what keeps a years-long DuckDB file bounded.

Raw high-frequency rows (open interest, funding, prices) older than a dataset's ``keep_days`` are
downsampled to the newest row per series and hour, in the same hour buckets as the dashboard's hourly
rollups (``storage.analytics``), so recomputing a rollup from the downsampled rows gives the same values;
raw liquidations (whose per-minute sums live on in ``liquidation_minutes``) and old collection-run rows are
dropped. Fund rows, fund flows, rollups, cascades, gaps and alerts are never touched. (A liquidation that
arrives later than ``keep_days`` after it happened would make the writer recompute its minute from the raw
rows left; no venue's REST history reaches that far back.)

DuckDB does not shrink a file when rows are deleted, so compaction copies the database into a fresh file
(``COPY FROM DATABASE``) while holding the write connection - no other process can write meanwhile; the
collector buffers its batches until the lock is free - and renames it over the old one.
"""

from __future__ import annotations

import logging
import os
import stat
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb

from storage.db import read_connection, scalar, write_connection
from storage.rollups import HOUR_END_SQL  # the rollups' hour buckets: one definition

log = logging.getLogger(__name__)

GROWTH_WINDOW = timedelta(days=7)  # the growth rate is measured over at most the last week
MIN_GROWTH_SPAN = timedelta(hours=1)  # ... and over at least an hour of samples


@dataclass(frozen=True)
class RetentionTable:
    table: str
    time_column: str
    series: tuple[str, ...]  # one row per series and hour survives downsampling
    can_downsample: bool


RETENTION_TABLES: dict[str, RetentionTable] = {
    # (oi_usd IS NULL) is part of the series: the oi_hourly rollup takes the newest row WITH a USD value
    "open_interest": RetentionTable("open_interest", "ts", ("venue", "symbol", "(oi_usd IS NULL)"), True),
    "funding": RetentionTable("funding_rates", "ts", ("venue", "symbol"), True),
    "prices": RetentionTable("prices", "ts", ("venue", "asset", "source"), True),
    "liquidations": RetentionTable("liquidations", "ts", (), False),  # liquidation_minutes keeps the sums
    "runs": RetentionTable("collection_runs", "started_at", (), False),
}


@dataclass(frozen=True)
class RetentionRule:
    keep_days: float  # raw rows younger than this are kept as they are; 0 = keep everything forever
    action: str  # "downsample" (newest row per series and hour) | "drop"


@dataclass
class CompactReport:
    bytes_before: int
    bytes_after: int
    deleted: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0


@dataclass(frozen=True)
class StorageSize:
    bytes: int
    growth_bytes_per_day: float | None  # None = not measured yet (under an hour of samples)
    measured_hours: float  # the span of samples behind the growth rate


WriteRunner = Callable[[Callable[[duckdb.DuckDBPyConnection], Any]], Any]


def file_bytes(path: Path | str) -> int:
    """The database file plus its write-ahead log, in bytes (0 when absent)."""
    path = Path(path)
    return sum(p.stat().st_size for p in (path, path.with_name(path.name + ".wal")) if p.exists())


def apply_retention(con: duckdb.DuckDBPyConnection, rules: Mapping[str, RetentionRule],
                    now: datetime | None = None) -> dict[str, int]:
    """Delete what the rules let go, in one transaction. Returns rows deleted per dataset."""
    now = now or datetime.now(UTC)
    deleted: dict[str, int] = {}
    con.execute("BEGIN TRANSACTION")
    try:
        for name, rule in rules.items():
            spec = RETENTION_TABLES[name]
            if rule.keep_days <= 0:
                continue
            if rule.action == "downsample" and not spec.can_downsample:
                raise ValueError(f"retention: {name} can only be dropped, not downsampled")
            cutoff = now - timedelta(days=rule.keep_days)
            if spec.table == "open_interest" and rule.action == "drop":
                # dropped raw OI must already be in the oi_hourly rollup
                complete_to = scalar(con, "SELECT max(complete_to) FROM rollup_state WHERE name = 'oi_hourly'")
                if complete_to is None:
                    log.warning("retention: open_interest not dropped: the hourly rollup was never built")
                    continue
                cutoff = min(cutoff, complete_to)
            deleted[name] = _delete(con, spec, rule.action, cutoff)
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise
    return deleted


def _delete(con: duckdb.DuckDBPyConnection, spec: RetentionTable, action: str, cutoff: datetime) -> int:
    if action == "drop":
        sql = f"DELETE FROM {spec.table} WHERE {spec.time_column} < ?"  # noqa: S608 - RETENTION_TABLES
    else:
        assert spec.time_column == "ts", "downsampled tables share the rollups' ts buckets"
        sql = (
            f"DELETE FROM {spec.table} WHERE rowid IN (SELECT rid FROM ("  # noqa: S608 - RETENTION_TABLES
            f"SELECT rowid AS rid, row_number() OVER (PARTITION BY {', '.join(spec.series)}, {HOUR_END_SQL} "
            f"ORDER BY ts DESC, fetched_at DESC) AS newest FROM {spec.table} WHERE ts < ?) WHERE newest > 1)"
        )
    return int(scalar(con, sql, [cutoff]) or 0)


def record_size(con: duckdb.DuckDBPyConnection, path: Path | str, event: str = "sample",
                now: datetime | None = None, size: int | None = None) -> int:
    """Store one size sample (the growth rate is computed from these)."""
    size = file_bytes(path) if size is None else size
    con.execute("INSERT INTO db_size_samples VALUES (?, ?, ?)", [now or datetime.now(UTC), size, event])
    return size


def _own_writer(path: Path) -> WriteRunner:
    def run(fn: Callable[[duckdb.DuckDBPyConnection], Any]) -> Any:
        with write_connection(path, budget_s=120.0) as con:
            return fn(con)
    return run


def compact(path: Path | str, rules: Mapping[str, RetentionRule], now: datetime | None = None,
            run_write: WriteRunner | None = None) -> CompactReport:
    """Apply ``rules``, then rewrite the file to reclaim the space. ``run_write`` is how this process
    writes (the collector passes ``Store.execute_write``; the CLI opens its own connection)."""
    path = Path(path)
    run = run_write or _own_writer(path)
    started = time.monotonic()

    before = file_bytes(path)  # measured before opening: opening may replay and fold in a write-ahead log

    def retain_and_copy(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
        record_size(con, path, "compact-before", now, before)
        deleted = apply_retention(con, rules, now)
        con.execute("CHECKPOINT")
        _copy_into_fresh_file(con, path)
        return deleted

    deleted = run(retain_and_copy)
    after = file_bytes(path)
    run(lambda con: record_size(con, path, "compact-after", now, after))
    return CompactReport(before, after, deleted, time.monotonic() - started)


def _copy_into_fresh_file(con: duckdb.DuckDBPyConnection, path: Path) -> None:
    """Copy everything ``con`` holds into ``<file>.compacting`` and rename it over ``path`` (atomic on one
    file system). ``con`` keeps the old file locked until the caller closes it."""
    fresh = path.with_name(path.name + ".compacting")
    for stale in (fresh, fresh.with_name(fresh.name + ".wal")):
        stale.unlink(missing_ok=True)
    name = scalar(con, "SELECT current_database()")
    con.execute(f"ATTACH '{_quote(str(fresh))}' AS backstop_compacted")
    try:
        con.execute(f'COPY FROM DATABASE "{name}" TO backstop_compacted')
        con.execute("DETACH backstop_compacted")
    except Exception:
        con.execute("DETACH DATABASE IF EXISTS backstop_compacted")
        fresh.unlink(missing_ok=True)
        raise
    os.chmod(fresh, stat.S_IMODE(path.stat().st_mode))
    os.replace(fresh, path)


def _quote(text: str) -> str:
    return text.replace("'", "''")


def database_size(path: Path | str, now: datetime | None = None) -> StorageSize | None:
    """The file's size now and its growth rate since the last compaction (at most the last week), from
    the size samples and the current size. None when there is no database."""
    path = Path(path)
    if not path.exists():
        return None
    now = now or datetime.now(UTC)
    size = file_bytes(path)
    with read_connection(path) as con:
        has_table = scalar(con, "SELECT count(*) FROM information_schema.tables WHERE table_name = 'db_size_samples'")
        first = con.execute(
            """
            SELECT ts, bytes FROM db_size_samples
            WHERE ts >= greatest(?, coalesce((SELECT max(ts) FROM db_size_samples WHERE event = 'compact-after'),
                                             '-infinity'::TIMESTAMPTZ))
              AND event <> 'compact-before'
            ORDER BY ts LIMIT 1
            """,
            [now - GROWTH_WINDOW],
        ).fetchall() if has_table else []
    if not first:
        return StorageSize(size, None, 0.0)
    since, first_bytes = first[0]
    span = now - since
    if span < MIN_GROWTH_SPAN:
        return StorageSize(size, None, span.total_seconds() / 3600)
    return StorageSize(size, (size - first_bytes) / (span.total_seconds() / 86400), span.total_seconds() / 3600)
