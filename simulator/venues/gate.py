"""Simulated Gate futures (API v4): /futures/{settle}/insurance (latest N ledger rows, ``t`` in seconds),
contract_stats (5-minute OI + liquidation buckets), tickers and contracts, adl_risk_states (market-level ADL
state per contract), for the usdt and btc books."""

from __future__ import annotations

from decimal import Decimal

from aiohttp import web

from simulator.market import Market
from simulator.market_state import HOUR_MS, SimContract, SimPool, SimVenue
from simulator.respond import reply
from simulator.routing import Route, market_of

KEY = "gate"
BUCKET_MS = 300_000
CONTRACT_ROWS = [  # name, base, settle, quanto multiplier (base per contract; inverse: 1 USD), OI contracts
    ("BTC_USDT", "BTC", "usdt", "0.0001", "812345678"),
    ("ETH_USDT", "ETH", "usdt", "0.01", "45123456"),
    ("SOL_USDT", "SOL", "usdt", "1", "3210987"),
    ("BTC_USD", "BTC", "btc", "1", "98765432"),
]
ADL_STATE = {"low": "normal", "medium": "warning", "high": "adl_risk"}  # model risk -> Gate's state
POOLS = {"usdt": ("USDT", "61234567.8912"), "btc": ("BTC", "412.34567891")}  # settle -> (asset, balance)


def build(market: Market) -> SimVenue:
    venue = SimVenue(KEY)
    for name, base, settle, multiplier, oi in CONTRACT_ROWS:
        inverse = settle == "btc"
        venue.contracts[name] = SimContract(
            name, base, "USD" if inverse else "USDT", settle.upper(), Decimal(multiplier), inverse, Decimal(oi),
            funding_rate=Decimal("0.000125") if inverse else Decimal("0.0001"), extra={"settle": settle},
        )
    for settle, (asset, balance) in POOLS.items():
        symbols = [c.symbol for c in venue.contracts.values() if c.extra["settle"] == settle]
        pool = SimPool(f"futures:{settle}", asset, symbols, Decimal(balance), cadence_s=86_400,
                       extra={"settle": settle})
        pool.history = market.make_history(pool.balance, pool.cadence_s)
        venue.pools[pool.pool_id] = pool
    return venue


def _error(label: str, message: str, status: int = 400) -> web.Response:
    return reply({"label": label, "message": message}, status=status)


def _fmt(value: Decimal) -> str:
    return format(value.normalize(), "f")


def book(venue: SimVenue, request: web.Request) -> str | None:
    settle = request.match_info["settle"]
    return settle if f"futures:{settle}" in venue.pools else None


def contracts_of(venue: SimVenue, settle: str) -> list[SimContract]:
    return [c for c in venue.contracts.values() if c.extra["settle"] == settle]


def mark(market: Market, contract: SimContract) -> Decimal:
    return market.price(contract.base) * (1 + contract.basis(Decimal("0.0002")))


