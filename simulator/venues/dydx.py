"""Simulated dYdX v4, both path families under one mount: the node's Cosmos bank REST
(``/cosmos/bank/v1beta1/balances/{address}``, Cosmos pagination) and the indexer's
``/v4/perpetualMarkets`` and ``/v4/historicalFunding/{ticker}`` (hourly settled rates, newest first).

Module-account addresses are the two pairs published in the reference (not derived here), so a
collector that derives a wrong address reads an empty account. Isolated market 52 has no funded
account: the node answers an empty balance list, as it does for any unknown account.
"""

from __future__ import annotations

import base64
import random
from datetime import UTC, datetime
from decimal import ROUND_DOWN, Decimal
from typing import Any

from aiohttp import web

from simulator.market import Market
from simulator.market_state import HOUR_MS, SimContract, SimPool, SimVenue
from simulator.respond import reply
from simulator.routing import Route, market_of

KEY = "dydx"
USDC_DENOM = "ibc/8E27BA2D5493AF5636760E354E46004562C46AB7EC0CC4C1CA14E9E20E2545B5"
ADDRESSES = {  # module name -> address (reference §3.10)
    "insurance_fund": "dydx1c7ptc87hkd54e3r7zjy92q29xkq7t79w64slrq",
    "insurance_fund:37": "dydx10mlrxmaquwjwsj59ywp8xttc8rfxn9jfvzswtn",
}
CONTRACT_ROWS = [  # ticker, base, clobPairId, marketType, OI in base, hourly funding
    ("BTC-USD", "BTC", 0, "CROSS", "612.4471", "0.0000081"), ("ETH-USD", "ETH", 1, "CROSS", "15820.113", "0.0000107"),
    ("SOL-USD", "SOL", 5, "CROSS", "118204.7", "-0.0000032"), ("DOGE-USD", "DOGE", 6, "CROSS", "30110000", "0.0000125"),
    ("BNB-USD", "BNB", 37, "ISOLATED", "2210.5", "0.0000225"), ("XRP-USD", "XRP", 52, "ISOLATED", "1480000", "0"),
]
POOLS = [("insurance_fund", "2351447.118203", ["BTC-USD", "ETH-USD", "SOL-USD", "DOGE-USD"]),
         ("insurance_fund:37", "48210.5", ["BNB-USD"])]
OTHER_DENOMS = {  # what else the module accounts hold (sorted before/after USDC by denom)
    "adydx": "1250000000000000000",
    "ibc/0EB98A7C4F3F1A1B5E2E2A8DDB1B3F1C7E1F5D2E0E5E2A1B3C4D5E6F7A8B9C0D": "15",
}
MICRO = Decimal("0.000001")
FUNDING_PAGE_MAX = 100  # rows per historicalFunding answer (the indexer's default limit; its max UNCONFIRMED)
BLOCK_MS = 1_000  # ~1 block per second: effectiveAtHeight is illustrative only
HEIGHT_AT_EPOCH = -1_700_000_000  # so heights near 2026 are in the tens of millions


def build(market: Market) -> SimVenue:
    venue = SimVenue(KEY)
    for ticker, base, clob_id, kind, oi, funding in CONTRACT_ROWS:
        venue.contracts[ticker] = SimContract(
            ticker, base, "USD", "USDC", Decimal(1), False, Decimal(oi), funding_rate=Decimal(funding),
            funding_interval_h=1, extra={"clobPairId": clob_id, "marketType": kind},
        )
    for name, balance, symbols in POOLS:
        pool = SimPool(name, "USDC", symbols, Decimal(balance), cadence_s=3_600,
                       extra={"address": ADDRESSES[name]})
        pool.history = [(t, v.quantize(MICRO)) for t, v in market.make_history(pool.balance, pool.cadence_s)]
        venue.pools[name] = pool
    return venue


def micro_amount(value: Decimal) -> str:
    """USDC -> the integer micro-USDC text the bank module serves."""
    return str(int((value / MICRO).to_integral_value(rounding=ROUND_DOWN)))


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def account_balances(venue: SimVenue, address: str) -> list[dict[str, str]]:
    pool = next((p for p in venue.pools.values() if p.extra["address"] == address), None)
    if pool is None:
        return []  # unknown/empty account: Cosmos lists no zero balances
    rows = [{"denom": USDC_DENOM, "amount": micro_amount(pool.published()[1])}]
    rows += [{"denom": d, "amount": a} for d, a in OTHER_DENOMS.items()]
    return sorted((r for r in rows if r["amount"] != "0"), key=lambda r: r["denom"])


