"""Bybit ``allLiquidation.{symbol}`` through ccxt.pro (``watch_liquidations``: one topic per symbol).

Since 2025-02-20 Bybit claims this topic pushes ALL liquidations, in 500 ms batches: the only feed whose sum
is not a lower bound. ``S`` is the POSITION side ("Buy => a long position has been liquidated"); ``p`` is
the bankruptcy price; ``v`` is base units on linear contracts and USD contracts (1 USD each) on inverse.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from decimal import Decimal
from typing import Any

from collectors.errors import PayloadError
from collectors.http import JsonHttpClient
from collectors.liquidations.base import (
    COMPLETE,
    LONG,
    SHORT,
    ContractSpec,
    FeedInfo,
    LiquidationRecord,
    event_key,
    notional,
    raw_json,
    rebase_ws,
    utcnow,
    ws_base,
)
from collectors.liquidations.ccxt_stream import CcxtFeed
from collectors.liquidations.runner import NothingToWatch
from collectors.parsing import dec, require, require_list, ts_ms

log = logging.getLogger(__name__)

VENUE = "bybit"
NOTE = "all liquidations (venue claim since 2025-02-20), 500 ms batches"
FEEDS = {category: FeedInfo(VENUE, f"allLiquidation:{category}", "ws", COMPLETE, NOTE)
         for category in ("linear", "inverse")}
MAX_PAGES = 20


def infer_spec(symbol: str, category: str) -> ContractSpec:
    """From the symbol alone (when instruments-info is unavailable): BTCUSDT, BTCPERP (USDC), BTCUSD,
    BTCUSDH25 (inverse future), ETHUSDT-26DEC25, BTC-26DEC25 (USDC future)."""
    head = symbol.split("-", 1)[0]
    if category == "inverse":
        pair = head[:-3] if head[-3:].isalnum() and head[-3].isalpha() and head[-2:].isdigit() else head
        base = pair[:-3] if pair.endswith("USD") else pair
        return ContractSpec(symbol, base, "USD", Decimal(1), True)
    for quote in ("USDT", "USDC"):
        if head.endswith(quote) and len(head) > len(quote):
            return ContractSpec(symbol, head[: -len(quote)], quote, Decimal(1), False)
    if head.endswith("PERP"):
        return ContractSpec(symbol, head[:-4], "USDC", Decimal(1), False)
    if "-" in symbol:  # BTC-26DEC25: USDC-settled future
        return ContractSpec(symbol, head, "USDC", Decimal(1), False)
    raise PayloadError(f"allLiquidation: cannot tell the quote of {symbol!r}")


def parse_instruments(payload: Any, category: str) -> tuple[dict[str, ContractSpec], str]:
    """GET /v5/market/instruments-info?category=linear: ``result.list[] {symbol, baseCoin, quoteCoin,
    contractType, status}`` and ``result.nextPageCursor``."""
    result = require(payload, "result", "instruments-info")
    specs = {}
    for row in require_list(require(result, "list", "instruments-info.result"), "instruments-info.list"):
        symbol = str(require(row, "symbol", "instruments-info.list"))
        if str(row.get("status", "Trading")) not in ("Trading", "PreLaunch"):
            continue
        inverse = category == "inverse"
        specs[symbol] = ContractSpec(symbol, str(row.get("baseCoin") or infer_spec(symbol, category).base),
                                     "USD" if inverse else str(row.get("quoteCoin") or "USDT"), Decimal(1), inverse)
    return specs, str(result.get("nextPageCursor") or "")


def parse_tickers(payload: Any, category: str) -> dict[str, ContractSpec]:
    """GET /v5/market/tickers?category=linear (symbols only, when instruments-info is unavailable)."""
    result = require(payload, "result", "tickers")
    rows = require_list(require(result, "list", "tickers.result"), "tickers.list")
    return {str(require(row, "symbol", "tickers.list")): infer_spec(str(row["symbol"]), category) for row in rows}


def parse_all_liquidation(message: Any, feed: FeedInfo, received_at: datetime,
                          specs: dict[str, ContractSpec] | None = None) -> list[LiquidationRecord]:
    """``allLiquidation.{symbol}`` push::

        {"topic":"allLiquidation.ROSEUSDT","type":"snapshot","ts":1739502303204,
         "data":[{"T":1739502302929,"s":"ROSEUSDT","S":"Sell","v":"20000","p":"0.04499"}]}"""
    category = feed.feed.split(":", 1)[1] if ":" in feed.feed else "linear"
    rows = require(message, "data", "allLiquidation")
    rows = [rows] if isinstance(rows, dict) else require_list(rows, "allLiquidation.data")
    envelope = {k: v for k, v in message.items() if k != "data"}
    records = []
    for row in rows:
        symbol = str(require(row, "s", "allLiquidation.data"))
        where = f"allLiquidation[{symbol}]"
        side_raw = str(require(row, "S", where))
        if side_raw not in ("Buy", "Sell"):
            raise PayloadError(f"{where}: unknown side {side_raw!r}")
        spec = (specs or {}).get(symbol) or infer_spec(symbol, category)
        qty = dec(require(row, "v", where), "v")
        price = dec(require(row, "p", where), "p")
        stamp = require(row, "T", where)
        qty_base, usd, how = notional(spec.inverse, qty, spec.inverse, spec.contract_size, price, spec.quote)
        records.append(LiquidationRecord(
            venue=feed.venue, feed=feed.feed, source=feed.source,
            event_key=event_key(symbol, stamp, side_raw, qty, price), ts=ts_ms(stamp, "T"), symbol=symbol,
            base_asset=spec.base, quote_asset=spec.quote, side=LONG if side_raw == "Buy" else SHORT,
            price=float(price), price_kind="bankruptcy", qty_base=qty_base,
            qty_contracts=float(qty) if spec.inverse else None,
            contract_size=float(spec.contract_size) if spec.inverse else None, inverse=spec.inverse,
            notional_usd=usd, notional_source=how, coverage=feed.coverage, lower_bound=feed.lower_bound,
            raw=raw_json({**envelope, "data": [row]}), received_at=received_at,
        ))
    return records


def ccxt_market(spec: ContractSpec, category: str) -> dict[str, Any]:
    """The few market fields ccxt's ``watch_liquidations`` reads (id, symbol, type, linear/inverse)."""
    settle = spec.base if spec.inverse else spec.quote
    future = "-" in spec.symbol or (spec.inverse and spec.symbol[-2:].isdigit())
    unified = f"{spec.base}/{spec.quote}:{settle}" + (f"-{spec.symbol}" if future else "")
    return {
        "id": spec.symbol, "symbol": unified, "base": spec.base, "quote": spec.quote, "settle": settle,
        "baseId": spec.base, "quoteId": spec.quote, "settleId": settle,
        "type": "future" if future else "swap", "spot": False, "margin": False, "swap": not future,
        "future": future, "option": False, "contract": True, "linear": category == "linear",
        "inverse": category == "inverse", "active": True, "contractSize": 1,
    }


