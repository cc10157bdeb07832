"""Simulated venues: key -> module with ``build(market) -> SimVenue`` and ``ROUTES`` (a tuple of
``simulator.routing.Route``: method, path, module-level handler that finds the market via ``market_of``).

Each module answers the venue's real paths (mounted under ``/<key>`` on the simulator) with the
venue's real JSON shapes, including the market-metadata endpoints ccxt calls in ``load_markets``.
"""

from __future__ import annotations

import importlib
from types import ModuleType

SIM_VENUES: dict[str, str] = {
    "binance": "simulator.venues.binance",
    "bybit": "simulator.venues.bybit",
    "okx": "simulator.venues.okx",
    "bitmex": "simulator.venues.bitmex",
    "hyperliquid": "simulator.venues.hyperliquid",
    "dydx": "simulator.venues.dydx",
    "krakenfutures": "simulator.venues.krakenfutures",
    "deribit": "simulator.venues.deribit",
    "gate": "simulator.venues.gate",
    "htx": "simulator.venues.htx",
    "mexc": "simulator.venues.mexc",
    "binancecoinm": "simulator.venues.binancecoinm",
    "bitget": "simulator.venues.bitget",
    "kucoinfutures": "simulator.venues.kucoinfutures",
    "bitfinex": "simulator.venues.bitfinex",
    "cryptocom": "simulator.venues.cryptocom",
    "orderly": "simulator.venues.orderly",
    "paradex": "simulator.venues.paradex",
}


def venue_module(key: str) -> ModuleType:
    return importlib.import_module(SIM_VENUES[key])
