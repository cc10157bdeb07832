"""Simulated OKX v5 public data in OKX's envelope ``{"code": "0", "msg": "", "data": [...]}`` with string
numbers: insurance fund (per instType x instFamily, full history behind ts cursors), instruments, open
interest (current and rubik daily history), mark price, funding rate and funding-rate history.

Insurance history follows OKX after 2026-06-09: one ``regular_update`` snapshot a day at 08:00 UTC plus
that day's ``liquidation_balance_deposit`` / ``bankruptcy_loss`` / ``platform_revenue`` rows, stamped at
the same 08:00 (ties on purpose: a ts cursor must not lose rows that share a ts). The flows are derived
at request time from consecutive published balances, so ``balance_after`` always chains from one
snapshot to the next whatever the market model appends to ``pool.history``. ADL episodes are events in
``venue.flows`` (flow_type "adl", ``extra`` holds adlType/maxBal/maxBalTs).
"""

from __future__ import annotations

import random
from calendar import monthrange
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from aiohttp import web

from simulator.market import Market
from simulator.market_state import DAY_MS, HOUR_MS, MINUTE_MS, SimContract, SimFlow, SimPool, SimVenue
from simulator.respond import reply
from simulator.routing import Route, market_of

KEY = "okx"
SETTLE_OFFSET_MS = 8 * HOUR_MS  # daily settlement ~08:00 UTC
QUANTUM = Decimal("0.00000001")
FUND_TYPES = ("regular_update", "liquidation_balance_deposit", "bankruptcy_loss", "platform_revenue", "adl")
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


def _row(pool: SimPool, ts: int, kind: str, balance: Decimal, amt: Decimal | None = None,
         extra: dict[str, Any] | None = None) -> dict[str, str]:
    extra = extra or {}
    return {
        "adlType": extra.get("adlType", ""), "amt": "" if amt is None else str(amt), "balance": str(balance),
        "ccy": pool.asset, "maxBal": str(extra.get("maxBal", "")), "maxBalTs": str(extra.get("maxBalTs", "")),
        "ts": str(ts), "type": kind,
    }


def _daily_flows(seed: int, pool: SimPool, prev: Decimal, ts: int, balance: Decimal) -> list[dict[str, str]]:
    """Split one day's balance change into deposit (>= 0), loss (<= 0) and revenue (>= 0) so that the
    running ``balance`` after each row chains from ``prev`` to ``balance`` exactly."""
    rng = random.Random(f"{seed}:{pool.pool_id}:{ts}")
    diff = balance - prev
    if diff >= 0:
        revenue = (diff * Decimal(rng.uniform(0.05, 0.3))).quantize(QUANTUM)
        loss = -(prev * Decimal(rng.uniform(0.0002, 0.002))).quantize(QUANTUM) if rng.random() < 0.4 else Decimal(0)
        deposit = diff - revenue - loss
    else:
        deposit = (-diff * Decimal(rng.uniform(0.05, 0.5))).quantize(QUANTUM)
        revenue = (prev * Decimal(rng.uniform(0.00001, 0.0001))).quantize(QUANTUM)
        loss = diff - deposit - revenue
    rows = []
    running = prev
    for kind, amount in (("liquidation_balance_deposit", deposit), ("bankruptcy_loss", loss),
                         ("platform_revenue", revenue)):
        if amount == 0:
            continue
        running += amount
        rows.append(_row(pool, ts, kind, running, amount))
    return rows


def fund_records(market: Market, pool: SimPool) -> list[dict[str, str]]:
    """Everything the insurance-fund endpoint holds for ``pool``, newest first (ties keep the order in
    which they happened, latest first: the snapshot, then revenue, loss, deposit)."""
    timeline: list[tuple[int, int, dict[str, str]]] = []
    history = pool.history
    for index, (ts, balance) in enumerate(history):
        if index:
            for row in _daily_flows(market.seed, pool, history[index - 1][1], ts, balance):
                timeline.append((ts, len(timeline), row))
        timeline.append((ts, len(timeline), _row(pool, ts, "regular_update", balance)))
    for flow in market.venue(KEY).flows:
        if flow.pool_id == pool.pool_id and flow.ts_ms <= market.now_ms():
            amount = None if flow.flow_type == "adl" else flow.amount
            timeline.append((flow.ts_ms, len(timeline), _row(pool, flow.ts_ms, flow.flow_type, flow.balance_after,
                                                             amount, flow.extra)))
    timeline.sort(key=lambda item: (item[0], item[1]), reverse=True)
    return [row for _, _, row in timeline]


def total_usd(market: Market) -> Decimal:
    """OKX's ``total`` (USD, platform-wide): every pool's published balance at the current price."""
    venue = market.venue(KEY)
    total = sum((p.published()[1] * market.price(p.asset) for p in venue.pools.values()), Decimal(0))
    return total.quantize(Decimal("0.0001"))


def mark_price(market: Market, contract: SimContract) -> Decimal:
    return (market.price(contract.base) * (1 + contract.basis(Decimal(0)))).quantize(Decimal("0.0001"))