class BybitAllLiquidationFeed(CcxtFeed):
    """Every ``allLiquidation.{symbol}`` of one category (linear or inverse) on one connection."""

    def __init__(self, category: str, base_url: str | None, symbols: list[str] | None = None,
                 timeout_s: float = 20.0) -> None:
        if category not in FEEDS:
            raise ValueError(f"unknown Bybit category {category!r}")
        super().__init__(FEEDS[category], "bybit", timeout_s)
        self.category = category
        self.base_url = base_url
        self.wanted = list(symbols or [])
        self.specs: dict[str, ContractSpec] = {}

    def configure(self, exchange: Any) -> None:
        if self.base_url:
            ws = ws_base(self.base_url)
            public = exchange.urls["api"]["ws"]["public"]
            public[self.category] = rebase_ws(public[self.category], ws)

    async def _instruments(self, client: JsonHttpClient) -> dict[str, ContractSpec]:
        specs: dict[str, ContractSpec] = {}
        cursor = ""
        for _ in range(MAX_PAGES):
            params = {"category": self.category, "limit": "1000"}
            if cursor:
                params["cursor"] = cursor
            page, cursor = parse_instruments(await client.get("/v5/market/instruments-info", params), self.category)
            specs.update(page)
            if not cursor:
                break
        return specs

    async def discover(self) -> dict[str, ContractSpec]:
        """Every symbol of the category: instruments-info, else the tickers list."""
        client = JsonHttpClient(self.base_url or "https://api.bybit.com", self.timeout_s)
        try:
            try:
                return await self._instruments(client)
            except Exception as exc:  # noqa: BLE001 - the tickers list names the same symbols
                log.info("bybit %s: instruments-info unavailable (%s); listing tickers", self.category, exc)
                return parse_tickers(await client.get("/v5/market/tickers", {"category": self.category}),
                                     self.category)
        finally:
            await client.close()

    async def prepare(self) -> None:
        if self.specs:
            return
        try:
            specs = await self.discover()
        except Exception as exc:  # noqa: BLE001 - configured symbols are the last resort
            if not self.wanted:
                raise
            log.info("bybit %s: no symbol list from the venue (%s); using configured symbols", self.category, exc)
            specs = {}
        if self.wanted:
            specs = {s: specs.get(s) or infer_spec(s, self.category) for s in self.wanted
                     if s in specs or _category_of(s) == self.category}
        if not specs:
            raise NothingToWatch(f"bybit {self.category}: no symbols to subscribe")
        self.specs = specs
        self.exchange.set_markets([ccxt_market(spec, self.category) for spec in specs.values()])

    def watch_calls(self) -> list[Callable[[], Awaitable[Any]]]:
        def watch(symbol: str) -> Callable[[], Awaitable[Any]]:
            return lambda: self.exchange.watch_liquidations(symbol)

        return [watch(market["symbol"]) for market in self.exchange.markets.values()]

    def is_ack(self, message: Any) -> bool:
        return isinstance(message, dict) and message.get("op") == "subscribe" and bool(message.get("success"))

    def parse(self, message: Any) -> list[LiquidationRecord] | None:
        if not isinstance(message, dict) or not str(message.get("topic", "")).startswith("allLiquidation."):
            return None
        return parse_all_liquidation(message, self.info, utcnow(), self.specs)


def _category_of(symbol: str) -> str:
    """Configured symbols are split between the linear and inverse connections by their quote."""
    head = symbol.split("-", 1)[0]
    if head.endswith(("USDT", "USDC", "PERP")) or ("-" in symbol and not head.endswith("USD")):
        return "linear"
    return "inverse"
