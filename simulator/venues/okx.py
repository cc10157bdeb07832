"""Simulated OKX v5 public data in OKX's envelope ``{"code": "0", "msg": "", "data": [...]}`` with string
numbers: insurance fund (per instType x instFamily, full history behind ts cursors), instruments, open
interest (current and rubik daily history), mark price, funding rate and funding-rate history.

This module holds what OKX lists (families, pools, quarterly futures, ADL episodes: ``build``) and its
endpoints (query checks with OKX's error codes, ts cursors, the envelope: ``ROUTES``); the rows
themselves, insurance history included, are built in ``simulator.venues.okx_payloads``.
"""

from __future__ import annotations

from calendar import monthrange
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from aiohttp import web

from simulator.market import Market
from simulator.market_state import DAY_MS, HOUR_MS, MINUTE_MS, SimContract, SimFlow, SimPool, SimVenue
from simulator.respond import reply
from simulator.routing import Route, market_of
from simulator.venues.okx_payloads import (
    FUND_TYPES,
    KEY,
    OI_PERIODS_MS,
    fund_records,
    funding_history,
    funding_rate_row,
    instrument_row,
    mark_price_row,
    oi_history,
    oi_row,
    total_usd,
)

SETTLE_OFFSET_MS = 8 * HOUR_MS  # daily settlement ~08:00 UTC
INST_TYPES = ("SWAP", "FUTURES", "MARGIN", "OPTION")
FAMILIES = {  # family -> (base, quote, ctVal, swap OI contracts, OI contracts per futures contract or None)
    "BTC-USDT": ("BTC", "USDT", "0.01", "2850000.5", "310000"),
    "ETH-USDT": ("ETH", "USDT", "0.1", "1920000", "220000.3"),
    "SOL-USDT": ("SOL", "USDT", "1", "4100000", None),
    "BTC-USD": ("BTC", "USD", "100", "5200000", "1300000"),
    "ETH-USD": ("ETH", "USD", "10", "6100000", "950000"),
}
POOLS = {  # pool id -> balance in the pool's currency (USDT for USDT-margined, the coin for coin-margined)
    "SWAP:BTC-USDT": "412005318.41276", "SWAP:ETH-USDT": "151200877.0931", "SWAP:SOL-USDT": "30412555.5",
    "SWAP:BTC-USD": "3012.55891", "SWAP:ETH-USD": "21870.4412",
    "FUTURES:BTC-USDT": "20110452.77", "FUTURES:ETH-USDT": "8233190.12",
    "FUTURES:BTC-USD": "905.1133", "FUTURES:ETH-USD": "6120.987",
}
ADL_EPISODES = [  # pool id, days before the newest snapshot, hour UTC of the start, hours until the end, adlType
    ("SWAP:ETH-USD", 3, 13, 2, "rate_adl_start"),
    ("SWAP:BTC-USD", 41, 2, 3, "bal_adl_start"),
]


def _last_friday(year: int, month: int) -> date:
    last = date(year, month, monthrange(year, month)[1])
    return last - timedelta(days=(last.weekday() - 4) % 7)


def quarterly_expiries(now_ms: int, count: int = 2) -> list[date]:
    """The next ``count`` quarterly expiries (last Friday of Mar/Jun/Sep/Dec, 08:00 UTC) after now."""
    today = datetime.fromtimestamp(now_ms / 1000, UTC).date()
    found: list[date] = []
    year, month = today.year, today.month
    while len(found) < count:
        if month % 3 == 0:
            expiry = _last_friday(year, month)
            if expiry > today:
                found.append(expiry)
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return found


def _settle_history(market: Market, balance: Decimal) -> list[tuple[int, Decimal]]:
    """Daily points at 08:00 UTC ending at the newest 08:00 not after the simulated now."""
    points = market.make_history(balance, 86_400)
    shift = SETTLE_OFFSET_MS if market.start_ms % DAY_MS >= SETTLE_OFFSET_MS else SETTLE_OFFSET_MS - DAY_MS
    return [(ts + shift, value) for ts, value in points]


