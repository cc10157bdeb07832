"""Transports for feeds ccxt.pro has no stream for: a raw aiohttp WebSocket (Gate, HTX) and a REST poller
over a venue's liquidation history endpoint (Gate ``liq_orders``, HTX ``swap_liquidation_orders``)."""

from __future__ import annotations

import abc
import asyncio
import json
import logging
import zlib
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import aiohttp

from collectors.errors import PayloadError
from collectors.http import JsonHttpClient
from collectors.liquidations.base import FeedInfo, LiquidationGap, LiquidationRecord
from collectors.liquidations.runner import Feed, FeedSession

log = logging.getLogger(__name__)

MAX_FRAME_BYTES = 16 * 1024 * 1024  # a frame on the wire (aiohttp refuses larger: the session ends, a gap)
MAX_DECODED_BYTES = 8 * 1024 * 1024  # a frame after inflating: a real liquidation frame is a few KB
INLINE_PARSE_CHARS = 256 * 1024  # larger frames are parsed off the event loop (JSON -> Decimal is slow)


class FrameTooLarge(PayloadError):
    """A frame that inflates (or is) past ``MAX_DECODED_BYTES``: dropped, recorded as a gap of its feed."""


def _inflate(data: bytes, limit: int) -> bytes:
    """gzip -> bytes, streaming, stopping as soon as the output passes ``limit``: a 200 KB bomb costs at
    most ``limit`` bytes and a few ms, never the hundreds of MB it would inflate to."""
    inflater = zlib.decompressobj(wbits=31)
    out = inflater.decompress(data, limit + 1)
    if len(out) > limit:
        raise FrameTooLarge(f"gzip frame of {len(data):,} B inflates past {limit:,} B")
    if not inflater.eof:
        raise PayloadError("truncated gzip frame")
    return out


def frame_text(message: aiohttp.WSMessage, limit: int = MAX_DECODED_BYTES) -> str:
    """The frame's text: binary frames inflated when gzip-compressed (HTX), every frame capped at ``limit``."""
    data = message.data
    if message.type == aiohttp.WSMsgType.BINARY:
        raw = _inflate(data, limit) if data[:2] == b"\x1f\x8b" else data
        if len(raw) > limit:
            raise FrameTooLarge(f"binary frame of {len(raw):,} B is over {limit:,} B")
        return str(raw.decode("utf-8"))
    if len(data) > limit:
        raise FrameTooLarge(f"text frame of {len(data):,} chars is over {limit:,}")
    return str(data)


def parse_text(text: str) -> Any:
    """JSON with exact decimals; a frame that is not JSON is returned as its text."""
    try:
        return json.loads(text, parse_float=Decimal)
    except json.JSONDecodeError:
        return text


def decode_frame(message: aiohttp.WSMessage, limit: int = MAX_DECODED_BYTES) -> Any:
    """Text or (gzip-compressed, as HTX sends) binary frame -> JSON with exact decimals, size-capped."""
    return parse_text(frame_text(message, limit))


async def decode_frame_async(message: aiohttp.WSMessage, limit: int = MAX_DECODED_BYTES) -> Any:
    """``decode_frame`` that parses large frames in a worker thread: inflating is capped (a few ms at
    most), parsing megabytes of JSON into Decimals is not, and must not hold the event loop."""
    text = frame_text(message, limit)
    if len(text) > INLINE_PARSE_CHARS:
        return await asyncio.to_thread(parse_text, text)
    return parse_text(text)


