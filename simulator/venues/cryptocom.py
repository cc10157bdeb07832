"""Simulated Crypto.com Exchange (``/exchange/v1``): public/get-insurance (the USD fund's published points,
filtered by start_ts/end_ts, newest first, at most ``count``), public/get-tickers (perpetuals with ``oi``,
one spot pair without), public/get-valuations (hourly funding, index/mark price).

Calibration (order of magnitude, cited): Crypto.com announced its derivatives insurance fund "to cover up
to USD 5 million" (blog.crypto.com, "Crypto.com Exchange adds USD 5 million to its derivatives insurance
fund"); no later published figure was found, so the fund is simulated at ~5.4 M USD. Open interest: no
published figure found either; ~200 M USD across the three perpetuals (fund ≈ 2.5 % of OI, the middle of
the range Backstop sees on the large venues). The fund's real cadence and row order are UNCONFIRMED:
hourly points here.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from aiohttp import web

from simulator.market import Market
from simulator.market_state import HOUR_MS, SimContract, SimPool, SimVenue
from simulator.respond import reply
from simulator.routing import Route, market_of

KEY = "cryptocom"
FUND = "USD"
CADENCE_S = 3_600
MAX_COUNT = 1_000
CONTRACT_ROWS = [  # instrument, base, OI in base coin
    ("BTCUSD-PERP", "BTC", "1851.2731"), ("ETHUSD-PERP", "ETH", "21402.118"), ("SOLUSD-PERP", "SOL", "164033.5"),
]
FUND_BALANCE = "5412377.83"


def build(market: Market) -> SimVenue:
    venue = SimVenue(KEY)
    for instrument, base, oi in CONTRACT_ROWS:
        venue.contracts[instrument] = SimContract(instrument, base, "USD", "USD", Decimal(1), False, Decimal(oi),
                                                  funding_rate=Decimal("0.0000125"), funding_interval_h=1)
    pool = SimPool(FUND, "USD", [i for i, _, _ in CONTRACT_ROWS], Decimal(FUND_BALANCE), cadence_s=CADENCE_S)
    pool.history = market.make_history(pool.balance, CADENCE_S)
    venue.pools[FUND] = pool
    return venue


def _px(value: Decimal) -> str:
    return format(value.quantize(Decimal("0.01")), "f")


def ok(method: str, result: dict[str, Any]) -> web.Response:
    return reply({"id": -1, "method": method, "code": 0, "result": result})


def error(method: str, message: str) -> web.Response:
    return reply({"id": -1, "method": method, "code": 40004, "message": message}, status=400)


def int_arg(request: web.Request, name: str) -> int | None:
    value = request.query.get(name)
    return None if value in (None, "") else int(value)


async def get_insurance(request: web.Request) -> web.Response:
    market = market_of(request)
    venue = market.venue(KEY)
    method = "public/get-insurance"
    if request.query.get("instrument_name") != FUND:
        return error(method, "Invalid instrument_name")
    try:
        count = int_arg(request, "count") or 25
        start, end = int_arg(request, "start_ts"), int_arg(request, "end_ts")
    except ValueError:
        return error(method, "Invalid count/start_ts/end_ts")
    if not 1 <= count <= MAX_COUNT:
        return error(method, f"count must be 1..{MAX_COUNT}")
    now = market.now_ms()
    points = [(t, v) for t, v in reversed(venue.pools[FUND].history)
              if t <= now and (start is None or t >= start) and (end is None or t <= end)]
    return ok(method, {"instrument_name": FUND,
                       "data": [{"v": format(v, "f"), "t": t} for t, v in points[:count]]})


def ticker_row(market: Market, c: SimContract) -> dict[str, Any]:
    last = market.price(c.base) * (1 + c.basis(Decimal("0.0002")))
    return {"i": c.symbol, "h": _px(last * Decimal("1.02")), "l": _px(last * Decimal("0.98")), "a": _px(last),
            "v": "1109.8", "vv": "14017.33", "c": "0.0132", "b": _px(last * Decimal("0.9999")),
            "k": _px(last * Decimal("1.0001")), "oi": str(c.oi_contracts), "t": market.now_ms()}


async def get_tickers(request: web.Request) -> web.Response:
    market = market_of(request)
    venue = market.venue(KEY)
    instrument = request.query.get("instrument_name")
    rows = [ticker_row(market, c) for c in venue.contracts.values() if instrument in (None, c.symbol)]
    if instrument in (None, "BTC_USD"):  # a spot pair: no "oi"
        spot = market.price("BTC")
        rows.append({"i": "BTC_USD", "h": _px(spot), "l": _px(spot), "a": _px(spot), "v": "12.5",
                     "vv": "812345.1", "c": "0.0101", "b": _px(spot), "k": _px(spot), "t": market.now_ms()})
    if instrument and not rows:
        return error("public/get-tickers", "Invalid instrument_name")
    return ok("public/get-tickers", {"data": rows})


async def get_valuations(request: web.Request) -> web.Response:
    market = market_of(request)
    venue = market.venue(KEY)
    method = "public/get-valuations"
    contract = venue.contracts.get(request.query.get("instrument_name", ""))
    kind = request.query.get("valuation_type", "")
    if contract is None:
        return error(method, "Invalid instrument_name")
    now = market.now_ms()
    if kind in ("funding_rate", "estimated_funding_rate"):
        value = format(contract.funding_rate, "f")
        ts = now // HOUR_MS * HOUR_MS if kind == "funding_rate" else now  # settled: the hour; estimate: now
    elif kind in ("index_price", "mark_price"):
        value, ts = _px(market.price(contract.base)), now
    else:
        return error(method, "Invalid valuation_type")
    return ok(method, {"data": [{"v": value, "t": ts}], "instrument_name": contract.symbol})


ROUTES: tuple[Route, ...] = (
    Route("GET", "/exchange/v1/public/get-insurance", get_insurance),
    Route("GET", "/exchange/v1/public/get-tickers", get_tickers),
    Route("GET", "/exchange/v1/public/get-valuations", get_valuations),
)
