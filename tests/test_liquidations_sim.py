"""Simulated liquidation streams: each venue's protocol, message shape and throttling, read with a plain
WebSocket client; stream faults; the REST histories."""

from __future__ import annotations

import asyncio
import gzip
import json
from decimal import Decimal
from typing import Any

import aiohttp
import pytest

from simulator.market import Market
from simulator.market_state import SimContract, SimLiquidation, SimVenue
from simulator.server import SimulatorThread
from simulator.stream_hub import Cursor


def contract(symbol: str, base: str, quote: str, size: str, inverse: bool = False) -> SimContract:
    return SimContract(symbol, base, quote, base if inverse else quote, Decimal(size), inverse, Decimal(1000))


@pytest.fixture
def sim():
    market = Market(venues=["binance"], speed=0)
    market.venues["bybit"] = SimVenue("bybit", contracts={"BTCUSDT": contract("BTCUSDT", "BTC", "USDT", "1")})
    market.venues["okx"] = SimVenue("okx", contracts={"ETH-USDT-SWAP": contract("ETH-USDT-SWAP", "ETH", "USDT", "0.1")})
    market.venues["gate"] = SimVenue("gate", contracts={"BTC_USDT": contract("BTC_USDT", "BTC", "USDT", "0.0001")})
    market.venues["htx"] = SimVenue("htx", contracts={"BTC-USDT": contract("BTC-USDT", "BTC", "USDT", "0.001")})
    with SimulatorThread(market) as thread:
        yield thread


def add(sim: SimulatorThread, venue: str, symbol: str, ts_ms: int, side: str = "long", qty: str = "1") -> None:
    n = len(sim.market.venue(venue).liquidations)
    sim.market.venue(venue).liquidations.append(
        SimLiquidation(f"{venue}-{n}", symbol, ts_ms, side, Decimal(qty), Decimal("100"), Decimal("101"), Decimal(0)))


async def frames(ws: aiohttp.ClientWebSocketResponse, seconds: float) -> list[Any]:
    out: list[Any] = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while (left := deadline - loop.time()) > 0:
        try:
            message = await ws.receive(timeout=left)
        except TimeoutError:
            break
        if message.type == aiohttp.WSMsgType.BINARY:
            out.append(json.loads(gzip.decompress(message.data)))
        elif message.type == aiohttp.WSMsgType.TEXT:
            out.append(json.loads(message.data) if message.data.startswith(("{", "[")) else message.data)
        else:
            break
    return out


def ws_url(sim: SimulatorThread, venue: str, path: str) -> str:
    return sim.base_url(venue).replace("http://", "ws://") + path


def test_binance_pushes_the_latest_per_symbol_per_second(sim) -> None:
    async def run() -> list[Any]:
        async with aiohttp.ClientSession() as http, http.ws_connect(ws_url(sim, "binance", "/market/ws/0")) as ws:
            await ws.send_str(json.dumps({"method": "SUBSCRIBE", "params": ["!forceOrder@arr"], "id": 7}))
            got = await frames(ws, 0.3)
            second = sim.market.now_ms() // 1000 * 1000
            for i in range(4):
                add(sim, "binance", "BTCUSDT", second + i * 100, qty=str(i + 1))
            add(sim, "binance", "ETHUSDT", second + 50)
            add(sim, "binance", "BTCUSDT", second + 1500, side="short")  # next second: pushed too
            return got + await frames(ws, 0.6)

    got = asyncio.run(run())
    assert got[0] == {"result": None, "id": 7}
    events = [(e["o"]["s"], e["o"]["q"], e["o"]["S"]) for e in got[1:]]
    assert sorted(events) == [("BTCUSDT", "1", "BUY"), ("BTCUSDT", "4", "SELL"), ("ETHUSDT", "1", "SELL")]


