"""ccxt.pro as the transport of a liquidation feed: connection, subscribe message, keep-alive pings and
resubscription come from ccxt; the frames are read raw.

ccxt's own liquidation parsing is not used: it gets inverse notional wrong (reference §0.7) and OKX reads
only ``details[0]`` (§0.8). So each exchange class is subclassed with a ``handle_message`` that hands every
decoded frame to the feed first (the *tap*): liquidation data frames are parsed by our venue parsers and
consumed there; acknowledgements, pongs and errors continue into ccxt as usual. The ``watch_*`` call
therefore never resolves with data: it stays pending while the connection lives and raises when ccxt
drops it, which is exactly the signal the runner needs.
"""

from __future__ import annotations

import abc
import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import ccxt.pro

from collectors.liquidations.base import FeedInfo, LiquidationRecord
from collectors.liquidations.runner import Feed, FeedSession

Tap = Callable[[Any], bool]
_CLASSES: dict[str, type] = {}


def tapped_class(exchange_id: str) -> type:
    """``ccxt.pro.<id>`` whose ``handle_message`` offers each frame to ``self.liquidation_tap`` first."""
    if exchange_id not in _CLASSES:
        base: Any = getattr(ccxt.pro, exchange_id)

        def handle_message(self: Any, client: Any, message: Any) -> Any:
            tap: Tap | None = getattr(self, "liquidation_tap", None)
            if tap is not None and tap(message):
                return None
            return base.handle_message(self, client, message)

        _CLASSES[exchange_id] = type(f"Liquidation{base.__name__}", (base,), {"handle_message": handle_message})
    return _CLASSES[exchange_id]


class CcxtFeed(Feed):
    """A feed whose transport is a ccxt.pro exchange (one exchange instance = one connection per feed)."""

    def __init__(self, info: FeedInfo, exchange_id: str, timeout_s: float = 20.0) -> None:
        self.info = info
        self.exchange_id = exchange_id
        self.timeout_s = timeout_s
        self.exchange: Any = None
        self._ctx: FeedSession | None = None

    # -- per venue -----------------------------------------------------------------------------------
    @abc.abstractmethod
    def configure(self, exchange: Any) -> None:
        """Point the exchange's ws (and REST) URLs where they belong (the simulator in tests)."""

    @abc.abstractmethod
    def watch_calls(self) -> list[Callable[[], Awaitable[Any]]]:
        """Factories of the ccxt ``watch_*`` calls that hold this feed's subscriptions."""

    @abc.abstractmethod
    def is_ack(self, message: Any) -> bool:
        """The venue acknowledged a subscription."""

    @abc.abstractmethod
    def parse(self, message: Any) -> list[LiquidationRecord] | None:
        """Records of a liquidation data frame; None for any other frame (left to ccxt)."""

    async def prepare(self) -> None:  # noqa: B027 - optional hook
        """Before subscribing: load contract specs / markets (REST)."""

    # -- transport -----------------------------------------------------------------------------------
    def make_exchange(self) -> Any:
        exchange = tapped_class(self.exchange_id)({
            "enableRateLimit": True,
            "timeout": int(self.timeout_s * 1000),
            "options": {"ws": {"compress": 0}},
        })
        self.configure(exchange)
        exchange.liquidation_tap = self._tap
        return exchange

    def _tap(self, message: Any) -> bool:
        ctx = self._ctx
        if ctx is None:
            return False
        ctx.alive()
        if self.is_ack(message):
            ctx.subscribed()
            return False
        try:
            records = self.parse(message)
        except Exception as exc:  # noqa: BLE001 - one bad frame never stops the stream
            ctx.parse_failed(exc, message)
            return True
        if records is None:
            return False
        ctx.records(records)
        return True

    async def session(self, ctx: FeedSession) -> None:
        self._ctx = ctx
        if self.exchange is None:
            self.exchange = self.make_exchange()
        await self.prepare()
        factories = self.watch_calls()
        tasks: dict[asyncio.Future[Any], Callable[[], Awaitable[Any]]] = {
            asyncio.ensure_future(factory()): factory for factory in factories
        }
        try:
            while True:
                done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    factory = tasks.pop(task)
                    task.result()  # a dropped connection raises here and ends the session
                    tasks[asyncio.ensure_future(factory())] = factory  # resolved normally: keep watching
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self._drop_connections()

    async def _drop_connections(self) -> None:
        """Close this session's sockets so the next session reconnects and resubscribes from scratch."""
        clients = dict(getattr(self.exchange, "clients", None) or {})
        for client in clients.values():
            try:
                await client.close()
            except Exception:  # noqa: BLE001,S110 - the socket is being discarded anyway
                pass
        if clients:
            self.exchange.clients = {}

    async def close(self) -> None:
        if self.exchange is not None:
            await self.exchange.close()
            self.exchange = None
