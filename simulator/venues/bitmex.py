"""Simulated BitMEX: /api/v1/insurance (daily history per currency, XBt and USDt minimum units),
/api/v1/instrument/active (perpetuals: inverse XBTUSD, quanto ETHUSD, linear USDT contracts) and
/api/v1/funding (8-hourly history), with BitMEX's table query parameters
``symbol``, ``filter``, ``count`` (<= 500 here), ``start``, ``reverse``, ``startTime``, ``endTime``.
"""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from aiohttp import web

from simulator.market import Market
from simulator.market_state import HOUR_MS, SimContract, SimPool, SimVenue
from simulator.respond import reply
from simulator.routing import Route, market_of

KEY = "bitmex"
MAX_COUNT = 500  # BitMEX's documented cap is UNCONFIRMED (commonly 500 or 1000); the collector pages by 500
FUNDING_OFFSET_MS = 4 * HOUR_MS  # funding at 04:00, 12:00, 20:00 UTC
UNIT_SCALE = {"XBt": Decimal(100_000_000), "USDt": Decimal(1_000_000)}  # minimum units per whole coin
POOLS = {"XBt": ("BTC", "33491"), "USDt": ("USDT", "2512345.678901")}  # currency -> (asset, latest balance)
# symbol, root, underlying, quote, settle, kind, one-side OI (contracts), multiplier, underlyingToPositionMultiplier
CONTRACT_ROWS = [
    ("XBTUSD", "XBT", "XBT", "USD", "XBt", "inverse", "412345600", -100_000_000, None),
    ("XBTEUR", "XBT", "XBT", "EUR", "XBt", "inverse", "18250000", -100_000_000, None),  # 1 EUR per contract
    ("ETHUSD", "ETH", "ETH", "USD", "XBt", "quanto", "1850000", 100, None),
    # index perpetuals: both baskets share one root; each has its own underlying index (issue 17)
    ("ALTMEXUSD", "BASKET", "ALTMEX", "USD", "XBt", "quanto", "20000", 100, None),
    ("DEFIMEXUSD", "BASKET", "DEFIMEX", "USD", "XBt", "quanto", "15000", 100, None),
    ("XBTUSDT", "XBT", "XBT", "USDT", "USDt", "linear", "9120000000", 1, 1_000_000),
    ("ETHUSDT", "ETH", "ETH", "USDT", "USDt", "linear", "210000000", 100, 10_000),
    ("SOLUSDT", "SOL", "SOL", "USDT", "USDt", "linear", "512340000", 100, 10_000),
]
# USD per unit of a non-USD quote currency (held constant: the model has no FX path). ECB reference rate
# order of magnitude, 2024-2025 (EUR/USD 1.03-1.18).
QUOTE_USD = {"EUR": Decimal("1.08")}
ASSET_OF_ROOT = {"XBT": "BTC"}
TICK = {"XBT": Decimal("0.1"), "ETH": Decimal("0.01"), "SOL": Decimal("0.001")}