def test_bybit_batches_everything_and_answers_pings(sim) -> None:
    async def run() -> list[Any]:
        async with aiohttp.ClientSession() as http, http.ws_connect(ws_url(sim, "bybit", "/v5/public/linear")) as ws:
            await ws.send_str(json.dumps({"op": "subscribe", "req_id": "1", "args": ["allLiquidation.NOPE"]}))
            await ws.send_str(json.dumps({"op": "subscribe", "req_id": "2", "args": ["allLiquidation.BTCUSDT"]}))
            await ws.send_str(json.dumps({"op": "ping", "req_id": "3"}))
            got = await frames(ws, 0.2)
            now = sim.market.now_ms()
            for i in range(25):
                add(sim, "bybit", "BTCUSDT", now + i)
            return got + await frames(ws, 0.8)

    got = asyncio.run(run())
    acks = [g for g in got if "op" in g]
    assert [(a["op"], a["success"]) for a in acks] == [("subscribe", False), ("subscribe", True), ("ping", True)]
    assert acks[2]["ret_msg"] == "pong"
    pushes = [g for g in got if g.get("topic") == "allLiquidation.BTCUSDT"]
    assert sum(len(p["data"]) for p in pushes) == 25 and len(pushes) <= 2  # 500 ms batches, nothing dropped
    assert pushes[0]["data"][0] == {"T": pushes[0]["data"][0]["T"], "s": "BTCUSDT", "S": "Buy", "v": "1", "p": "100"}


def test_okx_details_and_text_ping(sim) -> None:
    async def run() -> list[Any]:
        async with aiohttp.ClientSession() as http, http.ws_connect(ws_url(sim, "okx", "/ws/v5/public")) as ws:
            await ws.send_str(json.dumps({"op": "subscribe",
                                          "args": [{"channel": "liquidation-orders", "instType": "SWAP"}]}))
            await ws.send_str("ping")
            got = await frames(ws, 0.3)
            second = sim.market.now_ms() // 1000 * 1000
            for offset in (0, 10, 1000, 2000):  # three distinct seconds -> three details in one push
                add(sim, "okx", "ETH-USDT-SWAP", second + offset, side="short")
            return got + await frames(ws, 0.5)

    got = asyncio.run(run())
    assert got[0]["event"] == "subscribe" and "pong" in got
    [push] = [g for g in got if isinstance(g, dict) and "data" in g]
    details = push["data"][0]["details"]
    assert len(details) == 3 and {d["posSide"] for d in details} == {"short"} and details[0]["side"] == "buy"
    assert push["data"][0]["instId"] == "ETH-USDT-SWAP" and push["arg"]["instType"] == "SWAP"


def test_htx_gzip_frames_and_gate_protocol(sim) -> None:
    async def run() -> tuple[list[Any], list[Any]]:
        async with aiohttp.ClientSession() as http:
            async with http.ws_connect(ws_url(sim, "htx", "/linear-swap-notification")) as ws:
                await ws.send_str(json.dumps({"op": "sub", "cid": "c1", "topic": "public.*.liquidation_orders"}))
                await frames(ws, 0.2)
                add(sim, "htx", "BTC-USDT", sim.market.now_ms(), qty="7")
                htx = await frames(ws, 0.5)
            async with http.ws_connect(ws_url(sim, "gate", "/v4/ws/usdt")) as ws:
                await ws.send_str(json.dumps({"time": 1, "channel": "futures.public_liquidates", "event": "subscribe",
                                              "payload": ["!all"]}))
                await ws.send_str(json.dumps({"time": 1, "channel": "futures.ping"}))
                gate = await frames(ws, 0.2)  # the acknowledgement first: earlier liquidations are not pushed
                add(sim, "gate", "BTC_USDT", sim.market.now_ms() + 1, side="short", qty="3")
                gate += await frames(ws, 0.5)
            return htx, gate

    htx, gate = asyncio.run(run())
    [notify] = [h for h in htx if h.get("op") == "notify"]
    row = notify["data"][0]
    assert notify["topic"] == "public.BTC-USDT.liquidation_orders" and row["direction"] == "sell"
    assert row["volume"] == 7 and row["amount"] == pytest.approx(0.007) and row["trade_turnover"] == pytest.approx(0.707)
    channels = [(g["channel"], g["event"]) for g in gate]
    assert ("futures.public_liquidates", "subscribe") in channels and ("futures.pong", "") in channels
    [update] = [g for g in gate if g["event"] == "update"]
    assert update["result"][0]["size"] == -3 and update["result"][0]["contract"] == "BTC_USDT"


