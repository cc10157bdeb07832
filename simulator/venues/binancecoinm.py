"""Simulated Binance COIN-M: /dapi/v1/openInterest (contracts of 100 USD for BTC, 10 USD others),
/dapi/v1/premiumIndex, /dapi/v1/exchangeInfo (contractSize). No insurance fund (Binance publishes none)."""

from __future__ import annotations

from decimal import Decimal

from aiohttp import web

from simulator.market import Market
from simulator.market_state import HOUR_MS, SimContract, SimVenue
from simulator.respond import reply
from simulator.routing import Route, market_of

KEY = "binancecoinm"
CONTRACT_ROWS = [  # symbol, base, USD per contract, OI contracts
    ("BTCUSD_PERP", "BTC", "100", "8123456"),
    ("ETHUSD_PERP", "ETH", "10", "14321987"),
    ("SOLUSD_PERP", "SOL", "10", "3456789"),
    ("XRPUSD_PERP", "XRP", "10", "1234567"),
]


def build(market: Market) -> SimVenue:
    venue = SimVenue(KEY)
    for symbol, base, size, oi in CONTRACT_ROWS:
        venue.contracts[symbol] = SimContract(symbol, base, "USD", base, Decimal(size), True, Decimal(oi),
                                              funding_rate=Decimal("0.00007123"))
    return venue


def _invalid() -> web.Response:
    return reply({"code": -1121, "msg": "Invalid symbol."}, status=400)


def mark(market: Market, contract: SimContract) -> Decimal:
    return market.price(contract.base) * Decimal("1.0003")


async def open_interest(request: web.Request) -> web.Response:
    market = market_of(request)
    venue = market.venue(KEY)
    contract = venue.contracts.get(request.query.get("symbol", ""))
    if contract is None:
        return _invalid()
    return reply({"symbol": contract.symbol, "pair": contract.symbol.split("_")[0],
                  "openInterest": str(contract.oi_contracts), "contractType": "PERPETUAL",
                  "time": market.now_ms()})


def premium(market: Market, contract: SimContract) -> dict[str, object]:
    now = market.now_ms()
    interval = contract.funding_interval_h * HOUR_MS
    index = market.price(contract.base)
    return {
        "symbol": contract.symbol, "pair": contract.symbol.split("_")[0], "markPrice": f"{mark(market, contract):.8f}",
        "indexPrice": f"{index:.8f}", "estimatedSettlePrice": f"{index:.8f}",
        "lastFundingRate": f"{contract.funding_rate:.8f}", "interestRate": "0.00010000",
        "nextFundingTime": (now // interval + 1) * interval, "time": now,
    }


async def premium_index(request: web.Request) -> web.Response:
    market = market_of(request)
    venue = market.venue(KEY)
    symbol = request.query.get("symbol")
    pair = request.query.get("pair")
    rows = [premium(market, c) for c in venue.contracts.values()
            if (not symbol or c.symbol == symbol) and (not pair or c.symbol.startswith(pair + "_"))]
    if symbol and not rows:
        return _invalid()
    return reply(rows)


async def exchange_info(request: web.Request) -> web.Response:
    market = market_of(request)
    venue = market.venue(KEY)
    symbols = [
        {
            "symbol": c.symbol, "pair": c.symbol.split("_")[0], "contractType": "PERPETUAL",
            "deliveryDate": 4133404800000, "onboardDate": 1597042800000, "contractStatus": "TRADING",
            "contractSize": int(c.contract_size), "marginAsset": c.base, "maintMarginPercent": "2.5000",
            "requiredMarginPercent": "5.0000", "baseAsset": c.base, "quoteAsset": "USD", "pricePrecision": 1,
            "quantityPrecision": 0, "baseAssetPrecision": 8, "quotePrecision": 8, "equalQtyPrecision": 4,
            "triggerProtect": "0.0500", "underlyingType": "COIN", "underlyingSubType": [],
            "filters": [
                {"filterType": "PRICE_FILTER", "minPrice": "0.1", "maxPrice": "4520958", "tickSize": "0.1"},
                {"filterType": "LOT_SIZE", "minQty": "1", "maxQty": "1000000", "stepSize": "1"},
            ],
            "orderTypes": ["LIMIT", "MARKET"], "timeInForce": ["GTC"],
        }
        for c in venue.contracts.values()
    ]
    return reply({"timezone": "UTC", "serverTime": market.now_ms(), "rateLimits": [], "exchangeFilters": [],
                  "symbols": symbols})


ROUTES: tuple[Route, ...] = (
    Route("GET", "/dapi/v1/openInterest", open_interest),
    Route("GET", "/dapi/v1/premiumIndex", premium_index),
    Route("GET", "/dapi/v1/exchangeInfo", exchange_info),
)
