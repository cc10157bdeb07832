"""Which liquidation feeds each venue runs: one declaration per venue that has a feed.

A declaration maps the venue's configuration to its feeds: WebSocket feeds when ``streams`` is on, REST
pollers when ``intervals.liquidations`` is non-zero (REST pollers resume from the newest stored event
through ``resume(venue, feed)``). Adding a venue's feed = its module in this package plus one line in
``FEEDS``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Protocol

from collectors.liquidations.binance import BinanceForceOrderFeed
from collectors.liquidations.bitfinex import BitfinexLiqFeed, BitfinexLiquidationsHistFeed
from collectors.liquidations.bybit import BybitAllLiquidationFeed
from collectors.liquidations.gate import GateLiqOrdersFeed, GateLiquidatesFeed
from collectors.liquidations.htx import HtxLiquidationFeed, HtxLiquidationOrdersFeed
from collectors.liquidations.okx import OkxLiquidationFeed
from collectors.liquidations.orderly import OrderlyLiquidatedPositionsFeed
from collectors.liquidations.runner import Feed

ResumeFn = Callable[[], Awaitable[datetime | None]]
Resume = Callable[[str, str], ResumeFn | None]  # (venue, feed) -> newest stored event time, if known


class FeedIntervals(Protocol):
    @property
    def liquidations(self) -> float: ...


class FeedConfig(Protocol):
    """What a feed declaration reads of a venue's configuration."""

    @property
    def streams(self) -> bool: ...
    @property
    def timeout_s(self) -> float: ...
    @property
    def symbols(self) -> list[str]: ...
    @property
    def intervals(self) -> FeedIntervals: ...
    def base_url_str(self) -> str | None: ...


FeedDeclaration = Callable[[FeedConfig, Resume], list[Feed]]


def _binance(config: FeedConfig, resume: Resume) -> list[Feed]:
    return [BinanceForceOrderFeed("usdm", config.base_url_str(), config.timeout_s)] if config.streams else []


def _binancecoinm(config: FeedConfig, resume: Resume) -> list[Feed]:
    return [BinanceForceOrderFeed("coinm", config.base_url_str(), config.timeout_s)] if config.streams else []


def _bybit(config: FeedConfig, resume: Resume) -> list[Feed]:
    if not config.streams:
        return []
    return [BybitAllLiquidationFeed(category, config.base_url_str(), config.symbols, config.timeout_s)
            for category in ("linear", "inverse")]


def _okx(config: FeedConfig, resume: Resume) -> list[Feed]:
    if not config.streams:
        return []
    return [OkxLiquidationFeed(inst_type, config.base_url_str(), config.timeout_s) for inst_type in ("SWAP", "FUTURES")]


def _gate(config: FeedConfig, resume: Resume) -> list[Feed]:
    feeds: list[Feed] = []
    for settle in ("usdt", "btc"):
        if config.streams:
            feeds.append(GateLiquidatesFeed(settle, config.base_url_str(), config.timeout_s))
        if config.intervals.liquidations > 0:
            feeds.append(GateLiqOrdersFeed(settle, config.base_url_str(), config.intervals.liquidations,
                                           config.timeout_s, resume=resume("gate", f"liq_orders:{settle}")))
    return feeds


def _htx(config: FeedConfig, resume: Resume) -> list[Feed]:
    feeds: list[Feed] = []
    if config.streams:
        feeds.append(HtxLiquidationFeed(config.base_url_str(), config.timeout_s))
    if config.intervals.liquidations > 0:
        feeds.append(HtxLiquidationOrdersFeed(config.base_url_str(), config.intervals.liquidations, config.symbols,
                                              config.timeout_s, resume=resume("htx", "swap_liquidation_orders:linear")))
    return feeds


def _bitfinex(config: FeedConfig, resume: Resume) -> list[Feed]:
    feeds: list[Feed] = []
    if config.streams:
        feeds.append(BitfinexLiqFeed(config.base_url_str(), config.timeout_s))
    if config.intervals.liquidations > 0:
        feeds.append(BitfinexLiquidationsHistFeed(config.base_url_str(), config.intervals.liquidations,
                                                  config.timeout_s, resume=resume("bitfinex", "liquidations/hist")))
    return feeds


def _orderly(config: FeedConfig, resume: Resume) -> list[Feed]:
    if config.intervals.liquidations <= 0:
        return []
    return [OrderlyLiquidatedPositionsFeed(config.base_url_str(), config.intervals.liquidations, config.timeout_s,
                                           resume=resume("orderly", "liquidated_positions"))]


# venue key -> its feed declaration (the order feeds are started in)
FEEDS: dict[str, FeedDeclaration] = {
    "binance": _binance,
    "binancecoinm": _binancecoinm,
    "bybit": _bybit,
    "okx": _okx,
    "gate": _gate,
    "htx": _htx,
    "bitfinex": _bitfinex,
    "orderly": _orderly,
}