def oi_row(market: Market, contract: SimContract) -> dict[str, str]:
    price = market.price(contract.base)
    return {
        "instType": contract.extra["inst_type"], "instId": contract.symbol, "oi": str(contract.oi_contracts),
        "oiCcy": str(contract.oi_base(price).quantize(QUANTUM)), "oiUsd": str(contract.oi_usd(price).quantize(Decimal("0.01"))),
        "ts": str(market.now_ms()),
    }


def funding_times(now_ms: int, contract: SimContract) -> tuple[int, int]:
    """(fundingTime, nextFundingTime): the next settlement and the one after it."""
    interval = contract.funding_interval_h * HOUR_MS
    upcoming = (now_ms // interval + 1) * interval
    return upcoming, upcoming + interval


def funding_history(market: Market, contract: SimContract) -> list[dict[str, str]]:
    """Settled funding for the last ``history_days``, newest first (rates vary around the current one)."""
    interval = contract.funding_interval_h * HOUR_MS
    last = (market.now_ms() // interval) * interval
    rows = []
    for step in range(market.history_days * 24 // contract.funding_interval_h):
        ts = last - step * interval
        rng = random.Random(f"{market.seed}:{contract.symbol}:{ts}")
        rate = (contract.funding_rate * Decimal(repr(1 + rng.gauss(0, 0.6)))).quantize(Decimal("1e-16"))
        realized = (rate * Decimal(repr(1 - abs(rng.gauss(0, 0.0001))))).quantize(Decimal("1e-16"))
        rows.append({"formulaType": "noRate", "fundingRate": str(rate), "fundingTime": str(ts),
                     "instId": contract.symbol, "instType": "SWAP", "method": "current_period",
                     "realizedRate": str(realized)})
    return rows


OI_PERIODS_MS = {"1Dutc": (DAY_MS, 0), "1D": (DAY_MS, -8 * HOUR_MS)}  # bar length, offset (1D = Hong Kong days)


def oi_history(market: Market, contract: SimContract, period: str) -> list[list[str]]:
    """Daily OI bars ``[ts, oi, oiCcy, oiUsd]`` for the last ``history_days``, newest first; the newest bar
    (still open) carries the current OI, older ones wander around it."""
    length, offset = OI_PERIODS_MS[period]
    newest = (market.now_ms() - offset) // length * length + offset
    price = market.price(contract.base)
    rows = []
    for step in range(market.history_days):
        ts = newest - step * length
        rng = random.Random(f"{market.seed}:{contract.symbol}:oi:{ts}")
        factor = Decimal(1) if step == 0 else Decimal(repr(1 + rng.gauss(0, 0.05))) * (1 - Decimal(step) / 400)
        scaled = SimContract(contract.symbol, contract.base, contract.quote, contract.settle, contract.contract_size,
                             contract.inverse, (contract.oi_contracts * factor).quantize(Decimal("0.01")))
        rows.append([str(ts), str(scaled.oi_contracts), str(scaled.oi_base(price).quantize(QUANTUM)),
                     str(scaled.oi_usd(price).quantize(Decimal("0.01")))])
    return rows


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
    rows = []
    for c in selected:
        futures = c.extra["inst_type"] == "FUTURES"
        rows.append({
            "alias": c.extra.get("alias", ""), "auctionEndTime": "", "baseCcy": "", "category": "1",
            "contTdSwTime": "", "ctMult": "1", "ctType": "inverse" if c.inverse else "linear",
            "ctVal": c.extra["ct_val"], "ctValCcy": c.quote if c.inverse else c.base,
            "expTime": str(c.extra["exp_time"]) if futures else "", "futureSettlement": False,
            "instFamily": c.extra["family"], "instId": c.symbol, "instType": c.extra["inst_type"],
            "lever": "100" if c.base == "BTC" else "75", "listTime": str(c.extra["list_time"]),
            "lotSz": "0.1" if not c.inverse else "1", "maxIcebergSz": "100000000", "maxLmtAmt": "20000000",
            "maxLmtSz": "100000000", "maxMktAmt": "", "maxMktSz": "12000", "maxStopSz": "12000",
            "maxTriggerSz": "100000000", "maxTwapSz": "100000000", "minSz": "0.1" if not c.inverse else "1",
            "openType": "", "optType": "", "quoteCcy": "", "ruleType": "normal", "settleCcy": c.settle,
            "state": "live", "stk": "", "tickSz": "0.1", "tradeQuoteCcyList": [], "uly": c.extra["family"],
        })
    return okx_reply(rows)


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
    now = str(market.now_ms())
    return okx_reply([{"instId": c.symbol, "instType": c.extra["inst_type"], "markPx": str(mark_price(market, c)),
                       "ts": now} for c in selected])


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
    now = market.now_ms()
    funding_time, next_time = funding_times(now, contract)
    rate = contract.funding_rate
    return okx_reply([{
        "formulaType": "noRate", "fundingRate": str(rate), "fundingTime": str(funding_time), "impactValue": "",
        "instId": contract.symbol, "instType": "SWAP", "interestRate": "", "maxFundingRate": "0.00375",
        "method": "current_period", "minFundingRate": "-0.00375", "nextFundingRate": "",
        "nextFundingTime": str(next_time), "premium": str(rate * 5), "settFundingRate": str(rate),
        "settState": "settled", "ts": str(now),
    }])


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
