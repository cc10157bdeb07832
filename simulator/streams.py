"""Liquidation streams of the simulated venues: WebSocket endpoints with each venue's real subscribe
protocol, message shapes and throttling, fed by ``market.venue(key).liquidations`` (read at push time:
the market model appends to it), plus the two REST liquidation histories (Gate ``liq_orders``, HTX v3).

Throttling as the venues document it: Binance and Gate push at most the latest liquidation per symbol per
second, OKX is sampled the same way (several ``details[]`` per message when a push spans seconds), Bybit
pushes everything in 500 ms batches, HTX pushes everything (gzip-compressed frames).

Paths (under the simulator root; the venue prefix is the venue's base_url):
  /binance/market/ws[/{n}], /binance/ws[/{n}]   USDⓈ-M ``!forceOrder@arr``
  /binancecoinm/ws[/{n}]                        COIN-M ``!forceOrder@arr`` (venue binancecoinm)
  /bybit/v5/public/linear, /bybit/v5/public/inverse   ``allLiquidation.{symbol}``
  /okx/ws/v5/public                             ``liquidation-orders`` (SWAP: ids ending -SWAP; FUTURES)
  /gate/v4/ws/usdt, /gate/v4/ws/btc             ``futures.public_liquidates`` (linear / inverse)
  /htx/linear-swap-notification                 ``public.*.liquidation_orders``
  /bitfinex/ws/2                                ``status`` channel, key ``liq:global`` (every liquidation)
  GET /gate/api/v4/futures/{settle}/liq_orders, GET /htx/linear-swap-api/v3/swap_liquidation_orders,
  GET /htx/v5/market/liquidation_orders (v3 retired with the fault ``htx:/linear-swap-api/v3/*:410``)
  GET /bitfinex/v2/liquidations/hist
  GET /_control/liquidation-streams             what was emitted per feed (tests, bench)

Faults (``simulator.faults`` spec on the WS path, e.g. ``bybit:/v5/public/linear:disconnect:2 x1``):
``disconnect[:S]`` closes the connection at the next push and refuses new ones for S seconds;
``duplicate[:N]`` replays the last N frames (default 5) after the next push.
"""

from __future__ import annotations

import asyncio
import gzip
import itertools
import json
import logging
import time
import weakref
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from aiohttp import WSMsgType, web

from simulator.faults import FaultBook, FaultRule
from simulator.market import Market, SimContract, SimLiquidation, SimVenue
from simulator.respond import dumps, reply

log = logging.getLogger(__name__)

HTX_PING_S = 5.0
REFUSE_DEFAULT_S = 0.0
DUPLICATE_DEFAULT = 5
HTX_PAGE = 100
BITFINEX_HB_S = 5.0  # Bitfinex heartbeats every 15 s; shorter here so short tests see them
BITFINEX_LIQ_MAX = 500


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
    market: Market
    faults: FaultBook
    sockets: set[web.WebSocketResponse] = field(default_factory=set)
    logs: dict[str, FeedLog] = field(default_factory=dict)
    refused_until: dict[tuple[str, str], float] = field(default_factory=dict)
    htx_ids: dict[str, int] = field(default_factory=dict)
    _conn_ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

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


# -- one connection ----------------------------------------------------------------------------------------

Encoder = Callable[[list[tuple[SimContract, SimLiquidation]]], list[Any]]


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
        self.conn_id = f"sim-{next(hub._conn_ids)}"
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


async def _serve(hub: StreamHub, request: web.Request, venue: str, path: str, feed_key: str, tick_s: float,
                 sample: bool, on_text: Callable[[Connection, Any], Awaitable[None]],
                 push: Callable[[Connection], Awaitable[None]], gzip_frames: bool = False,
                 server_ping: Callable[[Connection], Awaitable[None]] | None = None,
                 greeting: Callable[[Connection], Awaitable[None]] | None = None) -> web.StreamResponse:
    if hub.refused_until.get((venue, path), 0.0) > time.monotonic():
        return web.Response(status=503, text="service unavailable (simulated disconnect)")
    ws = web.WebSocketResponse(compress=False, heartbeat=None, max_msg_size=4 * 1024 * 1024)
    await ws.prepare(request)
    conn = Connection(hub, ws, venue, path, feed_key, tick_s, sample, gzip_frames)
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