async def balances(request: web.Request) -> web.Response:
    venue = market_of(request).venue(KEY)
    address = request.match_info["address"]
    if not address.startswith("dydx1") or len(address) != 43:
        return reply({"code": 3, "message": f"invalid address: decoding bech32 failed: {address}",
                      "details": []}, status=400)
    rows = account_balances(venue, address)
    try:
        limit = int(request.query.get("pagination.limit", "100"))
    except ValueError:
        return reply({"code": 3, "message": "invalid pagination.limit", "details": []}, status=400)
    start = 0
    key = request.query.get("pagination.key")
    if key:
        after = base64.b64decode(key).decode()
        start = next((i for i, r in enumerate(rows) if r["denom"] >= after), len(rows))
    page = rows[start:start + max(1, limit)]
    rest = rows[start + max(1, limit):]
    return reply({"balances": page,
                  "pagination": {"next_key": _b64(rest[0]["denom"]) if rest else None, "total": str(len(rows))}})


def market_row(market: Market, contract: SimContract) -> dict[str, Any]:
    oracle = market.price(contract.base)
    return {
        "clobPairId": str(contract.extra["clobPairId"]), "ticker": contract.symbol, "status": "ACTIVE",
        "oraclePrice": format(oracle, "f"), "priceChange24H": "0", "volume24H": "1292729.3605",
        "trades24H": 9387, "nextFundingRate": format(contract.funding_rate, "f"),
        "initialMarginFraction": "0.02" if contract.extra["marketType"] == "CROSS" else "0.05",
        "maintenanceMarginFraction": "0.012" if contract.extra["marketType"] == "CROSS" else "0.03",
        "openInterest": str(contract.oi_contracts), "atomicResolution": -10, "quantumConversionExponent": -9,
        "tickSize": "1", "stepSize": "0.0001", "stepBaseQuantums": 1000000, "subticksPerTick": 100000,
        "marketType": contract.extra["marketType"], "openInterestLowerCap": "0", "openInterestUpperCap": "0",
        "baseOpenInterest": str(contract.oi_contracts), "defaultFundingRate1H": "0",
    }


async def perpetual_markets(request: web.Request) -> web.Response:
    market = market_of(request)
    venue = market.venue(KEY)
    ticker = request.query.get("market")
    contracts = list(venue.contracts.values())
    if ticker:
        contracts = [c for c in contracts if c.symbol == ticker]
        if not contracts:
            return reply({"errors": [{"msg": f"{ticker} is not a valid ticker"}]}, status=404)
    limit = request.query.get("limit")
    if limit and limit.isdigit():
        contracts = contracts[: int(limit)]
    return reply({"markets": {c.symbol: market_row(market, c) for c in contracts}})


def funding_stamps(market: Market, before_ms: int | None, limit: int) -> list[int]:
    """The newest ``limit`` hourly settlement times at/before ``before_ms`` within the history window."""
    last = market.now_ms() // HOUR_MS * HOUR_MS
    first = last - (market.history_days * 24 - 1) * HOUR_MS
    newest = last if before_ms is None else min(last, before_ms // HOUR_MS * HOUR_MS)
    return list(range(newest, max(first, newest - (limit - 1) * HOUR_MS) - 1, -HOUR_MS))


async def historical_funding(request: web.Request) -> web.Response:
    """GET /v4/historicalFunding/{ticker}?limit=&effectiveBeforeOrAt= : newest first, at most
    ``FUNDING_PAGE_MAX`` rows, ``{"historicalFunding": [{ticker, rate, price, effectiveAt,
    effectiveAtHeight}]}`` (the indexer's shape)."""
    market = market_of(request)
    venue = market.venue(KEY)
    ticker = request.match_info["ticker"]
    contract = venue.contracts.get(ticker)
    if contract is None:
        return reply({"errors": [{"msg": f"{ticker} is not a valid ticker"}]}, status=404)
    try:
        limit = min(int(request.query.get("limit", str(FUNDING_PAGE_MAX))), FUNDING_PAGE_MAX)
        before = request.query.get("effectiveBeforeOrAt")
        before_ms = int(datetime.fromisoformat(before.replace("Z", "+00:00")).timestamp() * 1000) if before else None
    except ValueError:
        return reply({"errors": [{"msg": "invalid limit or effectiveBeforeOrAt"}]}, status=400)
    return reply({"historicalFunding": [
        {"ticker": ticker, "rate": format(funding_rate_at(market, contract, ts), "f"),
         "price": format(market.price_at(contract.base, ts), "f"),
         "effectiveAt": _iso(ts), "effectiveAtHeight": str(HEIGHT_AT_EPOCH + ts // BLOCK_MS)}
        for ts in funding_stamps(market, before_ms, max(1, limit))]})


def funding_rate_at(market: Market, contract: SimContract, ts: int) -> Decimal:
    """The settled hourly rate of ``contract`` at ``ts``: its current rate plus seeded noise."""
    local = random.Random(f"{market.seed}:{contract.symbol}:{ts}")
    return (contract.funding_rate + Decimal(repr(round(local.gauss(0, 0.000004), 9)))).quantize(Decimal("1e-9"))


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


ROUTES: tuple[Route, ...] = (
    Route("GET", "/cosmos/bank/v1beta1/balances/{address}", balances),
    Route("GET", "/v4/perpetualMarkets", perpetual_markets),
    Route("GET", "/v4/historicalFunding/{ticker}", historical_funding),
)
