"""Orderly Network (the shared order book behind WOOFi Pro and other brokers): the platform insurance fund's
value and the positions the fund holds (``/v1/public/insurancefund``), open interest, funding and prices
of every perpetual (``/v1/public/futures``).

ccxt ``woofipro`` (an Orderly broker) has both endpoints as implicit methods. The fund takes over the
positions of accounts too far underwater to liquidate (Orderly docs, "Insurance Fund & ADL"), so its
``rows`` are backstop inventory (``collectors.inventory``), stored with the fund row of the same snapshot.
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
from collectors.errors import PayloadError
from collectors.exact_json import use_exact_numbers
from collectors.inventory import BACKSTOP_POSITIONS, BackstopPosition
from collectors.parsing import dec, num, opt_num, raw_text, require, require_list, ts_ms
from records.config import VenueConfig

FUND_POOL = "insurance fund"  # the platform fund (per-builder funds of permissionless markets: not public)
SETTLE = "USDC"
PERP_PREFIX = "PERP_"  # PERP_BTC_USDC


def _ok_data(payload: Any, where: str) -> Any:
    """``{"success": true, "data": ..., "timestamp": ms}``."""
    if require(payload, "success", where) is not True:
        raise PayloadError(f"{where}: success={payload.get('success')!r} code={payload.get('code')!r}")
    return require(payload, "data", where)


def _base(symbol: str) -> str:
    """PERP_BTC_USDC -> BTC."""
    parts = symbol.split("_")
    return parts[1] if len(parts) == 3 and parts[0] == "PERP" else symbol


def parse_insurance_fund(venue: str, payload: Any) -> Batch:
    """GET /v1/public/insurancefund::

        {"success": true, "timestamp": 1685439471395, "data": {
          "rows": [{"symbol": "PERP_BTC_USDC", "timestamp": 1685262631606, "position_qty": 0,
                    "cost_position": -617.672835, "average_open_price": 0, "mark_price": 27821.8, ...}],
          "balance": 10001908.678983, "total_account_value": 10008662.996861, "total_collateral_value": ...,
          "free_collateral": ..., "margin_ratio": 10, "min_insurance_fund_margin_ratio": 0.25, ...}}

    The fund's value is ``total_account_value`` (USDC balance plus the unrealised PnL of its positions: the
    equity that backs them, like Hyperliquid's accountValue; ``balance`` is the cash part). Each row with ``position_qty`` != 0 is a position the
    fund holds: unrealised PnL = ``position_qty x mark_price - cost_position`` (the arithmetic of Orderly's
    ``unsettled_pnl`` in the documented position example). All at the response ``timestamp``."""
    data = _ok_data(payload, "insurancefund")
    ts = ts_ms(require(payload, "timestamp", "insurancefund"), "timestamp")
    raw = require(data, "total_account_value", "insurancefund.data")
    batch = Batch(funds=[FundBalance(
        venue=venue, pool_id=FUND_POOL, asset=SETTLE, ts=ts, balance=dec(raw, "total_account_value"),
        balance_raw=raw_text(raw), unit_raw=SETTLE,
    )])
    positions = []
    for index, row in enumerate(require_list(require(data, "rows", "insurancefund.data"), "insurancefund.rows")):
        where = f"insurancefund.rows[{index}]"
        symbol = str(require(row, "symbol", where))
        qty_raw = require(row, "position_qty", where)
        qty = dec(qty_raw, f"{symbol}.position_qty")
        if qty == 0:
            continue  # a settled leftover (cost_position only), not a position
        mark = opt_num(row.get("mark_price"), f"{symbol}.mark_price")
        cost = row.get("cost_position")
        pnl = (float(qty * dec(row["mark_price"], "mark_price") - dec(cost, "cost_position"))
               if mark is not None and cost not in (None, "") else None)
        entry = opt_num(row.get("average_open_price"), f"{symbol}.average_open_price")
        positions.append(BackstopPosition(
            venue=venue, holder=FUND_POOL, contract=symbol, ts=ts, size=float(qty), size_raw=raw_text(qty_raw),
            entry_price=entry if entry else None, mark_price=mark, unrealised_pnl=pnl,
            notional_usd=abs(float(qty)) * mark if mark is not None else None, settle_asset=SETTLE,
        ))
    batch.extra[BACKSTOP_POSITIONS] = positions
    return batch


def parse_futures(venue: str, payload: Any, symbols: list[str] | None = None) -> Batch:
    """GET /v1/public/futures (every perpetual)::

        {"success": true, "timestamp": 1786022130191, "data": {"rows": [{"symbol": "PERP_BTC_USDC",
          "index_price": 64185.4, "mark_price": 64171.0, "est_funding_rate": 0.0001,
          "last_funding_rate": 0.00010041, "next_funding_time": 1786032000000, "open_interest": 110.64612, ...}]}}

    ``open_interest`` in base coin (one side or both UNCONFIRMED) valued at the mark; ``est_funding_rate``
    is the predicted rate of the next settlement (per-market interval 1/4/8 h, not in this payload);
    ``index_price`` the USD index. Rows carry no time: the response ``timestamp``."""
    data = _ok_data(payload, "futures")
    ts = ts_ms(require(payload, "timestamp", "futures"), "timestamp")
    batch = Batch()
    priced: set[str] = set()
    for index, row in enumerate(require_list(require(data, "rows", "futures.data"), "futures.rows")):
        symbol = str(require(row, "symbol", f"futures.rows[{index}]"))
        if not symbol.startswith(PERP_PREFIX) or (symbols and symbol not in symbols):
            continue
        base = _base(symbol)
        mark = opt_num(row.get("mark_price"), f"{symbol}.mark_price")
        oi_raw = row.get("open_interest")
        if oi_raw not in (None, ""):
            oi_base = num(oi_raw, f"{symbol}.open_interest")
            batch.open_interest.append(OpenInterest(
                venue=venue, symbol=symbol, ts=ts, base_asset=base, settle_asset=SETTLE, oi_raw=raw_text(oi_raw),
                oi_unit="base", contract_size=1.0, inverse=False, oi_base=oi_base,
                oi_usd=oi_base * mark if mark is not None else None,
            ))
        rate = row.get("est_funding_rate")
        if rate not in (None, ""):
            next_ts = row.get("next_funding_time")
            batch.funding.append(FundingRate(
                venue=venue, symbol=symbol, ts=ts, funding_rate=num(rate, f"{symbol}.est_funding_rate"),
                funding_rate_raw=raw_text(rate), mark_price=mark,
                next_funding_ts=ts_ms(next_ts, f"{symbol}.next_funding_time") if next_ts else None,
            ))
        index_px = opt_num(row.get("index_price"), f"{symbol}.index_price")
        if index_px is not None and base not in priced:
            priced.add(base)
            batch.prices.append(Price(venue, base, ts, index_px, "index"))
    return batch


class OrderlyAdapter(VenueAdapter):
    key = "orderly"
    display_name = "Orderly Network"
    default_base_url = "https://api-evm.orderly.org"  # ccxt woofipro's host; api.orderly.org serves the same
    capabilities = (
        Capability(FUNDS, "/v1/public/insurancefund", 60, "none (snapshot)", "USDC (total_account_value)",
                   "platform fund; its open positions stored as backstop-positions; per-builder funds not public"),
        Capability(OPEN_INTEREST, "/v1/public/futures", 60, "none", "base coin", "one side or both UNCONFIRMED"),
        Capability(FUNDING, "/v1/public/futures", 3_600, "none", "est_funding_rate (interval 1/4/8 h per market)"),
        Capability(PRICES, "/v1/public/futures", 60, "none", "USD (index_price)"),
    )

    def __init__(self, config: VenueConfig) -> None:
        super().__init__(config)  # the clients are made here (they connect on first use)
        # exact numbers: Orderly writes balances as JSON numbers (10001908.678983)
        self.exchange = use_exact_numbers(
            make_exchange("woofipro", self.config.base_url_str(), self.config.timeout_s))

    async def close(self) -> None:
        await self.exchange.close()

    async def fetch_funds(self, since: datetime | None) -> Batch:
        payload = await ccxt_call(self.exchange, self.exchange.v1PublicGetPublicInsurancefund())
        return parse_insurance_fund(self.key, payload)

    async def _futures(self) -> Batch:
        payload = await ccxt_call(self.exchange, self.exchange.v1PublicGetPublicFutures())
        return parse_futures(self.key, payload, self.config.symbols or None)

    async def fetch_open_interest(self, since: datetime | None) -> Batch:
        futures = await self._futures()
        return Batch(open_interest=futures.open_interest, prices=futures.prices)

    async def fetch_funding(self, since: datetime | None) -> Batch:
        return Batch(funding=(await self._futures()).funding)

    async def fetch_prices(self, since: datetime | None) -> Batch:
        return Batch(prices=(await self._futures()).prices)

