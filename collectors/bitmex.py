"""BitMEX: insurance fund per settle currency (full published history), OI + funding + marks from
``/instrument/active``, funding history. No ccxt class exists in ccxt 4.5.90: plain HTTP via JsonHttpClient.

Units. Amounts are integers in the currency's minimum unit: ``XBt`` = satoshi (1e-8 BTC), ``USDt`` = 1e-6 USDT;
``parsing.scale_unit`` turns them into whole coins while ``balance_raw``/``unit_raw`` keep what was served.
Pool ids are the served currency codes (``XBt``, ``USDt``): BitMEX has one fund per settle currency, and its
members are the instruments settled in it (recorded from ``/instrument/active``).

Open interest (``openInterest`` = contracts, one side; ``openValue`` = settle minimum units):

* inverse (XBTUSD: 1 USD per contract): ``oi_usd`` = contracts, ``oi_base`` = contracts / mark. A contract
  is one unit of the *quote* currency: XBTEUR is 1 EUR per contract, marked in EUR, so ``oi_base`` =
  contracts / EUR mark and ``oi_usd`` = contracts x (USD mark / EUR mark of the same underlying in the same
  response, e.g. XBTUSD / XBTEUR); with no USD-quoted twin ``oi_usd`` stays empty and ``oi_usd_note``
  says why (never a EUR amount stored as USD);
* linear (XBTUSDT, ETHUSDT, ...): ``oi_base`` = contracts / ``underlyingToPositionMultiplier`` (base per
  contract = its inverse), else openValue / mark; ``oi_usd`` = openValue scaled to USDT (taken as USD);
* quanto (ETHUSD settled in XBt): ``oi_usd`` = openValue in BTC x the BTC mark of the same response,
  ``oi_base`` = oi_usd / mark; ``contract_size`` is None (a contract is worth ``multiplier`` XBt per USD of
  price, so its base size floats with both prices).

Base asset = ``underlying`` (falling back to ``rootSymbol``): index perpetuals share a root (ALTMEXUSD and
DEFIMEXUSD) but each has its own underlying index, so each keeps its own price row.

Only perpetual swaps (``typ`` FFWCSX) are read: they carry funding and hold nearly all OI.

The first fund poll (nothing stored yet) reads the newest page (``reverse=true``, 500 rows); later polls read
forward from the newest stored timestamp minus ``POLL_OVERLAP`` (the newest
stored row may belong to the other currency, which publishes on its own schedule; duplicates are dropped
by the writer's natural key).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
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
    PoolMember,
    Price,
    VenueAdapter,
)
from collectors.errors import PayloadError
from collectors.http import JsonHttpClient
from collectors.parsing import (
    dec,
    norm_asset,
    num,
    opt_num,
    raw_text,
    require,
    require_list,
    scale_unit,
    ts_iso,
    usd_quote,
)
from records.config import VenueConfig

PAGE_SIZE = 500
POLL_OVERLAP = timedelta(days=3)
PERPETUAL = "FFWCSX"
INTERVAL_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)  # BitMEX encodes durations as a time after 2000-01-01


def bitmex_time(value: datetime) -> str:
    """A query timestamp as BitMEX writes them: ``2024-01-01T00:00:00.000Z``."""
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def interval_hours(value: Any, field: str = "fundingInterval") -> float | None:
    """``"2000-01-01T08:00:00.000Z"`` -> 8.0 (BitMEX's way of writing an 8 hour interval)."""
    if value in (None, ""):
        return None
    return (ts_iso(value, field) - INTERVAL_EPOCH).total_seconds() / 3600


def parse_insurance(venue: str, payload: Any) -> Batch:
    """GET /api/v1/insurance::

        [{"currency": "XBt", "timestamp": "2024-05-01T12:00:00.000Z", "walletBalance": 3349100000000}]

    ``walletBalance`` is in the currency's minimum unit: 3349100000000 XBt = 33491 BTC."""
    batch = Batch()
    for index, row in enumerate(require_list(payload, "insurance")):
        where = f"insurance[{index}]"
        currency = str(require(row, "currency", where))
        raw = require(row, "walletBalance", where)
        if isinstance(raw, bool) or (not isinstance(raw, int) and dec(raw, f"{where}.walletBalance") % 1 != 0):
            raise PayloadError(f"{where}.walletBalance: expected an integer of minimum units, got {raw!r}")
        asset, balance = scale_unit(raw, currency, f"{where}.walletBalance")
        batch.funds.append(FundBalance(
            venue=venue, pool_id=currency, asset=asset, ts=ts_iso(require(row, "timestamp", where), f"{where}.timestamp"),
            balance=balance, balance_raw=raw_text(raw), unit_raw=currency, source="history",
        ))
    return batch


def parse_instruments(venue: str, payload: Any, symbols: set[str] | None = None) -> Batch:
    """GET /api/v1/instrument/active (one element, trimmed)::

        {"symbol": "LTCUSDT", "rootSymbol": "LTC", "typ": "FFWCSX", "quoteCurrency": "USDT",
         "multiplier": 100, "settlCurrency": "USDt", "underlyingToPositionMultiplier": 10000,
         "quoteToSettleMultiplier": 1000000, "isQuanto": false, "isInverse": false,
         "fundingTimestamp": "2022-01-14T20:00:00.000Z", "fundingInterval": "2000-01-01T08:00:00.000Z",
         "fundingRate": 0.0001, "openInterest": 38103000, "openValue": 547963053300, "markPrice": 143.811,
         "timestamp": "2022-01-14T17:49:55.000Z"}

    Perpetuals only: OI (see module docstring for units), funding, one mark price per base asset
    (USD-quoted contract first), and fund membership (instrument -> settle-currency pool)."""
    rows = [row for row in require_list(payload, "instrument") if isinstance(row, dict)]
    perpetuals = [r for r in rows if r.get("typ") == PERPETUAL and r.get("state", "Open") == "Open"]
    if symbols:
        perpetuals = [r for r in perpetuals if r.get("symbol") in symbols]
    # USD-quoted first so XBTUSD/ETHUSD name the BTC/ETH price and value the XBt settle currency
    perpetuals.sort(key=lambda r: (r.get("quoteCurrency") != "USD", str(r.get("symbol"))))
    batch = Batch()
    settle_usd: dict[str, float] = {"USDt": 1.0, "USDT": 1.0}
    usd_marks: dict[str, tuple[str, float]] = {}  # base -> (symbol, mark) of its USD(T)-quoted contract
    for row in perpetuals:
        symbol = str(row.get("symbol"))
        if usd_quote(str(row.get("quoteCurrency", ""))) and row.get("markPrice"):
            usd_marks.setdefault(_base_asset(row, symbol), (symbol, num(row["markPrice"], f"{symbol}.markPrice")))
    if "BTC" in usd_marks:  # XBt-settled contracts are valued with the BTC/USD mark
        settle_usd["XBt"] = usd_marks["BTC"][1]
    for row in perpetuals:
        symbol = str(require(row, "symbol", "instrument"))
        base = _base_asset(row, symbol)
        mark = opt_num(row.get("markPrice"), f"{symbol}.markPrice")
        ts = ts_iso(require(row, "timestamp", symbol), f"{symbol}.timestamp")
        settle_raw = str(require(row, "settlCurrency", symbol))
        if mark and row.get("quoteCurrency") in ("USD", "USDT") and base not in {p.asset for p in batch.prices}:
            batch.prices.append(Price(venue, base, ts, mark, "mark"))
        batch.pool_members.append(PoolMember(venue, settle_raw, symbol, norm_asset(settle_raw)))
        batch.open_interest.append(
            _open_interest(venue, row, symbol, base, mark, ts, settle_raw, settle_usd, usd_marks.get(base)))
        rate = row.get("fundingRate")
        if rate is not None:
            next_ts = row.get("fundingTimestamp")
            batch.funding.append(FundingRate(
                venue=venue, symbol=symbol, ts=ts, funding_rate=num(rate, f"{symbol}.fundingRate"),
                funding_rate_raw=raw_text(rate), next_funding_ts=ts_iso(next_ts, f"{symbol}.fundingTimestamp") if next_ts else None,
                interval_h=interval_hours(row.get("fundingInterval")), mark_price=mark,
            ))
    return batch


def _base_asset(row: dict[str, Any], symbol: str) -> str:
    """``underlying`` (XBT -> BTC, ALTMEX, DEFIMEX); ``rootSymbol`` only when underlying is absent."""
    underlying = row.get("underlying")
    return norm_asset(str(underlying if underlying else require(row, "rootSymbol", symbol)))


def _open_interest(venue: str, row: dict[str, Any], symbol: str, base: str, mark: float | None, ts: datetime,
                   settle_raw: str, settle_usd: dict[str, float],
                   usd_twin: tuple[str, float] | None) -> OpenInterest:
    contracts_raw = require(row, "openInterest", symbol)
    contracts = num(contracts_raw, f"{symbol}.openInterest")
    value_raw = row.get("openValue")
    value_settle = float(scale_unit(value_raw, settle_raw, f"{symbol}.openValue")[1]) if value_raw is not None else None
    settle_price = settle_usd.get(settle_raw)
    quote = norm_asset(str(row.get("quoteCurrency") or "USD"))
    note: str | None = None
    if row.get("isInverse"):
        contract_size: float | None = 1.0  # one unit of the quote currency per contract (1 USD, 1 EUR)
        oi_base = contracts / mark if mark else None  # quote units / quote-per-base mark
        if usd_quote(quote):
            oi_usd: float | None = contracts
        elif usd_twin is not None and mark:
            twin_symbol, twin_mark = usd_twin
            rate = twin_mark / mark  # USD per quote unit, from two marks of the same underlying
            oi_usd = contracts * rate
            note = f"{quote}->USD {rate:.6g} = {twin_symbol} mark / {symbol} mark"
        else:
            oi_usd = None
            note = f"quoted in {quote}: no USD-quoted {base} contract in the response to convert with"
    elif row.get("isQuanto"):
        contract_size = None  # worth ``multiplier`` settle units per price point: no fixed base size
        oi_usd = value_settle * settle_price if value_settle is not None and settle_price else None
        oi_base = oi_usd / mark if oi_usd is not None and mark and usd_quote(quote) else None
    else:
        position_mult = opt_num(row.get("underlyingToPositionMultiplier"), f"{symbol}.underlyingToPositionMultiplier")
        contract_size = 1 / position_mult if position_mult else None
        oi_usd = value_settle * settle_price if value_settle is not None and settle_price else None
        if contract_size:
            oi_base = contracts * contract_size
        else:
            oi_base = value_settle / mark if value_settle is not None and mark else None
    if oi_usd is None and note is None and not settle_price and not row.get("isInverse"):
        note = f"settled in {settle_raw}: no USD price for it in the response"
    return OpenInterest(
        venue=venue, symbol=symbol, ts=ts, base_asset=base, settle_asset=norm_asset(settle_raw),
        oi_raw=raw_text(contracts_raw), oi_unit="contracts", contract_size=contract_size,
        inverse=bool(row.get("isInverse")), oi_base=oi_base, oi_usd=oi_usd, oi_usd_note=note,
    )


def parse_funding_history(venue: str, payload: Any) -> list[FundingRate]:
    """GET /api/v1/funding::

        [{"timestamp": "2016-05-07T12:00:00.000Z", "symbol": "ETHXBT",
          "fundingInterval": "2000-01-02T00:00:00.000Z", "fundingRate": 0.001089, "fundingRateDaily": 0.001089}]"""
    rows = []
    for index, row in enumerate(require_list(payload, "funding")):
        where = f"funding[{index}]"
        rate = require(row, "fundingRate", where)
        rows.append(FundingRate(
            venue=venue, symbol=str(require(row, "symbol", where)),
            ts=ts_iso(require(row, "timestamp", where), f"{where}.timestamp"),
            funding_rate=num(rate, f"{where}.fundingRate"), funding_rate_raw=raw_text(rate),
            interval_h=interval_hours(row.get("fundingInterval")),
        ))
    return rows


class BitmexAdapter(VenueAdapter):
    key = "bitmex"
    display_name = "BitMEX"
    default_base_url = "https://www.bitmex.com"
    capabilities = (
        Capability(FUNDS, "/api/v1/insurance", 86_400, "full", "XBt (1e-8 BTC), USDt (1e-6 USDT)",
                   "one fund per settle currency; cadence UNCONFIRMED (historically daily)"),
        Capability(OPEN_INTEREST, "/api/v1/instrument/active", 60, "none", "contracts",
                   "non-USD inverse (XBTEUR: 1 EUR/contract) converted to USD with the XBTUSD/XBTEUR marks; "
                   "index baskets (ALTMEX, DEFIMEX) keep their own underlying"),
        Capability(FUNDING, "/api/v1/instrument/active + /api/v1/funding", 600, "full", "rate per interval"),
        Capability(PRICES, "/api/v1/instrument/active", 60, "none", "USD mark"),
    )

    page_size = PAGE_SIZE

    def __init__(self, config: VenueConfig) -> None:
        super().__init__(config)  # the clients are made here (they connect on first use)
        self.client = JsonHttpClient(self.base_url, self.config.timeout_s)

    async def close(self) -> None:
        await self.client.close()

    async def _walk(self, path: str, since: datetime, parse: Callable[[Any], Batch],
                    in_walk: bool = True) -> AsyncIterator[Batch]:
        """Forward pages from ``since`` (``startTime``, oldest first, ``start`` offset), one batch per page;
        a backfill (``in_walk``) retries each page in place, a poll is retried whole by the runner."""
        start = 0
        while True:
            params = {"startTime": bitmex_time(since), "reverse": "false", "count": str(self.page_size),
                      "start": str(start)}
            payload = await (self.page(lambda params=params: self.client.get(path, params)) if in_walk
                             else self.client.get(path, params))
            page = parse(payload)
            yield page
            if len(require_list(payload, path)) < self.page_size:
                return
            start += self.page_size

    def _parse_funds(self, payload: Any) -> Batch:
        return parse_insurance(self.key, payload)

    def _parse_funding(self, payload: Any) -> Batch:
        rows = parse_funding_history(self.key, payload)
        wanted = set(self.config.symbols)
        return Batch(funding=[r for r in rows if not wanted or r.symbol in wanted])

    async def fetch_funds(self, since: datetime | None) -> Batch:
        if since is None:  # first poll: the newest page (a few hundred days of both currencies)
            payload = await self.client.get("/api/v1/insurance", {"reverse": "true", "count": str(self.page_size)})
            return parse_insurance(self.key, payload)
        batch = Batch()
        async for page in self._walk("/api/v1/insurance", since - POLL_OVERLAP, self._parse_funds, in_walk=False):
            batch.merge(page)
        return batch

    async def backfill_funds(self, since: datetime) -> AsyncIterator[Batch]:
        async for page in self._walk("/api/v1/insurance", since, self._parse_funds):
            yield page

    async def _instruments(self) -> Batch:
        payload = await self.client.get("/api/v1/instrument/active")
        return parse_instruments(self.key, payload, set(self.config.symbols) or None)

    async def fetch_open_interest(self, since: datetime | None) -> Batch:
        batch = await self._instruments()
        return Batch(open_interest=batch.open_interest, prices=batch.prices, pool_members=batch.pool_members)

    async def fetch_funding(self, since: datetime | None) -> Batch:
        batch = await self._instruments()
        return Batch(funding=batch.funding)

    async def fetch_prices(self, since: datetime | None) -> Batch:
        batch = await self._instruments()
        return Batch(prices=batch.prices)

    async def backfill_funding(self, since: datetime) -> AsyncIterator[Batch]:
        """Settled funding rates of every perpetual (``/api/v1/funding``), oldest first."""
        async for page in self._walk("/api/v1/funding", since, self._parse_funding):
            yield page