def build(market: Market) -> SimVenue:
    venue = SimVenue(KEY)
    for symbol, root, underlying, quote, settle, kind, oi, multiplier, position_mult in CONTRACT_ROWS:
        base = ASSET_OF_ROOT.get(underlying, underlying)
        size = QUOTE_USD.get(quote, Decimal(1)) if kind == "inverse" else (  # model size: USD per contract
            Decimal(1) / Decimal(position_mult) if position_mult else Decimal(multiplier))
        venue.contracts[symbol] = SimContract(
            symbol, base, quote, settle, size, kind == "inverse", Decimal(oi),
            extra={"root": root, "underlying": underlying, "kind": kind, "multiplier": multiplier,
                   "position_mult": position_mult},
        )
    for currency, (asset, balance) in POOLS.items():
        pool = SimPool(currency, asset, [c.symbol for c in venue.contracts.values() if c.settle == currency],
                       Decimal(balance), cadence_s=86_400, extra={"currency": currency})
        pool.history = market.make_history(pool.balance, pool.cadence_s)
        venue.pools[currency] = pool
    return venue


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_time(text: str) -> int:
    """BitMEX accepts ISO dates and date-times (``2024-01-01``, ``2024-01-01T00:00:00.000Z``)."""
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return int((parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp() * 1000)


class QueryError(ValueError):
    pass


def select(rows: list[dict[str, Any]], query: Any, key_field: str) -> list[dict[str, Any]]:
    """BitMEX table semantics: filter (symbol, filter JSON, startTime, endTime), order by timestamp
    (``reverse`` = newest first), then ``start`` offset and ``count``. Rows carry ``_ms``."""
    try:
        count = int(query.get("count", "100"))
        start = int(query.get("start", "0"))
        start_ms = parse_time(query["startTime"]) if query.get("startTime") else None
        end_ms = parse_time(query["endTime"]) if query.get("endTime") else None
        filters = json.loads(query["filter"]) if query.get("filter") else {}
    except (ValueError, TypeError) as exc:
        raise QueryError(f"Invalid parameter: {exc}") from None
    if count < 1 or count > MAX_COUNT:
        raise QueryError(f"count must be between 1 and {MAX_COUNT}")
    if start < 0:
        raise QueryError("start must be >= 0")
    if not isinstance(filters, dict):
        raise QueryError("filter must be a JSON object")
    reverse = query.get("reverse", "false").lower() == "true"
    symbol = query.get("symbol")
    picked = [
        r for r in rows
        if (not symbol or r[key_field] == symbol)
        and all(r.get(k) == v for k, v in filters.items())
        and (start_ms is None or r["_ms"] >= start_ms) and (end_ms is None or r["_ms"] <= end_ms)
    ]
    picked.sort(key=lambda r: (r["_ms"], r[key_field]), reverse=reverse)
    return [{k: v for k, v in r.items() if k != "_ms"} for r in picked[start:start + count]]


def _mark(market: Market, contract: SimContract) -> Decimal:
    tick = TICK.get(contract.extra["root"], Decimal("0.01"))
    raw = market.price(contract.base) * (1 + contract.basis(Decimal("0.0001")))
    raw /= QUOTE_USD.get(contract.quote, Decimal(1))  # XBTEUR is marked in EUR
    return (raw / tick).to_integral_value() * tick


def open_value(contract: SimContract, mark: Decimal) -> int:
    """Position value in the settle currency's minimum unit, as BitMEX computes it."""
    multiplier = Decimal(contract.extra["multiplier"])
    if contract.inverse:
        return int((contract.oi_contracts * -multiplier / mark).to_integral_value())
    return int((contract.oi_contracts * multiplier * mark).to_integral_value())


def funding_rate_at(market: Market, contract: SimContract, ts: int) -> Decimal:
    local = random.Random(f"{market.seed}:{contract.symbol}:{ts}")
    return (contract.funding_rate + Decimal(repr(round(local.gauss(0, 0.00005), 6)))).quantize(Decimal("1e-6"))


def error(message: str, status: int = 400, name: str = "HTTPError") -> web.Response:
    return reply({"error": {"message": message, "name": name}}, status=status)


def table(rows: list[dict[str, Any]], request: web.Request, key_field: str) -> web.Response:
    try:
        return reply(select(rows, request.query, key_field))
    except QueryError as exc:
        return error(str(exc), name="ValidationError")


async def insurance(request: web.Request) -> web.Response:
    venue = market_of(request).venue(KEY)
    rows = []
    for pool in venue.pools.values():
        scale = UNIT_SCALE[pool.extra["currency"]]
        for ts, balance in pool.history:
            rows.append({"currency": pool.extra["currency"], "timestamp": iso(ts),
                         "walletBalance": int((balance * scale).to_integral_value()), "_ms": ts})
    return table(rows, request, "currency")


def instrument(market: Market, contract: SimContract) -> dict[str, Any]:
    now = market.now_ms()
    mark = _mark(market, contract)
    index = market.price(contract.base) / QUOTE_USD.get(contract.quote, Decimal(1))
    root = contract.extra["root"]
    underlying = contract.extra["underlying"]
    interval = contract.funding_interval_h * HOUR_MS
    next_funding = ((now - FUNDING_OFFSET_MS) // interval + 1) * interval + FUNDING_OFFSET_MS
    kind = contract.extra["kind"]
    position_mult = contract.extra["position_mult"]
    settle_scale = UNIT_SCALE[contract.settle]
    return {
        "symbol": contract.symbol, "rootSymbol": root, "state": "Open", "typ": "FFWCSX",
        "listing": "2016-05-13T12:00:00.000Z", "front": "2016-05-13T12:00:00.000Z", "expiry": None,
        "settle": None, "listedSettle": None, "positionCurrency": root if kind == "linear" else ("USD" if kind == "quanto" else contract.quote),
        "underlying": underlying, "quoteCurrency": contract.quote,
        "underlyingSymbol": f"{underlying}=" if contract.quote == "USD" else f"{underlying}T=",
        "reference": "BMEX",
        "referenceSymbol": f".B{underlying}" if contract.quote == "USD" else f".B{underlying}{contract.quote[0]}",
        "maxOrderQty": 10_000_000, "maxPrice": 1_000_000, "lotSize": 100,
        "tickSize": TICK.get(root, Decimal("0.01")), "multiplier": contract.extra["multiplier"],
        "settlCurrency": contract.settle, "underlyingToPositionMultiplier": position_mult,
        "underlyingToSettleMultiplier": -100_000_000 if kind == "inverse" else None,
        "quoteToSettleMultiplier": int(settle_scale) if kind == "linear" else None,
        "isQuanto": kind == "quanto", "isInverse": kind == "inverse",
        "initMargin": Decimal("0.01"), "maintMargin": Decimal("0.005"),
        "fundingBaseSymbol": f".{root}BON8H", "fundingQuoteSymbol": ".USDBON8H",
        "fundingPremiumSymbol": f".{contract.symbol}PI8H", "fundingTimestamp": iso(next_funding),
        "fundingInterval": "2000-01-01T08:00:00.000Z", "fundingRate": contract.funding_rate,
        "indicativeFundingRate": contract.funding_rate, "prevClosePrice": index,
        "volume24h": 1_000_000, "lastPrice": mark, "bidPrice": mark - TICK.get(root, Decimal("0.01")),
        "askPrice": mark, "midPrice": mark, "hasLiquidity": True,
        "openInterest": int(contract.oi_contracts), "openValue": open_value(contract, mark),
        "fairMethod": "FundingRate", "markMethod": "FairPrice", "markPrice": mark, "fairPrice": mark,
        "indicativeSettlePrice": index, "timestamp": iso(now),
    }


async def instrument_active(request: web.Request) -> web.Response:
    market = market_of(request)
    venue = market.venue(KEY)
    return reply([instrument(market, c) for c in venue.contracts.values()])


def funding_rows(market: Market, venue: SimVenue) -> list[dict[str, Any]]:
    now = market.now_ms()
    rows = []
    for contract in venue.contracts.values():
        interval = contract.funding_interval_h * HOUR_MS
        last = ((now - FUNDING_OFFSET_MS) // interval) * interval + FUNDING_OFFSET_MS
        first = last - (market.history_days * 24 // contract.funding_interval_h - 1) * interval
        for ts in range(first, last + 1, interval):
            rate = funding_rate_at(market, contract, ts)
            rows.append({"timestamp": iso(ts), "symbol": contract.symbol,
                         "fundingInterval": "2000-01-01T08:00:00.000Z", "fundingRate": rate,
                         "fundingRateDaily": rate * 24 / contract.funding_interval_h, "_ms": ts})
    return rows


async def funding(request: web.Request) -> web.Response:
    market = market_of(request)
    venue = market.venue(KEY)
    return table(funding_rows(market, venue), request, "symbol")


ROUTES: tuple[Route, ...] = (
    Route("GET", "/api/v1/insurance", insurance),
    Route("GET", "/api/v1/instrument/active", instrument_active),
    Route("GET", "/api/v1/funding", funding),
)
