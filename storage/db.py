"""DuckDB connections and migrations.

DuckDB allows one read-write process OR many read-only processes on a file, never both. So nobody
holds a connection for long: the collector opens a read-write connection per write transaction, the
dashboard/CLI open short read-only ones, and both retry with backoff while the other holds the lock.
"""

from __future__ import annotations

import ctypes
import logging
import os
import random
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

import duckdb

log = logging.getLogger(__name__)

_MIGRATION_RE = re.compile(r"^(\d{3})_[a-z0-9_]+\.sql$")

# DuckDB's buffer pool per connection (its default is 80 % of RAM). Every connection here is a short-lived
# database instance, so a bigger pool caches nothing for the next query; larger aggregates spill to
# ``<db>.tmp``. On the bench database (210 M OI rows) 128 MB took the dashboard's assessment queries from
# a 490 MB to a 346 MB peak at the same speed; the writer gets more room for its rollups and compaction.
READ_MEMORY_LIMIT = "128MB"
WRITE_MEMORY_LIMIT = "256MB"
_MIGRATED: set[tuple[str, int]] = set()


class DatabaseBusy(RuntimeError):
    """The file stayed locked by another process for longer than the retry budget."""


class DatabaseMissing(FileNotFoundError):
    """A read-only open of a database file that does not exist yet."""


class DatabaseUnusable(RuntimeError):
    """The path cannot be used as a database: a directory, not a DuckDB file, or not writable."""


def _unusable(path: Path, exc: BaseException, read_only: bool) -> DatabaseUnusable:
    """One line that says what is wrong with the file (DuckDB's own reason kept, its prefix dropped)."""
    reason = str(exc).splitlines()[0].removeprefix("IO Error: ").strip()
    if path.is_dir():
        return DatabaseUnusable(f"database {path} is a directory, not a DuckDB file")
    if "not a valid DuckDB database" in reason:
        return DatabaseUnusable(f"database {path} is not a DuckDB file (or one from an incompatible version)")
    if "permission denied" in reason.lower():
        mode = "reading" if read_only else "writing"
        return DatabaseUnusable(f"database {path} cannot be opened for {mode}: permission denied")
    return DatabaseUnusable(f"database {path} cannot be opened: {reason}")


def is_lock_error(exc: BaseException) -> bool:
    text = str(exc).lower()
    # "different configuration": a read-only and a read-write connection to one file inside one process
    return isinstance(exc, duckdb.Error) and (
        "lock" in text or "being used by another process" in text or "different configuration" in text
    )


def scalar(con: duckdb.DuckDBPyConnection, sql: str, params: list[Any] | None = None) -> Any:
    """First column of the first row. Fetches the whole result: DuckDB 2 refuses new statements on a
    connection that still has an unfinished result, so never leave a ``fetchone()`` half-read."""
    rows = con.execute(sql, params or []).fetchall()
    return rows[0][0] if rows else None


def _connect_with_retry(path: Path, read_only: bool, budget_s: float) -> duckdb.DuckDBPyConnection:
    deadline = time.monotonic() + budget_s
    delay = 0.02
    while True:
        try:
            con = duckdb.connect(str(path), read_only=read_only, config={
                "memory_limit": READ_MEMORY_LIMIT if read_only else WRITE_MEMORY_LIMIT})
            con.execute("SET TimeZone = 'UTC'")
            return con
        except duckdb.Error as exc:
            if not is_lock_error(exc):
                raise _unusable(path, exc, read_only) from exc
            if time.monotonic() >= deadline:
                raise DatabaseBusy(f"database {path} is locked by another process ({exc})") from None
            time.sleep(delay * (0.5 + random.random()))
            delay = min(delay * 2, 1.0)


@contextmanager
def read_connection(path: Path | str, budget_s: float = 30.0) -> Iterator[duckdb.DuckDBPyConnection]:
    """A short-lived read-only connection; retries while the writer holds the file."""
    path = Path(path)
    if not path.exists():
        raise DatabaseMissing(f"no database at {path} (run 'backstop collect' or 'backstop demo' first)")
    con = _connect_with_retry(path, read_only=True, budget_s=budget_s)
    try:
        yield con
    finally:
        con.close()


