"""Simulated HTX USDT-margined swaps: swap_risk_info (insurance fund + estimated clawback per contract),
swap_insurance_fund (paged daily history at 08:00 UTC), swap_open_interest (both sides summed),
swap_batch_funding_rate / swap_funding_rate, swap_contract_info. Numbers are JSON numbers where HTX
writes numbers (balances, OI) and text where HTX writes text (funding)."""

from __future__ import annotations

import math
from decimal import Decimal

from aiohttp import web

from simulator.market import Market
from simulator.market_state import HOUR_MS, SimContract, SimPool, SimVenue
from simulator.respond import reply
from simulator.routing import Route, market_of

KEY = "htx"
PUBLISH_OFFSET_S = 8 * 3600  # daily history points at 08:00 UTC
CONTRACT_ROWS = [  # contract_code, base, contract size (base per contract), OI contracts (one side)
    ("BTC-USDT", "BTC", "0.001", "41234567"),
    ("ETH-USDT", "ETH", "0.01", "23456789"),
    ("SOL-USDT", "SOL", "1", "3456789"),
    ("XRP-USDT", "XRP", "10", "9876543"),
]
POOLS = {  # contract_code -> insurance fund (USDT)
    "BTC-USDT": "183456789.12345678", "ETH-USDT": "61234567.87654321", "SOL-USDT": "7345678.5",
    "XRP-USDT": "2345678.25",
}


def build(market: Market) -> SimVenue:
    venue = SimVenue(KEY)
    for code, base, size, oi in CONTRACT_ROWS:
        venue.contracts[code] = SimContract(code, base, "USDT", "USDT", Decimal(size), False, Decimal(oi))
    for code, balance in POOLS.items():
        pool = SimPool(code, "USDT", [code], Decimal(balance), cadence_s=86_400)
        pool.history = market.make_history(pool.balance, pool.cadence_s, offset_s=PUBLISH_OFFSET_S)
        venue.pools[code] = pool
    return venue


def ok(market: Market, data: object) -> web.Response:
    return reply({"status": "ok", "data": data, "ts": market.now_ms()})


def error(market: Market, code: int, message: str) -> web.Response:  # HTX answers errors with HTTP 200
    return reply({"status": "error", "err_code": code, "err_msg": message, "ts": market.now_ms()})


def wanted(venue: SimVenue, request: web.Request) -> list[SimContract] | None:
    """Contracts selected by ``contract_code`` / ``business_type`` (None = unknown contract)."""
    code = request.query.get("contract_code")
    if request.query.get("business_type", "swap") == "futures":
        return []  # no dated futures simulated
    if code:
        return [venue.contracts[code]] if code in venue.contracts else None
    return list(venue.contracts.values())


def clawback(market: Market, pool: SimPool, contract: SimContract) -> Decimal:
    """A test's fixed value (``pool.extra["estimated_clawback"]``), else while the model runs ADL on
    HTX the deficit the fund could not cover over the contract's open notional, else 0."""
    fixed = pool.extra.get("estimated_clawback")
    if fixed is not None:
        return Decimal(fixed)
    if not market.adl_active(KEY):
        return Decimal(0)
    notional = contract.oi_usd(market.price(contract.base))
    deficit = market.ledger(KEY, pool.pool_id)["adl"] * market.price(pool.asset)
    return (deficit / notional).quantize(Decimal("1e-8")) if notional > 0 else Decimal(0)


async def risk_info(request: web.Request) -> web.Response:
    market = market_of(request)
    venue = market.venue(KEY)
    contracts = wanted(venue, request)
    if contracts is None:
        return error(market, 1332, "The contract doesn't exist.")
    rows = []
    for c in contracts:
        pool = venue.pools[c.symbol]
        rows.append({"contract_code": c.symbol, "insurance_fund": pool.published()[1],
                     "estimated_clawback": clawback(market, pool, c), "business_type": "swap", "pair": c.symbol})
    return ok(market, rows)


