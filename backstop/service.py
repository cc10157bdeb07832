"""Composition root of the collector process: adapters + storage + scheduler.

One ccxt client per venue for the process lifetime; venues are polled concurrently; the DuckDB writes
go through the store's queue and writer thread (``Store``): a scheduled poll hands its batch over and
returns, so a reader holding the file never makes polls late or skipped. Skipped or missed polls that
happen anyway are recorded as ``skipped`` run rows (``backstop.skips``).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

from backstop.config import Settings
from backstop.skips import SkipRecorder
from collectors.base import Batch, VenueAdapter
from collectors.registry import adapter_class
from collectors.runner import RetryPolicy, RunOutcome, run_job
from storage import queries
from storage.batch_writes import RunRecord
from storage.db import DatabaseBusy, DatabaseUnusable
from storage.writer import Store

log = logging.getLogger(__name__)

SINCE_LOOKUP_S = 1.0  # a poll's newest-stored lookup gives up this soon while the database is busy
SHUTDOWN_FLUSH_S = 30.0  # queued batches get this long to reach the database at shutdown
WATCH_STORE_S = 1.0  # how often the daemon checks that its database still takes writes

CycleHook = Callable[[list[RunOutcome]], Awaitable[object]]  # what a hook returns is ignored
# a coroutine function (not any awaitable): serve() wraps each in asyncio.create_task
BackgroundTask = Callable[["Collector"], Coroutine[Any, Any, None]]


def _run_record(outcome: RunOutcome) -> RunRecord:
    return RunRecord(
        run_id=outcome.run_id, venue=outcome.venue, dataset=outcome.dataset, kind=outcome.kind,
        started_at=outcome.started_at, finished_at=outcome.finished_at, status=outcome.status,
        error_class=outcome.error_class, error_message=outcome.error_message, attempts=outcome.attempts,
    )


@dataclass
class Collector:
    settings: Settings
    adapters: dict[str, VenueAdapter] = field(default_factory=dict)
    store: Store = field(init=False)
    after_cycle: list[CycleHook] = field(default_factory=list)
    background: list[BackgroundTask] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.store = Store(self.settings.db)
        self._cycle: dict[str, list[RunOutcome]] = {}  # venue -> polls since the last summary line
        self._cycles = 0
        self._newest: dict[tuple[str, str], datetime | None] = {}
        self.policy = RetryPolicy(
            self.settings.collector.max_retries,
            self.settings.collector.backoff_base_s,
            self.settings.collector.backoff_max_s,
        )
        for adapter in self.adapters.values():
            adapter.retry_policy = self.policy  # each page of a backfill walk is retried in place
        self._hook_outcomes: list[RunOutcome] = []
        self._hook_task: asyncio.Task[None] | None = None

    @classmethod
    def for_venues(cls, settings: Settings, venues: list[str] | None = None) -> Collector:
        keys = venues or settings.enabled_venues()
        adapters = {key: adapter_class(key)(settings.venues[key]) for key in keys}
        return cls(settings=settings, adapters=adapters)

    @asynccontextmanager
    async def running(self) -> AsyncIterator[Collector]:
        await asyncio.gather(*(adapter.open() for adapter in self.adapters.values()))
        try:
            yield self
        finally:
            await asyncio.gather(*(adapter.close() for adapter in self.adapters.values()),
                                 return_exceptions=True)
            # a file that refuses writes will not take them in the next 30 s either: one last attempt
            budget_s = 1.0 if self.store.unusable_for() else SHUTDOWN_FLUSH_S
            left = await asyncio.to_thread(self.store.flush, budget_s)
            if left:
                log.error("%d batch(es) not written at shutdown: the database stayed %s for %.0f s", left,
                          "unwritable" if self.store.unusable_for() else "busy", budget_s)

    # -- writing ---------------------------------------------------------------------------------
    async def sink(self, outcome: RunOutcome, wait: bool = True) -> int | None:
        """Queue the batch with its run row for the store's writer thread. ``wait`` (one-off cycles, for
        their summary): wait up to the store's budget for the rows inserted; scheduled polls do not wait.
        A batch that cannot be stored has its run recorded as a storage error by the store itself."""
        future = self.store.submit(outcome.batch, _run_record(outcome))
        self._remember_newest(outcome)
        if not wait:
            return None
        try:
            inserted = await asyncio.wait_for(asyncio.shield(asyncio.wrap_future(future)), self.store.lock_budget_s)
        except TimeoutError:
            return None  # still queued: written when the database is free
        except Exception as exc:  # noqa: BLE001 - the store recorded the run as a storage error
            from collectors.errors import error_message

            outcome.status, outcome.error_class = "error", f"StorageError:{type(exc).__name__}"
            outcome.error_message = error_message(exc)
            return 0
        return sum(inserted.values())

    async def since(self, venue: str, dataset: str) -> datetime | None:
        """Newest stored venue timestamp: read once through the store (this process is the writer and
        must not open a second, read-only handle), then kept up to date from what we write. While the
        database is busy the poll goes ahead as a first poll (None; writes are idempotent) and the
        lookup is tried again next time: a poll never waits on the database."""
        key = (venue, dataset)
        if key not in self._newest:
            ok, newest = await asyncio.to_thread(
                self.store.try_read, lambda con: queries.newest_ts_on(con, venue, dataset), SINCE_LOOKUP_S)
            if not ok:
                log.info("%s %s: database busy, polling without a stored cursor", venue, dataset)
                return None
            self._newest[key] = newest
        return self._newest[key]

    def _remember_newest(self, outcome: RunOutcome) -> None:
        key = (outcome.venue, outcome.dataset)
        if key not in self._newest:
            return  # never looked up: what is stored may be newer than this batch's oldest row
        records = getattr(outcome.batch, outcome.dataset, None)
        stamps = [r.ts for r in records or [] if getattr(r, "venue", outcome.venue) == outcome.venue]
        if not stamps:
            return
        known = self._newest.get(key)
        self._newest[key] = max(stamps) if known is None else max(known, max(stamps))

    # -- polling ---------------------------------------------------------------------------------
    def jobs(self) -> list[tuple[str, str]]:
        pairs = []
        for key, adapter in self.adapters.items():
            intervals = self.settings.venues[key].intervals
            for dataset in adapter.datasets():
                if getattr(intervals, dataset, 0) > 0 and adapter.implements(dataset):
                    pairs.append((key, dataset))
        return pairs

    async def run_one(self, venue: str, dataset: str, wait: bool = True) -> RunOutcome:
        async def sink(outcome: RunOutcome) -> int | None:
            return await self.sink(outcome, wait)

        return await run_job(self.adapters[venue], dataset, sink, self.policy, self.since)

    async def run_cycle(self) -> list[RunOutcome]:
        """Every venue x dataset once, concurrently; then the after-cycle hooks (alerts)."""
        outcomes = await asyncio.gather(*(self.run_one(v, d) for v, d in self.jobs()))
        await self._after(list(outcomes))
        return list(outcomes)

    async def _after(self, outcomes: list[RunOutcome]) -> None:
        for hook in self.after_cycle:
            try:
                await hook(outcomes)
            except (DatabaseBusy, DatabaseUnusable) as exc:  # the file's state, which the writer reports itself
                log.warning("after-cycle hook skipped: %s", exc)
            except Exception:  # noqa: BLE001 - a hook never stops collection
                log.exception("after-cycle hook failed")

    async def _scheduled(self, venue: str, dataset: str) -> None:
        try:
            outcome = await self.run_one(venue, dataset, wait=False)
            self._cycle.setdefault(venue, []).append(outcome)
        except asyncio.CancelledError:
            # shutdown abandons an in-flight fetch; nothing was written for it (writes are atomic)
            log.info("%s %s abandoned at shutdown", venue, dataset)
            return
        self._after_soon(outcome)

    def _after_soon(self, outcome: RunOutcome) -> None:
        """Run the after-cycle hooks (alerts, cascades read the database) outside the poll's job, one
        run at a time, with every outcome collected meanwhile: a busy database delays the hooks, never
        the next poll."""
        self._hook_outcomes.append(outcome)
        if self._hook_task is None or self._hook_task.done():
            self._hook_task = asyncio.create_task(self._drain_hooks())

    async def _drain_hooks(self) -> None:
        while self._hook_outcomes:
            outcomes, self._hook_outcomes = self._hook_outcomes, []
            await self._after(outcomes)

    def _summarise_cycle(self) -> None:
        """One line per cycle in the terminal, so a collector that reaches nothing says so."""
        self._cycles += 1
        line, ok = cycle_summary(self._cycles, self._cycle, len(self.adapters))
        self._cycle = {}
        (log.info if ok else log.warning)("%s", line)

    async def serve(self, stop: asyncio.Event) -> None:
        """The daemon: one APScheduler job per venue x dataset until ``stop`` is set."""
        scheduler = AsyncIOScheduler(timezone=UTC)
        skips = SkipRecorder(self.store, scheduler)
        jitter = self.settings.collector.jitter_s
        for venue, dataset in self.jobs():
            interval = getattr(self.settings.venues[venue].intervals, dataset)
            scheduler.add_job(
                self._scheduled, IntervalTrigger(seconds=interval, jitter=jitter or None),
                args=[venue, dataset], id=f"{venue}:{dataset}", max_instances=1, coalesce=True,
                next_run_time=datetime.now(UTC), misfire_grace_time=max(30, int(interval)),
            )
        scheduler.add_job(self._summarise_cycle, IntervalTrigger(seconds=CYCLE_SUMMARY_S), id="cycle-summary",
                          max_instances=1, coalesce=True)
        tasks: list[asyncio.Task[None]] = [asyncio.create_task(task(self)) for task in self.background]
        gave_up: list[str] = []
        tasks.append(asyncio.create_task(self._watch_store(stop, gave_up)))
        scheduler.start()
        try:
            await stop.wait()
        finally:
            scheduler.shutdown(wait=False)
            skips.close()
            if self._hook_task is not None:
                tasks.append(self._hook_task)  # alerts/cascades of the last polls: re-evaluated next start
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        if gave_up:
            raise DatabaseUnusable(gave_up[0])

    async def _watch_store(self, stop: asyncio.Event, gave_up: list[str]) -> None:
        """Stop the daemon when its database has refused writes for ``unwritable_exit_s``: polls would
        only pile up in memory. A file held by a reader is not this (it is waited for, however long)."""
        limit_s = self.settings.collector.unwritable_exit_s
        if not limit_s:
            return
        while not stop.is_set():
            await asyncio.sleep(WATCH_STORE_S)
            refused_s = self.store.unusable_for()
            if refused_s >= limit_s:
                reason = (self.store.unusable_reason or "").removeprefix(f"database {self.settings.db} ")
                gave_up.append(f"database {self.settings.db} refused writes for {refused_s:.0f} s ({reason}); "
                               f"the collector stopped with {len(self.store.pending)} batch(es) not written")
                stop.set()  # serve() raises it: the CLI prints it as its one error line

    # -- backfill --------------------------------------------------------------------------------
    async def backfill(self, venue: str, dataset: str, since: datetime,
                       progress: Callable[[int], None] | None = None) -> RunOutcome:
        """Walk a venue's history endpoint; each page is written as it arrives (one run row at the end).

        Transient errors are retried inside the walk, page by page, at the walk's cursor
        (``VenueAdapter.page``); an error that reaches here is final: the walk is over (a generator
        that raised cannot be resumed) and the run is recorded as an error with what was stored so far."""
        adapter = self.adapters[venue]
        started = datetime.now(UTC)
        total_rows = 0
        error: BaseException | None = None
        pages_read = 0
        try:
            async for page in adapter.backfill(dataset, since):
                pages_read += 1
                # wait until the page is stored (a backfill may wait on a busy database; polls never do):
                # memory stays bounded and the run's row count is exact
                inserted = await asyncio.wrap_future(self.store.submit(page))
                total_rows += sum(inserted.values())
                if progress:
                    progress(page.row_count())
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - recorded as the run's error below
            error = exc
            log.warning("backfill %s %s failed after %d page(s): %s", venue, dataset, pages_read, exc)
        from collectors.errors import classify, error_message

        outcome = RunOutcome(
            run_id=uuid.uuid4().hex, venue=venue, dataset=dataset, kind="backfill", started_at=started,
            finished_at=datetime.now(UTC), status="ok" if error is None else "error",
            error_class=None if error is None else classify(error).name,
            error_message=None if error is None else error_message(error), attempts=pages_read + 1,
            batch=Batch(), rows_written=total_rows,
        )
        record = _run_record(outcome)
        record.rows_written = total_rows
        await asyncio.to_thread(self.store.write, Batch(), record)
        return outcome


def backfill_pairs(collector: Collector) -> list[tuple[str, str]]:
    return [
        (key, cap.dataset)
        for key, adapter in collector.adapters.items()
        for cap in adapter.capabilities
        if adapter.has_backfill(cap.dataset)
    ]


CYCLE_SUMMARY_S = 60.0  # the daemon's "cycle": one summary line per minute of polling


def cycle_summary(n: int, polls: dict[str, list[RunOutcome]], venues: int) -> tuple[str, bool]:
    """'cycle 12: 0/14 venues ok — last error: okx funds: VenueUnavailable: DNS lookup failed …'; a venue is
    ok when one of its polls since the last line succeeded. Returns the line and whether any venue was ok."""
    ok = sum(1 for outcomes in polls.values() if any(o.status == "ok" for o in outcomes))
    errors = [o for outcomes in polls.values() for o in outcomes if o.status != "ok"]
    line = f"cycle {n}: {ok}/{venues} venues ok"
    if not polls:
        line += " (no poll finished in this cycle)"
    if errors:
        last = errors[-1]
        line += f" — last error: {last.venue} {last.dataset}: {last.error_class}: {last.error_message}"[:300]
    return line, ok > 0 or not polls


def summarize(outcomes: list[RunOutcome]) -> list[dict[str, Any]]:
    return [
        {
            "venue": o.venue, "dataset": o.dataset, "status": o.status, "rows": o.rows_written,
            "attempts": o.attempts, "seconds": round(o.duration_s, 2),
            "error": f"{o.error_class}: {o.error_message}" if o.error_class else "",
        }
        for o in sorted(outcomes, key=lambda o: (o.venue, o.dataset))
    ]
