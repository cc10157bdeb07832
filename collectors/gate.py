"""Gate futures (USDT- and BTC-settled perpetuals): insurance ledger, per-contract OI, funding, index prices.

Gate publishes its futures insurance fund as a ledger per settle currency, but only the *latest N rows*
(``limit`` ≤ 1000, no time filter): a poll asks for the few rows since the newest stored one, a backfill
asks for all 1000 Gate keeps. OI comes from ``contract_stats`` (5-minute buckets that also carry long/short
liquidation size and USD: stored per completed bucket as ``liquidation_totals``); funding from tickers +
contracts.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from collectors.base import (
    ADL,
    FUNDING,
    FUNDS,
    LIQUIDATION_TOTALS,
    OPEN_INTEREST,
    PRICES,
    TS_FETCH,
    TS_VENUE,
    AdlSignal,
    Batch,
    Capability,
    FundBalance,
    FundingRate,
    LiquidationTotal,
    OpenInterest,
    PoolMember,
    Price,
    VenueAdapter,
)
from collectors.ccxt_client import ccxt_call, make_exchange
from collectors.errors import PayloadError
from collectors.exact_json import use_exact_numbers
from collectors.parsing import dec, num, opt_num, raw_text, require, require_list, to_json, ts_ms, ts_s
from records.config import VenueConfig

SETTLES = ("usdt", "btc")
INSURANCE_MAX_ROWS = 1000  # everything Gate keeps: the endpoint has no time filter
INSURANCE_DEFAULT_ROWS = 100  # Gate's default ``limit``: the first poll, before anything is stored
PREFERRED_BASES = ("BTC", "ETH", "SOL", "BNB", "XRP", "DOGE")


def pool_id(settle: str) -> str:
    """One insurance fund per settle currency of the perpetual futures book."""
    return f"futures:{settle.lower()}"


@dataclass(frozen=True, slots=True)
class GateContract:
    """The contract metadata OI and funding need (from /futures/{settle}/contracts)."""

    name: str  # BTC_USDT, BTC_USD
    base: str
    settle: str  # USDT, BTC
    multiplier: Decimal  # base per contract (``quanto_multiplier``); inverse contracts are 1 USD each
    inverse: bool
    funding_interval_s: int | None
    funding_next_apply: int | None  # epoch seconds


def parse_contracts(settle: str, payload: Any) -> dict[str, GateContract]:
    """GET /api/v4/futures/{settle}/contracts::

        [{"name": "BTC_USDT", "type": "direct", "quanto_multiplier": "0.0001", "funding_rate": "0.002053",
          "funding_interval": 28800, "funding_next_apply": 1610035200, "mark_price": "37985.6",
          "index_price": "37954.92", "in_delisting": false, ...}]

    ``type`` is ``direct`` (linear) or ``inverse`` (BTC-settled BTC_USD: one contract = 1 USD)."""
    contracts: dict[str, GateContract] = {}
    for row in require_list(payload, f"contracts[{settle}]"):
        name = str(require(row, "name", f"contracts[{settle}]"))
        if row.get("in_delisting") is True:
            continue
        inverse = str(row.get("type", "direct")) == "inverse"
        multiplier_raw = row.get("quanto_multiplier")
        multiplier = Decimal(1) if inverse or multiplier_raw in (None, "", "0") else dec(multiplier_raw, name)
        interval = row.get("funding_interval")
        next_apply = row.get("funding_next_apply")
        contracts[name] = GateContract(
            name=name, base=name.split("_")[0], settle=settle.upper(), multiplier=multiplier, inverse=inverse,
            funding_interval_s=int(interval) if interval else None,
            funding_next_apply=int(next_apply) if next_apply else None,
        )
    return contracts


def parse_insurance(venue: str, settle: str, payload: Any, members: list[str] | None = None,
                    since: datetime | None = None) -> Batch:
    """GET /api/v4/futures/{settle}/insurance?limit=N::

        [{"t": 1543968000, "b": "83.0031"}]

    ``t`` is epoch **seconds**, ``b`` the balance in the settle currency (text). Rows older than ``since``
    are dropped (a backfill bounded in time); membership rows name the settle book's contracts."""
    asset = settle.upper()
    pool = pool_id(settle)
    batch = Batch()
    for index, row in enumerate(require_list(payload, f"insurance[{settle}]")):
        where = f"insurance[{settle}][{index}]"
        ts = ts_s(require(row, "t", where), "t")
        if since is not None and ts < since:
            continue
        raw = require(row, "b", where)
        batch.funds.append(FundBalance(
            venue=venue, pool_id=pool, asset=asset, ts=ts, balance=dec(raw, "b"), balance_raw=raw_text(raw),
            unit_raw=asset, source="history",
        ))
    batch.pool_members.extend(PoolMember(venue, pool, symbol, asset) for symbol in members or [])
    return batch


