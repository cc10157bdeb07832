"""Venue registry: key -> adapter class. Adding a venue = its module + one line here."""

from __future__ import annotations

import importlib
from functools import cache

from collectors.base import VenueAdapter

_ADAPTERS: dict[str, str] = {
    "binance": "collectors.binance:BinanceAdapter",
    "bybit": "collectors.bybit:BybitAdapter",
    "okx": "collectors.okx:OkxAdapter",
    "bitmex": "collectors.bitmex:BitmexAdapter",
    "hyperliquid": "collectors.hyperliquid:HyperliquidAdapter",
    "dydx": "collectors.dydx:DydxAdapter",
    "krakenfutures": "collectors.krakenfutures:KrakenFuturesAdapter",
    "deribit": "collectors.deribit:DeribitAdapter",
    "gate": "collectors.gate:GateAdapter",
    "htx": "collectors.htx:HtxAdapter",
    "mexc": "collectors.mexc:MexcAdapter",
    "binancecoinm": "collectors.binancecoinm:BinanceCoinmAdapter",
    "bitget": "collectors.bitget:BitgetAdapter",
    "kucoinfutures": "collectors.kucoinfutures:KucoinFuturesAdapter",
    "bitfinex": "collectors.bitfinex:BitfinexAdapter",
    "cryptocom": "collectors.cryptocom:CryptocomAdapter",
    "orderly": "collectors.orderly:OrderlyAdapter",
    "paradex": "collectors.paradex:ParadexAdapter",
}


def venue_keys() -> list[str]:
    return list(_ADAPTERS)


@cache
def adapter_class(key: str) -> type[VenueAdapter]:
    if key not in _ADAPTERS:
        raise KeyError(f"unknown venue {key!r} (known: {', '.join(_ADAPTERS)})")
    module_name, class_name = _ADAPTERS[key].split(":")
    klass: type[VenueAdapter] = getattr(importlib.import_module(module_name), class_name)
    if klass.key != key:
        raise RuntimeError(f"{_ADAPTERS[key]} declares key {klass.key!r}, registered as {key!r}")
    return klass


def all_adapter_classes() -> dict[str, type[VenueAdapter]]:
    return {key: adapter_class(key) for key in _ADAPTERS}
