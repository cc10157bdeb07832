"""Simulated Bybit v5: /v5/market/insurance (shared pools published daily, isolated pools every minute),
/v5/market/tickers (linear + inverse), /v5/market/adlAlert, and the history paths /v5/market/open-interest
(cursor paging), /v5/market/funding/history (endTime paging) and /v5/market/mark-price-kline, in the v5 envelope
``{retCode, retMsg, result, retExtInfo, time}``.

Only public implicit ccxt calls are used by the collector, so no ``load_markets`` endpoint is needed.
"""

from __future__ import annotations

import random
from decimal import Decimal
from typing import Any
from urllib.parse import unquote

from aiohttp import web

from simulator.market import Market
from simulator.market_state import DAY_MS, HOUR_MS, MINUTE_MS, SimContract, SimPool, SimVenue
from simulator.respond import reply
from simulator.routing import Route, market_of

KEY = "bybit"
ISOLATED_HISTORY_DAYS = 2  # Bybit serves no history: two days of minute points feed the market model
# symbol, category, base, settle, one-side OI (base for linear, USD contracts for inverse), serves single* fields
CONTRACT_ROWS = [
    ("BTCUSDT", "linear", "BTC", "USDT", "52000.125", True),
    ("ETHUSDT", "linear", "ETH", "USDT", "910000.5", True),
    ("SOLUSDT", "linear", "SOL", "USDT", "6100000.3", False),  # no single* fields: pre-2026-06-11 shape
    ("XRPUSDT", "linear", "XRP", "USDT", "250000000", True),
    ("DOGEUSDT", "linear", "DOGE", "USDT", "1800000000", True),
    ("BTCPERP", "linear", "BTC", "USDC", "3100.5", True),
    ("ETHPERP", "linear", "ETH", "USDC", "41000.75", True),
    ("BTCUSD", "inverse", "BTC", "BTC", "120056984", True),
    ("ETHUSD", "inverse", "ETH", "ETH", "45000000", False),
]
POOL_ROWS = [  # coin, symbols (the venue's order), balance
    ("USDT", "BTCUSDT,ETHUSDT,SOLUSDT,XRPUSDT", "902178.57602476"),
    ("USDT", "DOGEUSDT", "14454.51626125"),
    ("USDC", "BTCPERP,ETHPERP", "250341.11800012"),
    ("BTC", "BTCUSD", "1231.55829104"),
    ("ETH", "ETHUSD", "8410.01938211"),
]
OI_INTERVALS = {"5min": 300_000, "15min": 900_000, "30min": 1_800_000, "1h": 3_600_000, "4h": 14_400_000,
                "1d": 86_400_000}  # /v5/market/open-interest intervalTime -> ms
KLINE_INTERVALS = {"60": HOUR_MS, "240": 4 * HOUR_MS, "D": DAY_MS}  # mark-price-kline interval -> ms
ADL_TRIGGER_BALANCE = {"USDT": "10000", "USDC": "10000", "BTC": "0.2", "ETH": "5"}


def _minute_history(market: Market, balance: Decimal) -> list[tuple[int, Decimal]]:
    saved = market.history_days
    market.history_days = min(saved, ISOLATED_HISTORY_DAYS)
    try:
        return market.make_history(balance, 60)
    finally:
        market.history_days = saved


def build(market: Market) -> SimVenue:
    venue = SimVenue(KEY)
    for symbol, category, base, settle, oi, single in CONTRACT_ROWS:
        inverse = category == "inverse"
        venue.contracts[symbol] = SimContract(
            symbol, base, "USD" if inverse else settle, settle, Decimal(1), inverse, Decimal(oi),
            extra={"category": category, "single_fields": single},
        )
    for index, (coin, symbols_text, balance) in enumerate(POOL_ROWS):
        symbols = symbols_text.split(",")
        shared = len(symbols) > 1
        pool = SimPool(symbols_text, coin, symbols, Decimal(balance), cadence_s=86_400 if shared else 60,
                       extra={"shared": shared, "order": index})
        pool.history = (market.make_history(pool.balance, 86_400) if shared
                        else _minute_history(market, pool.balance))
        venue.pools[pool.pool_id] = pool
    for position, contract in enumerate(venue.contracts.values()):  # small, deterministic drawdown ratios
        contract.extra["pnl_ratio"] = Decimal(position * 7 % 11 - 5) / Decimal(1000)
    return venue


