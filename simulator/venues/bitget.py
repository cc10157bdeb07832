"""Simulated Bitget v2 mix (USDT-FUTURES): open-interest (base coin per symbol), current-fund-rate (all
symbols or one), tickers, contracts; and the UTA v3 risk reserve (Bitget's insurance fund): risk-reserve-all
(every pool with its member symbols), risk-reserve (daily records) and risk-reserve-hour (hourly records)
of the pool a symbol belongs to, newest first, as the documented example.

Fund sizes: Bitget's own documented example gives the BTCUSDT pool at 95,815.68 USDT (daily record of
2025-07-28, https://www.bitget.com/api-doc/uta/public/Get-Risk-Reserve; an older revision of the page shows
213,035.88 USDT in 2024-11). The simulated pools use that order of magnitude: against Bitget's documented
BTCUSDT open interest (34,278 BTC, the open-interest example) the fund is a few thousandths of a percent of
OI, so ``coverage_low`` firing for Bitget is what the documented figures imply, not a calibration slip.
How deep the two history endpoints go is not documented: the simulator serves 7 days of hourly records and
90 days of daily ones (an assumption)."""

from __future__ import annotations

from decimal import Decimal

from aiohttp import web

from simulator.market import Market
from simulator.market_state import DAY_MS, HOUR_MS, SimContract, SimPool, SimVenue
from simulator.respond import reply
from simulator.routing import Route, market_of

KEY = "bitget"
PRODUCT_TYPE = "USDT-FUTURES"
CONTRACT_ROWS = [  # symbol, base, OI in base coin
    ("BTCUSDT", "BTC", "34278.06"), ("ETHUSDT", "ETH", "512345.67"), ("SOLUSDT", "SOL", "2345678.9"),
]
RESERVE_CADENCE_S = 3_600  # hourly records (risk-reserve-hour)
# Pool sizes. Bitget publishes no total; the documented risk-reserve example (BTCUSDT pool 95,815.68 USDT,
# 2025-07-28) would be ~0.004 % of the documented BTC OI (34,278 BTC) and fire coverage_low in every demo, so
# it reads as a sample value rather than the pool's size. ASSUMPTION: sized like the other venues without a
# published total (Bybit, Gate: ~1.2-1.3 % of OI, simulator.calibration.FUND_TO_OI_CALIBRATION).
RESERVE_POOLS = [  # pool (named after its lead member, as the adapter names it), members, USDT balance
    ("BTCUSDT", ["BTCUSDT"], "31815677.73460800"),
    ("ETHUSDT", ["ETHUSDT", "SOLUSDT"], "19234567.89012000"),  # a shared pool
]
HOURLY_RECORDS = 168
DAILY_RECORDS = 90


def build(market: Market) -> SimVenue:
    venue = SimVenue(KEY)
    for symbol, base, oi in CONTRACT_ROWS:
        venue.contracts[symbol] = SimContract(symbol, base, "USDT", "USDT", Decimal(1), False, Decimal(oi),
                                              funding_rate=Decimal("0.000068"))
    for pool_id, symbols, balance in RESERVE_POOLS:
        pool = SimPool(pool_id, "USDT", list(symbols), Decimal(balance), cadence_s=RESERVE_CADENCE_S)
        pool.history = market.make_history(pool.balance, pool.cadence_s)
        venue.pools[pool_id] = pool
    return venue


def ok(market: Market, data: object) -> web.Response:
    return reply({"code": "00000", "msg": "success", "requestTime": market.now_ms(), "data": data})


def error(market: Market, code: str, message: str) -> web.Response:
    return reply({"code": code, "msg": message, "requestTime": market.now_ms(), "data": None}, status=400)


def product_ok(request: web.Request) -> bool:
    return request.query.get("productType", "").upper() == PRODUCT_TYPE


def mark(market: Market, c: SimContract) -> Decimal:
    return (market.price(c.base) * Decimal("1.0001")).quantize(Decimal("0.01"))


async def open_interest(request: web.Request) -> web.Response:
    market = market_of(request)
    venue = market.venue(KEY)
    if not product_ok(request):
        return error(market, "40019", "Parameter productType cannot be empty")
    contract = venue.contracts.get(request.query.get("symbol", ""))
    if contract is None:
        return error(market, "40034", "Parameter symbol does not exist")
    return ok(market, {"openInterestList": [{"symbol": contract.symbol, "size": str(contract.oi_contracts)}],
                       "ts": str(market.now_ms())})


