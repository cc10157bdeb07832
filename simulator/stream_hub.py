"""The plumbing of the simulated liquidation streams: the hub that records what each feed emitted (tests
and benches read it through ``hub_for`` and ``/_control/liquidation-streams``), one client connection (a
reader for subscribe/ping texts and a pusher every ``tick_s`` with the venue's throttling), the stream
faults, and ``Feed``: one WebSocket endpoint as data. What goes on the wire per venue lives in
``simulator.stream_venues``, the route table in ``simulator.streams``.

Faults (``simulator.faults`` spec on the WS path, e.g. ``bybit:/v5/public/linear:disconnect:2 x1``):
``disconnect[:S]`` closes the connection at the next push and refuses new ones for S seconds;
``duplicate[:N]`` replays the last N frames (default 5) after the next push.
"""

from __future__ import annotations

import asyncio
import gzip
import itertools
import json
import time
import weakref
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Final

from aiohttp import WSMsgType, web

from simulator.faults import FaultBook, FaultRule
from simulator.market import Market
from simulator.market_state import SimContract, SimLiquidation, SimVenue
from simulator.respond import dumps

HTX_PING_S = 5.0
REFUSE_DEFAULT_S = 0.0
DUPLICATE_DEFAULT = 5


def num(value: Decimal) -> str:
    """Decimal -> plain decimal text (never exponent notation)."""
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text or "0"


def base_qty(contract: SimContract, liq: SimLiquidation) -> Decimal:
    """Base units of a liquidation (inverse: USD contracts / fill price)."""
    if contract.inverse:
        return liq.qty_contracts * contract.contract_size / liq.fill_price
    return liq.qty_contracts * contract.contract_size


class Cursor:
    """New items of an append-mostly list since the last call (robust to the head being trimmed)."""

    def __init__(self, items: list[SimLiquidation]) -> None:
        self.index = len(items)
        self.last: SimLiquidation | None = items[-1] if items else None

    def take(self, items: list[SimLiquidation]) -> list[SimLiquidation]:
        n = len(items)
        if self.index > n or (self.index > 0 and items[self.index - 1] is not self.last):
            found = next((i + 1 for i in range(n - 1, -1, -1) if items[i] is self.last), None)
            if found is None:
                last_ts = self.last.ts_ms if self.last is not None else -1
                found = next((i for i, item in enumerate(items) if item.ts_ms > last_ts), n)
            self.index = found
        new = items[self.index:n]
        self.index = n
        self.last = items[n - 1] if n else None
        return new


@dataclass
class FeedLog:
    """What one simulated feed emitted (distinct liquidations, frames, events incl. replays)."""

    emitted: dict[str, SimLiquidation] = field(default_factory=dict)
    frames: int = 0
    sent: int = 0
    connections: int = 0


@dataclass
class StreamHub:
    """The streams' shared state per app: open sockets, what each feed emitted, refused paths."""

    market: Market
    faults: FaultBook
    sockets: set[web.WebSocketResponse] = field(default_factory=set)
    logs: dict[str, FeedLog] = field(default_factory=dict)
    refused_until: dict[tuple[str, str], float] = field(default_factory=dict)
    htx_ids: dict[str, int] = field(default_factory=dict)
    _conn_ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def next_id(self) -> int:
        """Connection ids and Bitfinex channel ids share one counter per hub."""
        return next(self._conn_ids)

    def log_for(self, key: str) -> FeedLog:
        return self.logs.setdefault(key, FeedLog())

    def venue(self, key: str) -> SimVenue | None:
        return self.market.venues.get(key)

    def take_fault(self, venue: str, path: str, kinds: tuple[str, ...]) -> list[FaultRule]:
        """Stream faults for this connection (only our kinds consume rule counts)."""
        hit = []
        for rule in list(self.faults.rules):
            if rule.kind in kinds and rule.matches(venue, path):
                rule.hits += 1
                hit.append(rule)
        return hit

    async def close_all(self, _: web.Application | None = None) -> None:
        for ws in list(self.sockets):
            await ws.close(code=1001, message=b"server shutdown")

    def describe(self) -> dict[str, Any]:
        return {key: {"events": len(log.emitted), "frames": log.frames, "sent": log.sent,
                      "connections": log.connections} for key, log in sorted(self.logs.items())}