# -- Binance -----------------------------------------------------------------------------------------------

def binance_event(contract: SimContract, liq: SimLiquidation, now_ms: int) -> dict[str, Any]:
    qty = liq.qty_contracts if contract.inverse else liq.qty_contracts * contract.contract_size
    pair = {"ps": contract.symbol.split("_", 1)[0]} if contract.inverse else {}  # COIN-M adds the pair
    order: dict[str, Any] = {
        "s": contract.symbol, **pair, "S": "SELL" if liq.position_side == "long" else "BUY", "o": "LIMIT",
        "f": "IOC", "q": num(qty), "p": num(liq.bankruptcy_price), "ap": num(liq.fill_price), "X": "FILLED",
        "l": num(qty), "z": num(qty), "T": liq.ts_ms,
    }
    return {"e": "forceOrder", "E": now_ms, "o": order}


def binance_handlers(inverse: bool) -> tuple[Callable[[Connection, Any], Awaitable[None]],
                                             Callable[[Connection], Awaitable[None]]]:
    async def on_text(conn: Connection, payload: Any) -> None:
        if not isinstance(payload, dict) or payload.get("method") != "SUBSCRIBE":
            return
        for stream in payload.get("params") or []:
            if stream == "!forceOrder@arr":
                conn.all_symbols = True
            elif str(stream).endswith("@forceOrder"):
                conn.symbols.add(str(stream).split("@", 1)[0].upper())
        conn.subscribed = True
        await conn.send({"result": None, "id": payload.get("id")}, record=False)

    async def push(conn: Connection) -> None:
        items = conn.pending(lambda c: c.inverse == inverse)
        now = conn.hub.market.now_ms()
        for contract, liq in items:
            await conn.send(binance_event(contract, liq, now))
        conn.note(items, len(items))

    return on_text, push


# -- Bybit -------------------------------------------------------------------------------------------------

def bybit_row(contract: SimContract, liq: SimLiquidation) -> dict[str, Any]:
    qty = liq.qty_contracts if contract.inverse else liq.qty_contracts * contract.contract_size
    return {"T": liq.ts_ms, "s": contract.symbol, "S": "Buy" if liq.position_side == "long" else "Sell",
            "v": num(qty), "p": num(liq.bankruptcy_price)}


def bybit_handlers(inverse: bool) -> tuple[Callable[[Connection, Any], Awaitable[None]],
                                           Callable[[Connection], Awaitable[None]]]:
    async def on_text(conn: Connection, payload: Any) -> None:
        if not isinstance(payload, dict):
            return
        op = payload.get("op")
        if op == "ping":
            await conn.send({"success": True, "ret_msg": "pong", "conn_id": conn.conn_id,
                             "req_id": payload.get("req_id"), "op": "ping"}, record=False)
            return
        if op != "subscribe":
            return
        venue = conn.hub.venue(conn.venue)
        contracts = venue.contracts if venue else {}
        bad = []
        for topic in payload.get("args") or []:
            name, _, symbol = str(topic).partition(".")
            contract = contracts.get(symbol)
            if name != "allLiquidation" or contract is None or contract.inverse != inverse:
                bad.append(str(topic))
            else:
                conn.symbols.add(symbol)
        if bad:
            await conn.send({"success": False, "ret_msg": f"Invalid symbol :[{','.join(bad)}]",
                             "conn_id": conn.conn_id, "req_id": payload.get("req_id"), "op": "subscribe"},
                            record=False)
            return
        conn.subscribed = True
        await conn.send({"success": True, "ret_msg": "", "conn_id": conn.conn_id,
                         "req_id": payload.get("req_id"), "op": "subscribe"}, record=False)

    async def push(conn: Connection) -> None:
        items = conn.pending(lambda c: c.inverse == inverse)
        by_symbol: dict[str, list[dict[str, Any]]] = {}
        for contract, liq in items:
            by_symbol.setdefault(contract.symbol, []).append(bybit_row(contract, liq))
        now = conn.hub.market.now_ms()
        for symbol, rows in by_symbol.items():
            await conn.send({"topic": f"allLiquidation.{symbol}", "type": "snapshot", "ts": now, "data": rows})
        conn.note(items, len(by_symbol))

    return on_text, push


