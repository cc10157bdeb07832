"""Simulated Hyperliquid: ``POST /info`` with ``type`` clearinghouseState (vault account value),
vaultDetails (portfolio history windows), metaAndAssetCtxs (OI, hourly funding, mark/oracle prices)."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from aiohttp import web

from simulator.inventory import InventoryPlan, holdings
from simulator.market import Market
from simulator.market_state import DAY_MS, HOUR_MS, MINUTE_MS, SimContract, SimPool, SimVenue
from simulator.respond import reply
from simulator.routing import Route, market_of

KEY = "hyperliquid"
HLP_VAULT = "0xdfc24b077bc1425ad1dea75bcb6f8158e10df303"
HLP_LIQUIDATOR = "0x2e3d94f0562703b25c83308a05046ddaf9a8dd14"
HLP_LEADER = "0x677d831aef5328190852e24f13c46cac05f984e7"
CONTRACT_ROWS = [  # coin, szDecimals, maxLeverage, OI in base
    ("BTC", 5, 40, "23145.77612"), ("ETH", 4, 25, "512308.4471"), ("SOL", 2, 20, "3120554.12"),
    ("XRP", 0, 20, "41205377"), ("DOGE", 0, 10, "610332118"), ("BNB", 3, 10, "20444.812"),
]
POOLS = [  # pool id, address, name, balance (USDC)
    ("HLP", HLP_VAULT, "Hyperliquidity Provider (HLP)", "372450118.52314067"),
    ("HLP Liquidator", HLP_LIQUIDATOR, "HLP Liquidator", "12804331.07201144"),
]
CADENCE_S = 900  # account value points every 15 minutes
# the HLP Liquidator's inventory: a standing SOL short; the takeover is Mar 2025's ~$286 M ETH long
# (/work/shared/incidents.md #8), played when the scenario hits Hyperliquid or the whole market
INVENTORY: dict[str, InventoryPlan] = {
    "HLP Liquidator": InventoryPlan(standing=(("SOL", -1_450_000.0, 1.0),), takeover=("ETH", 286_000_000.0)),
}
# window -> (span, sampling step) of the published accountValueHistory
WINDOWS: dict[str, tuple[int, int]] = {
    "day": (DAY_MS, 15 * MINUTE_MS), "week": (7 * DAY_MS, HOUR_MS), "month": (30 * DAY_MS, 6 * HOUR_MS),
    "allTime": (10_000 * DAY_MS, DAY_MS),
}


def build(market: Market) -> SimVenue:
    venue = SimVenue(KEY)
    for coin, sz_decimals, leverage, oi in CONTRACT_ROWS:
        venue.contracts[coin] = SimContract(
            coin, coin, "USD", "USDC", Decimal(1), False, Decimal(oi), funding_rate=Decimal("0.0000125"),
            funding_interval_h=1, extra={"szDecimals": sz_decimals, "maxLeverage": leverage},
        )
    for pool_id, address, name, balance in POOLS:
        pool = SimPool(pool_id, "USDC", [], Decimal(balance), cadence_s=CADENCE_S,
                       extra={"address": address, "name": name})
        pool.history = market.make_history(pool.balance, pool.cadence_s, drift=0.00002, vol=0.0008)
        venue.pools[pool_id] = pool
    return venue


def _px(value: Decimal) -> str:
    """Prices as Hyperliquid writes them: plain decimal text, no trailing zeros."""
    return format(value.quantize(Decimal("0.000001")).normalize(), "f")


def window_points(history: list[tuple[int, Decimal]], span_ms: int, step_ms: int) -> list[tuple[int, Decimal]]:
    """The published points of one window: aligned to ``step_ms``, always ending at the newest point."""
    if not history:
        return []
    newest_ts = history[-1][0]
    points = [(t, v) for t, v in history if t >= newest_ts - span_ms and t % step_ms == 0]
    if not points or points[-1][0] != newest_ts:
        points.append(history[-1])
    return points


def pool_by_address(venue: SimVenue, address: str) -> SimPool | None:
    return next((p for p in venue.pools.values() if p.extra["address"] == address.lower()), None)


def asset_positions(market: Market, pool: SimPool | None) -> tuple[list[Any], Decimal, Decimal]:
    """The vault's positions as Hyperliquid writes them, their total value and unrealised PnL."""
    plan = INVENTORY.get(pool.pool_id) if pool else None
    rows, total, pnl = [], Decimal(0), Decimal(0)
    for h in holdings(market, KEY, plan) if plan else []:
        value, upnl = h.notional(market), h.unrealised(market)
        total, pnl = total + value, pnl + upnl
        rows.append({"position": {
            "coin": h.coin, "cumFunding": {"allTime": "0.0", "sinceChange": "0.0", "sinceOpen": "0.0"},
            "entryPx": _px(h.entry), "leverage": {"type": "cross", "value": 5}, "liquidationPx": None,
            "marginUsed": _px(value / 5), "maxLeverage": 25, "positionValue": _px(value),
            "returnOnEquity": _px(upnl / (value / 5)) if value else "0.0", "szi": format(h.size, "f"),
            "unrealizedPnl": _px(upnl)}, "type": "oneWay"})
    return rows, total, pnl


