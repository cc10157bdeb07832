"""Simulated KuCoin Futures: /api/v1/contracts/active (every contract with OI in lots, multiplier, funding,
mark/index) and /api/v1/contracts/{symbol}. Bitcoin is XBT, as KuCoin writes it. No insurance fund."""

from __future__ import annotations

from decimal import Decimal

from aiohttp import web

from simulator.market import Market
from simulator.market_state import HOUR_MS, SimContract, SimVenue
from simulator.respond import reply
from simulator.routing import Route, market_of

KEY = "kucoinfutures"
CONTRACT_ROWS = [  # symbol, base, quote, settle, multiplier (inverse: -1 = 1 USD per lot), OI lots
    ("XBTUSDTM", "XBT", "USDT", "USDT", "0.001", "6273644"),
    ("ETHUSDTM", "ETH", "USDT", "USDT", "0.01", "8724443"),
    ("SOLUSDTM", "SOL", "USDT", "USDT", "0.1", "3456789"),
    ("XBTUSDM", "XBT", "USD", "XBT", "-1", "98765432"),
]


def build(market: Market) -> SimVenue:
    venue = SimVenue(KEY)
    for symbol, base, quote, settle, multiplier, lots in CONTRACT_ROWS:
        venue.contracts[symbol] = SimContract(symbol, base, quote, settle, abs(Decimal(multiplier)), quote == "USD",
                                              Decimal(lots), funding_rate=Decimal("0.000641"),
                                              extra={"multiplier": Decimal(multiplier)})
    return venue


def row(market: Market, c: SimContract) -> dict[str, object]:
    now = market.now_ms()
    interval = c.funding_interval_h * HOUR_MS
    next_funding = (now // interval + 1) * interval
    index = market.price(c.base)  # XBT is priced as BTC
    mark = (index * Decimal("0.9999")).quantize(Decimal("0.01"))
    return {
        "symbol": c.symbol, "rootSymbol": c.settle, "type": "FFWCSX", "firstOpenDate": 1585555200000,
        "expireDate": None, "settleDate": None, "baseCurrency": c.base, "quoteCurrency": c.quote,
        "settleCurrency": c.settle, "maxOrderQty": 1000000, "maxPrice": Decimal("1000000.0"), "lotSize": 1,
        "tickSize": Decimal("0.1"), "indexPriceTickSize": Decimal("0.01"), "multiplier": c.extra["multiplier"],
        "initialMargin": Decimal("0.008"), "maintainMargin": Decimal("0.004"), "maxRiskLimit": 100000,
        "minRiskLimit": 100000, "riskStep": 50000, "makerFeeRate": Decimal("0.0002"),
        "takerFeeRate": Decimal("0.0006"), "takerFixFee": Decimal("0.0"), "makerFixFee": Decimal("0.0"),
        "settlementFee": None, "isDeleverage": True, "isQuanto": not c.inverse, "isInverse": c.inverse,
        "markMethod": "FairPrice", "fairMethod": "FundingRate", "fundingBaseSymbol": f".{c.base}INT8H",
        "fundingQuoteSymbol": f".{c.quote}INT8H", "fundingRateSymbol": f".{c.symbol}FPI8H",
        "indexSymbol": f".K{c.base}{c.quote}", "settlementSymbol": "", "status": "Open",
        "fundingFeeRate": c.funding_rate, "predictedFundingFeeRate": Decimal("0.000055"),
        "fundingRateGranularity": interval, "openInterest": str(c.oi_contracts),
        "turnoverOf24h": Decimal("1911000080.71"), "volumeOf24h": Decimal("21807.101"), "markPrice": mark,
        "indexPrice": index, "lastTradePrice": mark, "nextFundingRateTime": next_funding - now,
        "nextFundingRateDateTime": next_funding, "maxLeverage": 125,
        "sourceExchanges": ["okex", "binance", "kucoin", "bybit", "bitmart", "gateio"],
        "premiumsSymbol1M": f".{c.symbol}PI", "premiumsSymbol8H": f".{c.symbol}PI8H",
        "fundingBaseSymbol1M": f".{c.base}INT", "fundingQuoteSymbol1M": f".{c.quote}INT",
        "lowPrice": (index * Decimal("0.97")).quantize(Decimal("0.1")),
        "highPrice": (index * Decimal("1.03")).quantize(Decimal("0.1")), "priceChgPct": Decimal("-0.0033"),
        "priceChg": Decimal("-291.0"), "supportCross": True,
    }


async def active(request: web.Request) -> web.Response:
    market = market_of(request)
    venue = market.venue(KEY)
    return reply({"code": "200000", "data": [row(market, c) for c in venue.contracts.values()]})


async def one(request: web.Request) -> web.Response:
    market = market_of(request)
    venue = market.venue(KEY)
    contract = venue.contracts.get(request.match_info["symbol"])
    if contract is None:
        return reply({"code": "40023", "msg": "Contract parameter invalid."}, status=404)
    return reply({"code": "200000", "data": row(market, contract)})


ROUTES: tuple[Route, ...] = (
    Route("GET", "/api/v1/contracts/active", active),
    Route("GET", "/api/v1/contracts/{symbol}", one),
)
