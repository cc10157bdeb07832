"""Paradex (Starknet perpetuals): the insurance fund account's value (``GET /v1/insurance``), open interest,
funding and oracle prices of every perpetual (``GET /v1/markets/summary?market=ALL``).

Both are ccxt ``paradex`` implicit methods. The fund endpoint has no history: Backstop records it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from collectors.base import (
    FUNDING,
    FUNDS,
    OPEN_INTEREST,
    PRICES,
    Batch,
    Capability,
    FundBalance,
    FundingRate,
    OpenInterest,
    Price,
    VenueAdapter,
)
from collectors.ccxt_client import ccxt_call, make_exchange
from collectors.exact_json import use_exact_numbers
from collectors.parsing import dec, norm_asset, num, opt_num, raw_text, require, require_list, ts_ms
from records.config import VenueConfig

FUND_POOL = "insurance fund"
PERP_SUFFIX = "-PERP"  # BTC-USD-PERP
ALL_MARKETS = "ALL"
FUNDING_PERIOD_H = 8.0  # funding_rate is quoted per 8 h period (Paradex funding docs); UNCONFIRMED for the API


def parse_insurance(venue: str, payload: Any) -> FundBalance:
    """GET /v1/insurance::

        {"account": "0x495d2eb5...54fa", "account_value": "136285.069", "settlement_asset": "USDC",
         "updated_at": 1681471234972}

    ``account_value`` in ``settlement_asset`` at ``updated_at`` (the account's last update, ms). Every field
    is optional in the docs' schema: a missing one is a payload error, not a zero."""
    raw = require(payload, "account_value", "insurance")
    unit = str(require(payload, "settlement_asset", "insurance"))
    return FundBalance(
        venue=venue, pool_id=FUND_POOL, asset=norm_asset(unit),
        ts=ts_ms(require(payload, "updated_at", "insurance"), "updated_at"),
        balance=dec(raw, "account_value"), balance_raw=raw_text(raw), unit_raw=unit,
    )


def parse_markets_summary(venue: str, payload: Any, symbols: list[str] | None = None) -> Batch:
    """GET /v1/markets/summary?market=ALL::

        {"results": [{"symbol": "BTC-USD-PERP", "oracle_price": "68465.17449906", "mark_price": "68465.17449906",
          "open_interest": "162.272", "funding_rate": "0.01629574927887", "created_at": 1718170156580,
          "underlying_price": "67367.37268422", ...}]}

    Perpetuals only: ``open_interest`` in base coin (one side or both UNCONFIRMED) valued at the mark;
    ``funding_rate`` as served (per 8 h period, UNCONFIRMED); ``oracle_price`` the USD price; each row
    stamped with its ``created_at`` (the summary's time)."""
    batch = Batch()
    priced: set[str] = set()
    for index, row in enumerate(require_list(require(payload, "results", "markets/summary"), "results")):
        symbol = str(require(row, "symbol", f"results[{index}]"))
        if not symbol.endswith(PERP_SUFFIX) or (symbols and symbol not in symbols):
            continue
        base = norm_asset(symbol.split("-")[0])
        settle = norm_asset(symbol.split("-")[1])
        ts = ts_ms(require(row, "created_at", symbol), f"{symbol}.created_at")
        mark = opt_num(row.get("mark_price"), f"{symbol}.mark_price")
        oi_raw = row.get("open_interest")
        if oi_raw not in (None, ""):
            oi_base = num(oi_raw, f"{symbol}.open_interest")
            batch.open_interest.append(OpenInterest(
                venue=venue, symbol=symbol, ts=ts, base_asset=base, settle_asset=settle, oi_raw=raw_text(oi_raw),
                oi_unit="base", contract_size=1.0, inverse=False, oi_base=oi_base,
                oi_usd=oi_base * mark if mark is not None else None,
            ))
        rate = row.get("funding_rate")
        if rate not in (None, ""):
            batch.funding.append(FundingRate(
                venue=venue, symbol=symbol, ts=ts, funding_rate=num(rate, f"{symbol}.funding_rate"),
                funding_rate_raw=raw_text(rate), interval_h=FUNDING_PERIOD_H, mark_price=mark,
            ))
        oracle = opt_num(row.get("oracle_price"), f"{symbol}.oracle_price")
        if oracle is not None and base not in priced:
            priced.add(base)
            batch.prices.append(Price(venue, base, ts, oracle, "index"))
    return batch


class ParadexAdapter(VenueAdapter):
    key = "paradex"
    display_name = "Paradex"
    default_base_url = "https://api.prod.paradex.trade"
    capabilities = (
        Capability(FUNDS, "/v1/insurance", 60, "none (recorded by Backstop)", "USDC (account_value)",
                   "one fund account (a Starknet address); update cadence UNCONFIRMED"),
        Capability(OPEN_INTEREST, "/v1/markets/summary?market=ALL", 60, "none", "base coin",
                   "one side or both UNCONFIRMED"),
        Capability(FUNDING, "/v1/markets/summary?market=ALL", 600, "none", "rate per 8 h (UNCONFIRMED)"),
        Capability(PRICES, "/v1/markets/summary?market=ALL", 60, "none", "USD (oracle_price)"),
    )

    def __init__(self, config: VenueConfig) -> None:
        super().__init__(config)  # the clients are made here (they connect on first use)
        self.exchange = use_exact_numbers(make_exchange("paradex", self.config.base_url_str(), self.config.timeout_s))

    async def close(self) -> None:
        await self.exchange.close()

    async def fetch_funds(self, since: datetime | None) -> Batch:
        payload = await ccxt_call(self.exchange, self.exchange.publicGetInsurance())
        return Batch(funds=[parse_insurance(self.key, payload)])

    async def _summary(self) -> Batch:
        payload = await ccxt_call(self.exchange, self.exchange.publicGetMarketsSummary({"market": ALL_MARKETS}))
        return parse_markets_summary(self.key, payload, self.config.symbols or None)

    async def fetch_open_interest(self, since: datetime | None) -> Batch:
        summary = await self._summary()
        return Batch(open_interest=summary.open_interest, prices=summary.prices)

    async def fetch_funding(self, since: datetime | None) -> Batch:
        return Batch(funding=(await self._summary()).funding)

    async def fetch_prices(self, since: datetime | None) -> Batch:
        return Batch(prices=(await self._summary()).prices)
