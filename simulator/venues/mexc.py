"""Simulated MEXC futures (contract API v1): risk_reverse (risk fund per contract), risk_reverse/history
(paged 4-hourly snapshots), ticker (holdVol, fundingRate, fairPrice, indexPrice), detail (contractSize),
funding_rate/{symbol}. Numbers are JSON numbers, as MEXC writes them."""

from __future__ import annotations

import math
from decimal import Decimal

from aiohttp import web

from simulator.market import Market
from simulator.market_state import HOUR_MS, SimContract, SimPool, SimVenue
from simulator.respond import reply
from simulator.routing import Route, market_of

KEY = "mexc"
CADENCE_S = 14_400  # 4-hourly snapshots (the documented history example is 4 h apart)
CONTRACT_ROWS = [  # symbol, base, quote, settle, contractSize, OI contracts (holdVol)
    ("BTC_USDT", "BTC", "USDT", "USDT", "0.0001", "551029600"),
    ("ETH_USDT", "ETH", "USDT", "USDT", "0.01", "32109876"),
    ("SOL_USDT", "SOL", "USDT", "USDT", "0.1", "8765432"),
    ("BTC_USD", "BTC", "USD", "BTC", "100", "1234567"),
]
# symbol -> (currency, available). Calibrated (simulator.calibration.FUND_TO_OI_CALIBRATION): MEXC reported its
# insurance fund at ~$559 M USDT (Jul-Aug 2025 security report), so the four simulated pools hold ~$250 M
# (~5 % of the simulated $4.9 B OI), not the documented example's 425,018 USDT per contract (0.02 %).
POOLS = {
    "BTC_USDT": ("USDT", "171234567.32968325"), "ETH_USDT": ("USDT", "51098765.65432198"),
    "SOL_USDT": ("USDT", "8123456.12345678"), "BTC_USD": ("BTC", "101.00211366"),
}


def build(market: Market) -> SimVenue:
    venue = SimVenue(KEY)
    for symbol, base, quote, settle, size, hold in CONTRACT_ROWS:
        venue.contracts[symbol] = SimContract(symbol, base, quote, settle, Decimal(size), settle != quote,
                                              Decimal(hold), funding_rate=Decimal("0.000063"))
    for symbol, (currency, available) in POOLS.items():
        pool = SimPool(symbol, currency, [symbol], Decimal(available), cadence_s=CADENCE_S)
        pool.history = market.make_history(pool.balance, pool.cadence_s)
        venue.pools[symbol] = pool
    return venue


def ok(data: object) -> web.Response:
    return reply({"success": True, "code": 0, "data": data})


def error(code: int, message: str) -> web.Response:
    return reply({"success": False, "code": code, "message": message})


def fair(market: Market, c: SimContract) -> Decimal:
    return (market.price(c.base) * Decimal("1.0002")).quantize(Decimal("0.1"))


async def risk_reverse(request: web.Request) -> web.Response:
    market = market_of(request)
    venue = market.venue(KEY)
    now = market.now_ms()
    return ok([{"symbol": p.pool_id, "currency": p.asset, "available": p.published()[1], "timestamp": now}
               for p in venue.pools.values()])


async def risk_reverse_history(request: web.Request) -> web.Response:
    market = market_of(request)
    venue = market.venue(KEY)
    symbol = request.query.get("symbol", "")
    if symbol not in venue.pools:
        return error(1001, "contract not exists")
    try:
        page_num = int(request.query.get("page_num", "1"))
        page_size = int(request.query.get("page_size", "20"))
    except ValueError:
        return error(600, "parameter error")
    if not 1 <= page_size <= 100 or page_num < 1:
        return error(600, "page_size must be 1..100, page_num >= 1")
    pool = venue.pools[symbol]
    points = [p for p in reversed(pool.history) if p[0] <= market.now_ms()]  # newest first
    page = points[(page_num - 1) * page_size: page_num * page_size]
    return ok({
        "pageSize": page_size, "totalCount": len(points), "totalPage": max(1, math.ceil(len(points) / page_size)),
        "currentPage": page_num,
        "resultList": [{"symbol": symbol, "currency": pool.asset, "available": balance, "snapshotTime": ts}
                       for ts, balance in page],
    })


