"""The single write path: records -> Arrow -> one short DuckDB transaction per batch, idempotent
(``storage.batch_writes``).

``Store.submit`` queues a batch (with its run row) for the store's writer thread, which writes it in
one transaction; when another process holds the file the batch stays queued in memory and is retried,
so no row is lost, no half-batch is ever visible, and collection never waits on the database. Fund balances get their USD value in SQL, from the nearest collected price.
"""

from __future__ import annotations

import atexit
import dataclasses
import logging
import random
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb

from records.batch import Batch
from storage.batch_writes import RunRecord, write_batch
from storage.db import DatabaseBusy, write_connection

log = logging.getLogger(__name__)


@dataclass(eq=False)
class _Pending:
    batch: Batch
    fetched_at: datetime
    run: RunRecord | None
    future: Future[dict[str, int]] = field(default_factory=Future)


WRITER_IDLE_EXIT_S = 5.0  # the writer thread ends after this long with nothing queued (restarted on demand)
BUSY_RETRY_MAX_S = 1.0  # longest pause between attempts to open the file while another process holds it
UNUSABLE_RETRY_MAX_S = 5.0  # longest pause between attempts while the file cannot be opened for writing at all


@dataclass(eq=False)
class Store:
    """The collector process's writer: an in-memory queue and one writer thread.

    ``submit`` queues a batch (with its run row) and returns at once: collection never waits on the
    database. The writer thread opens the file when it can and writes every queued batch, each in its own
    transaction, over one connection (group commit). While another process holds the file (a dashboard
    or CLI reader), batches stay queued in memory and go out as soon as it lets go: buffered, never
    dropped. A batch that can never be written is rolled back whole, its run row is recorded as a storage
    error, and the error is handed to its future."""

    path: Path
    lock_budget_s: float = 10.0  # how long ``write`` waits for its batch before returning None (buffered)
    pending: deque[_Pending] = field(default_factory=deque)
    _lock: threading.Lock = field(default_factory=threading.Lock)  # one connection at a time in-process
    _cond: threading.Condition = field(default_factory=threading.Condition)
    _thread: threading.Thread | None = None
    _writing: bool = False  # the writer thread is inside DuckDB (flush waits for it)
    _stopping: bool = False
    busy_since: float | None = None  # monotonic time the file became unavailable (None = writable)
    lock_waits: int = 0  # attempts to open the file that found it held by another process (metrics)
    unusable_since: float | None = None  # monotonic time the file stopped opening for writing (permissions,
    unusable_reason: str | None = None   # a full or vanished disk, a non-DuckDB file): None = fine

    def submit(self, batch: Batch, run: RunRecord | None = None,
               fetched_at: datetime | None = None) -> Future[dict[str, int]]:
        """Queue for the writer thread; never waits. The future gives rows inserted per table."""
        item = _Pending(batch, fetched_at or datetime.now(UTC), run)
        with self._cond:
            self.pending.append(item)
            self._start_locked()
            self._cond.notify()
        return item.future

    def _start_locked(self) -> None:
        if self._thread is None and not self._stopping:
            self._thread = threading.Thread(target=self._run, name="store-writer", daemon=True)
            self._thread.start()
            _LIVE_STORES.add(self)

    def write(self, batch: Batch, run: RunRecord | None = None,
              fetched_at: datetime | None = None) -> dict[str, int] | None:
        """Queue and wait up to ``lock_budget_s``: rows inserted for this batch, or None if it is still
        buffered (the writer thread writes it later). A batch that cannot be written raises here."""
        future = self.submit(batch, run, fetched_at)
        try:
            return future.result(timeout=self.lock_budget_s)
        except FutureTimeout:
            return None

    def flush(self, timeout_s: float | None = None) -> int:
        """Wait until the queue is written (or ``timeout_s``); returns how many batches still wait."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        with self._cond:
            while self.pending or self._writing:
                self._start_locked()
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    break
                self._cond.wait(timeout=0.05 if left is None else min(left, 0.05))
            return len(self.pending)

    def close(self, timeout_s: float = 5.0) -> int:
        """Stop the writer thread (after one last attempt at the queue); returns batches left unwritten.
        Called at interpreter exit too: a thread killed inside DuckDB would abort the process."""
        left = self.flush(timeout_s)
        with self._cond:
            self._stopping = True
            thread = self._thread
            self._cond.notify_all()
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout_s)
        if left:
            why = f"refused writes ({self.unusable_reason})" if self.unusable_since is not None else "stayed busy"
            log.error("%d batch(es) not written: the database %s", left, why)
        return left

    # -- the writer thread -------------------------------------------------------------------------
    def _run(self) -> None:
        delay = 0.02
        while True:
            with self._cond:
                if not self.pending or self._stopping:
                    self._cond.notify_all()  # flush() waiters
                    if not self._stopping:
                        self._cond.wait(timeout=WRITER_IDLE_EXIT_S)
                    if not self.pending or self._stopping:
                        self._thread = None  # under the lock: a submit from now on starts a new thread
                        return
                self._writing = True
            try:
                written = self._drain()  # never raises: what cannot be written waits or is failed per batch
            finally:
                with self._cond:
                    self._writing = False
                    self._cond.notify_all()
            if written:
                delay = 0.02
            else:
                time.sleep(delay * (0.5 + random.random()))
                ceiling = BUSY_RETRY_MAX_S if self.unusable_since is None else UNUSABLE_RETRY_MAX_S
                delay = min(delay * 2, ceiling)

    def unusable_for(self) -> float:
        """Seconds the file has refused to open for writing (0 = it opens, or is only held by a reader)."""
        since = self.unusable_since
        return 0.0 if since is None else time.monotonic() - since

    def _drain(self) -> bool:
        """Write what is queued; False when the file cannot be opened now (retry later, batches kept).

        Held by another process is the everyday case (a reader); a file that does not open for writing at
        all (made read-only, disk full, replaced) is kept apart: logged once with its reason, measured by
        ``unusable_for`` so a daemon can give up with one clear line rather than buffer without end."""
        with self._lock:
            try:
                with write_connection(self.path, budget_s=0.0) as con:
                    self._opened()
                    self._write_pending(con)
            except DatabaseBusy as exc:
                self.lock_waits += 1
                if self.busy_since is None:
                    self.busy_since = time.monotonic()
                    log.warning("database busy (%s); batches are kept in memory until it is free", exc)
                return False
            except Exception as exc:  # noqa: BLE001 - the file itself (open, migrate, disk): keep every batch
                reason = " ".join(str(exc).split()) or type(exc).__name__
                if self.unusable_since is None:
                    self.unusable_since = time.monotonic()
                    log.error("database cannot be written: %s; %d batch(es) kept in memory, retrying",
                              reason, len(self.pending))
                self.unusable_reason = reason
                return False
        return True

    def _opened(self) -> None:
        """The file opened for writing: whatever kept it closed is over (before any batch's future is set)."""
        if self.busy_since is not None:
            log.warning("database free again after %.1f s", time.monotonic() - self.busy_since)
            self.busy_since = None
        if self.unusable_since is not None:
            log.warning("database writable again after %.1f s", time.monotonic() - self.unusable_since)
            self.unusable_since, self.unusable_reason = None, None

    def _write_pending(self, con: duckdb.DuckDBPyConnection) -> None:
        while self.pending:
            item = self.pending[0]
            try:
                inserted = write_batch(con, item.batch, item.fetched_at, item.run)
            except (duckdb.IOException, OSError):
                raise  # the file, not the batch (disk full, permissions): kept at the head of the queue
            except duckdb.CatalogException as exc:
                if "python_arrow_scan" in str(exc):
                    # a DuckDB Python glitch under thread churn (the Arrow scan is briefly unregistered):
                    # the transaction rolled back; keep the batch for the next attempt
                    log.warning("arrow scan unavailable, batch kept for the next attempt: %s", exc)
                    return
                self._failed(con, item, exc)
            except Exception as exc:  # noqa: BLE001 - handed to the batch's own caller
                # not a lock problem: this batch can never be written (rolled back whole); drop it so it
                # does not block every later batch, and record its run as a storage error
                self._failed(con, item, exc)
            else:
                item.future.set_result(inserted)
            self.pending.popleft()

    def _failed(self, con: duckdb.DuckDBPyConnection, item: _Pending, exc: BaseException) -> None:
        log.error("batch could not be stored: %s: %s", type(exc).__name__, exc)
        if item.run is not None:  # the run row rolled back with its batch: record it, as a storage error
            run = dataclasses.replace(item.run, status="error", error_class=f"StorageError:{type(exc).__name__}",
                                      error_message=str(exc)[:500], rows_written=0)
            try:
                write_batch(con, Batch(), item.fetched_at, run)
            except Exception:  # noqa: BLE001 - logged; the batch's caller still gets the first error
                log.exception("the failed batch's run row could not be stored either")
        item.future.set_exception(exc)

    # -- other work on the writer's own connection --------------------------------------------------
    def try_read(self, fn: Callable[[duckdb.DuckDBPyConnection], Any], budget_s: float = 1.0) -> tuple[bool, Any]:
        """A read that gives up quickly: (True, result), or (False, None) when the database is busy
        (another process holds it, or this process's writer is waiting for it)."""
        if not self._lock.acquire(timeout=budget_s):
            return False, None
        try:
            with write_connection(self.path, budget_s=budget_s) as con:
                return True, fn(con)
        except DatabaseBusy:
            return False, None
        finally:
            self._lock.release()

    def read(self, fn: Callable[[duckdb.DuckDBPyConnection], Any]) -> Any:
        """A read inside the writer process: under the write lock on the writer's own connection, since
        one process may not hold a read-only and a read-write connection to a file at once."""
        with self._lock, write_connection(self.path, budget_s=max(self.lock_budget_s, 30.0)) as con:
            return fn(con)

    def execute_write(self, fn: Callable[[duckdb.DuckDBPyConnection], Any]) -> Any:
        """Run another short write (alerts, gaps) under the same lock and retry discipline."""
        with self._lock, write_connection(self.path, budget_s=max(self.lock_budget_s, 30.0)) as con:
            return fn(con)


_LIVE_STORES: weakref.WeakSet[Store] = weakref.WeakSet()


@atexit.register
def _stop_writers() -> None:
    for store in list(_LIVE_STORES):
        store.close(timeout_s=2.0)