def build(market: Market) -> SimVenue:
    venue = SimVenue(KEY)
    expiries = quarterly_expiries(market.start_ms)
    for family, (base, quote, ct_val, swap_oi, futures_oi) in FAMILIES.items():
        inverse = quote == "USD"
        settle = base if inverse else quote
        common: dict[str, Any] = {"family": family, "ct_val": ct_val, "list_time": market.start_ms - 900 * DAY_MS}
        venue.contracts[f"{family}-SWAP"] = SimContract(
            f"{family}-SWAP", base, quote, settle, Decimal(ct_val), inverse, Decimal(swap_oi),
            extra={**common, "inst_type": "SWAP", "basis": Decimal("0.0003")})
        if futures_oi is None:
            continue
        for index, expiry in enumerate(expiries):
            inst_id = f"{family}-{expiry:%y%m%d}"
            exp_ms = int(datetime(expiry.year, expiry.month, expiry.day, 8, tzinfo=UTC).timestamp() * 1000)
            venue.contracts[inst_id] = SimContract(
                inst_id, base, quote, settle, Decimal(ct_val), inverse, Decimal(futures_oi) / (index + 1),
                extra={**common, "inst_type": "FUTURES", "exp_time": exp_ms, "alias": ("quarter", "next_quarter")[index],
                       "basis": Decimal("0.004") * (index + 1)})
    for pool_id, balance in POOLS.items():
        inst_type, family = pool_id.split(":")
        base, quote = FAMILIES[family][:2]
        members = [c.symbol for c in venue.contracts.values()
                   if c.extra["family"] == family and c.extra["inst_type"] == inst_type]
        pool = SimPool(pool_id, base if quote == "USD" else quote, members, Decimal(balance), cadence_s=86_400,
                       extra={"inst_type": inst_type, "family": family})
        pool.history = _settle_history(market, pool.balance)
        venue.pools[pool_id] = pool
    for pool_id, days_back, hour, hours, adl_type in ADL_EPISODES:
        pool = venue.pools[pool_id]
        day_index = len(pool.history) - 1 - days_back
        day_ts, day_balance = pool.history[day_index]
        peak_ts, peak = max(pool.history[: day_index + 1], key=lambda point: point[1])
        start = day_ts - SETTLE_OFFSET_MS + hour * HOUR_MS + 7 * MINUTE_MS
        for ts, kind in ((start, adl_type), (start + hours * HOUR_MS, "adl_end")):
            venue.flows.append(SimFlow(pool_id, pool.asset, ts, "adl", Decimal(0), day_balance,
                                       extra={"adlType": kind, "maxBal": peak, "maxBalTs": peak_ts}))
    return venue


def okx_reply(data: list[Any]) -> web.Response:
    return reply({"code": "0", "data": data, "msg": ""})


def okx_error(code: str, msg: str, status: int = 400) -> web.Response:
    return reply({"code": code, "data": [], "msg": msg}, status=status)


def _cursor_page(rows: list[dict[str, str]], field: str, query: Any, max_limit: int) -> list[dict[str, str]] | str:
    """OKX ts cursors on newest-first rows: ``after`` = older than ts, ``before`` = newer than ts, then the
    first ``limit`` (so ``before`` alone returns the newest rows). A string is an error message."""
    try:
        limit = int(query.get("limit") or 100)
        after = int(query["after"]) if query.get("after") else None
        before = int(query["before"]) if query.get("before") else None
    except ValueError:
        return "Parameter limit/after/before error"
    if not 1 <= limit <= max_limit:
        return "Parameter limit error"
    selected = [r for r in rows if (after is None or int(r[field]) < after) and (before is None or int(r[field]) > before)]
    return selected[:limit]


def contracts_of(venue: SimVenue, query: Any) -> list[SimContract] | web.Response:
    inst_type = query.get("instType")
    if inst_type not in INST_TYPES:
        return okx_error("51000", "Parameter instType error")
    family = query.get("instFamily") or query.get("uly")
    inst_id = query.get("instId")
    return [c for c in venue.contracts.values()
            if c.extra["inst_type"] == inst_type and (not family or c.extra["family"] == family)
            and (not inst_id or c.symbol == inst_id)]