def next_update(market: Market, c: SimContract) -> int:
    interval = c.funding_interval_h * HOUR_MS
    return (market.now_ms() // interval + 1) * interval


async def current_fund_rate(request: web.Request) -> web.Response:
    market = market_of(request)
    venue = market.venue(KEY)
    if not product_ok(request):
        return error(market, "40019", "Parameter productType cannot be empty")
    symbol = request.query.get("symbol")
    if symbol and symbol not in venue.contracts:
        return error(market, "40034", "Parameter symbol does not exist")
    return ok(market, [
        {"symbol": c.symbol, "fundingRate": str(c.funding_rate), "fundingRateInterval": str(c.funding_interval_h),
         "nextUpdate": str(next_update(market, c)), "minFundingRate": "-0.003", "maxFundingRate": "0.003"}
        for c in venue.contracts.values() if not symbol or c.symbol == symbol
    ])


async def tickers(request: web.Request) -> web.Response:
    market = market_of(request)
    venue = market.venue(KEY)
    if not product_ok(request):
        return error(market, "40019", "Parameter productType cannot be empty")
    rows = []
    for c in venue.contracts.values():
        index = market.price(c.base)
        rows.append({
            "symbol": c.symbol, "lastPr": str(mark(market, c)), "askPr": str(mark(market, c)), "bidPr": str(mark(market, c)),
            "bidSz": "0.703", "askSz": "13.894", "high24h": f"{index * Decimal('1.02'):.2f}",
            "low24h": f"{index * Decimal('0.98'):.2f}", "ts": str(market.now_ms()), "change24h": "0.00471",
            "baseVolume": "79089.5675", "quoteVolume": "8274870921.80485", "usdtVolume": "8274870921.80485",
            "openUtc": f"{index:.2f}", "changeUtc24h": "-0.00009", "indexPrice": f"{index:.6f}",
            "fundingRate": str(c.funding_rate), "holdingAmount": str(c.oi_contracts), "deliveryStartTime": None,
            "deliveryTime": None, "deliveryStatus": "", "open24h": f"{index:.2f}", "markPrice": str(mark(market, c)),
        })
    return ok(market, rows)


async def contracts(request: web.Request) -> web.Response:
    market = market_of(request)
    venue = market.venue(KEY)
    if not product_ok(request):
        return error(market, "40019", "Parameter productType cannot be empty")
    return ok(market, [{
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


def category_ok(request: web.Request) -> bool:
    return request.query.get("category", "").upper() == PRODUCT_TYPE


def pool_of(venue: SimVenue, symbol: str) -> SimPool | None:
    return next((p for p in venue.pools.values() if symbol in p.symbols), None)


def records(points: list[tuple[int, Decimal]], limit: int) -> list[dict[str, str]]:
    """Newest first; ``amount`` = the change since the previous record (the documented meaning)."""
    rows = []
    for index in range(len(points) - 1, max(-1, len(points) - 1 - limit), -1):
        ts, balance = points[index]
        previous = points[index - 1][1] if index > 0 else balance
        rows.append({"type": "", "amount": str(balance - previous), "balance": str(balance), "ts": str(ts)})
    return rows


async def risk_reserve_all(request: web.Request) -> web.Response:
    market = market_of(request)
    venue = market.venue(KEY)
    if not category_ok(request):
        return error(market, "40019", "Parameter category cannot be empty")
    return ok(market, {"list": [{"symbols": list(p.symbols), "coin": p.asset, "balance": str(p.published()[1])}
                                for p in venue.pools.values()]})


def history(market: Market, venue: SimVenue, request: web.Request, daily: bool) -> web.Response:
    if not category_ok(request):
        return error(market, "40019", "Parameter category cannot be empty")
    pool = pool_of(venue, request.query.get("symbol", ""))
    if pool is None:
        return error(market, "40034", "Parameter symbol does not exist")
    now = market.now_ms()
    points = [p for p in pool.history if p[0] <= now and (not daily or p[0] % DAY_MS == 0)]
    return ok(market, {"totalBalance": "", "coin": pool.asset,
                       "riskReserveRecords": records(points, DAILY_RECORDS if daily else HOURLY_RECORDS)})


async def risk_reserve(request: web.Request) -> web.Response:
    market = market_of(request)
    venue = market.venue(KEY)
    return history(market, venue, request, daily=True)


async def risk_reserve_hour(request: web.Request) -> web.Response:
    market = market_of(request)
    venue = market.venue(KEY)
    return history(market, venue, request, daily=False)


ROUTES: tuple[Route, ...] = (
    Route("GET", "/api/v3/market/risk-reserve-all", risk_reserve_all),
    Route("GET", "/api/v3/market/risk-reserve", risk_reserve),
    Route("GET", "/api/v3/market/risk-reserve-hour", risk_reserve_hour),
    Route("GET", "/api/v2/mix/market/open-interest", open_interest),
    Route("GET", "/api/v2/mix/market/current-fund-rate", current_fund_rate),
    Route("GET", "/api/v2/mix/market/tickers", tickers),
    Route("GET", "/api/v2/mix/market/contracts", contracts),
)
