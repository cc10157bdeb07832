"""Crypto.com Exchange: one USD insurance fund with history (``public/get-insurance``), perpetuals' open
interest from ``public/get-tickers`` (``oi``) and hourly funding from ``public/get-valuations``.

Every endpoint is a ccxt ``cryptocom`` implicit method (the ``v1`` API, ``/exchange/v1/...``). No verbatim
example response of ``public/get-insurance`` was found: the parser follows the documented
``{"result": {"data": [{"v", "t"}]}}`` envelope, which is the one ``public/get-valuations`` uses (tested on
ccxt's comment of that), and checks every field it reads.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from functools import partial
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
from collectors.parsing import dec, num, opt_num, raw_text, require, require_list, ts_ms
from records.config import VenueConfig

FUND_INSTRUMENT = "USD"  # the insurance fund's instrument_name (one fund, in USD)
FUND_POOL = "USD"
PERP_SUFFIX = "-PERP"  # BTCUSD-PERP: base + quote, perpetual
QUOTE = "USD"
PAGE_COUNT = 500  # rows asked per get-insurance call (the venue's maximum is UNCONFIRMED: paging copes)
POLL_LOOKBACK = timedelta(days=2)  # first poll without a stored point: this much recent history
FUNDING_VALUATION = "estimated_funding_rate"  # what ccxt's fetchFundingRate reads (hourly)
PREFERRED = ("BTCUSD-PERP", "ETHUSD-PERP", "SOLUSD-PERP")


def _result(payload: Any, where: str) -> Any:
    """``{"id": -1, "method": ..., "code": 0, "result": {...}}``; a non-zero code is an error."""
    code = require(payload, "code", where)
    if code != 0:
        raise PayloadError(f"{where}: code={code!r} message={payload.get('message')!r}")
    return require(payload, "result", where)


def parse_insurance(venue: str, payload: Any, source: str = "snapshot") -> list[FundBalance]:
    """GET /exchange/v1/public/get-insurance?instrument_name=USD&count=N[&start_ts&end_ts]::

        {"id": -1, "method": "public/get-insurance", "code": 0,
         "result": {"instrument_name": "USD", "data": [{"v": "6243881.12", "t": 1764115200000}, ...]}}

    ``v`` is the fund balance (text) in ``instrument_name``, ``t`` epoch ms. Row order is UNCONFIRMED, so
    callers never rely on it."""
    result = _result(payload, "get-insurance")
    instrument = str(result.get("instrument_name") or FUND_INSTRUMENT)
    rows = []
    for index, row in enumerate(require_list(require(result, "data", "get-insurance.result"), "get-insurance.data")):
        where = f"get-insurance.data[{index}]"
        raw = require(row, "v", where)
        rows.append(FundBalance(
            venue=venue, pool_id=FUND_POOL, asset=instrument, ts=ts_ms(require(row, "t", where), f"{where}.t"),
            balance=dec(raw, f"{where}.v"), balance_raw=raw_text(raw), unit_raw=instrument, source=source,
        ))
    return rows


def parse_tickers(venue: str, payload: Any, symbols: list[str] | None = None) -> Batch:
    """GET /exchange/v1/public/get-tickers (every instrument)::

        {"id": -1, "method": "public/get-tickers", "code": 0, "result": {"data": [
          {"i": "AVAXUSD-PERP", "a": "13.209", "oi": "10888.9", "t": 1687402657575, ...}]}}

    Perpetuals only (``-PERP``): ``oi`` is the open interest in base coin (one side; both UNCONFIRMED),
    valued at ``a`` (last price, USD). One USD last price per base coin from the perpetuals."""
    result = _result(payload, "get-tickers")
    batch = Batch()
    for index, row in enumerate(require_list(require(result, "data", "get-tickers.result"), "get-tickers.data")):
        instrument = str(require(row, "i", f"get-tickers.data[{index}]"))
        if not instrument.endswith(PERP_SUFFIX) or (symbols and instrument not in symbols):
            continue
        oi_raw = row.get("oi")
        if oi_raw in (None, ""):
            continue
        pair = instrument[: -len(PERP_SUFFIX)]
        base = pair[: -len(QUOTE)] if pair.endswith(QUOTE) else pair
        ts = ts_ms(require(row, "t", instrument), f"{instrument}.t")
        last = opt_num(row.get("a"), f"{instrument}.a")
        oi_base = num(oi_raw, f"{instrument}.oi")
        batch.open_interest.append(OpenInterest(
            venue=venue, symbol=instrument, ts=ts, base_asset=base, settle_asset=QUOTE, oi_raw=raw_text(oi_raw),
            oi_unit="base", contract_size=1.0, inverse=False, oi_base=oi_base,
            oi_usd=oi_base * last if last is not None else None,
        ))
        if last is not None:
            batch.prices.append(Price(venue, base, ts, last, "last"))
    return batch


def parse_valuation_funding(venue: str, payload: Any) -> FundingRate | None:
    """GET /exchange/v1/public/get-valuations?instrument_name=X&valuation_type=estimated_funding_rate&count=1::

        {"id": -1, "method": "public/get-valuations", "code": 0,
         "result": {"data": [{"v": "-0.000001884", "t": 1687892400000}], "instrument_name": "BTCUSD-PERP"}}

    The hourly funding rate (Crypto.com settles funding every hour). None when the venue has no value."""
    result = _result(payload, "get-valuations")
    instrument = str(require(result, "instrument_name", "get-valuations.result"))
    data = require_list(require(result, "data", "get-valuations.result"), "get-valuations.data")
    if not data:
        return None
    newest = max(data, key=lambda row: int(require(row, "t", "get-valuations.data")))
    ts = ts_ms(newest["t"], f"{instrument}.t")
    raw = require(newest, "v", instrument)
    return FundingRate(
        venue=venue, symbol=instrument, ts=ts, funding_rate=num(raw, f"{instrument}.v"),
        funding_rate_raw=raw_text(raw), next_funding_ts=ts.replace(minute=0, second=0, microsecond=0)
        + timedelta(hours=1), interval_h=1.0,
    )


class CryptocomAdapter(VenueAdapter):
    key = "cryptocom"
    display_name = "Crypto.com Exchange"
    default_base_url = "https://api.crypto.com"
    capabilities = (
        Capability(FUNDS, "/exchange/v1/public/get-insurance?instrument_name=USD", 3_600,
                   "full (start_ts/end_ts/count; depth UNCONFIRMED)", "USD",
                   "one USD fund; update cadence and row order UNCONFIRMED (no verbatim example found)"),
        Capability(OPEN_INTEREST, "/exchange/v1/public/get-tickers (oi)", 300, "none", "base coin",
                   "perpetuals (-PERP); one side or both UNCONFIRMED"),
        Capability(FUNDING, "/exchange/v1/public/get-valuations?valuation_type=estimated_funding_rate", 3_600,
                   "none", "hourly rate"),
        Capability(PRICES, "/exchange/v1/public/get-tickers", 300, "none", "USD (last)"),
    )

    def __init__(self, config: VenueConfig) -> None:
        super().__init__(config)  # the clients are made here (they connect on first use)
        self.exchange = use_exact_numbers(make_exchange("cryptocom", self.config.base_url_str(), self.config.timeout_s))

    async def close(self) -> None:
        await self.exchange.close()

    async def _insurance(self, start: datetime | None, end: datetime | None, source: str) -> list[FundBalance]:
        params: dict[str, Any] = {"instrument_name": FUND_INSTRUMENT, "count": PAGE_COUNT}
        if start is not None:
            params["start_ts"] = int(start.timestamp() * 1000)
        if end is not None:
            params["end_ts"] = int(end.timestamp() * 1000)
        payload = await ccxt_call(self.exchange, self.exchange.v1PublicGetPublicGetInsurance(params))
        return parse_insurance(self.key, payload, source)

    async def fetch_funds(self, since: datetime | None) -> Batch:
        """Every point from the newest stored one on (a missed hour is picked up, duplicates dedupe)."""
        start = since if since is not None else datetime.now(UTC) - POLL_LOOKBACK
        return Batch(funds=await self._insurance(start, None, "snapshot"))

    async def backfill_funds(self, since: datetime) -> AsyncIterator[Batch]:
        """Walk back from now in pages of ``PAGE_COUNT`` (``end_ts`` = just before the oldest row seen)
        until a page is empty or reaches ``since``: correct whatever the venue's row order or page cap."""
        end: datetime | None = None
        while True:
            rows = await self.page(partial(self._insurance, since, end, "history"))
            rows = [r for r in rows if r.ts >= since and (end is None or r.ts <= end)]
            if not rows:
                return
            yield Batch(funds=rows)
            oldest = min(r.ts for r in rows)
            if oldest <= since or (end is not None and oldest >= end):
                return
            end = oldest - timedelta(milliseconds=1)

    async def _tickers(self) -> Batch:
        payload = await ccxt_call(self.exchange, self.exchange.v1PublicGetPublicGetTickers())
        return parse_tickers(self.key, payload, self.config.symbols or None)

    async def fetch_open_interest(self, since: datetime | None) -> Batch:
        tickers = await self._tickers()
        return Batch(open_interest=tickers.open_interest, prices=tickers.prices)

    async def fetch_prices(self, since: datetime | None) -> Batch:
        return Batch(prices=(await self._tickers()).prices)

    async def fetch_funding(self, since: datetime | None) -> Batch:
        """One valuations call per perpetual (the venue has no all-instrument funding call), preferred
        contracts first, at most ``max_symbols``."""
        perps = sorted({r.symbol for r in (await self._tickers()).open_interest},
                       key=lambda s: (s not in PREFERRED, PREFERRED.index(s) if s in PREFERRED else 0, s))
        batch = Batch()
        for instrument in perps[: self.config.max_symbols]:
            payload = await ccxt_call(self.exchange, self.exchange.v1PublicGetPublicGetValuations(
                {"instrument_name": instrument, "valuation_type": FUNDING_VALUATION, "count": 1}))
            rate = parse_valuation_funding(self.key, payload)
            if rate is not None:
                batch.funding.append(rate)
        return batch
