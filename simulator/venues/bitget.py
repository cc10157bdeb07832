"""Simulated Bitget v2 mix (USDT-FUTURES): open-interest (base coin per symbol), current-fund-rate (all
symbols or one), tickers, contracts. No insurance fund (none is published)."""

from __future__ import annotations

from decimal import Decimal

from aiohttp import web

from simulator.market import HOUR_MS, Market, SimContract, SimVenue
from simulator.respond import reply

KEY = "bitget"
PRODUCT_TYPE = "USDT-FUTURES"
CONTRACT_ROWS = [  # symbol, base, OI in base coin
    ("BTCUSDT", "BTC", "34278.06"), ("ETHUSDT", "ETH", "512345.67"), ("SOLUSDT", "SOL", "2345678.9"),
]


def build(market: Market) -> SimVenue:
    venue = SimVenue(KEY)
    for symbol, base, oi in CONTRACT_ROWS:
        venue.contracts[symbol] = SimContract(symbol, base, "USDT", "USDT", Decimal(1), False, Decimal(oi),
                                              funding_rate=Decimal("0.000068"))
    return venue


def routes(market: Market) -> list[web.RouteDef]:
    venue = market.venue(KEY)

    def ok(data: object) -> web.Response:
        return reply({"code": "00000", "msg": "success", "requestTime": market.now_ms(), "data": data})

    def error(code: str, message: str) -> web.Response:
        return reply({"code": code, "msg": message, "requestTime": market.now_ms(), "data": None}, status=400)

    def product_ok(request: web.Request) -> bool:
        return request.query.get("productType", "").upper() == PRODUCT_TYPE

    def mark(c: SimContract) -> Decimal:
        return (market.price(c.base) * Decimal("1.0001")).quantize(Decimal("0.01"))

    async def open_interest(request: web.Request) -> web.Response:
        if not product_ok(request):
            return error("40019", "Parameter productType cannot be empty")
        contract = venue.contracts.get(request.query.get("symbol", ""))
        if contract is None:
            return error("40034", "Parameter symbol does not exist")
        return ok({"openInterestList": [{"symbol": contract.symbol, "size": str(contract.oi_contracts)}],
                   "ts": str(market.now_ms())})

    def next_update(c: SimContract) -> int:
        interval = c.funding_interval_h * HOUR_MS
        return (market.now_ms() // interval + 1) * interval

    async def current_fund_rate(request: web.Request) -> web.Response:
        if not product_ok(request):
            return error("40019", "Parameter productType cannot be empty")
        symbol = request.query.get("symbol")
        if symbol and symbol not in venue.contracts:
            return error("40034", "Parameter symbol does not exist")
        return ok([
            {"symbol": c.symbol, "fundingRate": str(c.funding_rate), "fundingRateInterval": str(c.funding_interval_h),
             "nextUpdate": str(next_update(c)), "minFundingRate": "-0.003", "maxFundingRate": "0.003"}
            for c in venue.contracts.values() if not symbol or c.symbol == symbol
        ])

    async def tickers(request: web.Request) -> web.Response:
        if not product_ok(request):
            return error("40019", "Parameter productType cannot be empty")
        rows = []
        for c in venue.contracts.values():
            index = market.price(c.base)
            rows.append({
                "symbol": c.symbol, "lastPr": str(mark(c)), "askPr": str(mark(c)), "bidPr": str(mark(c)),
                "bidSz": "0.703", "askSz": "13.894", "high24h": f"{index * Decimal('1.02'):.2f}",
                "low24h": f"{index * Decimal('0.98'):.2f}", "ts": str(market.now_ms()), "change24h": "0.00471",
                "baseVolume": "79089.5675", "quoteVolume": "8274870921.80485", "usdtVolume": "8274870921.80485",
                "openUtc": f"{index:.2f}", "changeUtc24h": "-0.00009", "indexPrice": f"{index:.6f}",
                "fundingRate": str(c.funding_rate), "holdingAmount": str(c.oi_contracts), "deliveryStartTime": None,
                "deliveryTime": None, "deliveryStatus": "", "open24h": f"{index:.2f}", "markPrice": str(mark(c)),
            })
        return ok(rows)

    async def contracts(request: web.Request) -> web.Response:
        if not product_ok(request):
            return error("40019", "Parameter productType cannot be empty")
        return ok([{
            "symbol": c.symbol, "baseCoin": c.base, "quoteCoin": "USDT", "buyLimitPriceRatio": "0.05",
            "sellLimitPriceRatio": "0.05", "feeRateUpRatio": "0.005", "makerFeeRate": "0.0002",
            "takerFeeRate": "0.0006", "openCostUpRatio": "0.01", "supportMarginCoins": ["USDT"], "minTradeNum": "0.001",
            "priceEndStep": "1", "volumePlace": "3", "pricePlace": "1", "sizeMultiplier": "0.001",
            "symbolType": "perpetual", "minTradeUSDT": "5", "maxSymbolOrderNum": "200", "maxProductOrderNum": "400",
            "maxPositionNum": "150", "symbolStatus": "normal", "offTime": "-1", "limitOpenTime": "-1",
            "deliveryTime": "", "deliveryStartTime": "", "deliveryPeriod": "", "launchTime": "",
            "fundInterval": str(c.funding_interval_h), "minLever": "1", "maxLever": "125", "posLimit": "0.05",
            "maintainTime": "",
        } for c in venue.contracts.values()])

    return [
        web.get("/api/v2/mix/market/open-interest", open_interest),
        web.get("/api/v2/mix/market/current-fund-rate", current_fund_rate),
        web.get("/api/v2/mix/market/tickers", tickers),
        web.get("/api/v2/mix/market/contracts", contracts),
    ]
