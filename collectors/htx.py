"""HTX USDT-margined swaps: insurance fund per contract (current + daily history), estimated clawback,
OI and funding for every contract in one call each.

ccxt 4.5.90 has no working implicit method for the linear insurance endpoints (its only linear entry points
at ``/swap-api/v1/linear-swap-api/...``), so those, and the all-contract OI / funding endpoints, go through
``exchange.request(path, ['contract', 'public'])``, which signs to ``{base}/linear-swap-api/v1/...``.
HTX serves balances as JSON numbers: the client decodes them as ``Decimal`` (``collectors.exact_json``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from collectors.base import (
    ADL,
    FUNDING,
    FUNDS,
    OPEN_INTEREST,
    AdlSignal,
    Batch,
    Capability,
    FundBalance,
    FundingRate,
    OpenInterest,
    PoolMember,
    VenueAdapter,
)
from collectors.ccxt_client import ccxt_call, make_exchange
from collectors.errors import PayloadError
from collectors.exact_json import use_exact_numbers
from collectors.parsing import dec, num, raw_text, require, require_list, to_json, ts_ms
from records.config import VenueConfig

API = ["contract", "public"]
RISK_INFO = "linear-swap-api/v1/swap_risk_info"
INSURANCE_HISTORY = "linear-swap-api/v1/swap_insurance_fund"
OPEN_INTEREST_ALL = "linear-swap-api/v1/swap_open_interest"
BATCH_FUNDING = "linear-swap-api/v1/swap_batch_funding_rate"
HISTORY_PAGE_SIZE = 100  # HTX's maximum
MARGIN_ASSET = "USDT"  # every linear-swap-api contract is USDT-margined


def _ok_data(payload: Any, where: str) -> Any:
    """HTX wraps everything as ``{"status": "ok", "data": ..., "ts": ...}``."""
    if require(payload, "status", where) != "ok":
        raise PayloadError(f"{where}: status {payload.get('status')!r}")
    return require(payload, "data", where)


def _optional(value: Any) -> Any:
    """HTX writes absent values as the text "null" (``estimated_rate``, ``next_funding_time``)."""
    return None if value in (None, "", "null") else value


def parse_risk_info(venue: str, payload: Any) -> Batch:
    """GET /linear-swap-api/v1/swap_risk_info[?contract_code][&business_type]::

        {"status": "ok", "ts": 1638754774555,
         "data": [{"contract_code": "BTC-USDT", "insurance_fund": 16174.621898868114,
                   "estimated_clawback": 0, "business_type": "swap", "pair": "BTC-USDT"}, ...]}

    One fund row per contract (USDT, stamped with the response ``ts``) and one ``htx_clawback`` ADL signal
    carrying ``estimated_clawback`` (the clawback rate HTX expects to apply if the fund runs short)."""
    rows = require_list(_ok_data(payload, "swap_risk_info"), "swap_risk_info.data")
    ts = ts_ms(require(payload, "ts", "swap_risk_info"), "ts")
    batch = Batch()
    for row in rows:
        code = str(require(row, "contract_code", "swap_risk_info.data"))
        raw = require(row, "insurance_fund", code)
        batch.funds.append(FundBalance(
            venue=venue, pool_id=code, asset=MARGIN_ASSET, ts=ts, balance=dec(raw, "insurance_fund"),
            balance_raw=raw_text(raw), unit_raw=MARGIN_ASSET,
        ))
        batch.pool_members.append(PoolMember(venue, code, code, MARGIN_ASSET))
        clawback = require(row, "estimated_clawback", code)
        batch.adl.append(AdlSignal(
            venue=venue, scope=code, ts=ts, signal_type="htx_clawback", value=num(clawback, "estimated_clawback"),
            detail=to_json({"business_type": row.get("business_type"), "pair": row.get("pair"),
                            "estimated_clawback": raw_text(clawback)}),
        ))
    return batch


@dataclass(frozen=True, slots=True)
class HistoryPage:
    rows: list[FundBalance]  # points at/after ``since``
    current_page: int
    total_page: int
    reached_since: bool  # the page held a point older than ``since``: stop paging

    @property
    def last(self) -> bool:
        return self.reached_since or self.current_page >= self.total_page


def parse_insurance_history(venue: str, payload: Any, since: datetime | None = None) -> HistoryPage:
    """GET /linear-swap-api/v1/swap_insurance_fund?contract_code=BTC-USDT&page_index=1&page_size=100::

        {"status": "ok", "ts": 1638754881217,
         "data": {"contract_code": "BTC-USDT", "symbol": "BTC", "business_type": "swap", "pair": "BTC-USDT",
                  "tick": [{"insurance_fund": 16174.621898868114, "ts": 1638691200000}, ...],
                  "total_page": 1, "current_page": 1, "total_size": 4}}

    Daily points (08:00 UTC), newest first; points older than ``since`` are dropped."""
    data = _ok_data(payload, "swap_insurance_fund")
    code = str(require(data, "contract_code", "swap_insurance_fund.data"))
    rows = []
    reached_since = False
    for index, tick in enumerate(require_list(require(data, "tick", code), f"{code}.tick")):
        where = f"{code}.tick[{index}]"
        ts = ts_ms(require(tick, "ts", where), "ts")
        if since is not None and ts < since:
            reached_since = True
            continue
        raw = require(tick, "insurance_fund", where)
        rows.append(FundBalance(
            venue=venue, pool_id=code, asset=MARGIN_ASSET, ts=ts, balance=dec(raw, "insurance_fund"),
            balance_raw=raw_text(raw), unit_raw=MARGIN_ASSET, source="history",
        ))
    return HistoryPage(rows, int(require(data, "current_page", code)), int(require(data, "total_page", code)),
                       reached_since)


def parse_open_interest(venue: str, payload: Any) -> list[OpenInterest]:
    """GET /linear-swap-api/v1/swap_open_interest (all contracts)::

        {"status": "ok", "ts": 1638754059540,
         "data": [{"contract_code": "BTC-USDT", "symbol": "BTC", "volume": 78696, "amount": 78.696,
                   "value": 3823138.2456, "business_type": "swap", "contract_type": "swap", ...}, ...]}

    ``volume`` = contracts, ``amount`` = base coin, ``value`` = USDT, each the **sum of both sides** (HTX
    docs). Stored one-sided like every other venue (and like Bybit's ``openInterest``): ``oi_base`` =
    amount / 2, ``oi_usd`` = value / 2; ``oi_raw`` keeps the both-sides contract count as served and
    ``oi_unit`` says so (``contracts:volume/2``). Perpetual swaps only (dated futures skipped)."""
    rows = require_list(_ok_data(payload, "swap_open_interest"), "swap_open_interest.data")
    ts = ts_ms(require(payload, "ts", "swap_open_interest"), "ts")
    result = []
    for row in rows:
        code = str(require(row, "contract_code", "swap_open_interest.data"))
        if row.get("business_type", "swap") != "swap" or row.get("contract_type", "swap") != "swap":
            continue
        volume_raw = require(row, "volume", code)
        volume = dec(volume_raw, "volume")
        amount = dec(require(row, "amount", code), "amount")
        value = dec(require(row, "value", code), "value")
        result.append(OpenInterest(
            venue=venue, symbol=code, ts=ts, base_asset=str(row.get("symbol") or code.split("-")[0]),
            settle_asset=MARGIN_ASSET, oi_raw=raw_text(volume_raw), oi_unit="contracts:volume/2",
            contract_size=float(amount / volume) if volume else None, inverse=False,
            oi_base=float(amount / 2), oi_usd=float(value / 2),
        ))
    return result


def parse_funding(venue: str, payload: Any) -> list[FundingRate]:
    """GET /linear-swap-api/v1/swap_batch_funding_rate (a list) or swap_funding_rate?contract_code (one)::

        {"status": "ok", "ts": 1603696494714,
         "data": {"contract_code": "BTC-USDT", "funding_rate": "0.000100000000000000",
                  "funding_time": "1603699200000", "estimated_rate": "null", "next_funding_time": "null", ...}}

    ``funding_rate`` applies at ``funding_time`` (the coming settlement); rows are stamped with ``ts``."""
    data = _ok_data(payload, "swap_funding_rate")
    rows = [data] if isinstance(data, dict) else require_list(data, "swap_funding_rate.data")
    ts = ts_ms(require(payload, "ts", "swap_funding_rate"), "ts")
    result = []
    for row in rows:
        code = str(require(row, "contract_code", "swap_funding_rate.data"))
        rate_raw = _optional(require(row, "funding_rate", code))
        if rate_raw is None:
            continue
        funding_time = _optional(row.get("funding_time"))
        result.append(FundingRate(
            venue=venue, symbol=code, ts=ts, funding_rate=num(rate_raw, "funding_rate"),
            funding_rate_raw=raw_text(rate_raw),
            next_funding_ts=ts_ms(funding_time, "funding_time") if funding_time else None,
        ))
    return result


class HtxAdapter(VenueAdapter):
    key = "htx"
    display_name = "HTX USDT-M swaps"
    default_base_url = "https://api.hbdm.com"
    capabilities = (
        Capability(FUNDS, "/linear-swap-api/v1/swap_risk_info + swap_insurance_fund", 86_400,
                   "full (paged daily points, 08:00 UTC)", "USDT per contract_code",
                   "poll = current balance (swap_risk_info); backfill = daily history per contract"),
        Capability(OPEN_INTEREST, "/linear-swap-api/v1/swap_open_interest", 300, "none", "contracts (both sides)",
                   "HTX reports the sum of both sides: oi_base/oi_usd stored one side (halved), oi_raw as served"),
        Capability(FUNDING, "/linear-swap-api/v1/swap_batch_funding_rate", 600, "none", "rate per interval"),
        Capability(ADL, "/linear-swap-api/v1/swap_risk_info", 600, "none", "estimated_clawback rate"),
    )

    def __init__(self, config: VenueConfig) -> None:
        super().__init__(config)  # the clients are made here (they connect on first use)
        self.exchange = use_exact_numbers(
            make_exchange("htx", self.config.base_url_str(), self.config.timeout_s))

    async def close(self) -> None:
        await self.exchange.close()

    async def _get(self, path: str, params: dict[str, Any] | None = None) -> Any:
        return await ccxt_call(self.exchange, self.exchange.request(path, API, "GET", params or {}))

    def _keep(self, symbol: str) -> bool:
        return not self.config.symbols or symbol in self.config.symbols

    async def _risk_info(self) -> Batch:
        batch = parse_risk_info(self.key, await self._get(RISK_INFO))
        batch.funds = [f for f in batch.funds if self._keep(f.pool_id)]
        batch.pool_members = [m for m in batch.pool_members if self._keep(m.pool_id)]
        batch.adl = [a for a in batch.adl if self._keep(a.scope)]
        return batch

    async def fetch_funds(self, since: datetime | None) -> Batch:
        batch = await self._risk_info()
        return Batch(funds=batch.funds, pool_members=batch.pool_members)

    async def fetch_adl(self, since: datetime | None) -> Batch:
        return Batch(adl=(await self._risk_info()).adl)

    async def backfill_funds(self, since: datetime) -> AsyncIterator[Batch]:
        """Page each contract's daily history, newest first, until ``since`` or the last page."""
        current = await self.page(self._risk_info)
        codes = [f.pool_id for f in current.funds][: self.config.max_symbols]
        for code in codes:
            page = 1
            while True:
                params = {"contract_code": code, "page_index": page, "page_size": HISTORY_PAGE_SIZE}
                payload = await self.page(lambda params=params: self._get(INSURANCE_HISTORY, params))
                history = parse_insurance_history(self.key, payload, since)
                yield Batch(funds=history.rows, pool_members=[PoolMember(self.key, code, code, MARGIN_ASSET)])
                if history.last:
                    break
                page = history.current_page + 1

    async def fetch_open_interest(self, since: datetime | None) -> Batch:
        rows = parse_open_interest(self.key, await self._get(OPEN_INTEREST_ALL))
        return Batch(open_interest=[r for r in rows if self._keep(r.symbol)])

    async def fetch_funding(self, since: datetime | None) -> Batch:
        rows = parse_funding(self.key, await self._get(BATCH_FUNDING))
        return Batch(funding=[r for r in rows if self._keep(r.symbol)])

