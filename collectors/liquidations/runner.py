"""The feed interface and the runner every venue feed runs under.

A *feed* is one subscription on one venue (Binance USDⓈ-M ``!forceOrder@arr``, OKX ``liquidation-orders``
for SWAP, ...). Each feed knows how to open one *session* (connect, subscribe, read frames until the
connection ends); ``FeedRunner`` turns that into a stream that never stops: reconnect with backoff,
resubscribe, drop duplicates by the venue event key, and record a gap row from the last moment the stream
was known alive until it is subscribed again, so volumes over that window are marked incomplete.
The records it hands on are ``collectors.liquidations.base``'s.
"""

from __future__ import annotations

import abc
import asyncio
import logging
import random
import time
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from collectors.liquidations.base import FeedInfo, LiquidationGap, LiquidationRecord, utcnow

log = logging.getLogger(__name__)


class VenueClock:
    """A venue's "now": the wall clock, or the newest venue timestamp seen when that is later (a simulated
    venue running faster than real time). REST pollers window their queries with it."""

    def __init__(self) -> None:
        self._newest: dict[str, datetime] = {}

    def observe(self, venue: str, ts: datetime) -> None:
        if ts > self._newest.get(venue, ts.min.replace(tzinfo=UTC)):
            self._newest[venue] = ts

    def now(self, venue: str) -> datetime:
        wall = utcnow()
        newest = self._newest.get(venue)
        return newest if newest is not None and newest > wall else wall


class LiquidationSink(Protocol):
    """Where a feed's output goes (storage in the collector; a list in parser tests)."""

    def submit(self, records: Sequence[LiquidationRecord]) -> None: ...

    def gap_opened(self, gap: LiquidationGap) -> None: ...

    def gap_closed(self, venue: str, feed: str, end: datetime) -> None: ...

    def coverage(self, op: tuple[Any, ...]) -> None:
        """A coverage event of a stream feed (``CoverageOp``): boot, start, beat, stop."""


# Coverage of a stream by this collector run, persisted so downtime becomes a gap (storage.coverage):
# ("boot", venue, feed, ts)              the runner starts: downtime since the last heartbeat is a gap
# ("start", venue, feed, ts)             first subscription: this run's coverage interval opens
# ("beat", venue, feed, start, alive)    the stream was alive at ``alive`` (every HEARTBEAT_S at most)
# ("stop", venue, feed, start, end)      clean stop: the interval closes at ``end``
CoverageOp = tuple[Any, ...]
HEARTBEAT_S = 5.0


@dataclass
class FeedStats:
    frames: int = 0
    records: int = 0
    duplicates: int = 0
    parse_errors: int = 0
    sessions: int = 0
    gaps: int = 0
    oversize_frames: int = 0  # dropped frames over the decoded-size cap (each also a gap row)
    last_frame_monotonic: float | None = None


class NothingToWatch(Exception):
    """The venue lists nothing for this feed to subscribe to (e.g. no inverse contracts): not an outage."""


class RecentKeys:
    """Bounded memory of recently seen event keys (a reconnect or a replay repeats recent events). Older
    repeats still cannot be stored twice: the writer's anti-join on the event key is the durable dedupe.
    Keys are kept as their 64-bit hashes (a few MB for every feed together, not tens)."""

    def __init__(self, capacity: int = 20_000) -> None:
        self.capacity = capacity
        self._keys: OrderedDict[int, None] = OrderedDict()

    def add(self, key: str) -> bool:
        """True when ``key`` is new."""
        digest = hash(key)
        if digest in self._keys:
            return False
        self._keys[digest] = None
        if len(self._keys) > self.capacity:
            self._keys.popitem(last=False)
        return True


@dataclass(frozen=True)
class Backoff:
    base_s: float = 0.5
    max_s: float = 30.0
    stable_after_s: float = 10.0  # a session this long resets the backoff

    def delay(self, attempt: int) -> float:
        raw = min(self.base_s * (2 ** max(0, attempt - 1)), self.max_s)
        return float(raw * (0.75 + random.random() * 0.5))


class FeedSession(Protocol):
    """What a feed's ``session`` reports back to its runner."""

    def alive(self) -> None: ...

    def subscribed(self) -> None: ...

    def report_gap(self, gap: LiquidationGap) -> None: ...

    def records(self, records: Iterable[LiquidationRecord]) -> None: ...

    def frame_dropped(self, gap: LiquidationGap) -> None: ...

    def parse_failed(self, exc: BaseException, frame: Any) -> None: ...

    @property
    def clock(self) -> VenueClock: ...


