"""Bitfinex derivatives (perpetuals margined in USDt, keys like ``tBTCF0:USTF0``): insurance fund, open
interest, funding and prices, all from the derivatives status rows (``/v2/status/deriv``), so fund coverage
needs no second call.

The rows are arrays: the field positions are venue quirks kept as data (``LIVE_FIELDS``); ``/hist`` rows
drop the leading KEY, so every position shifts down by one (``HIST_SHIFT``).

One shared fund, stored once. Every row repeats ``INSURANCE_FUND_BALANCE``, and the documented data shows
it is one fund for all USDt perpetuals, not one per pair: ccxt's captured rows give tXRPF0:USTF0 at
37,671,483.04 (2024-01-26 08:16 UTC) and tBTCF0:USTF0 at 37,671,589.79 (same day, 18:53 UTC), i.e. the same
balance on two pairs, moved by 106.75 USDt in ten hours; Bitfinex describes it as "the balance available to
the liquidation engine to absorb losses", with no per-pair wording. So the rows of one margin currency
(``USTF0``) whose fund values agree within ``SHARED_FUND_TOLERANCE`` of the newest row are stored as ONE
fund (pool ``USTF0``, every pair a member), stamped with the newest row's time. Should a poll ever show
values that disagree beyond that, each pair is stored as its own pool instead (nothing is averaged away).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
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
    PoolMember,
    Price,
    VenueAdapter,
)
from collectors.ccxt_client import ccxt_call, ccxt_request, make_exchange
from collectors.errors import PayloadError
from collectors.exact_json import use_exact_numbers
from collectors.parsing import dec, num, opt_dec, raw_text, require_list, ts_ms
from records.config import VenueConfig

# positions in a /v2/status/deriv row (documented field list; PLACEHOLDER positions omitted)
LIVE_FIELDS: dict[str, int] = {
    "key": 0, "mts": 1, "deriv_price": 3, "spot_price": 4, "insurance_fund": 6, "next_funding_mts": 8,
    "next_funding_accrued": 9, "current_funding": 12, "mark_price": 15, "open_interest": 18,
}
HIST_SHIFT = 1  # /v2/status/deriv/{key}/hist rows have no KEY: every other position is one lower
SETTLE_UNITS: dict[str, str] = {"UST": "USDT", "USD": "USD", "EUT": "EURT", "BTC": "BTC"}  # Bitfinex codes
FUNDING_INTERVAL_H = 8.0  # CURRENT_FUNDING is "funding applied in the current 8h period"
CONTRACT_SIZE = 1.0  # one contract = one unit of the base currency (Bitfinex derivative specs)
SHARED_FUND_TOLERANCE = Decimal("0.01")  # rows within 1 % of the newest row's fund are the same fund
HIST_LIMIT = 5_000  # Bitfinex's maximum rows per /hist call
LEAD_KEY = "tBTCF0:USTF0"  # the shared fund's history is read from this pair's rows
PREFERRED = (LEAD_KEY, "tETHF0:USTF0", "tSOLF0:USTF0", "tXRPF0:USTF0")


@dataclass(frozen=True, slots=True)
class StatusRow:
    """One derivatives status row, numbers as served (``None`` where Bitfinex sent null)."""

    key: str
    ts: datetime
    base: str
    settle_code: str  # e.g. USTF0
    insurance_fund: Any
    current_funding: Any
    next_funding_mts: Any
    mark_price: Any
    open_interest: Any
    raw: list[Any]


def split_key(key: str) -> tuple[str, str]:
    """``tBTCF0:USTF0`` -> (``BTC``, ``USTF0``): base currency and margin (settle) code of a perpetual."""
    body = key[1:] if key.startswith("t") else key
    base, sep, settle = body.partition(":")
    if not sep or not base.endswith("F0") or not settle.endswith("F0") or len(base) <= 2:
        raise PayloadError(f"bitfinex: {key!r} is not a derivative pair key (tBASEF0:QUOTEF0)")
    return base[:-2], settle


def settle_asset(settle_code: str) -> str:
    """``USTF0`` -> ``USDT`` (Bitfinex writes Tether USDt as UST)."""
    code = settle_code.removesuffix("F0")
    return SETTLE_UNITS.get(code, code.upper())


def parse_status_row(row: Any, key: str | None = None) -> StatusRow:
    """A live row (``key`` None: KEY is position 0) or a ``/hist`` row of ``key`` (positions shifted)."""
    values = require_list(row, "status/deriv row")
    shift = 0 if key is None else HIST_SHIFT

    def at(name: str) -> Any:
        index = LIVE_FIELDS[name] - shift
        return values[index] if index < len(values) else None

    pair = str(values[0]) if key is None and values else key
    if not pair:
        raise PayloadError("status/deriv row: no key")
    base, settle = split_key(pair)
    stamp = at("mts")
    if stamp is None:
        raise PayloadError(f"status/deriv {pair}: no MTS")
    return StatusRow(pair, ts_ms(stamp, "MTS"), base, settle, at("insurance_fund"), at("current_funding"),
                     at("next_funding_mts"), at("mark_price"), at("open_interest"), values)


def parse_status(payload: Any) -> list[StatusRow]:
    """GET /v2/status/deriv?keys=ALL (ccxt comment, 2024-01-26)::

        [["tXRPF0:USTF0", 1706256986000, null, 0.512705, 0.512395, null, 37671483.04, null, 1706284800000,
          0.00002353, 317, null, 0, null, null, 0.5123016, null, null, 2233562.03115, null, null, null,
          0.0005, 0.0025]]

    KEY, MTS, _, DERIV_PRICE, SPOT_PRICE, _, INSURANCE_FUND_BALANCE, _, NEXT_FUNDING_EVT_MTS,
    NEXT_FUNDING_ACCRUED, NEXT_FUNDING_STEP, _, CURRENT_FUNDING, _, _, MARK_PRICE, _, _, OPEN_INTEREST, ...
    Keys that are not derivative pairs are skipped."""
    rows = []
    for row in require_list(payload, "status/deriv"):
        values = require_list(row, "status/deriv row")
        if not values or not str(values[0]).endswith("F0"):
            continue
        rows.append(parse_status_row(values))
    return rows


def parse_status_hist(key: str, payload: Any) -> list[StatusRow]:
    """GET /v2/status/deriv/{key}/hist?start&end&limit&sort (ccxt comment, tBTCF0:USTF0, 2024-01-26)::

        [[1706295191000, null, 42152.425382, 42133, null, 37671589.7853521, null, 1706313600000, 0.00018734,
          3343, null, 0.00007587, null, null, 42134.1, null, null, 5775.20348804, null, null, null, 0.0005,
          0.0025]]

    The live row without KEY (MTS first)."""
    return [parse_status_row(row, key) for row in require_list(payload, f"status/deriv/{key}/hist")]


def fund_pools(rows: list[StatusRow]) -> dict[str, list[StatusRow]]:
    """pool id -> its rows: one pool per margin code when the rows' fund values agree (the shared fund),
    else one pool per pair."""
    groups: dict[str, list[StatusRow]] = {}
    for row in rows:
        if row.insurance_fund is not None:
            groups.setdefault(row.settle_code, []).append(row)
    pools: dict[str, list[StatusRow]] = {}
    for settle, members in groups.items():
        newest = max(members, key=lambda r: r.ts)
        reference = dec(newest.insurance_fund, "INSURANCE_FUND_BALANCE")
        band = abs(reference) * SHARED_FUND_TOLERANCE
        if all(abs(dec(r.insurance_fund, "INSURANCE_FUND_BALANCE") - reference) <= band for r in members):
            pools[settle] = members
        else:
            pools.update({r.key: [r] for r in members})
    return pools


def fund_batch(venue: str, pools: dict[str, list[StatusRow]]) -> Batch:
    """One balance per pool (its newest row) and every pair as a member."""
    batch = Batch()
    for pool_id, members in pools.items():
        newest = max(members, key=lambda r: r.ts)
        asset = settle_asset(newest.settle_code)
        batch.funds.append(FundBalance(
            venue=venue, pool_id=pool_id, asset=asset, ts=newest.ts,
            balance=dec(newest.insurance_fund, "INSURANCE_FUND_BALANCE"),
            balance_raw=raw_text(newest.insurance_fund), unit_raw=newest.settle_code.removesuffix("F0"),
        ))
        batch.pool_members.extend(PoolMember(venue, pool_id, r.key, asset) for r in members)
    return batch


def history_funds(venue: str, pool_id: str, rows: list[StatusRow]) -> list[FundBalance]:
    """Each /hist row of the lead pair is one point of the (shared) fund."""
    return [FundBalance(venue=venue, pool_id=pool_id, asset=settle_asset(r.settle_code), ts=r.ts,
                        balance=dec(r.insurance_fund, "INSURANCE_FUND_BALANCE"),
                        balance_raw=raw_text(r.insurance_fund), unit_raw=r.settle_code.removesuffix("F0"),
                        source="history")
            for r in rows if r.insurance_fund is not None]


def market_batch(venue: str, rows: list[StatusRow]) -> Batch:
    """OI (contracts of one base unit; one side or both UNCONFIRMED: stored as served), funding (the
    current 8 h period's rate) and the mark price of each row."""
    batch = Batch()
    priced: set[tuple[str, datetime]] = set()
    for row in rows:
        mark = opt_dec(row.mark_price, "MARK_PRICE")
        settle = settle_asset(row.settle_code)
        if row.open_interest is not None:
            contracts = dec(row.open_interest, "OPEN_INTEREST")
            oi_base = float(contracts) * CONTRACT_SIZE
            batch.open_interest.append(OpenInterest(
                venue=venue, symbol=row.key, ts=row.ts, base_asset=row.base, settle_asset=settle,
                oi_raw=raw_text(row.open_interest), oi_unit="contracts", contract_size=CONTRACT_SIZE, inverse=False,
                oi_base=oi_base, oi_usd=oi_base * float(mark) if mark is not None else None,
            ))
        if row.current_funding is not None:
            next_mts = row.next_funding_mts
            batch.funding.append(FundingRate(
                venue=venue, symbol=row.key, ts=row.ts, funding_rate=num(row.current_funding, "CURRENT_FUNDING"),
                funding_rate_raw=raw_text(row.current_funding),
                next_funding_ts=ts_ms(next_mts, "NEXT_FUNDING_EVT_MTS") if next_mts is not None else None,
                interval_h=FUNDING_INTERVAL_H, mark_price=float(mark) if mark is not None else None,
            ))
        if mark is not None and settle in ("USDT", "USD") and (row.base, row.ts) not in priced:
            priced.add((row.base, row.ts))
            batch.prices.append(Price(venue, row.base, row.ts, float(mark), "mark"))
    return batch


def _rank(key: str) -> tuple[bool, int, str]:
    return key not in PREFERRED, PREFERRED.index(key) if key in PREFERRED else 0, key


class BitfinexAdapter(VenueAdapter):
    key = "bitfinex"
    display_name = "Bitfinex derivatives"
    default_base_url = "https://api-pub.bitfinex.com"
    fund_label = "Insurance fund (one shared USDt fund)"
    capabilities = (
        Capability(FUNDS, "/v2/status/deriv?keys=ALL (+ /v2/status/deriv/{key}/hist)", 300,
                   "full (≤ 5,000 rows per call; depth UNCONFIRMED)", "USDt (UST)",
                   "INSURANCE_FUND_BALANCE repeated on every pair: one shared USDt fund (pool USTF0), stored once"),
        Capability(OPEN_INTEREST, "/v2/status/deriv?keys=ALL", 60, "full (/hist rows)", "contracts (1 base unit)",
                   "one side or both UNCONFIRMED (stored as served)"),
        Capability(FUNDING, "/v2/status/deriv?keys=ALL", 600, "full (/hist rows, via open_interest backfill)",
                   "rate per 8 h period (CURRENT_FUNDING)"),
        Capability(PRICES, "/v2/status/deriv?keys=ALL", 60, "full (/hist rows, via open_interest backfill)",
                   "USDt (MARK_PRICE)"),
    )

    def __init__(self, config: VenueConfig) -> None:
        super().__init__(config)  # the clients are made here (they connect on first use)
        self.exchange = use_exact_numbers(
            make_exchange("bitfinex", self.config.base_url_str(), self.config.timeout_s))

    async def close(self) -> None:
        await self.exchange.close()

    def _keep(self, key: str) -> bool:
        return not self.config.symbols or key in self.config.symbols

    async def _status(self) -> list[StatusRow]:
        payload = await ccxt_call(self.exchange, self.exchange.publicGetStatusDeriv({"keys": "ALL"}))
        return parse_status(payload)

    async def fetch_funds(self, since: datetime | None) -> Batch:
        """The fund from every pair's row (the membership needs them all, whatever ``symbols`` says)."""
        return fund_batch(self.key, fund_pools(await self._status()))

    async def fetch_open_interest(self, since: datetime | None) -> Batch:
        batch = market_batch(self.key, [r for r in await self._status() if self._keep(r.key)])
        return Batch(open_interest=batch.open_interest)

    async def fetch_funding(self, since: datetime | None) -> Batch:
        batch = market_batch(self.key, [r for r in await self._status() if self._keep(r.key)])
        return Batch(funding=batch.funding)

    async def fetch_prices(self, since: datetime | None) -> Batch:
        batch = market_batch(self.key, [r for r in await self._status() if self._keep(r.key)])
        return Batch(prices=batch.prices)

    async def _walk(self, key: str, since: datetime) -> AsyncIterator[list[StatusRow]]:
        """Pages of ``key``'s /hist rows, newest first, back to ``since`` (end moves below each page)."""
        start = int(since.timestamp() * 1000)
        end: int | None = None
        while True:
            params: dict[str, Any] = {"symbol": key, "start": start, "limit": HIST_LIMIT, "sort": -1}
            if end is not None:
                params["end"] = end
            payload = await self.page(ccxt_request(self.exchange, "publicGetStatusDerivSymbolHist", params))
            rows = [r for r in parse_status_hist(key, payload) if r.ts >= since]
            yield rows
            if len(payload) < HIST_LIMIT or not rows:
                return
            end = int(min(r.ts for r in rows).timestamp() * 1000) - 1

    async def backfill_funds(self, since: datetime) -> AsyncIterator[Batch]:
        """The fund's history from the lead pair's rows (the fund is shared: one pair's rows suffice);
        a per-pair fund (never seen) would be walked pair by pair."""
        current = await self.page(lambda: self.fetch_funds(None))
        yield current
        leads: dict[str, str] = {}
        for member in sorted(current.pool_members, key=lambda m: _rank(m.symbol)):
            leads.setdefault(member.pool_id, member.symbol)
        for pool_id, lead in leads.items():
            async for rows in self._walk(lead, since):
                yield Batch(funds=history_funds(self.key, pool_id, rows))

    async def backfill_open_interest(self, since: datetime) -> AsyncIterator[Batch]:
        """Every pair's /hist rows (capped at ``max_symbols``): OI, funding and mark prices."""
        keys = sorted((r.key for r in await self.page(self._status) if self._keep(r.key)), key=_rank)
        for key in keys[: self.config.max_symbols]:
            async for rows in self._walk(key, since):
                yield market_batch(self.key, rows)
