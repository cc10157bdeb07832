"""Liquidation feeds inside the collector process.

``liquidation_tasks(collector)`` -> coroutine functions for ``Collector.background`` (one writer + one
runner per feed). Cascade detection over what they store runs in the composition root
(``backstop.integrations.CascadeDetector``).

The SQL lives in ``storage.liquidation_writes`` (its ``BACKEND``) and ``storage.liquidation_reads``; this package must not import storage (import contract), so the
composition root (``backstop.integrations``) hands its ``BACKEND`` in, typed by ``LiquidationBackend``.
Which venues have which feeds is declared in ``collectors.liquidations.registry``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from collectors.liquidations.base import FeedInfo, LiquidationGap, LiquidationRecord
from collectors.liquidations.registry import FEEDS
from collectors.liquidations.runner import Feed, FeedRunner, VenueClock

log = logging.getLogger(__name__)

GapOp = tuple[Any, ...]  # ("open", LiquidationGap) | ("close", venue, feed, end)


class LiquidationBackend(Protocol):
    def write(self, store: Any, records: Sequence[LiquidationRecord], gap_ops: Sequence[GapOp],
              feeds: Iterable[FeedInfo]) -> int: ...

    def newest_ts(self, store: Any, venue: str, feed: str) -> datetime | None: ...


@dataclass
class StoreSink:
    """Buffers records and gap operations from every feed; one writer task flushes them in one
    transaction every ``flush_s`` (or sooner when ``max_rows`` are waiting). A failed write keeps the
    buffer and retries: nothing is dropped while the database is busy."""

    store: Any
    backend: LiquidationBackend
    flush_s: float = 1.0
    max_rows: int = 20_000
    retry_s: float = 2.0
    feeds: dict[tuple[str, str], FeedInfo] = field(default_factory=dict)
    written: int = 0
    submitted: int = 0
    flushes: int = 0

    def __post_init__(self) -> None:
        self._records: list[LiquidationRecord] = []
        self._gap_ops: list[GapOp] = []
        self._wake = asyncio.Event()
        # one dedicated thread for every write: DuckDB's allocations stay in one malloc arena instead of
        # spreading over the default executor's threads (measured: ~25 MB less RSS under load)
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="liquidation-writer")

    def register(self, info: FeedInfo) -> None:
        self.feeds[(info.venue, info.feed)] = info

    # LiquidationSink ------------------------------------------------------------------------------
    def submit(self, records: Sequence[LiquidationRecord]) -> None:
        self._records.extend(records)
        self.submitted += len(records)
        if len(self._records) >= self.max_rows:
            self._wake.set()

    def gap_opened(self, gap: LiquidationGap) -> None:
        self._gap_ops.append(("open", gap))
        self._wake.set()

    def gap_closed(self, venue: str, feed: str, end: datetime) -> None:
        self._gap_ops.append(("close", venue, feed, end))
        self._wake.set()

    def coverage(self, op: tuple[Any, ...]) -> None:
        self._gap_ops.append(op)
        if op[0] != "beat":
            self._wake.set()

    @property
    def pending(self) -> int:
        return len(self._records) + len(self._gap_ops)

    async def flush(self) -> int:
        if not self._records and not self._gap_ops:
            return 0
        records, self._records = self._records, []
        gap_ops, self._gap_ops = self._gap_ops, []
        feeds = list(self.feeds.values())
        loop = asyncio.get_running_loop()
        try:
            inserted = await loop.run_in_executor(self._thread, self.backend.write, self.store, records, gap_ops,
                                                  feeds)
        except Exception:
            self._records[:0] = records
            self._gap_ops[:0] = gap_ops
            raise
        self.written += inserted
        self.flushes += 1
        return inserted

    async def run(self) -> None:
        try:
            while True:
                try:
                    await asyncio.wait_for(self._wake.wait(), self.flush_s)
                except TimeoutError:
                    pass
                self._wake.clear()
                try:
                    await self.flush()
                except Exception:  # noqa: BLE001 - kept buffered, retried
                    log.exception("liquidations: write failed; %d pending, retrying", self.pending)
                    await asyncio.sleep(self.retry_s)
        finally:
            # the feeds' runners are cancelled with this task and queue their "stop" while this flush
            # runs: flush again for what arrived meanwhile
            for _ in range(3):
                try:
                    await asyncio.shield(self.flush())
                except Exception:  # noqa: BLE001 - shutting down: report what could not be written
                    log.exception("liquidations: %d rows/gap changes not written at shutdown", self.pending)
                    break
                await asyncio.sleep(0.05)
                if not self.pending:
                    break
            self._thread.shutdown(wait=False)


def build_feeds(settings: Any, resume: Callable[[str, str], Callable[[], Awaitable[datetime | None]]] | None = None,
                only: Iterable[str] | None = None) -> list[Feed]:
    """Every feed of every enabled venue that has one (WS feeds need ``streams``; REST pollers need a
    non-zero ``intervals.liquidations``). Venues not in the settings are skipped; ``only`` limits the
    feeds to those venues (``collect --venue X`` must not open other venues' streams)."""
    feeds: list[Feed] = []
    venues = settings.venues
    wanted = None if only is None else set(only)

    def cfg(key: str) -> Any:
        config = venues.get(key)
        if wanted is not None and key not in wanted:
            return None
        return config if config is not None and config.enabled else None

    def resume_for(venue: str, feed: str) -> Callable[[], Awaitable[datetime | None]] | None:
        return resume(venue, feed) if resume else None

    for key, declaration in FEEDS.items():
        if (config := cfg(key)) is not None:
            feeds.extend(declaration(config, resume_for))
    return feeds


@dataclass
class LiquidationService:
    """The writer and the runners of one collector (kept for stats: tests, the bench, status)."""

    sink: StoreSink
    runners: list[FeedRunner]

    def stats(self) -> dict[str, Any]:
        return {
            "written": self.sink.written, "submitted": self.sink.submitted, "pending": self.sink.pending,
            "feeds": {f"{r.info.venue}:{r.info.feed}": r.stats for r in self.runners},
        }


_SERVICES: dict[int, LiquidationService] = {}


def service_for(collector: Any) -> LiquidationService | None:
    return _SERVICES.get(id(collector))


def make_service(collector: Any, feeds: list[Feed] | None = None, *, backend: LiquidationBackend,
                 flush_s: float = 1.0) -> LiquidationService:
    store = collector.store

    def resume(venue: str, feed: str) -> Callable[[], Awaitable[datetime | None]]:
        return lambda: asyncio.to_thread(backend.newest_ts, store, venue, feed)

    sink = StoreSink(store, backend, flush_s=flush_s)
    clock = VenueClock()  # shared: a venue's REST poller follows the time its streams report
    runners = []
    # the collector's venues (``collect --venue X``); one without REST adapters (streams only) runs every
    # enabled venue's feeds
    only = list(collector.adapters) or None
    for feed in feeds if feeds is not None else build_feeds(collector.settings, resume, only=only):
        sink.register(feed.info)
        runners.append(FeedRunner(feed, sink, clock=clock))
    service = LiquidationService(sink, runners)
    _SERVICES[id(collector)] = service
    return service


def liquidation_tasks(collector: Any, backend: LiquidationBackend) -> list[Callable[[Any], Coroutine[Any, Any, None]]]:
    """Coroutine functions for ``Collector.background``: the writer first, then one runner per feed."""
    service = make_service(collector, backend=backend)

    async def writer(_: Any) -> None:
        await service.sink.run()

    def runner_task(runner: FeedRunner) -> Callable[[Any], Coroutine[Any, Any, None]]:
        async def run(_: Any) -> None:
            await runner.run()

        return run

    return [writer, *(runner_task(r) for r in service.runners)]