# -- OKX ---------------------------------------------------------------------------------------------------

def okx_inst_type(contract: SimContract) -> str:
    return str(contract.extra.get("inst_type") or ("SWAP" if contract.symbol.endswith("-SWAP") else "FUTURES"))


def okx_handlers() -> tuple[Callable[[Connection, Any], Awaitable[None]], Callable[[Connection], Awaitable[None]]]:
    async def on_text(conn: Connection, payload: Any) -> None:
        if payload == "ping":
            await conn.send("pong", record=False)
            return
        if not isinstance(payload, dict) or payload.get("op") != "subscribe":
            return
        for arg in payload.get("args") or []:
            inst_type = str(arg.get("instType", ""))
            if arg.get("channel") != "liquidation-orders" or inst_type not in ("SWAP", "FUTURES"):
                await conn.send({"event": "error", "code": "60018",
                                 "msg": f"Wrong URL or channel:{arg.get('channel')},instType:{inst_type} doesn't exist",
                                 "connId": conn.conn_id}, record=False)
                continue
            conn.scopes.add(inst_type)
            conn.all_symbols = True
            conn.subscribed = True
            await conn.send({"event": "subscribe", "arg": {"channel": "liquidation-orders", "instType": inst_type},
                             "connId": conn.conn_id}, record=False)

    async def push(conn: Connection) -> None:
        items = conn.pending(lambda c: okx_inst_type(c) in conn.scopes)
        groups: dict[tuple[str, str], list[tuple[SimContract, SimLiquidation]]] = {}
        for contract, liq in items:
            groups.setdefault((okx_inst_type(contract), contract.symbol), []).append((contract, liq))
        frames = 0
        for (inst_type, inst_id), members in groups.items():
            contract = members[0][0]
            family = "-".join(inst_id.split("-")[:2])
            details = [{"bkLoss": "0", "bkPx": num(liq.bankruptcy_price), "ccy": "", "posSide": liq.position_side,
                        "side": "sell" if liq.position_side == "long" else "buy", "sz": num(liq.qty_contracts),
                        "ts": str(liq.ts_ms)} for _, liq in members]
            await conn.send({"arg": {"channel": "liquidation-orders", "instType": inst_type},
                             "data": [{"details": details, "instFamily": family, "instId": contract.symbol,
                                       "instType": inst_type, "uly": family}]})
            frames += 1
        conn.note(items, frames)

    return on_text, push


# -- Gate --------------------------------------------------------------------------------------------------