def parse_contract_stats(venue: str, contract: GateContract, payload: Any) -> OpenInterest | None:
    """GET /api/v4/futures/{settle}/contract_stats?contract=BTC_USDT&interval=5m&limit=1::

        [{"time": 1603865400, "open_interest": 124724, "open_interest_usd": 1511, "mark_price": "8865",
          "long_liq_size": 0, "long_liq_usd": 0, "short_liq_size": 0, "short_liq_usd": 0, "lsr_taker": 100, ...}]

    The newest bucket's ``open_interest`` is in **contracts** (x ``quanto_multiplier`` = base coin for
    linear contracts; 1 USD each for inverse); ``open_interest_usd`` is Gate's own USD notional. The
    ``*_liq_*`` fields are Gate's liquidation totals (``parse_liquidation_totals``). Empty list -> None."""
    rows = require_list(payload, f"contract_stats[{contract.name}]")
    if not rows:
        return None
    row = max(rows, key=lambda r: int(require(r, "time", f"contract_stats[{contract.name}]")))
    where = f"contract_stats[{contract.name}]"
    raw = require(row, "open_interest", where)
    contracts = dec(raw, "open_interest")
    mark = opt_num(row.get("mark_price"), "mark_price")
    usd = opt_num(row.get("open_interest_usd"), "open_interest_usd")
    if contract.inverse:
        usd = usd if usd is not None else float(contracts * contract.multiplier)
        base = usd / mark if mark else None
    else:
        base = float(contracts * contract.multiplier)
        if usd is None and mark:
            usd = base * mark
    return OpenInterest(
        venue=venue, symbol=contract.name, ts=ts_s(require(row, "time", where), "time"), base_asset=contract.base,
        settle_asset=contract.settle, oi_raw=raw_text(raw), oi_unit="contracts",
        contract_size=float(contract.multiplier), inverse=contract.inverse, oi_base=base, oi_usd=usd,
    )


STATS_BUCKET_S = 300
STATS_ROWS = 3  # newest (running) bucket for OI + two completed ones for liquidation totals (poll jitter)


def parse_liquidation_totals(venue: str, contract: GateContract, payload: Any,
                             completed_only: bool = True) -> list[LiquidationTotal]:
    """The same ``contract_stats`` rows as liquidation totals: ``long_liq_usd`` / ``short_liq_usd`` (USD),
    ``*_liq_amount`` (base coin), ``*_liq_size`` (contracts, kept as served). ``long`` = long positions
    liquidated. The newest bucket is still running, so by default only the older ones are returned."""
    where = f"contract_stats[{contract.name}]"
    rows = sorted(require_list(payload, where), key=lambda r: int(require(r, "time", where)))
    if completed_only:
        rows = rows[:-1]
    totals = []
    for row in rows:
        totals.append(LiquidationTotal(
            venue=venue, symbol=contract.name, ts=ts_s(require(row, "time", where), "time"),
            interval_s=STATS_BUCKET_S,
            long_usd=opt_num(row.get("long_liq_usd"), "long_liq_usd"),
            short_usd=opt_num(row.get("short_liq_usd"), "short_liq_usd"),
            long_base=opt_num(row.get("long_liq_amount"), "long_liq_amount"),
            short_base=opt_num(row.get("short_liq_amount"), "short_liq_amount"),
            long_contracts_raw=None if row.get("long_liq_size") is None else raw_text(row["long_liq_size"]),
            short_contracts_raw=None if row.get("short_liq_size") is None else raw_text(row["short_liq_size"]),
        ))
    return totals


