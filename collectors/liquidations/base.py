"""Normalised liquidation records and the stream runner every venue feed runs under.

A *feed* is one subscription on one venue (Binance USDⓈ-M ``!forceOrder@arr``, OKX ``liquidation-orders``
for SWAP, ...). Each feed knows how to open one *session* (connect, subscribe, read frames until the
connection ends); ``FeedRunner`` turns that into a stream that never stops: reconnect with backoff,
resubscribe, drop duplicates by the venue event key, and record a gap row from the last moment the stream
was known alive until it is subscribed again, so volumes over that window are marked incomplete.

Side semantics differ per venue (reference §0.6) and are normalised here to the liquidated POSITION side:
``long`` (a long was force-closed by a sell order) or ``short``.
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
from decimal import Decimal, InvalidOperation
from typing import Any, Protocol
from urllib.parse import urlsplit

from collectors.parsing import to_json
from records.vocabulary import STABLE_ASSETS

log = logging.getLogger(__name__)

LONG = "long"
SHORT = "short"

# coverage of a feed: what a sum of its rows means
COMPLETE = "complete"  # the venue says every liquidation is pushed (Bybit allLiquidation)
SAMPLED = "sampled"  # the venue throttles/samples (Binance ≤1/symbol/s, OKX, Gate WS): a lower bound
UNCONFIRMED = "unconfirmed"  # completeness not documented: treated as a lower bound

STABLES = STABLE_ASSETS  # one list: records.vocabulary


@dataclass(frozen=True, slots=True)
class FeedInfo:
    """One venue subscription and what its data covers (stored with every row it produces)."""

    venue: str
    feed: str  # e.g. "forceOrder:usdm", "allLiquidation:linear", "liquidation-orders:SWAP"
    source: str  # ws | rest: overlapping sources of one venue are combined with max(), never summed
    coverage: str  # complete | sampled | unconfirmed
    note: str  # human text, e.g. "≤ 1 per symbol per second: a lower bound"

    @property
    def lower_bound(self) -> bool:
        return self.coverage != COMPLETE


@dataclass(frozen=True, slots=True)
class ContractSpec:
    """What one contract is worth: ``contract_size`` is base per contract (linear) or USD per contract
    (inverse)."""

    symbol: str
    base: str
    quote: str
    contract_size: Decimal
    inverse: bool


@dataclass(frozen=True, slots=True)
class LiquidationRecord:
    """One liquidation as the venue reported it, normalised. Field order = table column order."""

    venue: str
    feed: str
    source: str
    event_key: str  # venue event key: idempotency (no venue gives public liquidation ids on WS)
    ts: datetime  # venue timestamp of the liquidation, UTC
    symbol: str  # venue-native contract id
    base_asset: str
    quote_asset: str
    side: str  # liquidated POSITION side: long | short
    price: float
    price_kind: str  # average_fill | fill | bankruptcy
    qty_base: float | None  # base units; None when a needed contract spec is unknown
    qty_contracts: float | None  # as served, when the venue counts in contracts
    contract_size: float | None
    inverse: bool
    notional_usd: float | None  # from raw fields and contract specs; None = unknown (never guessed)
    notional_source: str  # quote_turnover | base_x_price | contracts_x_usd | no_spec | non_usd_quote
    coverage: str
    lower_bound: bool
    raw: str  # the raw message, trimmed to this one event (JSON text)
    received_at: datetime


@dataclass(frozen=True, slots=True)
class LiquidationGap:
    """A window in which a feed was down: volumes over it are incomplete. ``end`` None = still down."""

    venue: str
    feed: str
    start_ts: datetime
    end_ts: datetime | None
    reason: str


# -- small pure helpers --------------------------------------------------------------------------------

def norm_number(value: Any) -> str:
    """Canonical text of a number for event keys: ``479``, ``479.000000`` and ``4.79E+2`` agree."""
    try:
        number = Decimal(value) if isinstance(value, str | int | Decimal) else Decimal(repr(float(value)))
    except (InvalidOperation, ValueError, TypeError):
        return str(value)
    if not number.is_finite():
        return str(value)
    text = format(number.normalize(), "f")
    return "0" if text in ("-0", "") else text


def event_key(*parts: Any) -> str:
    return "|".join(norm_number(p) if isinstance(p, int | float | Decimal) else str(p) for p in parts)


def notional(spec_inverse: bool, qty: Decimal, qty_is_contracts: bool, contract_size: Decimal | None,
             price: Decimal, quote: str) -> tuple[float | None, float | None, str]:
    """(qty_base, notional_usd, how). Linear: base = contracts x size (or served in base), USD = base x
    price. Inverse: USD = contracts x USD-per-contract, base = USD / price (ccxt gets this wrong, §0.7)."""
    if spec_inverse:
        if contract_size is None:
            return None, None, "no_spec"
        usd = qty * contract_size
        base = usd / price if price else None
        return (float(base) if base is not None else None), float(usd), "contracts_x_usd"
    if qty_is_contracts:
        if contract_size is None:
            return None, None, "no_spec"
        base_qty = qty * contract_size
    else:
        base_qty = qty
    if quote.upper() not in STABLES:
        return float(base_qty), None, "non_usd_quote"
    return float(base_qty), float(base_qty * price), "base_x_price"


def raw_json(obj: Any) -> str:
    return to_json(obj)


def utcnow() -> datetime:
    return datetime.now(UTC)


def ws_base(base_url: str) -> str:
    """http://127.0.0.1:8800/bybit -> ws://127.0.0.1:8800/bybit (https -> wss)."""
    parts = urlsplit(base_url)
    scheme = {"http": "ws", "https": "wss"}.get(parts.scheme, parts.scheme)
    return f"{scheme}://{parts.netloc}{parts.path.rstrip('/')}"


def rebase_ws(url: str, base: str) -> str:
    """wss://stream.{hostname}/v5/public/linear -> {ws base}/v5/public/linear (the real path is kept)."""
    parts = urlsplit(url.replace("{hostname}", "hostname.invalid"))
    return base.rstrip("/") + parts.path



# -- the runner ----------------------------------------------------------------------------------------

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


@dataclass
class FeedStats:
    frames: int = 0
    records: int = 0
    duplicates: int = 0
    parse_errors: int = 0
    sessions: int = 0
    gaps: int = 0
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
        return raw * (0.75 + random.random() * 0.5)


class FeedSession(Protocol):
    """What a feed's ``session`` reports back to its runner."""

    def alive(self) -> None: ...

    def subscribed(self) -> None: ...

    def report_gap(self, gap: LiquidationGap) -> None: ...

    def records(self, records: Iterable[LiquidationRecord]) -> None: ...

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
        self.started.set()

    def report_gap(self, gap: LiquidationGap) -> None:
        """A window the feed knows it cannot cover (e.g. older than a REST history limit)."""
        self.stats.gaps += 1
        self.sink.gap_opened(gap)

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

    async def run(self) -> None:
        first_start = utcnow()
        attempt = 0
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
            await self.feed.close()
