"""Simulated Orderly Network: ``/v1/public/insurancefund`` (the fund's value and the positions it holds, as
the docs' example: numbers as JSON numbers, a settled leftover row with position_qty 0) and
``/v1/public/futures`` (OI, predicted funding, mark and index per perpetual) and
``/v1/public/liquidated_positions`` (the market model's liquidations, one leg per account, paged).

The fund holds a small standing short it took over earlier and, when the scenario hits Orderly or the whole
market, takes over a large position (``simulator.inventory``); its total_account_value includes their
unrealised PnL.

Calibration (cited): fund 10,001,908.68 USDC is the ``balance`` of Orderly's documented example
(2023-05-30); BTC open interest 110.65 BTC is ccxt 4.5.90's captured ``/v1/public/futures`` row
(2026-08); ETH and SOL OI are scaled from it (no published figure used). Orderly's fund is large against
its OI (~60 % here), as those two figures imply.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from aiohttp import web

from simulator.inventory import Holding, InventoryPlan, holdings
from simulator.market import Market
from simulator.market_state import HOUR_MS, SimContract, SimLiquidation, SimPool, SimVenue
from simulator.respond import reply
from simulator.routing import Route, market_of

KEY = "orderly"
FUND = "insurance fund"
CONTRACT_ROWS = [  # symbol, base, OI in base coin, funding interval (h)
    ("PERP_BTC_USDC", "BTC", "110.64612", 8), ("PERP_ETH_USDC", "ETH", "2051.3312", 8),
    ("PERP_SOL_USDC", "SOL", "18512.44", 8),
]
FUND_BALANCE = "10001908.678983"
# standing: a short taken over two days before the start; takeover: an ETH long, 40 % of the fund
INVENTORY = InventoryPlan(standing=(("SOL", -310_000.0, 2.0),), takeover=("ETH", 4_000_000.0))
LEFTOVER_ROW = "PERP_BTC_USDC"  # a settled row (position_qty 0, cost_position only), as in the docs example


def build(market: Market) -> SimVenue:
    venue = SimVenue(KEY)
    for symbol, base, oi, interval in CONTRACT_ROWS:
        venue.contracts[symbol] = SimContract(symbol, base, "USDC", "USDC", Decimal(1), False, Decimal(oi),
                                              funding_rate=Decimal("0.0001"), funding_interval_h=interval)
    pool = SimPool(FUND, "USDC", [s for s, *_ in CONTRACT_ROWS], Decimal(FUND_BALANCE), cadence_s=3_600)
    pool.history = market.make_history(pool.balance, pool.cadence_s)  # the model's; the venue serves it live
    venue.pools[FUND] = pool
    return venue


def symbol_of(coin: str) -> str:
    return f"PERP_{coin}_USDC"


def ok(market: Market, data: dict[str, Any]) -> web.Response:
    return reply({"success": True, "data": data, "timestamp": market.now_ms()})


def mark(market: Market, c: SimContract) -> Decimal:
    basis = c.basis(Decimal("0.0002"))
    return (market.price(c.base) * (1 + basis)).quantize(Decimal("0.001"))


def position_row(market: Market, h: Holding, now: int) -> dict[str, Any]:
    px = market.price(h.coin).quantize(Decimal("0.001"))
    cost = (h.size * h.entry).quantize(Decimal("0.000001"))  # cost_position: qty x entry (funding ignored)
    return {"symbol": symbol_of(h.coin), "timestamp": now, "position_qty": h.size, "cost_position": cost,
            "last_sum_unitary_funding": Decimal("100.56"), "settle_price": h.entry.quantize(Decimal("0.001")),
            "average_open_price": h.entry.quantize(Decimal("0.001")), "pnl_24_h": 0, "fee_24_h": 0,
            "mark_price": px}


async def insurance_fund(request: web.Request) -> web.Response:
    market = market_of(request)
    venue = market.venue(KEY)
    now = market.now_ms()
    held = holdings(market, KEY, INVENTORY)
    rows = [position_row(market, h, now) for h in held]
    leftover = venue.contracts[LEFTOVER_ROW]
    rows.append({"symbol": LEFTOVER_ROW, "timestamp": now - HOUR_MS, "position_qty": 0,
                 "cost_position": Decimal("-617.672835"), "last_sum_unitary_funding": Decimal("100.56"),
                 "settle_price": 0, "average_open_price": 0, "pnl_24_h": 0, "fee_24_h": 0,
                 "mark_price": mark(market, leftover)})
    balance = venue.pools[FUND].balance
    unrealised = sum((Decimal(str(r["position_qty"])) * r["mark_price"] - r["cost_position"] for r in rows
                      if r["position_qty"]), Decimal(0))
    account = (balance + unrealised).quantize(Decimal("0.000001"))
    return ok(market, {"rows": rows, "min_insurance_fund_initial_margin_ratio": Decimal("0.3"),
                       "min_insurance_fund_margin_ratio": Decimal("0.25"), "margin_ratio": 10,
                       "total_collateral_value": account, "balance": balance.quantize(Decimal("0.000001")),
                       "free_collateral": account, "total_account_value": account, "total_pnl_24_h": 0})


def futures_row(market: Market, c: SimContract) -> dict[str, Any]:
    interval = c.funding_interval_h * HOUR_MS
    index = market.price(c.base).quantize(Decimal("0.001"))
    return {"symbol": c.symbol, "index_price": index, "mark_price": mark(market, c), "sum_unitary_funding": Decimal("26522.3"),
            "est_funding_rate": c.funding_rate, "last_funding_rate": c.funding_rate,
            "next_funding_time": (market.now_ms() // interval + 1) * interval, "open_interest": c.oi_contracts,
            "24h_open": index, "24h_close": index, "24h_high": index, "24h_low": index,
            "24h_volume": Decimal("102.2817"), "24h_amount": Decimal("6595662.199482")}


async def futures(request: web.Request) -> web.Response:
    market = market_of(request)
    venue = market.venue(KEY)
    return ok(market, {"rows": [futures_row(market, c) for c in venue.contracts.values()]})


def liquidation_row(liq: SimLiquidation) -> dict[str, Any]:
    qty = liq.qty_contracts if liq.position_side == "long" else -liq.qty_contracts
    fee = (liq.qty_contracts * liq.fill_price * Decimal("0.006")).quantize(Decimal("0.000001"))
    return {"timestamp": liq.ts_ms, "liquidation_id": liq.seq, "transfer_amount_to_insurance_fund": 0,
            "type": "liquidated", "positions_by_perp": [{
                "symbol": liq.symbol, "position_qty": qty, "liquidator_fee": Decimal("0.015"),
                "cost_position_transfer": (qty * liq.fill_price).quantize(Decimal("0.000001")),
                "transfer_price": liq.fill_price, "insurance_fund_fee": Decimal("0.011999"),
                "abs_insurance_fund_fee": fee, "seq": liq.seq, "abs_liquidator_fee": fee}]}


async def liquidated_positions(request: web.Request) -> web.Response:
    market = market_of(request)
    venue = market.venue(KEY)
    now = market.now_ms()
    try:
        start = int(request.query.get("start_t", str(now - HOUR_MS)))
        end = int(request.query.get("end_t", str(now)))
        page = int(request.query.get("page", "1"))
        size = int(request.query.get("size", "25"))
    except ValueError:
        return reply({"success": False, "code": -1101, "message": "invalid parameter"}, status=400)
    if page < 1 or not 1 <= size <= 500:
        return reply({"success": False, "code": -1101, "message": "page >= 1, size 1..500"}, status=400)
    market.advance()
    matched = [liq for liq in reversed(venue.liquidations) if start <= liq.ts_ms <= end]  # newest first
    rows = [liquidation_row(liq) for liq in matched[(page - 1) * size: page * size]]
    return ok(market, {"rows": rows, "meta": {"total": len(matched), "records_per_page": size, "current_page": page}})


ROUTES: tuple[Route, ...] = (
    Route("GET", "/v1/public/insurancefund", insurance_fund),
    Route("GET", "/v1/public/futures", futures),
    Route("GET", "/v1/public/liquidated_positions", liquidated_positions),
)