def clearinghouse_state(market: Market, venue: SimVenue, user: str) -> dict[str, Any]:
    pool = pool_by_address(venue, user)
    positions, notional, _ = asset_positions(market, pool)
    # the model's vault value stands for the account value (it already absorbs the vault's liquidation
    # results): the positions' unrealised PnL is served per position, not added a second time
    value = pool.published()[1] if pool else Decimal(0)
    summary = {"accountValue": str(value), "totalMarginUsed": _px(notional / 5), "totalNtlPos": _px(notional),
               "totalRawUsd": str(value)}
    return {"marginSummary": summary, "crossMarginSummary": dict(summary), "crossMaintenanceMarginUsed": "0.0",
            "withdrawable": str(value), "assetPositions": positions, "time": market.now_ms()}


def vault_details(venue: SimVenue, address: str) -> dict[str, Any] | None:
    pool = pool_by_address(venue, address)
    if pool is None:
        return None
    portfolio: list[Any] = []
    for window, (span, step) in WINDOWS.items():
        points = window_points(pool.history, span, step)
        first = points[0][1] if points else Decimal(0)
        data = {"accountValueHistory": [[t, str(v)] for t, v in points],
                "pnlHistory": [[t, str(v - first)] for t, v in points], "vlm": "0.0"}
        portfolio.append([window, data])
        # the perp-only view of the same window (slightly smaller: no spot balances)
        portfolio.append([f"perp{window[0].upper()}{window[1:]}", {
            "accountValueHistory": [[t, str((v * Decimal("0.98")).quantize(Decimal("0.000001")))]
                                    for t, v in points],
            "pnlHistory": [[t, "0.0"] for t, _ in points], "vlm": "0.0"}])
    if pool.pool_id == "HLP":
        relationship = {"type": "parent", "data": {"childAddresses": [HLP_LIQUIDATOR]}}
    else:
        relationship = {"type": "child", "data": {"parentAddress": HLP_VAULT}}
    return {
        "name": pool.extra["name"], "vaultAddress": pool.extra["address"], "leader": HLP_LEADER,
        "description": "This community-owned vault provides liquidity to Hyperliquid through multiple "
                       "market making strategies, performs liquidations, and accrues platform fees.",
        "portfolio": portfolio, "apr": 0.12, "followerState": None, "leaderFraction": 0.0008,
        "leaderCommission": 0, "followers": [], "maxDistributable": float(pool.published()[1]) * 0.25,
        "maxWithdrawable": 0.0, "isClosed": False, "relationship": relationship, "allowDeposits": True,
        "alwaysCloseOnWithdraw": False,
    }


def meta_and_asset_ctxs(market: Market, venue: SimVenue) -> list[Any]:
    universe, ctxs = [], []
    for contract in venue.contracts.values():
        universe.append({"name": contract.symbol, "szDecimals": contract.extra["szDecimals"],
                         "maxLeverage": contract.extra["maxLeverage"]})
        oracle = market.price(contract.base)
        mark = oracle * (1 + contract.basis(Decimal("0.0002")))
        ctxs.append({
            "dayNtlVlm": "1169046.29406", "funding": format(contract.funding_rate, "f"),
            "impactPxs": [_px(mark * Decimal("0.9998")), _px(mark * Decimal("1.0002"))],
            "markPx": _px(mark), "midPx": _px(mark), "openInterest": str(contract.oi_contracts),
            "oraclePx": _px(oracle), "premium": "0.00031774", "prevDayPx": _px(oracle * Decimal("0.99")),
        })
    meta = {"universe": universe, "marginTables": [[50, {"description": "", "marginTiers": [
        {"lowerBound": "0.0", "maxLeverage": 50}]}]], "collateralToken": 0}
    return [meta, ctxs]


async def info(request: web.Request) -> web.Response:
    market = market_of(request)
    venue = market.venue(KEY)
    try:
        body = json.loads(await request.text())
    except json.JSONDecodeError:
        body = None
    kind = body.get("type") if isinstance(body, dict) else None
    if kind == "clearinghouseState" and isinstance(body.get("user"), str):
        return reply(clearinghouse_state(market, venue, body["user"]))
    if kind == "vaultDetails" and isinstance(body.get("vaultAddress"), str):
        details = vault_details(venue, body["vaultAddress"])
        return reply(details)  # null for an unknown vault, as the venue answers
    if kind == "metaAndAssetCtxs":
        return reply(meta_and_asset_ctxs(market, venue))
    return web.Response(status=422, text="Failed to deserialize the JSON body into the target type",
                        content_type="text/plain")


ROUTES: tuple[Route, ...] = (
    Route("POST", "/info", info),
)