def next_apply_s(market: Market, contract: SimContract) -> int:
    interval = contract.funding_interval_h * HOUR_MS
    return (market.now_ms() // interval + 1) * interval // 1000


async def insurance(request: web.Request) -> web.Response:
    market = market_of(request)
    venue = market.venue(KEY)
    settle = book(venue, request)
    if settle is None:
        return _error("INVALID_PARAM_VALUE", "invalid settle currency")
    try:
        limit = int(request.query.get("limit", "100"))
    except ValueError:
        return _error("INVALID_PARAM_VALUE", "limit must be an integer")
    if not 1 <= limit <= 1000:
        return _error("INVALID_PARAM_VALUE", "limit must be between 1 and 1000")
    pool = venue.pools[f"futures:{settle}"]
    published = [point for point in pool.history if point[0] <= market.now_ms()]
    rows = [{"t": ts // 1000, "b": _fmt(balance)} for ts, balance in reversed(published[-limit:])]
    return reply(rows)


async def contract_stats(request: web.Request) -> web.Response:
    """The current 5-minute bucket from live state; older buckets (``limit`` > 1) repeat the current OI
    (the market keeps no OI history) with their own liquidation totals."""
    market = market_of(request)
    venue = market.venue(KEY)
    settle = book(venue, request)
    contract = venue.contracts.get(request.query.get("contract", ""))
    if settle is None or contract is None or contract.extra["settle"] != settle:
        return _error("CONTRACT_NOT_FOUND", "contract not found")
    if request.query.get("interval", "5m") != "5m":
        return _error("INVALID_PARAM_VALUE", "only interval=5m is simulated")
    limit = min(max(int(request.query.get("limit", "30")), 1), 100)
    price = mark(market, contract)
    current = market.now_ms() // BUCKET_MS * BUCKET_MS
    rows = []
    for start in range(current - (limit - 1) * BUCKET_MS, current + 1, BUCKET_MS):
        liqs = [q for q in venue.liquidations if q.symbol == contract.symbol
                and start <= q.ts_ms < start + BUCKET_MS]
        side: dict[str, dict[str, Decimal]] = {"long": {}, "short": {}}
        for position in ("long", "short"):
            picked = [q for q in liqs if q.position_side == position]
            size = sum((q.qty_contracts for q in picked), Decimal(0))
            if contract.inverse:  # 1 USD per contract: base = USD / price
                usd = size * contract.contract_size
                amount = sum((q.qty_contracts * contract.contract_size / q.fill_price for q in picked),
                             Decimal(0))
            else:
                amount = size * contract.contract_size
                usd = sum((q.qty_contracts * contract.contract_size * q.fill_price for q in picked), Decimal(0))
            side[position] = {"size": size, "amount": amount, "usd": usd}
        rows.append({
            "time": start // 1000, "lsr_taker": Decimal("1.02"), "lsr_account": Decimal("0.97"),
            "long_liq_size": side["long"]["size"], "short_liq_size": side["short"]["size"],
            "open_interest": contract.oi_contracts,
            "short_liq_usd": side["short"]["usd"], "mark_price": f"{price:.2f}", "top_lsr_size": Decimal("1.01"),
            "short_liq_amount": side["short"]["amount"], "long_liq_amount": side["long"]["amount"],
            "open_interest_usd": contract.oi_usd(price).quantize(Decimal("0.0001")),
            "top_lsr_account": Decimal("1.1"), "long_liq_usd": side["long"]["usd"],
        })
    return reply(rows)


async def tickers(request: web.Request) -> web.Response:
    market = market_of(request)
    venue = market.venue(KEY)
    settle = book(venue, request)
    if settle is None:
        return _error("INVALID_PARAM_VALUE", "invalid settle currency")
    wanted = request.query.get("contract")
    rows = []
    for c in contracts_of(venue, settle):
        if wanted and c.symbol != wanted:
            continue
        index = market.price(c.base)
        rows.append({
            "contract": c.symbol, "last": f"{index:.2f}", "low_24h": f"{index * Decimal('0.97'):.2f}",
            "high_24h": f"{index * Decimal('1.03'):.2f}", "change_percentage": "0.52",
            "total_size": _fmt(c.oi_contracts), "volume_24h": "1000000", "volume_24h_btc": "12.5",
            "volume_24h_usd": "812345", "volume_24h_base": "12.5", "volume_24h_quote": "812345",
            "volume_24h_settle": "812345", "mark_price": f"{mark(market, c):.2f}",
            "funding_rate": _fmt(c.funding_rate), "funding_rate_indicative": _fmt(c.funding_rate),
            "index_price": f"{index:.2f}", "highest_bid": f"{index:.2f}", "highest_size": "100",
            "lowest_ask": f"{index:.2f}", "lowest_size": "100",
        })
    return reply(rows)


async def contracts(request: web.Request) -> web.Response:
    market = market_of(request)
    venue = market.venue(KEY)
    settle = book(venue, request)
    if settle is None:
        return _error("INVALID_PARAM_VALUE", "invalid settle currency")
    rows = []
    for c in contracts_of(venue, settle):
        index = market.price(c.base)
        rows.append({
            "name": c.symbol, "type": "inverse" if c.inverse else "direct",
            "quanto_multiplier": "0" if c.inverse else _fmt(c.contract_size), "ref_discount_rate": "0",
            "order_price_deviate": "0.5", "maintenance_rate": "0.005", "mark_type": "index",
            "last_price": f"{index:.2f}", "mark_price": f"{mark(market, c):.2f}", "index_price": f"{index:.2f}",
            "funding_rate_indicative": _fmt(c.funding_rate), "mark_price_round": "0.01", "funding_offset": 0,
            "in_delisting": False, "risk_limit_base": "1000000", "interest_rate": "0.0003",
            "order_price_round": "0.1", "order_size_min": 1, "ref_rebate_rate": "0.2",
            "funding_interval": c.funding_interval_h * 3600, "risk_limit_step": "1000000",
            "leverage_min": "1", "leverage_max": "100", "risk_limit_max": "8000000",
            "maker_fee_rate": "-0.00025", "taker_fee_rate": "0.00075", "funding_rate": _fmt(c.funding_rate),
            "order_size_max": 1000000, "funding_next_apply": next_apply_s(market, c), "short_users": 977,
            "config_change_time": 1609899548, "trade_size": 28530850594, "position_size": c.oi_contracts,
            "long_users": 455, "funding_impact_value": "60000", "orders_limit": 50, "trade_id": 10851092,
            "orderbook_id": 2129638396,
        })
    return reply(rows)


async def adl_risk_states(request: web.Request) -> web.Response:
    """Market-level ADL state per contract, from the model's ADL risk (low/medium/high); recomputed
    each minute (``calculated_at_ms``). Shape: Gate's FuturesADLRiskStates (UNCONFIRMED example)."""
    market = market_of(request)
    venue = market.venue(KEY)
    settle = book(venue, request)
    if settle is None:
        return _error("INVALID_PARAM_VALUE", "invalid settle")
    calculated = market.now_ms() // 60_000 * 60_000
    return reply({"settle": settle, "states": {
        c.symbol: {"state": ADL_STATE[c.extra.get("adl_risk", "low")], "calculated_at_ms": calculated}
        for c in contracts_of(venue, settle)}})


ROUTES: tuple[Route, ...] = (
    Route("GET", "/api/v4/futures/{settle}/adl_risk_states", adl_risk_states),
    Route("GET", "/api/v4/futures/{settle}/insurance", insurance),
    Route("GET", "/api/v4/futures/{settle}/contract_stats", contract_stats),
    Route("GET", "/api/v4/futures/{settle}/tickers", tickers),
    Route("GET", "/api/v4/futures/{settle}/contracts", contracts),
)