def parse_tickers(venue: str, settle: str, payload: Any, contracts: dict[str, GateContract],
                  ts: datetime) -> Batch:
    """GET /api/v4/futures/{settle}/tickers::

        [{"contract": "BTC_USDT", "last": "6432", "mark_price": "6534", "index_price": "6531",
          "funding_rate": "0.0001", "funding_rate_indicative": "0.0001", "total_size": "32323904", ...}]

    Tickers carry no timestamp: rows are stamped ``ts`` (the fetch time). ``funding_rate`` is the rate of
    the running period; the next funding time and interval come from the contracts list when known. One
    USD index price per base asset from the USDT-settled book."""
    batch = Batch()
    for row in require_list(payload, f"tickers[{settle}]"):
        name = str(require(row, "contract", f"tickers[{settle}]"))
        rate_raw = row.get("funding_rate")
        if rate_raw in (None, ""):
            continue
        meta = contracts.get(name)
        mark = opt_num(row.get("mark_price"), "mark_price")
        next_ts = None
        interval_h = None
        if meta is not None:
            if meta.funding_next_apply:
                next_ts = ts_s(meta.funding_next_apply, "funding_next_apply")
            if meta.funding_interval_s:
                interval_h = meta.funding_interval_s / 3600
        batch.funding.append(FundingRate(
            venue=venue, symbol=name, ts=ts, funding_rate=num(rate_raw, "funding_rate"),
            funding_rate_raw=raw_text(rate_raw), next_funding_ts=next_ts, interval_h=interval_h, mark_price=mark,
            ts_source=TS_FETCH,
        ))
        index_raw = row.get("index_price")
        if settle.lower() == "usdt" and name.endswith("_USDT") and index_raw not in (None, ""):
            batch.prices.append(Price(venue, name.split("_")[0], ts, num(index_raw, "index_price"), "index"))
    return batch


def insurance_poll_limit(since: datetime | None, now: datetime) -> int:
    """Rows to ask for: Gate's default before anything is stored, else the days since the newest stored
    row plus a margin (daily ledger), never more than Gate keeps."""
    if since is None:
        return INSURANCE_DEFAULT_ROWS
    days = max(0.0, (now - since).total_seconds() / 86_400)
    return min(INSURANCE_MAX_ROWS, math.ceil(days) + 2)


def _ordered(names: list[str]) -> list[str]:
    def rank(name: str) -> tuple[int, str]:
        base = name.split("_")[0]
        return (PREFERRED_BASES.index(base) if base in PREFERRED_BASES else len(PREFERRED_BASES), name)

    return sorted(names, key=rank)


# Gate's market-level ADL states, in rising order of danger; ``value`` of the stored signal
GATE_ADL_STATES = {"normal": 0.0, "warning": 1.0, "adl_risk": 2.0}


def parse_adl_risk_states(venue: str, settle: str, payload: Any, fetched: datetime) -> list[AdlSignal]:
    """GET /api/v4/futures/{settle}/adl_risk_states (UNCONFIRMED: no verbatim Gate example found; shape from
    Gate's schema FuturesADLRiskStates as a published SDK fixture writes it)::

        {"settle": "usdt", "states": {
            "BTC_USDT": {"state": "normal", "calculated_at_ms": 1786695185345},
            "GT_USDT": {"state": "warning", "calculated_at_ms": 1786695185345},
            "HYPE_USDT": {"state": "adl_risk", "calculated_at_ms": 1786695185345}}}

    One ``gate_adl_risk`` signal per contract: ``level`` = the state as served, ``value`` = 0/1/2 for
    normal/warning/adl_risk (None for a state Gate adds later: kept, never read as normal). Defensive: a
    list of ``{"contract", "state", ...}`` rows is accepted too, and a missing ``calculated_at_ms`` takes
    the fetch time (``detail.ts_source`` = fetch); a missing ``state`` is an error."""
    states = require(payload, "states", "adl_risk_states")
    if isinstance(states, list):
        states = {str(require(row, "contract", "adl_risk_states.states")): row for row in states}
    if not isinstance(states, dict):
        raise PayloadError(f"adl_risk_states.states: expected an object, got {type(states).__name__}")
    signals = []
    for contract, row in sorted(states.items()):
        where = f"adl_risk_states.states.{contract}"
        state = str(require(row, "state", where))
        stamp = row.get("calculated_at_ms")
        signals.append(AdlSignal(
            venue=venue, scope=str(contract), ts=fetched if stamp is None else ts_ms(stamp, f"{where}.calculated_at_ms"),
            signal_type="gate_adl_risk", level=state, value=GATE_ADL_STATES.get(state.lower()),
            detail=to_json({"settle": payload.get("settle", settle),
                            "ts_source": TS_FETCH if stamp is None else TS_VENUE}),
        ))
    return signals


def _now() -> datetime:
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


