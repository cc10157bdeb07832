"""OKX v5 public rows built from market state, as the simulated endpoints (``simulator.venues.okx``)
serve them: insurance-fund records and total, instruments, open interest (current and rubik daily
history), mark price, funding rate and funding-rate history. String numbers throughout, as OKX sends.

Insurance history follows OKX after 2026-06-09: one ``regular_update`` snapshot a day at 08:00 UTC plus
that day's ``liquidation_balance_deposit`` / ``bankruptcy_loss`` / ``platform_revenue`` rows, stamped at
the same 08:00 (ties on purpose: a ts cursor must not lose rows that share a ts). The flows are derived
at request time from consecutive published balances, so ``balance_after`` always chains from one
snapshot to the next whatever the market model appends to ``pool.history``. ADL episodes are events in
``venue.flows`` (flow_type "adl", ``extra`` holds adlType/maxBal/maxBalTs).
"""

from __future__ import annotations

import random
from decimal import Decimal
from typing import Any

from simulator.market import Market
from simulator.market_state import DAY_MS, HOUR_MS, SimContract, SimPool

KEY = "okx"  # the venue's key in the market (and its mount path on the simulator)
QUANTUM = Decimal("0.00000001")
FUND_TYPES = ("regular_update", "liquidation_balance_deposit", "bankruptcy_loss", "platform_revenue", "adl")


def instrument_row(c: SimContract) -> dict[str, Any]:
    """One ``/public/instruments`` row (swap or quarterly future; ``expTime`` empty for swaps)."""
    futures = c.extra["inst_type"] == "FUTURES"
    return {
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
    }

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


def mark_price_row(market: Market, contract: SimContract, now_ms: int) -> dict[str, str]:
    return {"instId": contract.symbol, "instType": contract.extra["inst_type"],
            "markPx": str(mark_price(market, contract)), "ts": str(now_ms)}

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


def funding_rate_row(market: Market, contract: SimContract) -> dict[str, str]:
    """The ``/public/funding-rate`` row of a swap: the current rate and the next two settlements."""
    now = market.now_ms()
    funding_time, next_time = funding_times(now, contract)
    rate = contract.funding_rate
    return {
        "formulaType": "noRate", "fundingRate": str(rate), "fundingTime": str(funding_time), "impactValue": "",
        "instId": contract.symbol, "instType": "SWAP", "interestRate": "", "maxFundingRate": "0.00375",
        "method": "current_period", "minFundingRate": "-0.00375", "nextFundingRate": "",
        "nextFundingTime": str(next_time), "premium": str(rate * 5), "settFundingRate": str(rate),
        "settState": "settled", "ts": str(now),
    }

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