def gate_handlers(inverse: bool) -> tuple[Callable[[Connection, Any], Awaitable[None]],
                                          Callable[[Connection], Awaitable[None]]]:
    channel = "futures.public_liquidates"

    async def on_text(conn: Connection, payload: Any) -> None:
        if not isinstance(payload, dict):
            return
        now = conn.hub.market.now_ms()
        if payload.get("channel") == "futures.ping":
            await conn.send({"time": now // 1000, "time_ms": now, "channel": "futures.pong", "event": "",
                             "result": None}, record=False)
            return
        if payload.get("channel") != channel or payload.get("event") != "subscribe":
            return
        for contract in payload.get("payload") or []:
            if contract == "!all":
                conn.all_symbols = True
            else:
                conn.symbols.add(str(contract))
        conn.subscribed = True
        await conn.send({"time": now // 1000, "time_ms": now, "channel": channel, "event": "subscribe",
                         "error": None, "result": {"status": "success"}}, record=False)

    async def push(conn: Connection) -> None:
        items = conn.pending(lambda c: c.inverse == inverse)
        if not items:
            return
        now = conn.hub.market.now_ms()
        rows = [{"price": liq.fill_price, "size": liq.qty_contracts if liq.position_side == "long" else -liq.qty_contracts,
                 "time_ms": liq.ts_ms, "contract": contract.symbol} for contract, liq in items]
        await conn.send({"channel": channel, "event": "update", "time": now // 1000, "time_ms": now, "result": rows})
        conn.note(items, 1)

    return on_text, push


# -- HTX ---------------------------------------------------------------------------------------------------

def htx_row(contract: SimContract, liq: SimLiquidation) -> dict[str, Any]:
    amount = base_qty(contract, liq)
    return {"symbol": contract.base, "contract_code": contract.symbol,
            "direction": "sell" if liq.position_side == "long" else "buy", "offset": "close",
            "volume": liq.qty_contracts, "price": liq.bankruptcy_price, "created_at": liq.ts_ms, "amount": amount,
            "trade_turnover": amount * liq.fill_price, "contract_type": "swap", "pair": contract.symbol,
            "business_type": "swap"}


def htx_liquidation_orders_v5(hub: StreamHub) -> Callable[[web.Request], Awaitable[web.Response]]:
    """GET /v5/market/liquidation_orders (ccxt's shape): ``contract_code``, ``start_time``, ``end_time``,
    ``limit``; newest first; texts for numbers."""
    async def handler(request: web.Request) -> web.Response:
        venue = hub.venue("htx")
        now = hub.market.now_ms()
        if venue is None:
            return reply({"code": 1010, "message": "no such venue", "data": None, "ts": now})
        try:
            start = int(request.query.get("start_time", str(now - 7_200_000)))
            end = int(request.query.get("end_time", str(now)))
            limit = min(int(request.query.get("limit", str(HTX_PAGE))), HTX_PAGE)
        except ValueError:
            return reply({"code": 1067, "message": "invalid parameter", "data": None, "ts": now})
        hub.market.advance()
        wanted = request.query.get("contract_code")
        rows = []
        for liq in sorted(venue.liquidations, key=lambda item: (item.ts_ms, item.liq_id), reverse=True):
            contract = venue.contracts.get(liq.symbol)
            if contract is None or contract.inverse or (wanted and liq.symbol != wanted):
                continue
            if not start <= liq.ts_ms <= end:
                continue
            row = htx_row(contract, liq)
            rows.append({"id": liq.liq_id, "contract_code": liq.symbol,
                         "liquidation_time": str(liq.ts_ms), "side": row["direction"],
                         "position_side": liq.position_side, "volume": str(row["volume"]),
                         "amount": str(row["volume"]), "bankrupt_price": str(row["price"]),
                         "trade_turnover": str(row["trade_turnover"])})
            if len(rows) >= limit:
                break
        return reply({"code": 200, "message": "Success", "data": rows, "ts": now})

    return handler


def htx_handlers() -> tuple[Callable[[Connection, Any], Awaitable[None]], Callable[[Connection], Awaitable[None]]]:
    async def on_text(conn: Connection, payload: Any) -> None:
        if not isinstance(payload, dict) or payload.get("op") != "sub":
            return
        topic = str(payload.get("topic", ""))
        parts = topic.split(".")
        now = conn.hub.market.now_ms()
        if len(parts) != 3 or parts[0] != "public" or parts[2] != "liquidation_orders":
            await conn.send({"op": "sub", "cid": payload.get("cid"), "topic": topic, "ts": now, "err-code": 2001,
                             "err-msg": "invalid topic"}, record=False)
            return
        if parts[1] == "*":
            conn.all_symbols = True
        else:
            conn.symbols.add(parts[1])
        conn.subscribed = True
        await conn.send({"op": "sub", "cid": payload.get("cid"), "topic": topic, "ts": now, "err-code": 0},
                        record=False)

    async def push(conn: Connection) -> None:
        items = conn.pending(lambda c: not c.inverse)
        by_code: dict[str, list[dict[str, Any]]] = {}
        for contract, liq in items:
            by_code.setdefault(contract.symbol, []).append(htx_row(contract, liq))
        now = conn.hub.market.now_ms()
        for code, rows in by_code.items():
            await conn.send({"op": "notify", "topic": f"public.{code}.liquidation_orders", "ts": now, "data": rows})
        conn.note(items, len(by_code))

    return on_text, push


async def htx_ping(conn: Connection) -> None:
    await conn.send({"op": "ping", "ts": str(conn.hub.market.now_ms())}, record=False)


# -- Bitfinex --------------------------------------------------------------------------------------------

def bitfinex_entry(contract: SimContract, liq: SimLiquidation) -> list[Any]:
    """``["pos", POS_ID, MTS, _, SYMBOL, ±AMOUNT, BASE_PRICE, _, IS_MATCH, IS_MARKET_SOLD, _, PRICE_ACQUIRED]``:
    the position (base units, + long), its entry price (about one margin away from bankruptcy), acquired
    at the fill price by a market execution."""
    amount = base_qty(contract, liq)
    entry = liq.bankruptcy_price * (Decimal("1.05") if liq.position_side == "long" else Decimal("0.95"))
    return ["pos", 100_000_000 + liq.seq, liq.ts_ms, None, contract.symbol,
            amount if liq.position_side == "long" else -amount, entry.quantize(liq.bankruptcy_price), None, 1, 1,
            None, liq.fill_price]


def bitfinex_handlers() -> tuple[Callable[[Connection, Any], Awaitable[None]],
                                 Callable[[Connection], Awaitable[None]]]:
    async def on_text(conn: Connection, payload: Any) -> None:
        if not isinstance(payload, dict):
            return
        now = conn.hub.market.now_ms()
        if payload.get("event") == "ping":
            await conn.send({"event": "pong", "ts": now, "cid": payload.get("cid")}, record=False)
            return
        if payload.get("event") != "subscribe":
            return
        if payload.get("channel") != "status" or payload.get("key") != "liq:global":
            await conn.send({"event": "error", "msg": "subscribe: invalid", "code": 10300,
                             "channel": payload.get("channel"), "key": payload.get("key")}, record=False)
            return
        conn.chan_id = 91684 + next(conn.hub._conn_ids)
        conn.all_symbols = True
        conn.subscribed = True
        await conn.send({"event": "subscribed", "channel": "status", "chanId": conn.chan_id, "key": "liq:global"},
                        record=False)

    async def push(conn: Connection) -> None:
        items = conn.pending(lambda c: not c.inverse)
        if not items:
            return
        await conn.send([conn.chan_id, [bitfinex_entry(contract, liq) for contract, liq in items]])
        conn.note(items, 1)

    return on_text, push


async def bitfinex_greeting(conn: Connection) -> None:
    conn.ping_s = BITFINEX_HB_S
    await conn.send({"event": "info", "version": 2, "serverId": "sim-bitfinex", "platform": {"status": 1}},
                    record=False)


async def bitfinex_heartbeat(conn: Connection) -> None:
    if conn.subscribed:
        await conn.send([conn.chan_id, "hb"], record=False)


# -- REST histories ----------------------------------------------------------------------------------------

def gate_liq_orders(hub: StreamHub) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def handler(request: web.Request) -> web.Response:
        venue = hub.venue("gate")
        settle = request.match_info["settle"]
        if venue is None or settle not in ("usdt", "btc"):
            return reply({"label": "INVALID_PARAM_VALUE", "message": "invalid settle"}, status=400)
        try:
            start = int(request.query.get("from", "0"))
            end = int(request.query.get("to", str(hub.market.now_ms() // 1000)))
            limit = min(int(request.query.get("limit", "100")), 1000)
        except ValueError:
            return reply({"label": "INVALID_PARAM_VALUE", "message": "from/to/limit must be integers"}, status=400)
        if end - start > 3600:
            return reply({"label": "INVALID_PARAM_VALUE", "message": "time range can not exceed 3600 seconds"},
                         status=400)
        hub.market.advance()
        wanted = request.query.get("contract")
        rows = []
        for liq in reversed(venue.liquidations):
            contract = venue.contracts.get(liq.symbol)
            if contract is None or contract.inverse != (settle == "btc") or (wanted and liq.symbol != wanted):
                continue
            if not start <= liq.ts_ms // 1000 <= end:
                continue
            size = liq.qty_contracts if liq.position_side == "long" else -liq.qty_contracts
            rows.append({"time": liq.ts_ms // 1000, "contract": liq.symbol, "size": size, "order_size": -size,
                         "order_price": num(liq.bankruptcy_price), "fill_price": num(liq.fill_price), "left": 0})
            if len(rows) >= limit:
                break
        return reply(rows)

    return handler


def htx_liquidation_orders(hub: StreamHub) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def handler(request: web.Request) -> web.Response:
        venue = hub.venue("htx")
        now = hub.market.now_ms()
        if hub.take_fault("htx", "/linear-swap-api/v3/swap_liquidation_orders", ("410",)):
            return web.Response(status=410, text="Gone", content_type="text/plain")  # v3 retired
        if venue is None:
            return reply({"code": 1010, "msg": "no such venue", "data": None, "ts": now})
        try:
            start = int(request.query.get("start_time", str(now - 7_200_000)))
            end = int(request.query.get("end_time", str(now)))
            from_id = int(request.query["from_id"]) if "from_id" in request.query else None
            trade_type = int(request.query.get("trade_type", "0"))
        except ValueError:
            return reply({"code": 1067, "msg": "invalid parameter", "data": None, "ts": now})
        if end - start > 7_200_000:
            return reply({"code": 1067, "msg": "the query window cannot exceed 2 hours", "data": None, "ts": now})
        hub.market.advance()
        for liq in venue.liquidations:  # stable query ids in arrival order
            if liq.liq_id not in hub.htx_ids:
                hub.htx_ids[liq.liq_id] = len(hub.htx_ids) + 1
        wanted = request.query.get("contract")
        rows = []
        for liq in sorted(venue.liquidations, key=lambda item: hub.htx_ids[item.liq_id], reverse=True):
            contract = venue.contracts.get(liq.symbol)
            query_id = hub.htx_ids[liq.liq_id]
            if contract is None or contract.inverse or (wanted and liq.symbol != wanted):
                continue
            if from_id is not None and query_id >= from_id:
                continue
            if not start <= liq.ts_ms <= end:
                continue
            direction = "sell" if liq.position_side == "long" else "buy"
            if (trade_type == 5 and direction != "sell") or (trade_type == 6 and direction != "buy"):
                continue
            row = htx_row(contract, liq)
            row.update({"query_id": query_id, "symbol": "USDT", "pair": "-".join(liq.symbol.split("-")[:2])})
            rows.append(row)
            if len(rows) >= HTX_PAGE:
                break
        return reply({"code": 200, "msg": "", "data": rows, "ts": now})

    return handler


def bitfinex_liquidations_hist(hub: StreamHub) -> Callable[[web.Request], Awaitable[web.Response]]:
    """``/v2/liquidations/hist?start&end&limit&sort``: each entry wrapped in its own list; HTTP 500 with
    ``["error", CODE, "text"]`` on bad parameters, as Bitfinex answers."""
    async def handler(request: web.Request) -> web.Response:
        venue = hub.venue("bitfinex")
        now = hub.market.now_ms()
        try:
            start = int(request.query.get("start", "0"))
            end = int(request.query.get("end", str(now)))
            limit = int(request.query.get("limit", "100"))
            sort = int(request.query.get("sort", "-1"))
        except ValueError:
            return reply(["error", 10020, "params: invalid"], status=500)
        if venue is None or not 1 <= limit <= BITFINEX_LIQ_MAX:
            return reply(["error", 10020, "limit: invalid"], status=500)
        hub.market.advance()
        chosen = [(venue.contracts[liq.symbol], liq) for liq in venue.liquidations
                  if liq.symbol in venue.contracts and start <= liq.ts_ms <= end]
        chosen = chosen[:limit] if sort == 1 else list(reversed(chosen))[:limit]
        return reply([[bitfinex_entry(contract, liq)] for contract, liq in chosen])

    return handler


# -- mounting ----------------------------------------------------------------------------------------------

def mount_streams(app: web.Application, market: Market, faults: FaultBook) -> StreamHub:
    """Add the liquidation stream routes to the simulator app (after the venue sub-apps: a venue module's
    own route of the same path wins). Venues are looked up per connection, so a venue added to
    ``market.venues`` later is served too."""
    hub = StreamHub(market, faults)
    _HUBS[market] = hub

    def ws_route(venue: str, path: str, feed_key: str, tick_s: float, sample: bool,
                 handlers: tuple[Callable[[Connection, Any], Awaitable[None]], Callable[[Connection], Awaitable[None]]],
                 gzip_frames: bool = False, server_ping: Callable[[Connection], Awaitable[None]] | None = None,
                 greeting: Callable[[Connection], Awaitable[None]] | None = None,
                 ) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        on_text, push = handlers

        async def handler(request: web.Request) -> web.StreamResponse:
            return await _serve(hub, request, venue, path, feed_key, tick_s, sample, on_text, push,
                                gzip_frames, server_ping, greeting)

        return handler

    usdm = ws_route("binance", "/market/ws", "binance:usdm", 0.1, True, binance_handlers(inverse=False))
    coinm = ws_route("binancecoinm", "/ws", "binancecoinm", 0.1, True, binance_handlers(inverse=True))
    routes = [
        web.get("/binance/market/ws", usdm), web.get("/binance/market/ws/{n}", usdm),
        web.get("/binance/ws", usdm), web.get("/binance/ws/{n}", usdm),
        web.get("/binancecoinm/ws", coinm), web.get("/binancecoinm/ws/{n}", coinm),
        web.get("/okx/ws/v5/public", ws_route("okx", "/ws/v5/public", "okx", 0.2, True, okx_handlers())),
        web.get("/htx/linear-swap-notification",
                ws_route("htx", "/linear-swap-notification", "htx", 0.2, False, htx_handlers(), True, htx_ping)),
        web.get("/gate/api/v4/futures/{settle}/liq_orders", gate_liq_orders(hub)),
        web.get("/htx/linear-swap-api/v3/swap_liquidation_orders", htx_liquidation_orders(hub)),
        web.get("/bitfinex/ws/2", ws_route("bitfinex", "/ws/2", "bitfinex", 0.2, False, bitfinex_handlers(),
                                           server_ping=bitfinex_heartbeat, greeting=bitfinex_greeting)),
        web.get("/bitfinex/v2/liquidations/hist", bitfinex_liquidations_hist(hub)),
        web.get("/htx/v5/market/liquidation_orders", htx_liquidation_orders_v5(hub)),
    ]
    for category in ("linear", "inverse"):
        path = f"/v5/public/{category}"
        routes.append(web.get(f"/bybit{path}", ws_route("bybit", path, f"bybit:{category}", 0.5, False,
                                                        bybit_handlers(inverse=category == "inverse"))))
    for settle in ("usdt", "btc"):
        path = f"/v4/ws/{settle}"
        routes.append(web.get(f"/gate{path}", ws_route("gate", path, f"gate:{settle}", 0.2, True,
                                                       gate_handlers(inverse=settle == "btc"))))

    async def control(_: web.Request) -> web.Response:
        return reply({"feeds": hub.describe(), "now_ms": market.now_ms()})

    routes.append(web.get("/_control/liquidation-streams", control))
    app.add_routes(routes)
    app.on_shutdown.append(hub.close_all)
    return hub