class RawWsFeed(Feed):
    """One aiohttp WebSocket: send the subscribe frames, answer the venue's app-level pings, read frames
    until the server closes or goes quiet for ``idle_timeout_s``."""

    idle_timeout_s: float = 30.0
    ping_interval_s: float | None = None  # client-initiated app-level pings (Gate); None = venue pings

    def __init__(self, info: FeedInfo, url: str, timeout_s: float = 20.0) -> None:
        self.info = info
        self.url = url
        self.timeout_s = timeout_s
        self._http: aiohttp.ClientSession | None = None

    @abc.abstractmethod
    def subscribe_frames(self) -> list[str]: ...

    @abc.abstractmethod
    def handle(self, frame: Any, ctx: FeedSession) -> str | None:
        """Process one decoded frame; return a text frame to send back (a pong) or None."""

    def ping_frame(self) -> str | None:
        return None

    async def prepare(self) -> None:  # noqa: B027 - optional hook
        """Before connecting: load contract specs (REST)."""

    async def _pinger(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        assert self.ping_interval_s is not None
        while not ws.closed:
            await asyncio.sleep(self.ping_interval_s)
            frame = self.ping_frame()
            if frame and not ws.closed:
                await ws.send_str(frame)

    async def session(self, ctx: FeedSession) -> None:
        await self.prepare()
        if self._http is None or self._http.closed:
            self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None, sock_connect=self.timeout_s))
        async with self._http.ws_connect(self.url, autoping=True, compress=0, max_msg_size=MAX_FRAME_BYTES,
                                         timeout=aiohttp.ClientWSTimeout(ws_close=5)) as ws:
            for frame in self.subscribe_frames():
                await ws.send_str(frame)
            pinger = asyncio.ensure_future(self._pinger(ws)) if self.ping_interval_s else None
            try:
                while True:
                    message = await ws.receive(timeout=self.idle_timeout_s)
                    if message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSING,
                                        aiohttp.WSMsgType.CLOSED):
                        raise ConnectionError(f"closed by the server (code {ws.close_code})")
                    if message.type == aiohttp.WSMsgType.ERROR:
                        raise ConnectionError(f"websocket error: {ws.exception()}")
                    if message.type not in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):
                        continue
                    ctx.alive()
                    try:
                        frame = await decode_frame_async(message)
                        reply = self.handle(frame, ctx)
                    except FrameTooLarge as exc:
                        self._dropped(exc, ctx)
                        continue
                    except PayloadError as exc:
                        if isinstance(exc, SubscriptionRefused):
                            raise
                        ctx.parse_failed(exc, message.data)
                        continue
                    except (OSError, ValueError, KeyError, TypeError, ArithmeticError) as exc:
                        ctx.parse_failed(exc, message.data)
                        continue
                    if reply is not None:
                        await ws.send_str(reply)
            finally:
                if pinger is not None:
                    pinger.cancel()
                    await asyncio.gather(pinger, return_exceptions=True)

    def _dropped(self, exc: FrameTooLarge, ctx: FeedSession) -> None:
        """An oversize frame is dropped: whatever it carried is missing, so its moment is a gap."""
        now = datetime.now(UTC)
        log.warning("%s %s: frame dropped: %s", self.info.venue, self.info.feed, exc)
        ctx.frame_dropped(LiquidationGap(self.info.venue, self.info.feed, now, now, f"oversize frame dropped: {exc}"))

    async def close(self) -> None:
        if self._http is not None and not self._http.closed:
            await self._http.close()


class SubscriptionRefused(PayloadError):
    """The venue answered the subscribe frame with an error: the session ends (and is retried)."""


class RestPollFeed(Feed):
    """Polls a history endpoint window by window from a cursor; a failed poll is simply re-read by the
    next one (no gap), only windows older than the venue keeps are recorded as gaps."""

    gap_on_failure = False

    def __init__(self, info: FeedInfo, base_url: str, timeout_s: float, interval_s: float,
                 lookback_s: float, window_s: float, max_history_s: float | None,
                 resume: Callable[[], Awaitable[datetime | None]] | None = None, overlap_s: float = 120.0) -> None:
        self.info = info
        self.base_url = base_url
        self.timeout_s = timeout_s
        self.interval_s = interval_s
        self.lookback_s = lookback_s
        self.window_s = window_s
        self.max_history_s = max_history_s
        self.resume = resume
        self.overlap_s = overlap_s
        self.cursor: datetime | None = None
        self._client: JsonHttpClient | None = None

    @abc.abstractmethod
    async def fetch_window(self, client: JsonHttpClient, start: datetime, end: datetime) -> list[LiquidationRecord]:
        """Every liquidation in [start, end) (paging as the venue requires)."""

    async def prepare(self, client: JsonHttpClient) -> None:  # noqa: B027 - optional hook
        """Load contract specs."""

    async def _start_cursor(self, now: datetime) -> datetime:
        if self.cursor is not None:
            return self.cursor
        newest = await self.resume() if self.resume else None
        if newest is not None:
            return newest - timedelta(seconds=self.overlap_s)
        return now - timedelta(seconds=self.lookback_s)

    async def poll_once(self, ctx: FeedSession) -> int:
        """Read from the cursor up to now; returns records read."""
        if self._client is None:
            self._client = JsonHttpClient(self.base_url, self.timeout_s)
        await self.prepare(self._client)
        now = ctx.clock.now(self.info.venue)
        start = await self._start_cursor(now)
        if self.max_history_s is not None:
            oldest = now - timedelta(seconds=self.max_history_s)
            if start < oldest:
                ctx.report_gap(LiquidationGap(self.info.venue, self.info.feed, start, oldest,
                                              "older than the venue's REST history"))
                start = oldest
        total = 0
        cursor = start
        while cursor < now:
            end = min(cursor + timedelta(seconds=self.window_s), now)
            records = await self.fetch_window(self._client, cursor, end)
            ctx.alive()
            ctx.records(records)
            total += len(records)
            cursor = end
            self.cursor = max(start, end - timedelta(seconds=self.overlap_s))
        ctx.subscribed()
        return total

    async def session(self, ctx: FeedSession) -> None:
        while True:
            await self.poll_once(ctx)
            await asyncio.sleep(self.interval_s)

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
