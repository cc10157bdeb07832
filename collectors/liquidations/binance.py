"""Binance liquidation streams: USDⓈ-M (venue ``binance``) and COIN-M (venue ``binancecoinm``)
``!forceOrder@arr`` through ccxt.pro.

Binance pushes at most the latest liquidation per symbol per 1000 ms (since 2021-04-27): a lower bound.
``S`` is the liquidation ORDER side: SELL closes a long, so SELL => long liquidated.
USDⓈ-M ``q``/``z`` are base units; COIN-M counts contracts of 100 USD (BTC) or 10 USD (others), so the
USD notional is contracts x contract size and base = USD / price (never ccxt's base x price).
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
    LONG,
    SAMPLED,
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
from collectors.parsing import dec, require, require_list, ts_ms

log = logging.getLogger(__name__)

NOTE = "≤ 1 per symbol per second: a lower bound"
USDM = FeedInfo("binance", "forceOrder:usdm", "ws", SAMPLED, NOTE)
COINM = FeedInfo("binancecoinm", "forceOrder:coinm", "ws", SAMPLED, NOTE)
LINEAR_QUOTES = ("FDUSD", "USDT", "USDC", "BUSD", "USD")


def split_usdm(symbol: str) -> tuple[str, str]:
    """BTCUSDT -> (BTC, USDT); ETHUSDT_250926 -> (ETH, USDT)."""
    pair = symbol.split("_", 1)[0]
    for quote in LINEAR_QUOTES:
        if pair.endswith(quote) and len(pair) > len(quote):
            return pair[: -len(quote)], quote
    raise PayloadError(f"forceOrder: unknown quote in symbol {symbol!r}")


def coinm_spec(symbol: str, pair: str | None) -> ContractSpec:
    """Binance's published COIN-M contract sizes: 100 USD for BTC, 10 USD for every other coin (used when
    /dapi/v1/exchangeInfo is not reachable)."""
    pair = pair or symbol.split("_", 1)[0]
    base = pair[:-3] if pair.endswith("USD") else pair
    return ContractSpec(symbol, base, "USD", Decimal(100) if base == "BTC" else Decimal(10), True)


def parse_coinm_specs(payload: Any) -> dict[str, ContractSpec]:
    """GET /dapi/v1/exchangeInfo: ``symbols[] {symbol, pair, baseAsset, contractSize}``."""
    specs = {}
    for row in require_list(require(payload, "symbols", "exchangeInfo"), "exchangeInfo.symbols"):
        symbol = str(require(row, "symbol", "exchangeInfo.symbols"))
        size = row.get("contractSize")
        if size in (None, "", 0):
            continue
        specs[symbol] = ContractSpec(symbol, str(row.get("baseAsset") or coinm_spec(symbol, row.get("pair")).base),
                                     "USD", dec(size, "contractSize"), True)
    return specs


def parse_force_order(message: Any, feed: FeedInfo, received_at: datetime,
                      coinm_specs: dict[str, ContractSpec] | None = None) -> list[LiquidationRecord]:
    """One ``forceOrder`` event (USDⓈ-M or COIN-M)::

        {"e":"forceOrder","E":1568014460893,"o":{"s":"BTCUSDT","S":"SELL","o":"LIMIT","f":"IOC","q":"0.014",
         "p":"9910","ap":"9910","X":"FILLED","l":"0.014","z":"0.014","T":1568014460893}}

    COIN-M adds ``"ps": "BTCUSD"`` and counts ``q``/``z`` in contracts."""
    order = require(message, "o", "forceOrder")
    symbol = str(require(order, "s", "forceOrder.o"))
    where = f"forceOrder[{symbol}]"
    side_raw = str(require(order, "S", where)).upper()
    if side_raw not in ("SELL", "BUY"):
        raise PayloadError(f"{where}: unknown side {side_raw!r}")
    side = LONG if side_raw == "SELL" else SHORT
    filled = dec(order.get("z") or "0", "z")
    qty = filled if filled > 0 else dec(require(order, "q", where), "q")
    avg = dec(order.get("ap") or "0", "ap")
    price = avg if avg > 0 else dec(require(order, "p", where), "p")
    ts = ts_ms(order.get("T") or require(message, "E", where), "T")
    coinm = feed.feed == COINM.feed or "ps" in order
    if coinm:
        spec = (coinm_specs or {}).get(symbol) or coinm_spec(symbol, order.get("ps"))
        base, quote, size = spec.base, "USD", spec.contract_size
    else:
        base, quote = split_usdm(symbol)
        size = None
    qty_base, usd, how = notional(coinm, qty, coinm, size, price, quote)
    return [LiquidationRecord(
        venue=feed.venue, feed=feed.feed, source=feed.source,
        event_key=event_key(symbol, order.get("T") or message.get("E"), side_raw, qty, price),
        ts=ts, symbol=symbol, base_asset=base, quote_asset=quote, side=side, price=float(price),
        price_kind="average_fill" if avg > 0 else "order", qty_base=qty_base,
        qty_contracts=float(qty) if coinm else None, contract_size=float(size) if size is not None else None,
        inverse=coinm, notional_usd=usd, notional_source=how, coverage=feed.coverage,
        lower_bound=feed.lower_bound, raw=raw_json(message), received_at=received_at,
    )]


class BinanceForceOrderFeed(CcxtFeed):
    """``!forceOrder@arr`` on one Binance futures family via ccxt.pro: ``usdm`` (fstream, base_url of venue
    ``binance``) or ``coinm`` (dstream, base_url of venue ``binancecoinm``)."""

    def __init__(self, family: str, base_url: str | None, timeout_s: float = 20.0) -> None:
        if family not in ("usdm", "coinm"):
            raise ValueError(f"unknown Binance futures family {family!r}")
        super().__init__(USDM if family == "usdm" else COINM,
                         "binanceusdm" if family == "usdm" else "binancecoinm", timeout_s)
        self.family = family
        self.base_url = base_url
        self.specs: dict[str, ContractSpec] = {}

    def configure(self, exchange: Any) -> None:
        exchange.set_markets([])  # the all-market stream needs no market list (and no REST call)
        if self.base_url:
            ws = ws_base(self.base_url)
            kind = "linear" if self.family == "usdm" else "inverse"
            exchange.urls["api"]["ws"][kind] = rebase_ws(exchange.urls["api"]["ws"][kind], ws)

    async def prepare(self) -> None:
        if self.family != "coinm" or self.specs:
            return
        client = JsonHttpClient(self.base_url or "https://dapi.binance.com", self.timeout_s)
        try:
            self.specs = parse_coinm_specs(await client.get("/dapi/v1/exchangeInfo"))
        except Exception as exc:  # noqa: BLE001 - documented sizes are the fallback
            log.info("binance coinm: exchangeInfo unavailable (%s); using the published 100/10 USD sizes", exc)
        finally:
            await client.close()

    def watch_calls(self) -> list[Callable[[], Awaitable[Any]]]:
        return [lambda: self.exchange.watch_liquidations_for_symbols([])]

    def is_ack(self, message: Any) -> bool:
        return isinstance(message, dict) and "result" in message and "id" in message and "e" not in message

    def parse(self, message: Any) -> list[LiquidationRecord] | None:
        if not isinstance(message, dict) or message.get("e") != "forceOrder":
            return None
        return parse_force_order(message, self.info, utcnow(), self.specs)
