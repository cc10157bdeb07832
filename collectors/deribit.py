"""Deribit: no insurance-fund balance API. What Deribit does publish are bankruptcy settlement events
(``funded`` = covered by the insurance fund, ``socialized`` = loss spread over profitable traders), which
Backstop stores as fund flows; OI, funding and index prices come from the book summaries.

Amounts are in the book's currency (BTC, ETH, USDC); a flow's ``amount`` is the positive size served,
its ``flow_type`` says which side paid. Events are listed newest first with a ``continuation`` cursor.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

from collectors.base import (
    FUNDING,
    FUNDS,
    OPEN_INTEREST,
    PRICES,
    Batch,
    Capability,
    FundFlow,
    FundingRate,
    OpenInterest,
    Price,
    VenueAdapter,
)
from collectors.ccxt_client import ccxt_call, make_exchange
from collectors.exact_json import use_exact_numbers
from collectors.parsing import (
    dec,
    no_usd_rate_note,
    norm_asset,
    num,
    opt_num,
    raw_text,
    require,
    require_list,
    to_json,
    ts_ms,
    usd_quote,
)
from records.config import VenueConfig

CURRENCIES = ("BTC", "ETH", "USDC")  # books with derivatives: inverse BTC/ETH, linear USDC
# everything a bankruptcy row carries besides its timestamp (ccxt's comment spells session_bankrupcy)
DETAIL_FIELDS = ("funded", "socialized", "session_bankruptcy", "session_bankrupcy", "session_profit_loss",
                 "session_tax", "session_tax_rate")
NO_MORE = (None, "", "none")


def parse_settlements(venue: str, currency: str, payload: Any) -> tuple[list[FundFlow], str | None, datetime | None]:
    """GET /api/v2/public/get_last_settlements_by_currency?currency=BTC&type=bankruptcy::

        {"jsonrpc": "2.0", "result": {"settlements": [
            {"type": "bankruptcy", "timestamp": 1696579200041, "funded": 10000.0, "session_bankruptcy": 10000.0,
             "session_profit_loss": 112951.68715857354, "session_tax": 0.15, "session_tax_rate": 0.0015,
             "socialized": 0.001}],
         "continuation": "5dHzoGyD8Hs8KURoUhfgXgHpJTA5oyapoudSmNeAfEftqRbjNE6jNNUpo2oCu1khnZL9ao"}}

    Returns (flows, next cursor or None, oldest event time on the page). Every bankruptcy gives a
    ``bankruptcy_funded`` row (possibly 0: the event itself is the signal); a non-zero ``socialized``
    gives a ``socialized_loss`` row too. Other settlement types are ignored."""
    result = require(payload, "result", "get_last_settlements_by_currency")
    rows = require_list(require(result, "settlements", "get_last_settlements_by_currency.result"), "settlements")
    asset = norm_asset(currency)
    flows: list[FundFlow] = []
    oldest: datetime | None = None
    for row in rows:
        ts = ts_ms(require(row, "timestamp", "settlements"), "timestamp")
        oldest = ts if oldest is None or ts < oldest else oldest
        if require(row, "type", "settlements") != "bankruptcy":
            continue
        detail = to_json({k: raw_text(row[k]) for k in DETAIL_FIELDS if row.get(k) is not None})
        funded = dec(require(row, "funded", f"settlements[{row['timestamp']}]"), "funded")
        flows.append(FundFlow(venue=venue, pool_id=currency, asset=asset, ts=ts, flow_type="bankruptcy_funded",
                              amount=funded, detail=detail))
        socialized = row.get("socialized")
        if socialized not in (None, "") and dec(socialized, "socialized") != 0:
            flows.append(FundFlow(venue=venue, pool_id=currency, asset=asset, ts=ts, flow_type="socialized_loss",
                                  amount=dec(socialized, "socialized"), detail=detail))
    cursor = result.get("continuation")
    return flows, (None if cursor in NO_MORE else str(cursor)), oldest


def parse_book_summary(venue: str, payload: Any) -> Batch:
    """GET /api/v2/public/get_book_summary_by_currency?currency=BTC&kind=future::

        {"jsonrpc": "2.0", "result": [
            {"instrument_name": "BTC-PERPETUAL", "base_currency": "BTC", "quote_currency": "USD",
             "open_interest": 9978911260, "mark_price": 87102.01, "estimated_delivery_price": 87047.2,
             "creation_timestamp": 1763674177068, "current_funding": 1.2966e-4, "funding_8h": -8.1069e-4, ...}]}

    ``open_interest`` is USD for perpetuals and inverse futures (quote USD), base coin for linear
    (USDC-quoted) ones; a linear book quoted in anything but USD/USDT/USDC gets no USD value (its mark is
    not a USD price) and says so in ``oi_usd_note``. Funding (perpetuals): Deribit publishes two figures
    that can differ in sign: ``current_funding`` (stored as ``funding_rate``, what every view shows) and
    the trailing ``funding_8h`` (stored beside it, labelled); without ``current_funding`` the trailing one
    is the only figure and fills both. ``estimated_delivery_price`` is the index."""
    batch = Batch()
    priced: set[str] = set()
    for row in require_list(require(payload, "result", "get_book_summary_by_currency"), "book summary"):
        name = str(require(row, "instrument_name", "book summary"))
        oi_raw = row.get("open_interest")
        if oi_raw is None:
            continue  # spot books have no OI
        base = norm_asset(str(require(row, "base_currency", name)))
        quote = str(require(row, "quote_currency", name)).upper()
        ts = ts_ms(require(row, "creation_timestamp", name), "creation_timestamp")
        mark = opt_num(row.get("mark_price"), f"{name}.mark_price")
        oi = num(oi_raw, f"{name}.open_interest")
        inverse = quote == "USD"
        note = None
        if inverse:
            oi_usd: float | None = oi
            oi_base = oi / mark if mark else None
        else:
            oi_base = oi
            oi_usd = oi * mark if mark is not None and usd_quote(quote) else None
            if not usd_quote(quote):
                note = no_usd_rate_note(quote)
        batch.open_interest.append(OpenInterest(
            venue=venue, symbol=name, ts=ts, base_asset=base, settle_asset=base if inverse else quote,
            oi_raw=raw_text(oi_raw), oi_unit="usd" if inverse else "base", contract_size=None if inverse else 1.0,
            inverse=inverse, oi_base=oi_base, oi_usd=oi_usd, oi_usd_note=note,
        ))
        perpetual = name.endswith("-PERPETUAL")
        trailing = row.get("funding_8h")
        current = row.get("current_funding", trailing)
        if perpetual and current is not None:
            batch.funding.append(FundingRate(
                venue=venue, symbol=name, ts=ts, funding_rate=num(current, f"{name}.current_funding"),
                funding_rate_raw=raw_text(current), next_funding_ts=None, interval_h=8.0, mark_price=mark,
                funding_8h=opt_num(trailing, f"{name}.funding_8h"),
                funding_8h_raw=None if trailing is None else raw_text(trailing),
            ))
        index = row.get("estimated_delivery_price")
        if perpetual and index is not None and base not in priced:
            priced.add(base)
            batch.prices.append(Price(venue, base, ts, num(index, f"{name}.estimated_delivery_price"), "index"))
    return batch


class DeribitAdapter(VenueAdapter):
    key = "deribit"
    display_name = "Deribit"
    default_base_url = "https://www.deribit.com"
    fund_label = "no balance API: bankruptcy events"
    poll_page_count = 100  # newest events per currency per poll
    backfill_page_count = 1000  # the venue's maximum
    capabilities = (
        Capability(FUNDS, "public/get_last_settlements_by_currency?type=bankruptcy", 86_400,
                   "events (continuation cursor)", "base currency of the book (BTC, ETH, USDC)",
                   "no balance API: bankruptcy events stored as fund flows (funded by the fund / socialized)"),
        Capability(OPEN_INTEREST, "public/get_book_summary_by_currency?kind=future", 60, "none",
                   "USD (inverse) / base coin (linear USDC)",
                   "a linear book not quoted in USD/USDT/USDC: oi_usd empty, reason in oi_usd_note"),
        Capability(FUNDING, "public/get_book_summary_by_currency?kind=future", 600, "none",
                   "current_funding (shown) + funding_8h (trailing 8 h, stored beside it)",
                   "perpetuals only; the two can differ in sign; current_funding's period UNCONFIRMED (taken as 8 h)"),
        Capability(PRICES, "public/get_book_summary_by_currency?kind=future", 60, "none",
                   "USD (estimated_delivery_price)"),
    )

    def __init__(self, config: VenueConfig) -> None:
        super().__init__(config)  # the clients are made here (they connect on first use)
        self.exchange = use_exact_numbers(make_exchange("deribit", self.config.base_url_str(), self.config.timeout_s))

    async def close(self) -> None:
        await self.exchange.close()

    async def _settlements(self, currency: str, count: int, cursor: str | None) -> Any:
        params: dict[str, Any] = {"currency": currency, "type": "bankruptcy", "count": count}
        if cursor:
            params["continuation"] = cursor
        return await ccxt_call(self.exchange, self.exchange.publicGetGetLastSettlementsByCurrency(params))

    async def fetch_funds(self, since: datetime | None) -> Batch:
        """The newest page per currency (older events arrive through backfill; re-reads dedupe)."""
        batch = Batch()
        for currency in CURRENCIES:
            payload = await self._settlements(currency, self.poll_page_count, None)
            flows, _, _ = parse_settlements(self.key, currency, payload)
            batch.fund_flows.extend(f for f in flows if since is None or f.ts >= since)
        return batch

    async def backfill_funds(self, since: datetime) -> AsyncIterator[Batch]:
        """Per currency, follow ``continuation`` back until an event older than ``since`` or the end."""
        for currency in CURRENCIES:
            cursor: str | None = None
            while True:
                payload = await self.page(lambda currency=currency, cursor=cursor: self._settlements(
                    currency, self.backfill_page_count, cursor))
                flows, cursor, oldest = parse_settlements(self.key, currency, payload)
                page = [f for f in flows if f.ts >= since]
                if page:
                    yield Batch(fund_flows=page)
                if cursor is None or oldest is None or oldest < since:
                    break

    async def _books(self) -> Batch:
        batch = Batch()
        for currency in CURRENCIES:
            payload = await ccxt_call(self.exchange, self.exchange.publicGetGetBookSummaryByCurrency(
                {"currency": currency, "kind": "future"}))
            batch.merge(parse_book_summary(self.key, payload))
        return batch

    async def fetch_open_interest(self, since: datetime | None) -> Batch:
        books = await self._books()
        return Batch(open_interest=books.open_interest, prices=books.prices)

    async def fetch_funding(self, since: datetime | None) -> Batch:
        return Batch(funding=(await self._books()).funding)

    async def fetch_prices(self, since: datetime | None) -> Batch:
        return Batch(prices=(await self._books()).prices)
