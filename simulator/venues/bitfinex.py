"""Simulated Bitfinex derivatives (public REST v2): ``/v2/status/deriv?keys=`` (one array row per USDt
perpetual, each repeating the one shared insurance fund) and ``/v2/status/deriv/{key}/hist`` (the same rows
without KEY, ``start``/``end``/``limit`` ≤ 5,000/``sort``). Errors as Bitfinex writes them: HTTP 500 with
``["error", CODE, "text"]``. The liquidation feeds (WS ``liq:global``, REST ``/v2/liquidations/hist``) are
in ``simulator.stream_venues`` and ``simulator.liquidation_history``.

Fund size: 37,671,589.79 USDt, the INSURANCE_FUND_BALANCE of ccxt's captured tBTCF0:USTF0 status row of
2024-01-26 (ccxt 4.5.90 bitfinex.py, fetch_open_interest_history comment; the tXRPF0:USTF0 row of the same
day shows 37,671,483.04: one shared fund). OI from the same captured rows: tBTCF0:USTF0 5,775.2 contracts
(BTC), tXRPF0:USTF0 2,233,562 (XRP); ETH and SOL are set in proportion. At the model's prices the fund is
about 9 % of the simulated OI, the order the captured figures give (37.7 M vs ~0.25 G of BTC OI then).
``/hist`` rows follow the fund's published history (5-minute points for two days, hourly and then daily
further back, as ``Market.make_history`` thins long series); how densely Bitfinex keeps status history is
UNCONFIRMED."""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import TypeVar

from aiohttp import web

from simulator.market import Market
from simulator.market_state import HOUR_MS, SimContract, SimPool, SimVenue
from simulator.respond import reply
from simulator.routing import Route, market_of

KEY = "bitfinex"
T = TypeVar("T")
SHARED_POOL = "USTF0"
FUND_BALANCE = "37671589.7853521"
FUND_CADENCE_S = 300
CONTRACT_ROWS = [  # key, base, OI (contracts of one base unit), current funding (8 h period)
    ("tBTCF0:USTF0", "BTC", "5775.20348804", "0.00007587"),
    ("tETHF0:USTF0", "ETH", "41234.5678", "0.00005120"),
    ("tSOLF0:USTF0", "SOL", "312345.67", "0.00003410"),
    ("tXRPF0:USTF0", "XRP", "2233562.03115", "0"),
]
HIST_MAX = 5_000
CLAMP_MIN, CLAMP_MAX = Decimal("0.0005"), Decimal("0.0025")


def build(market: Market) -> SimVenue:
    venue = SimVenue(KEY)
    for key, base, oi, rate in CONTRACT_ROWS:
        venue.contracts[key] = SimContract(key, base, "USDT", "USDT", Decimal(1), False, Decimal(oi),
                                           funding_rate=Decimal(rate))
    pool = SimPool(SHARED_POOL, "USDT", [key for key, *_ in CONTRACT_ROWS], Decimal(FUND_BALANCE),
                   cadence_s=FUND_CADENCE_S)
    pool.history = market.make_history(pool.balance, pool.cadence_s)
    venue.pools[SHARED_POOL] = pool
    return venue


def error(code: int, text: str) -> web.Response:
    return reply(["error", code, text], status=500)


@dataclass(frozen=True)
class HistQuery:
    """Bitfinex's v2 ``/hist`` query: ``start``, ``end`` (ms), ``limit``, ``sort`` (1 = oldest first)."""

    start: int
    end: int
    limit: int
    sort: int

    def pick(self, rows: Sequence[T]) -> list[T]:
        """The page of time-ordered ``rows``: the oldest ``limit`` with sort=1, else the newest, newest first."""
        return list(rows[:self.limit]) if self.sort == 1 else list(reversed(rows))[:self.limit]


def hist_query(request: web.Request, now_ms: int, max_limit: int) -> HistQuery | web.Response:
    """The query, or Bitfinex's HTTP 500 ``["error", 10020, …]`` for a non-number or a limit outside 1..max."""
    try:
        query = HistQuery(int(request.query.get("start", "0")), int(request.query.get("end", str(now_ms))),
                          int(request.query.get("limit", "100")), int(request.query.get("sort", "-1")))
    except ValueError:
        return error(10020, "params: invalid")
    if not 1 <= query.limit <= max_limit:
        return error(10020, "limit: invalid")
    return query


def row(market: Market, c: SimContract, ts: int, fund: Decimal, mark: Decimal) -> list[object]:
    """The 23 fields after KEY, as the documented field list orders them."""
    interval = 8 * HOUR_MS
    next_funding = (ts // interval + 1) * interval
    step = (ts % interval) // 60_000
    accrued = (c.funding_rate * Decimal(step) / Decimal(480)).quantize(Decimal("1e-8"))
    return [ts, None, (mark * Decimal("1.0001")).quantize(mark), market.price_at(c.base, ts), None, fund, None,
            next_funding, accrued, step, None, c.funding_rate, None, None, mark, None, None, c.oi_contracts,
            None, None, None, CLAMP_MIN, CLAMP_MAX]


def mark_now(market: Market, c: SimContract) -> Decimal:
    price = market.price(c.base)
    return (price * Decimal("1.0002")).quantize(price)


async def status(request: web.Request) -> web.Response:
    market = market_of(request)
    venue = market.venue(KEY)
    keys = request.query.get("keys", "")
    if not keys:
        return error(10020, "keys: invalid")
    wanted = list(venue.contracts) if keys == "ALL" else keys.split(",")
    now = market.now_ms()
    rows = [[c.symbol, *row(market, c, now, venue.pools[SHARED_POOL].balance, mark_now(market, c))]
            for c in (venue.contracts.get(k) for k in wanted) if c is not None]
    return reply(rows)


async def status_hist(request: web.Request) -> web.Response:
    market = market_of(request)
    venue = market.venue(KEY)
    contract = venue.contracts.get(request.match_info["key"])
    now = market.now_ms()
    query = hist_query(request, now, HIST_MAX)
    if isinstance(query, web.Response):
        return query
    if contract is None:
        return reply([])
    points = venue.pools[SHARED_POOL].history
    lo = bisect.bisect_left(points, (query.start, Decimal("-Infinity")))
    hi = bisect.bisect_right(points, (min(query.end, now), Decimal("Infinity")))
    rows = []
    for ts, fund in query.pick(points[lo:hi]):
        price = market.price_at(contract.base, ts)
        rows.append(row(market, contract, ts, fund, (price * Decimal("1.0002")).quantize(price)))
    return reply(rows)


ROUTES: tuple[Route, ...] = (
    Route("GET", "/v2/status/deriv", status),
    Route("GET", "/v2/status/deriv/{key}/hist", status_hist),
)