async def insurance_fund(request: web.Request) -> web.Response:
    market = market_of(request)
    venue = market.venue(KEY)
    code = request.query.get("contract_code")
    if not code:
        return error(market, 1014, "Missing required parameter: contract_code")
    if code not in venue.pools:
        return error(market, 1332, "The contract doesn't exist.")
    try:
        page_index = int(request.query.get("page_index", "1"))
        page_size = int(request.query.get("page_size", "100"))
    except ValueError:
        return error(market, 1014, "Invalid page parameter")
    if not 1 <= page_size <= 100 or page_index < 1:
        return error(market, 1014, "page_size must be 1..100, page_index >= 1")
    now = market.now_ms()
    points = [p for p in reversed(venue.pools[code].history) if p[0] <= now]  # newest first
    total_page = max(1, math.ceil(len(points) / page_size))
    page = points[(page_index - 1) * page_size: page_index * page_size]
    return ok(market, {
        "total_page": total_page, "current_page": page_index, "total_size": len(points),
        "symbol": venue.contracts[code].base, "contract_code": code,
        "tick": [{"insurance_fund": balance, "ts": ts} for ts, balance in page],
        "business_type": "swap", "pair": code,
    })


async def open_interest(request: web.Request) -> web.Response:
    market = market_of(request)
    venue = market.venue(KEY)
    contracts = wanted(venue, request)
    if contracts is None:
        return error(market, 1332, "The contract doesn't exist.")
    rows = []
    for c in contracts:
        volume = c.oi_contracts * 2  # HTX: "sum of both buy and sell sides"
        amount = volume * c.contract_size
        rows.append({
            "volume": volume, "amount": amount, "symbol": c.base,
            "value": (amount * market.price(c.base)).quantize(Decimal("0.0001")), "contract_code": c.symbol,
            "trade_amount": Decimal("1234.5"), "trade_volume": Decimal("1234500"),
            "trade_turnover": Decimal("98765.4321"), "business_type": "swap", "pair": c.symbol,
            "contract_type": "swap",
        })
    return ok(market, rows)


def funding_row(market: Market, c: SimContract) -> dict[str, object]:
    interval = c.funding_interval_h * HOUR_MS
    return {
        "estimated_rate": "null", "funding_rate": f"{c.funding_rate:.18f}", "contract_code": c.symbol,
        "symbol": c.base, "fee_asset": "USDT", "funding_time": str((market.now_ms() // interval + 1) * interval),
        "next_funding_time": "null", "trade_partition": "USDT",
    }


async def batch_funding(request: web.Request) -> web.Response:
    market = market_of(request)
    venue = market.venue(KEY)
    contracts = wanted(venue, request)
    if contracts is None:
        return error(market, 1332, "The contract doesn't exist.")
    return ok(market, [funding_row(market, c) for c in contracts])


async def funding_rate(request: web.Request) -> web.Response:
    market = market_of(request)
    venue = market.venue(KEY)
    code = request.query.get("contract_code", "")
    if code not in venue.contracts:
        return error(market, 1332, "The contract doesn't exist.")
    return ok(market, funding_row(market, venue.contracts[code]))


async def contract_info(request: web.Request) -> web.Response:
    market = market_of(request)
    venue = market.venue(KEY)
    contracts = wanted(venue, request)
    if contracts is None:
        return error(market, 1332, "The contract doesn't exist.")
    return ok(market, [{
        "symbol": c.base, "contract_code": c.symbol, "contract_size": c.contract_size,
        "price_tick": Decimal("0.1"), "delivery_date": "", "delivery_time": "", "create_date": "20201021",
        "contract_status": 1, "settlement_date": str((market.now_ms() // (8 * HOUR_MS) + 1) * 8 * HOUR_MS),
        "support_margin_mode": "all", "business_type": "swap", "pair": c.symbol, "contract_type": "swap",
        "trade_partition": "USDT",
    } for c in contracts])


ROUTES: tuple[Route, ...] = (
    Route("GET", "/linear-swap-api/v1/swap_risk_info", risk_info),
    Route("GET", "/linear-swap-api/v1/swap_insurance_fund", insurance_fund),
    Route("GET", "/linear-swap-api/v1/swap_open_interest", open_interest),
    Route("GET", "/linear-swap-api/v1/swap_batch_funding_rate", batch_funding),
    Route("GET", "/linear-swap-api/v1/swap_funding_rate", funding_rate),
    Route("GET", "/linear-swap-api/v1/swap_contract_info", contract_info),
)