def envelope(market: Market, result: dict[str, Any], code: int = 0, msg: str = "OK") -> dict[str, Any]:
    return {"retCode": code, "retMsg": msg, "result": result, "retExtInfo": {}, "time": market.now_ms()}


def _mark(market: Market, contract: SimContract) -> Decimal:
    return market.price(contract.base) * (1 + contract.basis(Decimal("0.0002")))


def _text(value: Decimal, places: int) -> str:
    return str(value.quantize(Decimal(1).scaleb(-places)))


def error(market: Market, code: int, msg: str) -> web.Response:
    return reply(envelope(market, {}, code, msg))


def pools_in_order(venue: SimVenue) -> list[SimPool]:
    return sorted(venue.pools.values(), key=lambda p: p.extra.get("order", 0))


async def insurance(request: web.Request) -> web.Response:
    market = market_of(request)
    venue = market.venue(KEY)
    coin = request.query.get("coin", "").upper()
    pools = [p for p in pools_in_order(venue) if not coin or p.asset == coin]
    if coin and not pools:
        return error(market, 10001, "Invalid coin")
    rows = []
    for pool in pools:
        balance = pool.published()[1]
        rows.append({"coin": pool.asset, "symbols": ",".join(pool.symbols), "balance": str(balance),
                     "value": _text(balance * market.price(pool.asset), 10)})
    updated = max((p.published()[0] for p in pools), default=market.now_ms())
    return reply(envelope(market, {"updatedTime": str(updated), "list": rows}))