@contextmanager
def write_connection(path: Path | str, budget_s: float = 30.0) -> Iterator[duckdb.DuckDBPyConnection]:
    """A short-lived read-write connection (migrated); callers keep their transaction short."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    existed = path.exists()
    con = _connect_with_retry(path, read_only=False, budget_s=budget_s)
    try:
        key = (str(path.resolve()), path.stat().st_ino)
        # once per file per process (a writer opens many short connections); a file that did not exist
        # before this connection is always migrated, even if it reuses a deleted file's inode
        if not existed or key not in _MIGRATED:
            migrate(con)
            _MIGRATED.add(key)
        yield con
    finally:
        con.close()
        release_freed_memory()


def _malloc_trim() -> Callable[[int], int] | None:
    try:
        trim: Callable[[int], int] = ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):  # not glibc (macOS, Windows, musl): nothing to release
        return None
    return trim


_TRIM = _malloc_trim()


def release_freed_memory() -> None:
    """Hand the heap a closed DuckDB instance freed back to the OS. The writer opens and closes one
    database instance per transaction; glibc would otherwise keep the freed pages in its arenas, so a
    long-running collector's RSS creeps up between bursts."""
    if _TRIM is not None:
        _TRIM(0)


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


def migrations() -> list[Migration]:
    found = []
    for entry in resources.files("storage.migrations").iterdir():
        match = _MIGRATION_RE.match(entry.name)
        if match:
            found.append(Migration(int(match.group(1)), entry.name, entry.read_text(encoding="utf-8")))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise RuntimeError(f"two migrations share a number: {versions}")
    return found


def current_version(con: duckdb.DuckDBPyConnection) -> int:
    exists = scalar(con, "SELECT count(*) FROM information_schema.tables WHERE table_name = 'schema_version'")
    if not exists:
        return 0
    return int(scalar(con, "SELECT coalesce(max(version), 0) FROM schema_version"))


def migrate(con: duckdb.DuckDBPyConnection, target: int | None = None) -> int:
    """Apply pending migrations, each atomically together with its version row. Returns the version."""
    con.execute(
        "CREATE TABLE IF NOT EXISTS schema_version "
        "(version INTEGER PRIMARY KEY, name VARCHAR NOT NULL, applied_at TIMESTAMPTZ NOT NULL)"
    )
    applied = {int(row[0]) for row in con.execute("SELECT version FROM schema_version").fetchall()}
    version = max(applied, default=0)
    for migration in migrations():
        # by set, not by max: a migration merged later with a lower number is still applied
        if migration.version in applied or (target is not None and migration.version > target):
            continue
        con.execute("BEGIN TRANSACTION")
        try:
            con.execute(migration.sql)
            con.execute(
                "INSERT INTO schema_version VALUES (?, ?, ?)",
                [migration.version, migration.name, datetime.now(UTC)],
            )
            con.execute("COMMIT")
        except Exception:
            con.execute("ROLLBACK")
            raise
        log.info("applied migration %s", migration.name)
        version = max(version, migration.version)
    return version


def ensure_database(path: Path | str) -> int:
    """Create/migrate the file; returns the schema version."""
    with write_connection(path) as con:
        return current_version(con)


def check_writable(path: Path | str) -> int:
    """Before a writer starts: the file opens read-write (created/migrated) and its folder takes the
    write-ahead log, so a read-only database is one clear error up front, not a failure per poll."""
    path = Path(path)
    if path.is_dir():
        raise DatabaseUnusable(f"database {path} is a directory, not a DuckDB file")
    try:
        version = ensure_database(path)
    except (OSError, duckdb.Error) as exc:  # e.g. the folder cannot be created
        raise _unusable(path, exc, read_only=False) from exc
    if not os.access(path.parent, os.W_OK) or not os.access(path, os.W_OK):
        raise DatabaseUnusable(f"database {path} is not writable (file or folder is read-only)")
    return version