def test_disconnect_refuses_reconnects_and_duplicate_replays(sim) -> None:
    async def run() -> tuple[list[Any], int]:
        url = ws_url(sim, "bybit", "/v5/public/linear")
        async with aiohttp.ClientSession() as http:
            async with http.ws_connect(url) as ws:
                await ws.send_str(json.dumps({"op": "subscribe", "req_id": "1", "args": ["allLiquidation.BTCUSDT"]}))
                await frames(ws, 0.2)
                add(sim, "bybit", "BTCUSDT", sim.market.now_ms())
                sim.faults.add("bybit:/v5/public/linear:duplicate:1 x1")
                got = await frames(ws, 0.7)
                sim.faults.add("bybit:/v5/public/linear:disconnect:5 x1")
                await frames(ws, 0.7)
                assert ws.closed
            try:
                async with http.ws_connect(url):
                    status = 101
            except aiohttp.WSServerHandshakeError as exc:
                status = exc.status
            return got, status

    got, status = asyncio.run(run())
    pushes = [g for g in got if g.get("topic")]
    assert len(pushes) == 2 and pushes[0] == pushes[1]  # the frame, then its replay
    assert status == 503


def test_rest_histories(sim) -> None:
    now = sim.market.now_ms()
    for i in range(150):
        add(sim, "htx", "BTC-USDT", now - i * 1000, side="long" if i % 2 else "short")
    add(sim, "gate", "BTC_USDT", now, qty="600")

    async def run() -> tuple[Any, Any, Any, int]:
        async with aiohttp.ClientSession() as http:
            base = sim.base_url("htx") + "/linear-swap-api/v3/swap_liquidation_orders"
            params = {"trade_type": "0", "start_time": str(now - 3_600_000), "end_time": str(now)}
            async with http.get(base, params=params) as resp:
                first = await resp.json()
            last_id = min(r["query_id"] for r in first["data"])
            async with http.get(base, params={**params, "from_id": str(last_id), "direct": "next"}) as resp:
                second = await resp.json()
            gate = sim.base_url("gate") + "/api/v4/futures/usdt/liq_orders"
            async with http.get(gate, params={"from": str(now // 1000 - 60), "to": str(now // 1000)}) as resp:
                rows = await resp.json()
            async with http.get(gate, params={"from": "0", "to": "7200"}) as resp:
                too_wide = resp.status
            return first, second, rows, too_wide

    first, second, rows, too_wide = asyncio.run(run())
    assert first["code"] == 200 and len(first["data"]) == 100 and len(second["data"]) == 50
    assert not {r["query_id"] for r in first["data"]} & {r["query_id"] for r in second["data"]}
    assert rows == [{"time": now // 1000, "contract": "BTC_USDT", "size": 600, "order_size": -600,
                     "order_price": "100", "fill_price": "101", "left": 0}]
    assert too_wide == 400  # Gate: from/to (seconds) at most 3600 apart


def test_cursor_survives_a_trimmed_list() -> None:
    items = [SimLiquidation(str(i), "X", i, "long", Decimal(1), Decimal(1), Decimal(1), Decimal(0)) for i in range(5)]
    cursor = Cursor(items)
    items.append(SimLiquidation("5", "X", 5, "long", Decimal(1), Decimal(1), Decimal(1), Decimal(0)))
    assert [i.liq_id for i in cursor.take(items)] == ["5"]
    del items[:4]  # the market model drops old liquidations
    items.append(SimLiquidation("6", "X", 6, "long", Decimal(1), Decimal(1), Decimal(1), Decimal(0)))
    assert [i.liq_id for i in cursor.take(items)] == ["6"]
    assert cursor.take(items) == []
