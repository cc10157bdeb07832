"""Simulated Binance USDⓈ-M: /fapi/v1/insuranceBalance (fund groups, several assets each),
openInterest, premiumIndex, klines, symbolAdlRisk, exchangeInfo."""

from __future__ import annotations

from decimal import Decimal

from aiohttp import web

from simulator.market import Market
from simulator.market_state import HOUR_MS, SimContract, SimPool, SimVenue
from simulator.respond import reply
from simulator.routing import Route, market_of

KEY = "binance"
CONTRACT_ROWS = [  # symbol, base, OI in base
    ("BTCUSDT", "BTC", "82000.512"), ("ETHUSDT", "ETH", "1650000.25"), ("BNBUSDT", "BNB", "420000.1"),
    ("SOLUSDT", "SOL", "9800000"), ("XRPUSDT", "XRP", "410000000.5"), ("DOGEUSDT", "DOGE", "2900000000"),
]
GROUPS = {  # group id -> (symbols, {asset: balance})
    "BTCUSDT": (["BNBUSDT", "BTCUSDT", "ETHUSDT", "SOLUSDT"],
                {"USDT": "793930579.315848", "USDC": "299999998.6497832", "BTC": "61.73143554",
                 "BNFCR": "633223.99396922"}),
    "XRPUSDT": (["DOGEUSDT", "XRPUSDT"], {"USDT": "314151411.06482935"}),
}


def build(market: Market) -> SimVenue:
    venue = SimVenue(KEY)
    for symbol, base, oi in CONTRACT_ROWS:
        venue.contracts[symbol] = SimContract(symbol, base, "USDT", "USDT", Decimal(1), False, Decimal(oi))
    for group, (symbols, assets) in GROUPS.items():
        for asset, balance in assets.items():
            pool = SimPool(f"{group}:{asset}", asset, symbols, Decimal(balance), cadence_s=86_400,
                           extra={"group": group})
            pool.history = market.make_history(pool.balance, pool.cadence_s)
            venue.pools[pool.pool_id] = pool
    return venue


def _mark(market: Market, contract: SimContract) -> Decimal:
    return market.price(contract.base) * (1 + contract.basis(Decimal("0.0002")))


def group_payload(venue: SimVenue, group: str) -> dict[str, object]:
    pools = [p for p in venue.pools.values() if p.extra.get("group") == group]
    return {
        "symbols": sorted(pools[0].symbols),
        "assets": [
            {"asset": p.asset, "marginBalance": str(p.published()[1]), "updateTime": p.published()[0] + 2000}
            for p in pools
        ],
    }


async def insurance_balance(request: web.Request) -> web.Response:
    venue = market_of(request).venue(KEY)
    groups = sorted({p.extra["group"] for p in venue.pools.values()})
    symbol = request.query.get("symbol")
    if symbol:
        for group in groups:
            if symbol in venue.pools[f"{group}:USDT"].symbols:
                return reply(group_payload(venue, group))
        return reply({"code": -1121, "msg": "Invalid symbol."}, status=400)
    return reply([group_payload(venue, g) for g in groups])


async def open_interest(request: web.Request) -> web.Response:
    market = market_of(request)
    venue = market.venue(KEY)
    contract = venue.contracts.get(request.query.get("symbol", ""))
    if contract is None:
        return reply({"code": -1121, "msg": "Invalid symbol."}, status=400)
    return reply({"openInterest": str(contract.oi_contracts), "symbol": contract.symbol,
                  "time": market.now_ms()})


def premium(market: Market, contract: SimContract) -> dict[str, object]:
    now = market.now_ms()
    interval = contract.funding_interval_h * HOUR_MS
    mark = _mark(market, contract)
    return {
        "symbol": contract.symbol, "markPrice": f"{mark:.8f}", "indexPrice": f"{market.price(contract.base):.8f}",
        "estimatedSettlePrice": f"{market.price(contract.base):.8f}",
        "lastFundingRate": f"{contract.funding_rate:.8f}", "interestRate": "0.00010000",
        "nextFundingTime": (now // interval + 1) * interval, "time": now,
    }


async def premium_index(request: web.Request) -> web.Response:
    market = market_of(request)
    venue = market.venue(KEY)
    symbol = request.query.get("symbol")
    if symbol:
        if symbol not in venue.contracts:
            return reply({"code": -1121, "msg": "Invalid symbol."}, status=400)
        return reply(premium(market, venue.contracts[symbol]))
    return reply([premium(market, c) for c in venue.contracts.values()])


async def klines(request: web.Request) -> web.Response:
    market = market_of(request)
    venue = market.venue(KEY)
    contract = venue.contracts.get(request.query.get("symbol", ""))
    if contract is None:
        return reply({"code": -1121, "msg": "Invalid symbol."}, status=400)
    start = request.query.get("startTime")
    limit = min(int(request.query.get("limit", "500")), 1500)
    rows = market.candles(contract.base, int(start) if start else None, limit)
    return reply([[t, f"{o:.2f}", f"{h:.2f}", f"{lo:.2f}", f"{c:.2f}", f"{v:.3f}", t + 86_399_999,
                   "0", 100, "0", "0", "0"] for t, o, h, lo, c, v in rows])


async def adl_risk(request: web.Request) -> web.Response:
    market = market_of(request)
    venue = market.venue(KEY)
    now = market.now_ms()
    rows = []
    for contract in venue.contracts.values():
        level = contract.extra.get("adl_risk", "low")
        rows.append({"symbol": contract.symbol, "adlRisk": level, "updateTime": now - now % 1_800_000})
    symbol = request.query.get("symbol")
    if symbol:
        rows = [r for r in rows if r["symbol"] == symbol]
        return reply(rows[0] if rows else {"code": -1121, "msg": "Invalid symbol."},
                     status=200 if rows else 400)
    return reply(rows)


async def exchange_info(request: web.Request) -> web.Response:
    market = market_of(request)
    venue = market.venue(KEY)
    symbols = [
        {
            "symbol": c.symbol, "pair": c.symbol, "contractType": "PERPETUAL", "deliveryDate": 4133404800000,
            "onboardDate": 1569398400000, "status": "TRADING", "baseAsset": c.base, "quoteAsset": "USDT",
            "marginAsset": "USDT", "pricePrecision": 2, "quantityPrecision": 3, "baseAssetPrecision": 8,
            "quotePrecision": 8, "underlyingType": "COIN", "settlePlan": 0, "triggerProtect": "0.0500",
            "filters": [
                {"filterType": "PRICE_FILTER", "minPrice": "0.01", "maxPrice": "1000000", "tickSize": "0.01"},
                {"filterType": "LOT_SIZE", "minQty": "0.001", "maxQty": "1000", "stepSize": "0.001"},
            ],
            "orderTypes": ["LIMIT", "MARKET"], "timeInForce": ["GTC"],
        }
        for c in venue.contracts.values()
    ]
    return reply({"timezone": "UTC", "serverTime": market.now_ms(), "rateLimits": [], "assets": [],
                  "symbols": symbols})


ROUTES: tuple[Route, ...] = (
    Route("GET", "/fapi/v1/insuranceBalance", insurance_balance),
    Route("GET", "/fapi/v1/openInterest", open_interest),
    Route("GET", "/fapi/v1/premiumIndex", premium_index),
    Route("GET", "/fapi/v1/klines", klines),
    Route("GET", "/fapi/v1/symbolAdlRisk", adl_risk),
    Route("GET", "/fapi/v1/exchangeInfo", exchange_info),
)
