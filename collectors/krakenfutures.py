"""Kraken Futures: the "liquidity pool" statistic (Kraken's insurance-fund equivalent) as a USD time series,
OI and funding from the derivatives tickers.

The liquidity-pool endpoint's naming and its data key are UNCONFIRMED (``usdValue`` comes from a
third-party client; the official sample shows only the generic schema), so the parser accepts a few
alternative keys and otherwise fails naming the keys it found. The series is labelled as Kraken names
it, not as an insurance fund.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
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
from collectors.parsing import (
    dec,
    no_usd_rate_note,
    norm_asset,
    num,
    opt_dec,
    raw_text,
    require,
    require_list,
    ts_iso,
    ts_ms,
    ts_s,
    usd_quote,
)
from records.config import VenueConfig

log = logging.getLogger(__name__)

POOL_ID = "liquidity_pool"
# the data key of the series: the third-party client's name first, then plausible renames
POOL_VALUE_KEYS = ("usdValue", "usd_value", "value", "values", "balance", "liquidityPool", "liquidity_pool")
POLL_INTERVAL_S = 3_600  # bucket size requested (allowed: 60, 300, 900, 1800, 3600, 14400, 43200, 86400, 604800)
POLL_LOOKBACK = timedelta(days=2)
MAX_PAGES = 200
LINEAR_PREFIXES = ("PF", "FF")  # multi-collateral perpetuals / fixed-maturity futures: 1 contract = 1 base
INVERSE_PREFIXES = ("PI", "FI")  # inverse perpetuals / futures: 1 contract = 1 USD
MAX_HOURLY_RATE = Decimal("0.25")  # ccxt clamps Kraken's relative rate here: beyond it the unit is wrong


def _bucket_ts(value: Any, field: str) -> datetime:
    """Chart timestamps are epoch seconds (the request's ``since`` is); milliseconds are accepted too."""
    try:
        millis = abs(int(Decimal(str(value)))) >= 100_000_000_000
    except (ArithmeticError, ValueError):
        millis = False  # ts_s names the bad value
    return ts_ms(value, field) if millis else ts_s(value, field)


def parse_liquidity_pool(venue: str, payload: Any) -> tuple[list[FundBalance], bool]:
    """GET /api/charts/v1/analytics/liquidity-pool?since=<s>&interval=<s>::

        {"result": {"timestamp": [1676556478, ...], "more": false, "data": {"usdValue": ["95402118.37", ...]}}}

    Returns (one USD balance per bucket, ``more``). Null values (empty buckets) are skipped."""
    result = require(payload, "result", "liquidity-pool")
    timestamps = require_list(require(result, "timestamp", "liquidity-pool.result"), "liquidity-pool.timestamp")
    data = require(result, "data", "liquidity-pool.result")
    if not isinstance(data, dict):
        raise PayloadError(f"liquidity-pool.data: expected an object, got {type(data).__name__}")
    key = next((k for k in POOL_VALUE_KEYS if k in data), None)
    if key is None:
        raise PayloadError(f"liquidity-pool.data: no known value series ({', '.join(POOL_VALUE_KEYS)}); "
                           f"keys found: {', '.join(sorted(map(str, data))) or 'none'}")
    if key != POOL_VALUE_KEYS[0]:
        log.warning("krakenfutures liquidity-pool: value series served as %r, not usdValue", key)
    values = require_list(data[key], f"liquidity-pool.data.{key}")
    if len(values) != len(timestamps):
        raise PayloadError(f"liquidity-pool: {len(timestamps)} timestamps but {len(values)} {key} values")
    rows = []
    for stamp, value in zip(timestamps, values, strict=True):
        if value is None:
            continue
        amount = dec(value, f"liquidity-pool.{key}")
        rows.append(FundBalance(
            venue=venue, pool_id=POOL_ID, asset="USD", ts=_bucket_ts(stamp, "liquidity-pool.timestamp"),
            balance=amount, balance_raw=raw_text(value), unit_raw="USD", usd_value=amount,
            kind="liquidity_pool", source="history",
        ))
    return rows, bool(result.get("more", False))


def next_hour(ts: datetime) -> datetime:
    return ts.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)