async def insurance_fund(request: web.Request) -> web.Response:
    market = market_of(request)
    venue = market.venue(KEY)
    query = request.query
    inst_type = query.get("instType")
    if inst_type not in INST_TYPES:
        return okx_error("51000", "Parameter instType error")
    family = query.get("instFamily") or query.get("uly")
    if not family:
        return okx_error("50014", "Parameter instFamily can not be empty")
    pool = venue.pools.get(f"{inst_type}:{family}")
    if pool is None:
        return okx_error("51000", "Parameter instFamily error")
    kind = query.get("type")
    if kind and kind not in FUND_TYPES:
        return okx_error("51000", "Parameter type error")
    rows = [r for r in fund_records(market, pool) if not kind or r["type"] == kind]
    page = _cursor_page(rows, "ts", query, 100)
    if isinstance(page, str):
        return okx_error("51000", page)
    return okx_reply([{"details": page, "instFamily": family, "instType": inst_type,
                       "total": str(total_usd(market))}])


async def instruments(request: web.Request) -> web.Response:
    venue = market_of(request).venue(KEY)
    selected = contracts_of(venue, request.query)
    if isinstance(selected, web.Response):
        return selected
    return okx_reply([instrument_row(c) for c in selected])


async def open_interest(request: web.Request) -> web.Response:
    market = market_of(request)
    venue = market.venue(KEY)
    selected = contracts_of(venue, request.query)
    if isinstance(selected, web.Response):
        return selected
    return okx_reply([oi_row(market, c) for c in selected])


async def mark_price_handler(request: web.Request) -> web.Response:
    market = market_of(request)
    venue = market.venue(KEY)
    selected = contracts_of(venue, request.query)
    if isinstance(selected, web.Response):
        return selected
    now = market.now_ms()
    return okx_reply([mark_price_row(market, c, now) for c in selected])


def swap_of(venue: SimVenue, request: web.Request) -> SimContract | web.Response:
    inst_id = request.query.get("instId")
    if not inst_id:
        return okx_error("50014", "Parameter instId can not be empty")
    contract = venue.contracts.get(inst_id)
    if contract is None or contract.extra["inst_type"] != "SWAP":
        return okx_error("51001", "Instrument ID does not exist")
    return contract


async def funding_rate(request: web.Request) -> web.Response:
    market = market_of(request)
    venue = market.venue(KEY)
    contract = swap_of(venue, request)
    if isinstance(contract, web.Response):
        return contract
    return okx_reply([funding_rate_row(market, contract)])


async def funding_rate_history(request: web.Request) -> web.Response:
    market = market_of(request)
    venue = market.venue(KEY)
    contract = swap_of(venue, request)
    if isinstance(contract, web.Response):
        return contract
    page = _cursor_page(funding_history(market, contract), "fundingTime", request.query, 400)
    if isinstance(page, str):
        return okx_error("51000", page)
    return okx_reply(page)


async def open_interest_history(request: web.Request) -> web.Response:
    market = market_of(request)
    venue = market.venue(KEY)
    query = request.query
    contract = venue.contracts.get(query.get("instId", ""))
    if contract is None:
        return okx_error("51001", "Instrument ID does not exist")
    period = query.get("period") or "5m"
    if period not in OI_PERIODS_MS:  # the simulator keeps daily bars only
        return okx_error("51000", "Parameter period error")
    try:
        limit = int(query.get("limit") or 100)
        end = int(query["end"]) if query.get("end") else None
        begin = int(query["begin"]) if query.get("begin") else None
    except ValueError:
        return okx_error("51000", "Parameter begin/end/limit error")
    if not 1 <= limit <= 100:
        return okx_error("51000", "Parameter limit error")
    rows = [r for r in oi_history(market, contract, period)
            if (end is None or int(r[0]) < end) and (begin is None or int(r[0]) > begin)]
    return okx_reply(rows[:limit])


ROUTES: tuple[Route, ...] = (
    Route("GET", "/api/v5/public/insurance-fund", insurance_fund),
    Route("GET", "/api/v5/rubik/stat/contracts/open-interest-history", open_interest_history),
    Route("GET", "/api/v5/public/instruments", instruments),
    Route("GET", "/api/v5/public/open-interest", open_interest),
    Route("GET", "/api/v5/public/mark-price", mark_price_handler),
    Route("GET", "/api/v5/public/funding-rate", funding_rate),
    Route("GET", "/api/v5/public/funding-rate-history", funding_rate_history),
)
