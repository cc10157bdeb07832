"""Simulated Kraken Futures: the liquidity-pool chart (``/api/charts/v1/analytics/liquidity-pool``,
since/interval/to, at most ``MAX_POINTS`` buckets per answer with ``more``) and the derivatives tickers
(``/derivatives/api/v3/tickers``: linear PF_, inverse PI_/FI_, index tickers)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from aiohttp import web

from simulator.market import Market
from simulator.market_state import DAY_MS, SimContract, SimPool, SimVenue
from simulator.respond import reply
from simulator.routing import Route, market_of

KEY = "krakenfutures"
INTERVALS = (60, 300, 900, 1800, 3600, 14400, 43200, 86400, 604800)
MAX_POINTS = 500
POOL_BALANCE = "95402118.37"
CONTRACT_ROWS = [  # prefix, kraken base, base, OI contracts, hourly relative funding
    ("PF", "XBT", "BTC", "1842.5521", "0.0000094"), ("PF", "ETH", "ETH", "41877.31", "0.0000121"),
    ("PF", "SOL", "SOL", "219004.5", "-0.0000047"), ("PF", "XRP", "XRP", "9120455", "0.0000125"),
    ("PI", "XBT", "BTC", "48211990", "0.0000083"), ("PI", "ETH", "ETH", "12902411", "0.0000102"),
]


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def build(market: Market) -> SimVenue:
    venue = SimVenue(KEY)
    for prefix, kraken_base, base, oi, funding in CONTRACT_ROWS:
        symbol = f"{prefix}_{kraken_base}USD"
        venue.contracts[symbol] = SimContract(
            symbol, base, "USD", base if prefix == "PI" else "USD", Decimal(1), prefix == "PI", Decimal(oi),
            funding_rate=Decimal(funding), funding_interval_h=1, extra={"pair": f"{kraken_base}:USD", "tag": "perpetual"},
        )
    expiry = datetime.fromtimestamp((market.start_ms + 30 * DAY_MS) / 1000, tz=UTC).strftime("%y%m%d")
    future = f"FI_XBTUSD_{expiry}"
    venue.contracts[future] = SimContract(future, "BTC", "USD", "BTC", Decimal(1), True, Decimal("3023363"),
                                          extra={"pair": "XBT:USD", "tag": "month"})
    pool = SimPool("liquidity_pool", "USD", [], Decimal(POOL_BALANCE), cadence_s=3_600)
    pool.history = [(t, v.quantize(Decimal("0.01"))) for t, v in market.make_history(pool.balance, pool.cadence_s)]
    venue.pools[pool.pool_id] = pool
    return venue


def _error(message: str) -> web.Response:
    return reply({"result": "error", "error": message, "serverTime": None}, status=400)


async def liquidity_pool(request: web.Request) -> web.Response:
    market = market_of(request)
    venue = market.venue(KEY)
    try:
        since_s = int(request.query["since"])
        interval_s = int(request.query["interval"])
        to_s = int(request.query["to"]) if "to" in request.query else market.now_ms() // 1000
    except (KeyError, ValueError):
        return _error("since and interval are required integers")
    if interval_s not in INTERVALS:
        return _error(f"interval must be one of {', '.join(map(str, INTERVALS))}")
    step_ms = interval_s * 1000
    pool = venue.pools["liquidity_pool"]
    points = [(t, v) for t, v in pool.history
              if since_s * 1000 <= t <= to_s * 1000 and t % step_ms == 0]
    page = points[:MAX_POINTS]
    return reply({"result": {"timestamp": [t // 1000 for t, _ in page], "more": len(points) > len(page),
                             "data": {"usdValue": [str(v) for _, v in page]}}})


def ticker(market: Market, contract: SimContract) -> dict[str, Any]:
    now = market.now_ms()
    index = market.price(contract.base)
    mark = (index * (1 + contract.basis(Decimal("0.0003")))).quantize(Decimal("0.01"))
    # absolute funding: USD per base coin per hour (linear); per USD contract in coin (inverse)
    absolute = contract.funding_rate / mark if contract.inverse else contract.funding_rate * mark
    row: dict[str, Any] = {
        "symbol": contract.symbol, "last": mark, "lastTime": _iso(now - 1500), "tag": contract.extra["tag"],
        "pair": contract.extra["pair"], "markPrice": mark, "bid": mark - Decimal("0.5"), "bidSize": 1000,
        "ask": mark + Decimal("0.5"), "askSize": 1000, "vol24h": 860493, "volumeQuote": Decimal("73521.6"),
        "openInterest": contract.oi_contracts, "open24h": mark, "high24h": mark, "low24h": mark, "lastSize": 151,
        "suspended": False, "indexPrice": index, "postOnly": False, "change24h": Decimal("-0.46"),
    }
    if contract.extra["tag"] == "perpetual":
        row["fundingRate"] = absolute
        row["fundingRatePrediction"] = absolute
    return row


async def tickers(request: web.Request) -> web.Response:
    market = market_of(request)
    venue = market.venue(KEY)
    now = market.now_ms()
    rows = [ticker(market, c) for c in venue.contracts.values()]
    rows += [{"symbol": "in_xbtusd", "last": market.price("BTC"), "lastTime": _iso(now - 1000)},
             {"symbol": "rr_xbtusd", "last": market.price("BTC"), "lastTime": _iso(now - 60_000)}]
    return reply({"result": "success", "tickers": rows, "serverTime": _iso(now)})


ROUTES: tuple[Route, ...] = (
    Route("GET", "/api/charts/v1/analytics/liquidity-pool", liquidity_pool),
    Route("GET", "/derivatives/api/v3/tickers", tickers),
)