def parse_tickers(venue: str, payload: Any) -> Batch:
    """GET /derivatives/api/v3/tickers::

        {"result": "success", "serverTime": "2022-02-18T14:16:29.440Z", "tickers": [
            {"symbol": "PF_ENJUSD", "tag": "perpetual", "pair": "ENJ:USD", "markPrice": 0.0434,
             "openInterest": 72513.0, "fundingRate": -0.000000756414717067, "indexPrice": 0.043391, ...},
            {"symbol": "in_xbtusd", "last": "40411", "lastTime": "2022-02-18T14:16:28.000Z"}]}

    OI is in contracts: 1 base coin for PF_/FF_, 1 USD for PI_/FI_. ``fundingRate`` is absolute per contract
    per hour, in the contract's margin currency: USD per base coin for PF_ (relative = fundingRate / markPrice,
    as ccxt computes it), base coin per 1 USD contract for PI_ (relative = fundingRate x markPrice; the
    inverse unit is UNCONFIRMED by a verbatim example, so a PI_ relative rate beyond +-25 %/h, ccxt's
    clamp, is refused as a unit error). ``funding_rate_raw`` is the absolute value exactly as served.
    Contracts not quoted in USD get no USD notional (see ``usd_quote``). Index tickers are skipped. All
    rows are stamped with ``serverTime``."""
    ts = ts_iso(require(payload, "serverTime", "tickers"), "serverTime")
    batch = Batch()
    priced: set[str] = set()
    for row in require_list(require(payload, "tickers", "tickers"), "tickers.tickers"):
        symbol = str(require(row, "symbol", "tickers"))
        prefix = symbol[:2].upper()
        if "openInterest" not in row or prefix not in LINEAR_PREFIXES + INVERSE_PREFIXES:
            continue
        pair = str(require(row, "pair", symbol))
        base = norm_asset(pair.split(":")[0])
        quote = norm_asset(pair.split(":")[-1]) if ":" in pair else "USD"
        usd_quoted = usd_quote(quote)
        inverse = prefix in INVERSE_PREFIXES
        mark = opt_dec(row.get("markPrice"), f"{symbol}.markPrice")
        oi_raw = row["openInterest"]
        oi = num(oi_raw, f"{symbol}.openInterest")
        if inverse:
            oi_usd: float | None = oi
            oi_base = oi / float(mark) if mark else None
        else:
            oi_base = oi
            oi_usd = oi * float(mark) if mark is not None else None
        batch.open_interest.append(OpenInterest(
            venue=venue, symbol=symbol, ts=ts, base_asset=base, settle_asset=base if inverse else quote,
            oi_raw=raw_text(oi_raw), oi_unit="contracts", contract_size=1.0, inverse=inverse,
            oi_base=oi_base, oi_usd=oi_usd if usd_quoted else None,  # quote / quote mark = base either way
            oi_usd_note=None if usd_quoted else no_usd_rate_note(quote),
        ))
        perpetual = str(row.get("tag", "")).lower() == "perpetual"
        rate_raw = row.get("fundingRate")
        if perpetual and rate_raw is not None and mark:
            absolute = dec(rate_raw, f"{symbol}.fundingRate")
            relative = absolute * mark if inverse else absolute / mark
            if abs(relative) > MAX_HOURLY_RATE:
                raise PayloadError(f"{symbol}.fundingRate: {raw_text(rate_raw)} gives {relative} per hour "
                                   f"({'inverse' if inverse else 'linear'}): unit changed?")
            batch.funding.append(FundingRate(
                venue=venue, symbol=symbol, ts=ts, funding_rate=float(relative),
                funding_rate_raw=raw_text(rate_raw), next_funding_ts=next_hour(ts), interval_h=1.0,
                mark_price=float(mark),
            ))
        index = row.get("indexPrice")
        if perpetual and not inverse and usd_quoted and index not in (None, "") and base not in priced:
            priced.add(base)
            batch.prices.append(Price(venue, base, ts, num(index, f"{symbol}.indexPrice"), "index"))
    return batch


class KrakenFuturesAdapter(VenueAdapter):
    key = "krakenfutures"
    display_name = "Kraken Futures"
    default_base_url = "https://futures.kraken.com"
    fund_label = "Liquidity pool"
    capabilities = (
        Capability(FUNDS, "/api/charts/v1/analytics/liquidity-pool", 3_600, "full (since/interval, more)", "USD",
                   "Kraken's liquidity pool (insurance-fund equivalent); naming and data key UNCONFIRMED"),
        Capability(OPEN_INTEREST, "/derivatives/api/v3/tickers", 60, "none", "contracts (1 base PF_, 1 USD PI_)",
                   "non-USD pairs (pair X:EUR, ...): oi_usd empty, reason in oi_usd_note"),
        Capability(FUNDING, "/derivatives/api/v3/tickers", 3_600, "none",
                   "hourly, relative = fundingRate / markPrice (PF_), x markPrice (PI_)",
                   "PI_ absolute unit (coin per USD contract) UNCONFIRMED; raw = absolute as served"),
        Capability(PRICES, "/derivatives/api/v3/tickers", 60, "none", "USD (indexPrice)"),
    )

    def __init__(self, config: VenueConfig) -> None:
        super().__init__(config)  # the clients are made here (they connect on first use)
        self.exchange = use_exact_numbers(make_exchange("krakenfutures", self.config.base_url_str(), self.config.timeout_s))

    async def close(self) -> None:
        await self.exchange.close()

    async def _pool_pages(self, start: datetime, in_walk: bool = False) -> AsyncIterator[list[FundBalance]]:
        """Walk the series forward from ``start``: while ``more``, continue after the last bucket."""
        since_s = int(start.timestamp())
        for _ in range(MAX_PAGES):
            params = {"since": since_s, "interval": POLL_INTERVAL_S}

            async def request(params: dict[str, int] = params) -> Any:
                return await ccxt_call(self.exchange, self.exchange.chartsGetAnalyticsLiquidityPool(params))

            payload = await (self.page(request) if in_walk else request())
            rows, more = parse_liquidity_pool(self.key, payload)
            if rows:
                yield rows
            if not more or not rows:
                return
            last_s = int(rows[-1].ts.timestamp())
            if last_s < since_s:
                raise PayloadError(f"liquidity-pool: page ends at {last_s}, before since={since_s}")
            since_s = last_s + 1

    async def fetch_funds(self, since: datetime | None) -> Batch:
        batch = Batch()
        async for rows in self._pool_pages(since or datetime.now(UTC) - POLL_LOOKBACK):
            batch.funds.extend(rows)
        return batch

    async def backfill_funds(self, since: datetime) -> AsyncIterator[Batch]:
        async for rows in self._pool_pages(since, in_walk=True):
            yield Batch(funds=rows)

    async def _tickers(self) -> Batch:
        return parse_tickers(self.key, await ccxt_call(self.exchange, self.exchange.publicGetTickers()))

    async def fetch_open_interest(self, since: datetime | None) -> Batch:
        tickers = await self._tickers()
        return Batch(open_interest=tickers.open_interest, prices=tickers.prices)

    async def fetch_funding(self, since: datetime | None) -> Batch:
        return Batch(funding=(await self._tickers()).funding)

    async def fetch_prices(self, since: datetime | None) -> Batch:
        return Batch(prices=(await self._tickers()).prices)