_HUBS: weakref.WeakKeyDictionary[Market, StreamHub] = weakref.WeakKeyDictionary()


def hub_for(market: Market) -> StreamHub:
    """The stream hub serving ``market`` (tests read what was emitted from it)."""
    return _HUBS[market]




HUB_KEY: Final = web.AppKey("stream_hub", StreamHub)


def open_hub(app: web.Application, market: Market, faults: FaultBook) -> StreamHub:
    """A new hub for ``app`` (its handlers find it with ``hub_of``), registered for ``hub_for`` and
    closing its sockets when the app shuts down."""
    hub = StreamHub(market, faults)
    _HUBS[market] = hub
    app[HUB_KEY] = hub
    app.on_shutdown.append(hub.close_all)
    return hub


def hub_of(request: web.Request) -> StreamHub:
    """The stream hub of the app serving ``request`` (as ``routing.market_of`` finds the market)."""
    return request.config_dict[HUB_KEY]

# -- one connection ----------------------------------------------------------------------------------------

class Connection:
    """One client socket: a reader (subscribe/ping) and a pusher (every ``tick_s``)."""

    def __init__(self, hub: StreamHub, ws: web.WebSocketResponse, venue: str, path: str, feed_key: str,
                 tick_s: float, sample_per_second: bool, gzip_frames: bool = False) -> None:
        self.hub = hub
        self.ws = ws
        self.venue = venue
        self.path = path
        self.feed_key = feed_key
        self.tick_s = tick_s
        self.sample = sample_per_second
        self.gzip = gzip_frames
        self.conn_id = f"sim-{hub.next_id()}"
        self.all_symbols = False
        self.symbols: set[str] = set()
        self.scopes: set[str] = set()  # OKX: the subscribed instTypes
        self.subscribed = False
        self.recent: deque[str | bytes] = deque(maxlen=50)
        self.sampled_seconds: dict[str, int] = {}
        venue_state = hub.venue(venue)
        self.cursor = Cursor(venue_state.liquidations if venue_state else [])
        self.ping_s = HTX_PING_S  # server-initiated pings / heartbeats
        self.chan_id = 0  # Bitfinex: the channel id given at subscription

    async def send(self, data: Any, record: bool = True) -> None:
        text = data if isinstance(data, str) else dumps(data)
        frame: str | bytes = gzip.compress(text.encode(), compresslevel=1) if self.gzip else text
        if record:
            self.recent.append(frame)
        if isinstance(frame, bytes):
            await self.ws.send_bytes(frame)
        else:
            await self.ws.send_str(frame)

    def pending(self, accept: Callable[[SimContract], bool]) -> list[tuple[SimContract, SimLiquidation]]:
        venue = self.hub.venue(self.venue)
        if venue is None:
            return []
        self.hub.market.advance()
        fresh = self.cursor.take(venue.liquidations)
        if not self.subscribed:
            return []
        chosen: list[tuple[SimContract, SimLiquidation]] = []
        for liq in fresh:
            contract = venue.contracts.get(liq.symbol)
            if contract is None or not accept(contract):
                continue
            if not self.all_symbols and liq.symbol not in self.symbols:
                continue
            chosen.append((contract, liq))
        if not self.sample:
            return chosen
        latest: dict[tuple[str, int], tuple[SimContract, SimLiquidation]] = {}
        for contract, liq in chosen:  # the latest one per symbol per second
            slot = (liq.symbol, liq.ts_ms // 1000)
            if slot not in latest or liq.ts_ms >= latest[slot][1].ts_ms:
                latest[slot] = (contract, liq)
        sampled = []
        for (symbol, second), item in sorted(latest.items(), key=lambda kv: kv[1][1].ts_ms):
            if self.sampled_seconds.get(symbol, -1) >= second:
                continue  # this symbol already had its push for that second
            self.sampled_seconds[symbol] = second
            sampled.append(item)
        return sampled

    def note(self, items: Iterable[tuple[SimContract, SimLiquidation]], frames: int) -> None:
        log = self.hub.log_for(self.feed_key)
        count = 0
        for _, liq in items:
            log.emitted.setdefault(liq.liq_id, liq)
            count += 1
        log.sent += count
        log.frames += frames

    async def faults_after_push(self) -> bool:
        """Apply stream faults; True when the connection must end."""
        for rule in self.hub.take_fault(self.venue, self.path, ("disconnect", "duplicate")):
            if rule.kind == "duplicate":
                count = int(rule.arg or DUPLICATE_DEFAULT)
                for frame in list(self.recent)[-count:]:
                    if isinstance(frame, bytes):
                        await self.ws.send_bytes(frame)
                    else:
                        await self.ws.send_str(frame)
                    self.hub.log_for(self.feed_key).frames += 1
            elif rule.kind == "disconnect":
                refuse = float(rule.arg or REFUSE_DEFAULT_S)
                if refuse > 0:
                    self.hub.refused_until[(self.venue, self.path)] = time.monotonic() + refuse
                await self.ws.close(code=1001, message=b"fault: disconnect")
                return True
        return False


OnText = Callable[[Connection, Any], Awaitable[None]]  # a client's text (JSON-decoded when it parses)
Hook = Callable[[Connection], Awaitable[None]]  # push / server ping / greeting
Handlers = tuple[OnText, Hook]  # (on_text, push): one venue's protocol


@dataclass(frozen=True)
class Feed:
    """One simulated WebSocket endpoint: which venue and path (for faults), the feed it counts under,
    the push cadence and throttling (``sample``: the latest liquidation per symbol per second), the
    venue's protocol, and its optional gzip frames, server pings/heartbeats and greeting."""

    venue: str
    path: str
    feed_key: str
    tick_s: float
    sample: bool
    handlers: Handlers
    gzip_frames: bool = False
    server_ping: Hook | None = None
    greeting: Hook | None = None

    async def serve(self, request: web.Request) -> web.StreamResponse:
        return await serve_feed(hub_of(request), request, self)


async def serve_feed(hub: StreamHub, request: web.Request, feed: Feed) -> web.StreamResponse:
    """Run one client connection of ``feed`` until either side closes it."""
    venue, path, feed_key = feed.venue, feed.path, feed.feed_key
    on_text, push = feed.handlers
    server_ping, greeting = feed.server_ping, feed.greeting
    if hub.refused_until.get((venue, path), 0.0) > time.monotonic():
        return web.Response(status=503, text="service unavailable (simulated disconnect)")
    ws = web.WebSocketResponse(compress=False, heartbeat=None, max_msg_size=4 * 1024 * 1024)
    await ws.prepare(request)
    conn = Connection(hub, ws, venue, path, feed_key, feed.tick_s, feed.sample, feed.gzip_frames)
    hub.sockets.add(ws)
    hub.log_for(feed_key).connections += 1
    if greeting is not None:
        await greeting(conn)

    async def pusher() -> None:
        last_ping = time.monotonic()
        while not ws.closed:
            await asyncio.sleep(conn.tick_s)
            if ws.closed:
                break
            await push(conn)
            if await conn.faults_after_push():
                break
            if server_ping is not None and time.monotonic() - last_ping >= conn.ping_s:
                last_ping = time.monotonic()
                await server_ping(conn)

    task = asyncio.ensure_future(pusher())
    try:
        async for message in ws:
            if message.type == WSMsgType.TEXT:
                text = message.data
                try:
                    payload: Any = json.loads(text)
                except json.JSONDecodeError:
                    payload = text
                await on_text(conn, payload)
            elif message.type == WSMsgType.ERROR:
                break
    except (ConnectionResetError, asyncio.CancelledError):
        pass
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        hub.sockets.discard(ws)
    return ws