def ticker_row(market: Market, c: SimContract) -> dict[str, object]:
    index = market.price(c.base)
    return {
        "symbol": c.symbol, "lastPrice": fair(market, c), "bid1": fair(market, c), "ask1": fair(market, c), "volume24": 40146908,
        "amount24": Decimal("124905007.4428"), "holdVol": c.oi_contracts,
        "lower24Price": (index * Decimal("0.97")).quantize(Decimal("0.1")),
        "high24Price": (index * Decimal("1.03")).quantize(Decimal("0.1")), "riseFallRate": Decimal("-0.0176"),
        "riseFallValue": -562, "indexPrice": index, "fairPrice": fair(market, c), "fundingRate": c.funding_rate,
        "maxBidPrice": (index * Decimal("1.1")).quantize(Decimal("0.1")),
        "minAskPrice": (index * Decimal("0.9")).quantize(Decimal("0.1")), "timestamp": market.now_ms(),
    }


async def ticker(request: web.Request) -> web.Response:
    market = market_of(request)
    venue = market.venue(KEY)
    symbol = request.query.get("symbol")
    if symbol:
        if symbol not in venue.contracts:
            return error(1001, "contract not exists")
        return ok(ticker_row(market, venue.contracts[symbol]))
    return ok([ticker_row(market, c) for c in venue.contracts.values()])


def detail_row(c: SimContract) -> dict[str, object]:
    return {
        "symbol": c.symbol, "displayName": f"{c.symbol} PERPETUAL", "displayNameEn": f"{c.symbol} SWAP",
        "positionOpenType": 3, "baseCoin": c.base, "quoteCoin": c.quote, "settleCoin": c.settle,
        "contractSize": c.contract_size, "minLeverage": 1, "maxLeverage": 125, "priceScale": 1, "volScale": 0,
        "amountScale": 4, "priceUnit": Decimal("0.1"), "volUnit": 1, "minVol": 1, "maxVol": 1000000,
        "bidLimitPriceRate": Decimal("0.1"), "askLimitPriceRate": Decimal("0.1"),
        "takerFeeRate": Decimal("0.0006"), "makerFeeRate": Decimal("0.0002"),
        "maintenanceMarginRate": Decimal("0.004"), "initialMarginRate": Decimal("0.008"),
        "riskBaseVol": 10000, "riskIncrVol": 200000, "riskIncrMmr": Decimal("0.004"),
        "riskIncrImr": Decimal("0.004"), "riskLevelLimit": 5, "priceCoefficientVariation": Decimal("0.1"),
        "indexOrigin": ["BINANCE", "GATEIO", "HUOBI", "MXC"], "state": 0, "isNew": False, "isHot": True,
        "isHidden": False,
    }


async def detail(request: web.Request) -> web.Response:
    venue = market_of(request).venue(KEY)
    symbol = request.query.get("symbol")
    if symbol:
        if symbol not in venue.contracts:
            return error(1001, "contract not exists")
        return ok(detail_row(venue.contracts[symbol]))
    return ok([detail_row(c) for c in venue.contracts.values()])


async def funding_rate(request: web.Request) -> web.Response:
    market = market_of(request)
    venue = market.venue(KEY)
    contract = venue.contracts.get(request.match_info["symbol"])
    if contract is None:
        return error(1001, "contract not exists")
    now = market.now_ms()
    interval = contract.funding_interval_h * HOUR_MS
    return ok({
        "symbol": contract.symbol, "fundingRate": contract.funding_rate, "maxFundingRate": Decimal("0.001"),
        "minFundingRate": Decimal("-0.001"), "collectCycle": contract.funding_interval_h,
        "nextSettleTime": (now // interval + 1) * interval, "timestamp": now,
    })


ROUTES: tuple[Route, ...] = (
    Route("GET", "/api/v1/contract/risk_reverse", risk_reverse),
    Route("GET", "/api/v1/contract/risk_reverse/history", risk_reverse_history),
    Route("GET", "/api/v1/contract/ticker", ticker),
    Route("GET", "/api/v1/contract/detail", detail),
    Route("GET", "/api/v1/contract/funding_rate/{symbol}", funding_rate),
)
