"""Simulated Bybit v5: /v5/market/insurance (shared pools published daily, isolated pools every minute),
/v5/market/tickers (linear + inverse), /v5/market/adlAlert, in the v5 envelope
``{retCode, retMsg, result, retExtInfo, time}``.

Only public implicit ccxt calls are used by the collector, so no ``load_markets`` endpoint is needed.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from aiohttp import web

from simulator.market import HOUR_MS, MINUTE_MS, Market, SimContract, SimPool, SimVenue
from simulator.respond import reply

KEY = "bybit"
ISOLATED_HISTORY_DAYS = 2  # Bybit serves no history: two days of minute points feed the market model
# symbol, category, base, settle, one-side OI (base for linear, USD contracts for inverse), serves single* fields
CONTRACT_ROWS = [
    ("BTCUSDT", "linear", "BTC", "USDT", "52000.125", True),
    ("ETHUSDT", "linear", "ETH", "USDT", "910000.5", True),
    ("SOLUSDT", "linear", "SOL", "USDT", "6100000.3", False),  # no single* fields: pre-2026-06-11 shape
    ("XRPUSDT", "linear", "XRP", "USDT", "250000000", True),
    ("DOGEUSDT", "linear", "DOGE", "USDT", "1800000000", True),
    ("BTCPERP", "linear", "BTC", "USDC", "3100.5", True),
    ("ETHPERP", "linear", "ETH", "USDC", "41000.75", True),
    ("BTCUSD", "inverse", "BTC", "BTC", "120056984", True),
    ("ETHUSD", "inverse", "ETH", "ETH", "45000000", False),
]
POOL_ROWS = [  # coin, symbols (the venue's order), balance
    ("USDT", "BTCUSDT,ETHUSDT,SOLUSDT,XRPUSDT", "902178.57602476"),
    ("USDT", "DOGEUSDT", "14454.51626125"),
    ("USDC", "BTCPERP,ETHPERP", "250341.11800012"),
    ("BTC", "BTCUSD", "1231.55829104"),
    ("ETH", "ETHUSD", "8410.01938211"),
]
ADL_TRIGGER_BALANCE = {"USDT": "10000", "USDC": "10000", "BTC": "0.2", "ETH": "5"}


def _minute_history(market: Market, balance: Decimal) -> list[tuple[int, Decimal]]:
    saved = market.history_days
    market.history_days = min(saved, ISOLATED_HISTORY_DAYS)
    try:
        return market.make_history(balance, 60)
    finally:
        market.history_days = saved


def build(market: Market) -> SimVenue:
    venue = SimVenue(KEY)
    for symbol, category, base, settle, oi, single in CONTRACT_ROWS:
        inverse = category == "inverse"
        venue.contracts[symbol] = SimContract(
            symbol, base, "USD" if inverse else settle, settle, Decimal(1), inverse, Decimal(oi),
            extra={"category": category, "single_fields": single},
        )
    for index, (coin, symbols_text, balance) in enumerate(POOL_ROWS):
        symbols = symbols_text.split(",")
        shared = len(symbols) > 1
        pool = SimPool(symbols_text, coin, symbols, Decimal(balance), cadence_s=86_400 if shared else 60,
                       extra={"shared": shared, "order": index})
        pool.history = (market.make_history(pool.balance, 86_400) if shared
                        else _minute_history(market, pool.balance))
        venue.pools[pool.pool_id] = pool
    for position, contract in enumerate(venue.contracts.values()):  # small, deterministic drawdown ratios
        contract.extra["pnl_ratio"] = Decimal(position * 7 % 11 - 5) / Decimal(1000)
    return venue


def envelope(market: Market, result: dict[str, Any], code: int = 0, msg: str = "OK") -> dict[str, Any]:
    return {"retCode": code, "retMsg": msg, "result": result, "retExtInfo": {}, "time": market.now_ms()}


def _mark(market: Market, contract: SimContract) -> Decimal:
    return market.price(contract.base) * (1 + contract.extra.get("basis", Decimal("0.0002")))


def _text(value: Decimal, places: int) -> str:
    return str(value.quantize(Decimal(1).scaleb(-places)))


def routes(market: Market) -> list[web.RouteDef]:
    venue = market.venue(KEY)

    def error(code: int, msg: str) -> web.Response:
        return reply(envelope(market, {}, code, msg))

    def pools_in_order() -> list[SimPool]:
        return sorted(venue.pools.values(), key=lambda p: p.extra.get("order", 0))

    async def insurance(request: web.Request) -> web.Response:
        coin = request.query.get("coin", "").upper()
        pools = [p for p in pools_in_order() if not coin or p.asset == coin]
        if coin and not pools:
            return error(10001, "Invalid coin")
        rows = []
        for pool in pools:
            balance = pool.published()[1]
            rows.append({"coin": pool.asset, "symbols": ",".join(pool.symbols), "balance": str(balance),
                         "value": _text(balance * market.price(pool.asset), 10)})
        updated = max((p.published()[0] for p in pools), default=market.now_ms())
        return reply(envelope(market, {"updatedTime": str(updated), "list": rows}))

    def ticker(contract: SimContract) -> dict[str, Any]:
        now = market.now_ms()
        mark = _mark(market, contract)
        index = market.price(contract.base)
        last = mark * Decimal("1.00005")
        interval = contract.funding_interval_h * HOUR_MS
        if contract.inverse:  # OI in USD contracts, value in coin; both sides
            oi, value, single_value = (contract.oi_contracts * 2, contract.oi_contracts * 2 / mark,
                                       contract.oi_contracts / mark)
        else:  # OI in base, value in USD; both sides
            oi, value, single_value = (contract.oi_contracts * 2, contract.oi_contracts * 2 * mark,
                                       contract.oi_contracts * mark)
        row: dict[str, Any] = {
            "symbol": contract.symbol, "lastPrice": _text(last, 2), "indexPrice": _text(index, 2),
            "markPrice": _text(mark, 2), "prevPrice24h": _text(index * Decimal("0.99"), 2),
            "price24hPcnt": "0.010101", "highPrice24h": _text(index * Decimal("1.02"), 2),
            "lowPrice24h": _text(index * Decimal("0.97"), 2), "prevPrice1h": _text(index, 2),
            "openInterest": str(oi), "openInterestValue": _text(value, 2 if not contract.inverse else 8),
            "turnover24h": "1000000.0000", "volume24h": "1000.0000",
            "fundingRate": str(contract.funding_rate), "nextFundingTime": str((now // interval + 1) * interval),
            "predictedDeliveryPrice": "", "basisRate": "", "deliveryFeeRate": "", "deliveryTime": "0",
            "ask1Size": "1.5", "bid1Price": _text(last * Decimal("0.9999"), 2), "ask1Price": _text(last, 2),
            "bid1Size": "2.1", "basis": "", "preOpenPrice": "", "preQty": "", "curPreListingPhase": "",
            "fundingIntervalHour": str(contract.funding_interval_h), "basisRateYear": "", "fundingCap": "0.005",
        }
        if contract.extra.get("single_fields", True):
            row["singleOpenInterest"] = str(contract.oi_contracts)
            row["singleOpenInterestValue"] = _text(single_value, 2 if not contract.inverse else 8)
        return row

    async def tickers(request: web.Request) -> web.Response:
        category = request.query.get("category", "")
        if category not in ("linear", "inverse", "spot", "option"):
            return error(10001, "Illegal category")
        symbol = request.query.get("symbol")
        contracts = [c for c in venue.contracts.values() if c.extra["category"] == category]
        if symbol:
            contracts = [c for c in contracts if c.symbol == symbol]
            if not contracts:
                return error(10001, "Not supported symbols")
        return reply(envelope(market, {"category": category, "list": [ticker(c) for c in contracts]}))

    async def adl_alert(request: web.Request) -> web.Response:
        symbol = request.query.get("symbol")
        rows = []
        for pool in pools_in_order():
            balance = pool.published()[1]
            for member in pool.symbols:
                contract = venue.contracts.get(member)
                if contract is None or (symbol and member != symbol):
                    continue
                rows.append({
                    "coin": pool.asset, "symbol": member, "balance": str(balance), "maxBalance": "",
                    "insurancePnlRatio": "-0.3", "pnlRatio": str(contract.extra.get("pnl_ratio", Decimal(0))),
                    "adlTriggerThreshold": ADL_TRIGGER_BALANCE.get(pool.asset, "10000"), "adlStopRatio": "-0.25",
                })
        if symbol and not rows:
            return error(10001, "Not supported symbols")
        now = market.now_ms()
        return reply(envelope(market, {"updatedTime": str(now - now % MINUTE_MS), "list": rows}))

    return [
        web.get("/v5/market/insurance", insurance),
        web.get("/v5/market/tickers", tickers),
        web.get("/v5/market/adlAlert", adl_alert),
    ]