class GateAdapter(VenueAdapter):
    key = "gate"
    display_name = "Gate futures"
    default_base_url = "https://api.gateio.ws"
    capabilities = (
        Capability(FUNDS, "/api/v4/futures/{settle}/insurance", 86_400, "latest N rows (≤1000, no time filter)",
                   "settle ccy (USDT, BTC)", "one fund per settle book; daily rows (00:00 UTC, UNCONFIRMED)"),
        Capability(OPEN_INTEREST, "/api/v4/futures/{settle}/contract_stats", 300, "none", "contracts",
                   "5-minute buckets; open_interest_usd stated by Gate; completed buckets' long/short "
                   "liquidation totals stored as liquidation_totals"),
        Capability(FUNDING, "/api/v4/futures/{settle}/tickers + contracts", 600, "none", "rate per interval"),
        Capability(PRICES, "/api/v4/futures/usdt/tickers", 300, "none", "USD(T) index"),
        Capability(ADL, "/api/v4/futures/{settle}/adl_risk_states", 300, "none", "normal / warning / adl_risk",
                   "market-level state per contract; response shape UNCONFIRMED (parsed defensively)"),
    )

    def __init__(self, config: VenueConfig) -> None:
        super().__init__(config)  # the clients are made here (they connect on first use)
        self.exchange = use_exact_numbers(make_exchange("gate", self.config.base_url_str(), self.config.timeout_s))

    async def close(self) -> None:
        await self.exchange.close()

    async def _contracts(self, settle: str) -> dict[str, GateContract]:
        payload = await ccxt_call(self.exchange, self.exchange.publicFuturesGetSettleContracts({"settle": settle}))
        return parse_contracts(settle, payload)

    async def _insurance(self, settle: str, limit: int, since: datetime | None = None) -> Batch:
        payload = await ccxt_call(self.exchange, self.exchange.publicFuturesGetSettleInsurance(
            {"settle": settle, "limit": limit}))
        members = sorted(await self._contracts(settle))
        return parse_insurance(self.key, settle, payload, members, since)

    async def fetch_funds(self, since: datetime | None) -> Batch:
        limit = insurance_poll_limit(since, _now())
        batch = Batch()
        for settle in SETTLES:  # both books in one batch: a failure of either writes nothing
            batch.merge(await self._insurance(settle, limit))
        return batch

    async def backfill_funds(self, since: datetime) -> AsyncIterator[Batch]:
        """Everything Gate keeps (its latest 1000 rows per settle book), bounded by ``since``."""
        for settle in SETTLES:
            yield await self.page(lambda settle=settle: self._insurance(settle, INSURANCE_MAX_ROWS, since))

    def _wanted(self, contracts: dict[str, GateContract]) -> list[str]:
        names = [n for n in self.config.symbols if n in contracts] if self.config.symbols else list(contracts)
        return _ordered(names)

    async def fetch_open_interest(self, since: datetime | None) -> Batch:
        batch = Batch()
        budget = self.config.max_symbols
        for settle in SETTLES:
            contracts = await self._contracts(settle)
            for name in self._wanted(contracts)[:budget]:  # one call per contract, paced by ccxt
                payload = await ccxt_call(self.exchange, self.exchange.publicFuturesGetSettleContractStats(
                    {"settle": settle, "contract": name, "interval": "5m", "limit": STATS_ROWS}))
                oi = parse_contract_stats(self.key, contracts[name], payload)
                if oi is not None:
                    batch.open_interest.append(oi)
                totals = parse_liquidation_totals(self.key, contracts[name], payload)
                batch.extra.setdefault(LIQUIDATION_TOTALS, []).extend(totals)
                budget -= 1
        return batch

    async def fetch_funding(self, since: datetime | None) -> Batch:
        batch = Batch()
        fetched = _now()  # tickers carry no time: one stamp for the whole fetch
        for settle in SETTLES:
            contracts = await self._contracts(settle)
            payload = await ccxt_call(self.exchange, self.exchange.publicFuturesGetSettleTickers({"settle": settle}))
            batch.merge(parse_tickers(self.key, settle, payload, contracts, fetched))
        if self.config.symbols:
            batch.funding = [f for f in batch.funding if f.symbol in self.config.symbols]
        return batch

    async def fetch_adl(self, since: datetime | None) -> Batch:
        batch = Batch()
        for settle in SETTLES:
            payload = await ccxt_call(self.exchange, self.exchange.publicFuturesGetSettleAdlRiskStates({"settle": settle}))
            signals = parse_adl_risk_states(self.key, settle, payload, _now())
            batch.adl += [s for s in signals if not self.config.symbols or s.scope in self.config.symbols]
        return batch

    async def fetch_prices(self, since: datetime | None) -> Batch:
        payload = await ccxt_call(self.exchange, self.exchange.publicFuturesGetSettleTickers({"settle": "usdt"}))
        prices = parse_tickers(self.key, "usdt", payload, {}, _now()).prices
        if not prices:
            raise PayloadError("tickers[usdt]: no index price")
        return Batch(prices=prices)
