"""Simulated Paradex: ``/v1/insurance`` (the fund account's value, live, as text) and ``/v1/markets/summary``
(``market=ALL`` or one market; perpetuals plus one option row the collector must skip).

Calibration: BTC open interest 162.272 BTC is ccxt 4.5.90's captured ``/v1/markets/summary`` row
(2024-06); ETH and SOL are scaled from it. The fund: the only published figure found is the docs' testnet
example (136,285.069 USDC), which says nothing about mainnet; the simulated 1.2 M USDC (≈ 5 % of the
simulated OI) is an assumption, UNCONFIRMED.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from aiohttp import web

from simulator.market import Market
from simulator.market_state import SimContract, SimPool, SimVenue
from simulator.respond import reply
from simulator.routing import Route, market_of

KEY = "paradex"
FUND = "insurance fund"
FUND_ACCOUNT = "0x495d2eb5236a12b8b4ad7d3849ce6a203ce21c43f473c248dfd5ce70d9454fa"  # the docs example's address
FUND_BALANCE = "1204331.071"
CONTRACT_ROWS = [  # market, base, OI in base coin
    ("BTC-USD-PERP", "BTC", "162.272"), ("ETH-USD-PERP", "ETH", "2480.51"), ("SOL-USD-PERP", "SOL", "41022.7"),
]
OPTION_ROW = "BTC-USD-100000-C"


def build(market: Market) -> SimVenue:
    venue = SimVenue(KEY)
    for symbol, base, oi in CONTRACT_ROWS:
        venue.contracts[symbol] = SimContract(symbol, base, "USD", "USDC", Decimal(1), False, Decimal(oi),
                                              funding_rate=Decimal("0.0001"), funding_interval_h=8)
    pool = SimPool(FUND, "USDC", [s for s, _, _ in CONTRACT_ROWS], Decimal(FUND_BALANCE), cadence_s=3_600)
    pool.history = market.make_history(pool.balance, pool.cadence_s)  # the model's; the venue serves it live
    venue.pools[FUND] = pool
    return venue


def _px(value: Decimal) -> str:
    return format(value.quantize(Decimal("0.00000001")), "f")


async def insurance(request: web.Request) -> web.Response:
    market = market_of(request)
    venue = market.venue(KEY)
    pool = venue.pools[FUND]
    return reply({"account": FUND_ACCOUNT, "account_value": format(pool.balance.quantize(Decimal("0.001")), "f"),
                  "settlement_asset": "USDC", "updated_at": market.now_ms()})


def summary_row(market: Market, c: SimContract) -> dict[str, Any]:
    oracle = market.price(c.base)
    mark = oracle * (1 + c.basis(Decimal("0.0002")))
    return {"symbol": c.symbol, "oracle_price": _px(oracle), "mark_price": _px(mark),
            "last_traded_price": _px(mark), "bid": _px(mark * Decimal("0.9999")), "ask": _px(mark * Decimal("1.0001")),
            "volume_24h": "5815541.397939004", "total_volume": "584031465.525259686", "created_at": market.now_ms(),
            "underlying_price": _px(oracle), "open_interest": str(c.oi_contracts),
            "funding_rate": format(c.funding_rate, "f"), "price_change_rate_24h": "0.009032"}


async def markets_summary(request: web.Request) -> web.Response:
    market = market_of(request)
    venue = market.venue(KEY)
    wanted = request.query.get("market")
    if not wanted:
        return reply({"error": "VALIDATION_ERROR", "message": "market is required"}, status=400)
    rows = [summary_row(market, c) for c in venue.contracts.values() if wanted in ("ALL", c.symbol)]
    if wanted in ("ALL", OPTION_ROW):
        btc = market.price("BTC")
        rows.append({"symbol": OPTION_ROW, "mark_price": _px(btc * Decimal("0.04")), "open_interest": "12.5",
                     "created_at": market.now_ms(), "underlying_price": _px(btc)})
    if not rows:
        return reply({"error": "NOT_FOUND", "message": f"market {wanted} not found"}, status=404)
    return reply({"results": rows})


ROUTES: tuple[Route, ...] = (
    Route("GET", "/v1/insurance", insurance),
    Route("GET", "/v1/markets/summary", markets_summary),
)
