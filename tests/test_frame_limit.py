"""Stream frames are inflated with a size cap: a gzip bomb is dropped (and recorded as a gap of its feed)
without inflating it, without holding the event loop, and the stream carries on."""

from __future__ import annotations

import asyncio
import gzip
import json
import time
import tracemalloc
import zlib
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from collectors.liquidations.base import LiquidationGap, LiquidationRecord
from collectors.liquidations.htx import HtxLiquidationFeed
from collectors.liquidations.runner import Backoff, FeedRunner
from collectors.liquidations.transport import MAX_DECODED_BYTES, FrameTooLarge, decode_frame

BOMB_INFLATED = 128 * 1024 * 1024  # the bomb inflated to 401 MB; 128 MiB is plenty past the cap


def gzip_bomb(inflated: int = BOMB_INFLATED) -> bytes:
    """A valid gzip member whose content is a JSON object padded to ``inflated`` bytes, built in chunks."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    parts = [packer.compress(b'{"op":"notify","topic":"public.BTC-USDT.liquidation_orders","pad":"')]
    chunk = b"a" * (1024 * 1024)
    for _ in range(inflated // len(chunk)):
        parts.append(packer.compress(chunk))
    parts += [packer.compress(b'"}'), packer.flush()]
    return b"".join(parts)


def _binary(data: bytes) -> aiohttp.WSMessage:
    return aiohttp.WSMessage(aiohttp.WSMsgType.BINARY, data, None)


def test_gzip_bomb_is_refused_without_inflating_it() -> None:
    bomb = gzip_bomb()
    assert len(bomb) < 1024 * 1024
    tracemalloc.start()
    started = time.perf_counter()
    try:
        with pytest.raises(FrameTooLarge):
            decode_frame(_binary(bomb))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 3 * MAX_DECODED_BYTES, f"peak {peak / 2**20:.0f} MiB"
    assert time.perf_counter() - started < 2.0


def test_frames_under_the_cap_still_decode() -> None:
    frame = {"op": "ping", "ts": 1}
    assert decode_frame(_binary(gzip.compress(json.dumps(frame).encode()))) == frame
    big = {"pad": "b" * (MAX_DECODED_BYTES - 100)}  # just under the cap
    assert decode_frame(_binary(gzip.compress(json.dumps(big).encode()))) == big
    with pytest.raises(FrameTooLarge):
        decode_frame(aiohttp.WSMessage(aiohttp.WSMsgType.TEXT, "x" * (MAX_DECODED_BYTES + 1), None))


class _ListSink:
    def __init__(self) -> None:
        self.records: list[LiquidationRecord] = []
        self.gaps: list[LiquidationGap] = []

    def submit(self, records: Sequence[LiquidationRecord]) -> None:
        self.records.extend(records)

    def gap_opened(self, gap: LiquidationGap) -> None:
        self.gaps.append(gap)

    def gap_closed(self, venue: str, feed: str, end: datetime) -> None:
        pass

    def coverage(self, op: tuple[Any, ...]) -> None:
        pass


def test_bomb_on_a_live_stream_is_dropped_recorded_and_the_stream_goes_on() -> None:
    """A real WebSocket server speaking HTX's protocol sends: sub ack, the bomb, a large-but-legal frame,
    then a ping. The feed must answer the ping (still reading), record one gap for the dropped frame, and
    the event loop must never stall for long while it decodes."""
    bomb = gzip_bomb()
    legal = gzip.compress(json.dumps({"op": "notify", "topic": "public.X.other",
                                      "data": [{"pad": "c" * 64} for _ in range(60_000)]}).encode())

    async def run() -> tuple[list[LiquidationGap], float, Any]:
        ponged = asyncio.Event()
        pong: dict[str, Any] = {}

        async def handler(request: web.Request) -> web.WebSocketResponse:
            ws = web.WebSocketResponse()
            await ws.prepare(request)
            await ws.receive()  # the sub frame
            await ws.send_bytes(gzip.compress(b'{"op":"sub","cid":"backstop-liquidations","err-code":0}'))
            await ws.send_bytes(bomb)
            await ws.send_bytes(legal)
            await ws.send_bytes(gzip.compress(b'{"op":"ping","ts":42}'))
            message = await ws.receive()
            pong.update(json.loads(message.data))
            ponged.set()
            await ws.receive()
            return ws

        app = web.Application()
        app.router.add_get("/htx/linear-swap-notification", handler)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]  # noqa: SLF001
        sink = _ListSink()
        feed_runner = FeedRunner(HtxLiquidationFeed(f"http://127.0.0.1:{port}/htx"), sink,
                                 backoff=Backoff(base_s=5.0))
        worst_lag = 0.0

        async def watch_loop() -> None:
            nonlocal worst_lag
            while True:
                before = time.perf_counter()
                await asyncio.sleep(0.01)
                worst_lag = max(worst_lag, time.perf_counter() - before - 0.01)

        watcher = asyncio.create_task(watch_loop())
        task = asyncio.create_task(feed_runner.run())
        try:
            await asyncio.wait_for(ponged.wait(), 60)
        finally:
            task.cancel()
            watcher.cancel()
            await asyncio.gather(task, watcher, return_exceptions=True)
            await runner.cleanup()
        return sink.gaps, worst_lag, (pong, feed_runner.stats)

    gaps, worst_lag, (pong, stats) = asyncio.run(run())
    assert pong == {"op": "pong", "ts": 42}
    assert [g.reason for g in gaps if "oversize" in g.reason] == [gaps[0].reason] and len(gaps) == 1, gaps
    assert gaps[0].end_ts is not None  # a closed window: the frame's moment is marked incomplete
    assert stats.oversize_frames == 1
    assert worst_lag < 0.25, f"event loop held {worst_lag * 1000:.0f} ms"
