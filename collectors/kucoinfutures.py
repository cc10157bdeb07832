"""KuCoin Futures: OI and funding only (no public insurance-fund endpoint was found), both from one call.

``/api/v1/contracts/active`` lists every contract with ``openInterest`` in **lots**: x ``multiplier`` =
base coin for linear contracts; inverse contracts (``isInverse``, multiplier -1) are 1 USD per lot.
KuCoin calls bitcoin XBT; it is stored as BTC.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from collectors.base import (
    FUNDING,
    OPEN_INTEREST,
    TS_FETCH,
    Batch,
    Capability,
    FundingRate,
    OpenInterest,
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
    opt_num,
    raw_text,
    require,
    require_list,
    ts_ms,
    usd_quote,
)
from records.config import VenueConfig


def _ok_data(payload: Any, where: str) -> Any:
    """KuCoin: ``{"code": "200000", "data": ...}``."""
    if str(require(payload, "code", where)) != "200000":
        raise PayloadError(f"{where}: code {payload.get('code')!r}: {payload.get('msg')!r}")
    return require(payload, "data", where)


def parse_contracts_active(venue: str, payload: Any, ts: datetime) -> Batch:
    """GET /api/v1/contracts/active::

        {"code": "200000", "data": [{"symbol": "XBTUSDTM", "baseCurrency": "XBT", "settleCurrency": "USDT",
          "multiplier": 0.001, "isInverse": false, "status": "Open", "openInterest": "6273644",
          "fundingFeeRate": 0.000641, "fundingRateGranularity": 28800000, "nextFundingRateTime": 1816952,
          "markPrice": 87351.75, "indexPrice": 87357.57, "expireDate": null, ...}]}

    The payload has no timestamp: rows are stamped ``ts`` (the fetch time). ``nextFundingRateTime`` is the
    time *left* in ms (``nextFundingRateDateTime``, when present, is absolute). Open perpetuals only."""
    batch = Batch()
    for row in require_list(_ok_data(payload, "contracts/active"), "contracts/active.data"):
        symbol = str(require(row, "symbol", "contracts/active.data"))
        if row.get("status", "Open") != "Open" or row.get("expireDate") is not None:
            continue
        base = norm_asset(str(require(row, "baseCurrency", symbol)))
        settle = norm_asset(str(require(row, "settleCurrency", symbol)))
        inverse = row.get("isInverse") is True
        multiplier = abs(dec(require(row, "multiplier", symbol), "multiplier"))
        mark = opt_num(row.get("markPrice"), "markPrice")
        oi_raw = row.get("openInterest")
        if oi_raw not in (None, ""):
            lots = dec(oi_raw, "openInterest")
            if inverse:  # lots of 1 USD
                usd_lots = float(lots * multiplier)
                oi_usd: float | None = usd_lots
                oi_base = usd_lots / mark if mark else None
            else:
                oi_base = float(lots * multiplier)
                oi_usd = oi_base * mark if mark else None
            quote = str(row.get("quoteCurrency") or ("USD" if inverse else settle))
            usd_quoted = usd_quote(quote)  # lots of 1 quote unit / a quote-currency mark: USD only if USD
            batch.open_interest.append(OpenInterest(
                venue=venue, symbol=symbol, ts=ts, base_asset=base, settle_asset=settle, oi_raw=raw_text(oi_raw),
                oi_unit="contracts", contract_size=float(multiplier), inverse=inverse, oi_base=oi_base,
                oi_usd=oi_usd if usd_quoted else None, ts_source=TS_FETCH,
                oi_usd_note=None if usd_quoted else no_usd_rate_note(quote),
            ))
        rate = row.get("fundingFeeRate")
        if rate is not None:
            granularity = opt_num(row.get("currentFundingRateGranularity") or row.get("fundingRateGranularity"),
                                  "fundingRateGranularity")
            next_ts = None
            if row.get("nextFundingRateDateTime"):
                next_ts = ts_ms(row["nextFundingRateDateTime"], "nextFundingRateDateTime")
            elif row.get("nextFundingRateTime") is not None:
                next_ts = ts + timedelta(milliseconds=int(Decimal(str(row["nextFundingRateTime"]))))
            batch.funding.append(FundingRate(
                venue=venue, symbol=symbol, ts=ts, funding_rate=num(rate, "fundingFeeRate"),
                funding_rate_raw=raw_text(rate), next_funding_ts=next_ts,
                interval_h=granularity / 3_600_000 if granularity else None, mark_price=mark, ts_source=TS_FETCH,
            ))
    return batch


def _now() -> datetime:
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


class KucoinFuturesAdapter(VenueAdapter):
    key = "kucoinfutures"
    display_name = "KuCoin Futures"
    default_base_url = "https://api-futures.kucoin.com"
    fund_label = "no published fund"
    capabilities = (
        Capability(OPEN_INTEREST, "/api/v1/contracts/active", 300, "none", "lots x multiplier",
                   "linear: base = lots x multiplier; inverse: 1 USD per lot; a contract not quoted in "
                   "USD/USDT/USDC gets no USD value (reason in oi_usd_note)"),
        Capability(FUNDING, "/api/v1/contracts/active", 600, "none", "rate per interval"),
    )

    def __init__(self, config: VenueConfig) -> None:
        super().__init__(config)  # the clients are made here (they connect on first use)
        self.exchange = use_exact_numbers(make_exchange("kucoinfutures", self.config.base_url_str(), self.config.timeout_s))

    async def close(self) -> None:
        await self.exchange.close()

    async def _contracts(self) -> Batch:
        payload = await ccxt_call(self.exchange, self.exchange.futuresPublicGetContractsActive())
        batch = parse_contracts_active(self.key, payload, _now())
        if self.config.symbols:
            batch.open_interest = [r for r in batch.open_interest if r.symbol in self.config.symbols]
            batch.funding = [r for r in batch.funding if r.symbol in self.config.symbols]
        return batch

    async def fetch_open_interest(self, since: datetime | None) -> Batch:
        return Batch(open_interest=(await self._contracts()).open_interest)

    async def fetch_funding(self, since: datetime | None) -> Batch:
        return Batch(funding=(await self._contracts()).funding)