def ticker(market: Market, contract: SimContract) -> dict[str, Any]:
    now = market.now_ms()
    mark = _mark(market, contract)
    index = market.price(contract.base)
    last = mark * Decimal("1.00005")
    interval = contract.funding_interval_h * HOUR_MS
    if contract.inverse:  # OI in USD contracts, value in coin; both sides
        oi, value, single_value = (contract.oi_contracts * 2, contract.oi_contracts * 2 / mark,
                                   contract.oi_contracts / mark)
    else:  # OI in base, value in USD; both sides
        oi, value, single_value = (contract.oi_contracts * 2, contract.oi_contracts * 2 * mark,
                                   contract.oi_contracts * mark)
    row: dict[str, Any] = {
        "symbol": contract.symbol, "lastPrice": _text(last, 2), "indexPrice": _text(index, 2),
        "markPrice": _text(mark, 2), "prevPrice24h": _text(index * Decimal("0.99"), 2),
        "price24hPcnt": "0.010101", "highPrice24h": _text(index * Decimal("1.02"), 2),
        "lowPrice24h": _text(index * Decimal("0.97"), 2), "prevPrice1h": _text(index, 2),
        "openInterest": str(oi), "openInterestValue": _text(value, 2 if not contract.inverse else 8),
        "turnover24h": "1000000.0000", "volume24h": "1000.0000",
        "fundingRate": str(contract.funding_rate), "nextFundingTime": str((now // interval + 1) * interval),
        "predictedDeliveryPrice": "", "basisRate": "", "deliveryFeeRate": "", "deliveryTime": "0",
        "ask1Size": "1.5", "bid1Price": _text(last * Decimal("0.9999"), 2), "ask1Price": _text(last, 2),
        "bid1Size": "2.1", "basis": "", "preOpenPrice": "", "preQty": "", "curPreListingPhase": "",
        "fundingIntervalHour": str(contract.funding_interval_h), "basisRateYear": "", "fundingCap": "0.005",
    }
    if contract.extra.get("single_fields", True):
        row["singleOpenInterest"] = str(contract.oi_contracts)
        row["singleOpenInterestValue"] = _text(single_value, 2 if not contract.inverse else 8)
    return row


async def tickers(request: web.Request) -> web.Response:
    market = market_of(request)
    venue = market.venue(KEY)
    category = request.query.get("category", "")
    if category not in ("linear", "inverse", "spot", "option"):
        return error(market, 10001, "Illegal category")
    symbol = request.query.get("symbol")
    contracts = [c for c in venue.contracts.values() if c.extra["category"] == category]
    if symbol:
        contracts = [c for c in contracts if c.symbol == symbol]
        if not contracts:
            return error(market, 10001, "Not supported symbols")
    return reply(envelope(market, {"category": category, "list": [ticker(market, c) for c in contracts]}))


async def adl_alert(request: web.Request) -> web.Response:
    market = market_of(request)
    venue = market.venue(KEY)
    symbol = request.query.get("symbol")
    rows = []
    for pool in pools_in_order(venue):
        balance = pool.published()[1]
        for member in pool.symbols:
            contract = venue.contracts.get(member)
            if contract is None or (symbol and member != symbol):
                continue
            rows.append({
                "coin": pool.asset, "symbol": member, "balance": str(balance), "maxBalance": "",
                "insurancePnlRatio": "-0.3", "pnlRatio": str(contract.extra.get("pnl_ratio", Decimal(0))),
                "adlTriggerThreshold": ADL_TRIGGER_BALANCE.get(pool.asset, "10000"), "adlStopRatio": "-0.25",
            })
    if symbol and not rows:
        return error(market, 10001, "Not supported symbols")
    now = market.now_ms()
    return reply(envelope(market, {"updatedTime": str(now - now % MINUTE_MS), "list": rows}))


def contract_for(market: Market, venue: SimVenue, request: web.Request) -> SimContract | web.Response:
    category = request.query.get("category", "")
    contract = venue.contracts.get(request.query.get("symbol", ""))
    if category not in ("linear", "inverse"):
        return error(market, 10001, "Illegal category")
    if contract is None or contract.extra["category"] != category:
        return error(market, 10001, "Not supported symbols")
    return contract


def window(market: Market, request: web.Request, start_key: str, end_key: str, default_limit: int,
           max_limit: int) -> tuple[int | None, int, int]:
    start = request.query.get(start_key)
    end = request.query.get(end_key)
    limit = int(request.query.get("limit", str(default_limit)))
    if not 1 <= limit <= max_limit:
        raise ValueError(f"limit must be in [1, {max_limit}]")
    return (int(start) if start else None), (int(end) if end else market.now_ms()), limit


async def open_interest(request: web.Request) -> web.Response:
    """GET /v5/market/open-interest: both-sides ``openInterest`` (+ ``singleOpenInterest`` where the
    contract serves single fields) per ``intervalTime`` bucket, newest first, ``cursor`` paging."""
    market = market_of(request)
    venue = market.venue(KEY)
    found = contract_for(market, venue, request)
    if isinstance(found, web.Response):
        return found
    step = OI_INTERVALS.get(request.query.get("intervalTime", ""))
    if step is None:
        return error(market, 10001, "Illegal intervalTime")
    try:
        start, end, limit = window(market, request, "startTime", "endTime", 50, 200)
        cursor = unquote(request.query.get("cursor", "") or "lastid=0")  # served encoded; clients may decode
        offset = int(cursor.split("lastid=")[1].split("&")[0])
    except (ValueError, IndexError):
        return error(market, 10001, "Illegal parameter")
    first = max(market.now_ms() - market.history_days * DAY_MS, start or 0)
    points = [t for t in range(end // step * step, first - 1, -step)]
    page = points[offset:offset + limit]
    rows = []
    for ts in page:
        single = oi_at(market, found, ts)
        row = {"openInterest": _text(single * 2, 8), "timestamp": str(ts)}
        if found.extra.get("single_fields", True):
            row["singleOpenInterest"] = str(single)
        rows.append(row)
    more = offset + limit < len(points)
    cursor = f"lastid%3D{offset + limit}%26lasttime%3D{page[-1] // 1000}" if more and page else ""
    return reply(envelope(market, {"symbol": found.symbol, "category": found.extra["category"], "list": rows,
                                   "nextPageCursor": cursor}))


async def funding_history(request: web.Request) -> web.Response:
    """GET /v5/market/funding/history: settled rates at each funding time, newest first (endTime paging)."""
    market = market_of(request)
    venue = market.venue(KEY)
    found = contract_for(market, venue, request)
    if isinstance(found, web.Response):
        return found
    try:
        start, end, limit = window(market, request, "startTime", "endTime", 200, 200)
    except ValueError:
        return error(market, 10001, "Illegal parameter")
    interval = found.funding_interval_h * HOUR_MS
    first = max(market.now_ms() - market.history_days * DAY_MS, start or 0)
    stamps = [t for t in range(min(end, market.now_ms()) // interval * interval, first - 1, -interval)][:limit]
    return reply(envelope(market, {"category": found.extra["category"], "list": [
        {"symbol": found.symbol, "fundingRate": str(funding_at(market, found, ts)),
         "fundingRateTimestamp": str(ts)} for ts in stamps]}))


async def mark_price_kline(request: web.Request) -> web.Response:
    """GET /v5/market/mark-price-kline (interval 60 / 240 / D): ``[start, open, high, low, close]`` newest
    first; the close is the model's hourly close at the bar's end."""
    market = market_of(request)
    venue = market.venue(KEY)
    found = contract_for(market, venue, request)
    if isinstance(found, web.Response):
        return found
    bar_ms = KLINE_INTERVALS.get(request.query.get("interval", ""))
    if bar_ms is None:
        return error(market, 10001, "Illegal interval")
    try:
        start, end, limit = window(market, request, "start", "end", 200, 1000)
    except ValueError:
        return error(market, 10001, "Illegal parameter")
    first = max(market.now_ms() - market.history_days * DAY_MS, start or 0)
    stamps = [t for t in range(end // bar_ms * bar_ms, first - 1, -bar_ms)][:limit]
    basis = 1 + found.basis(Decimal("0.0002"))
    rows = []
    for ts in stamps:
        close = _text(market.price_at(found.base, ts + bar_ms - 1) * basis, 2)
        rows.append([str(ts), close, close, close, close])
    return reply(envelope(market, {"category": found.extra["category"], "symbol": found.symbol, "list": rows}))


def oi_at(market: Market, contract: SimContract, ts: int) -> Decimal:
    """One-side OI of ``contract`` in the bucket at ``ts``: today's level with a seeded +-5 % wander."""
    local = random.Random(f"{market.seed}:oi:{contract.symbol}:{ts // HOUR_MS}")
    return (contract.oi_contracts * Decimal(repr(round(1 + local.uniform(-0.05, 0.05), 6)))).quantize(
        Decimal("0.001") if not contract.inverse else Decimal(1))


def funding_at(market: Market, contract: SimContract, ts: int) -> Decimal:
    """The settled rate at funding time ``ts``: the contract's rate plus seeded noise."""
    local = random.Random(f"{market.seed}:funding:{contract.symbol}:{ts}")
    return (contract.funding_rate + Decimal(repr(round(local.gauss(0, 0.00004), 6)))).quantize(Decimal("1e-6"))


ROUTES: tuple[Route, ...] = (
    Route("GET", "/v5/market/insurance", insurance),
    Route("GET", "/v5/market/tickers", tickers),
    Route("GET", "/v5/market/adlAlert", adl_alert),
    Route("GET", "/v5/market/open-interest", open_interest),
    Route("GET", "/v5/market/funding/history", funding_history),
    Route("GET", "/v5/market/mark-price-kline", mark_price_kline),
)