class Feed(abc.ABC):
    """One subscription. Subclasses implement ``session``: connect, subscribe, call ``ctx.subscribed()``
    once the venue acknowledged, hand parsed records to ``ctx.records`` and return or raise when the
    connection ends. Everything else (backoff, gaps, dedupe) is the runner's."""

    info: FeedInfo
    gap_on_failure: bool = True  # REST pollers re-read missed windows instead

    @abc.abstractmethod
    async def session(self, ctx: FeedSession) -> None: ...

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release clients (ccxt exchanges, HTTP sessions)."""


@dataclass
class FeedRunner:
    """Runs one feed for ever: reconnect/backoff/resubscribe, dedupe by event key, gap rows."""

    feed: Feed
    sink: LiquidationSink
    backoff: Backoff = field(default_factory=Backoff)
    stats: FeedStats = field(default_factory=FeedStats)
    keys: RecentKeys = field(default_factory=RecentKeys)
    clock: VenueClock = field(default_factory=VenueClock)
    idle_retry_s: float = 600.0

    def __post_init__(self) -> None:
        self._last_alive: datetime | None = None
        self._gap_open = False
        self._up = False
        self._coverage_start: datetime | None = None  # this run's coverage interval (stream feeds)
        self.started = asyncio.Event()  # set at the first subscription (tests and the bench wait on it)

    @property
    def info(self) -> FeedInfo:
        return self.feed.info

    @property
    def up(self) -> bool:
        """Subscribed and not known to be down."""
        return self._up

    # FeedSession ------------------------------------------------------------------------------------
    def alive(self) -> None:
        self._last_alive = utcnow()
        self.stats.frames += 1
        self.stats.last_frame_monotonic = time.monotonic()

    def subscribed(self) -> None:
        now = utcnow()
        self._last_alive = now
        if self._up:
            return
        self._up = True
        if self._gap_open or not self.started.is_set():
            # a reconnect ends this runner's gap; the first subscription also ends any gap a previous
            # process left open for this feed (it stopped while the stream was down)
            self._gap_open = False
            self.sink.gap_closed(self.info.venue, self.info.feed, now)
            log.info("%s %s subscribed", self.info.venue, self.info.feed)
        if self._coverage_start is None and self.feed.gap_on_failure:
            self._coverage_start = now
            self.sink.coverage(("start", self.info.venue, self.info.feed, now))
        self.started.set()

    def report_gap(self, gap: LiquidationGap) -> None:
        """A window the feed knows it cannot cover (e.g. older than a REST history limit)."""
        self.stats.gaps += 1
        self.sink.gap_opened(gap)

    def frame_dropped(self, gap: LiquidationGap) -> None:
        """A frame over the size cap was dropped: counted, and its moment stored as a (closed) gap."""
        self.stats.oversize_frames += 1
        self.report_gap(gap)

    def records(self, records: Iterable[LiquidationRecord]) -> None:
        fresh = []
        for record in records:
            if self.keys.add(record.event_key):
                fresh.append(record)
            else:
                self.stats.duplicates += 1
        if fresh:
            self.clock.observe(self.info.venue, max(record.ts for record in fresh))
            self.stats.records += len(fresh)
            self.sink.submit(fresh)

    def parse_failed(self, exc: BaseException, frame: Any) -> None:
        self.stats.parse_errors += 1
        if self.stats.parse_errors <= 5 or self.stats.parse_errors % 1000 == 0:
            log.warning("%s %s: unparseable frame (%s): %.200s", self.info.venue, self.info.feed, exc, frame)

    # the loop ---------------------------------------------------------------------------------------
    def _down(self, reason: str, first_start: datetime) -> None:
        """Open a gap from the last moment the stream was known alive (REST feeds re-read the window on
        recovery, so only streams record gaps here)."""
        self._up = False
        if self._gap_open or not self.feed.gap_on_failure:
            return
        start = self._last_alive or first_start
        self._gap_open = True
        self.stats.gaps += 1
        self.sink.gap_opened(LiquidationGap(self.info.venue, self.info.feed, start, None, reason[:300]))

    async def _heartbeats(self) -> None:
        """While subscribed (frames or not: a quiet, connected stream is still watched), persist that
        the stream is covered, every HEARTBEAT_S: after a crash the gap starts at the last beat."""
        while True:
            await asyncio.sleep(HEARTBEAT_S)
            if self._up and self._coverage_start is not None:
                self.sink.coverage(("beat", self.info.venue, self.info.feed, self._coverage_start, utcnow()))

    async def run(self) -> None:
        first_start = utcnow()
        attempt = 0
        beats: asyncio.Task[None] | None = None
        if self.feed.gap_on_failure:  # REST pollers re-read what they missed; streams cannot
            self.sink.coverage(("boot", self.info.venue, self.info.feed, first_start))
            beats = asyncio.create_task(self._heartbeats())
        try:
            while True:
                began = time.monotonic()
                self.stats.sessions += 1
                try:
                    await self.feed.session(self)
                    reason = "stream ended"
                except asyncio.CancelledError:
                    raise
                except NothingToWatch as exc:
                    log.info("%s %s: %s; looking again in %.0f s", self.info.venue, self.info.feed, exc,
                             self.idle_retry_s)
                    await asyncio.sleep(self.idle_retry_s)
                    continue
                except Exception as exc:  # noqa: BLE001 - any failure = the stream is down; retried
                    reason = f"{type(exc).__name__}: {exc}"
                if time.monotonic() - began >= self.backoff.stable_after_s:
                    attempt = 0
                attempt += 1
                log.info("%s %s down (%s); retry %d", self.info.venue, self.info.feed, reason, attempt)
                self._down(reason, first_start)
                await asyncio.sleep(self.backoff.delay(attempt))
        finally:
            if beats is not None:
                beats.cancel()
            if self._coverage_start is not None:  # a clean stop closes this run's coverage interval
                end = utcnow() if self._up else (self._last_alive or utcnow())
                self.sink.coverage(("stop", self.info.venue, self.info.feed, self._coverage_start, end))
            await self.feed.close()
