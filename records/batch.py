"""The records every layer shares: dataset names, the normalised records a venue adapter returns, the
``Batch`` one job run produces (written atomically with its run row) and a venue's ``Capability``
declarations. Plain data: collectors fill them, storage writes them, metrics and alerts read them.

Numbers are ``Decimal`` (parsed from the venue's text, never through float) for balances; analytic
series (OI, funding, prices) are ``float`` next to the raw text the venue served.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

# Dataset names used for jobs, run rows and config intervals.
FUNDS = "funds"
OPEN_INTEREST = "open_interest"
FUNDING = "funding"
PRICES = "prices"
ADL = "adl"
LIQUIDATIONS = "liquidations"
DATASETS: tuple[str, ...] = (FUNDS, OPEN_INTEREST, FUNDING, PRICES, ADL, LIQUIDATIONS)

# Where a record's ``ts`` came from (column ``ts_source``): the venue's own timestamp, the response's HTTP
# ``Date`` header, or Backstop's fetch time (the venue omitted the timestamp or never publishes one).
TS_VENUE = "venue"
TS_HTTP_DATE = "http_date"
TS_FETCH = "fetch"


@dataclass(frozen=True, slots=True)
class FundBalance:
    """One balance of one fund (pool) in one asset at the venue's timestamp."""

    venue: str
    pool_id: str  # the venue's fund/pool identifier (Bybit symbols list, OKX instType:instFamily, ...)
    asset: str  # normalised asset code (BTC, USDT, ...): XBt is stored as BTC after scaling
    ts: datetime  # venue timestamp, UTC
    balance: Decimal  # native units of ``asset``
    balance_raw: str  # exactly as served (e.g. "3349100000000")
    unit_raw: str  # unit as served (e.g. "XBt")
    usd_value: Decimal | None = None  # only when the venue itself states a USD value
    kind: str = "insurance"  # insurance | hlp_vault | liquidity_pool | module_account
    source: str = "snapshot"  # snapshot | history
    ts_source: str = TS_VENUE  # where ``ts`` came from: venue | http_date | fetch


@dataclass(frozen=True, slots=True)
class PoolMember:
    """Membership: ``symbol`` is covered by ``pool_id`` (a shared pool lists many symbols)."""

    venue: str
    pool_id: str
    symbol: str
    asset: str


@dataclass(frozen=True, slots=True)
class FundFlow:
    """A typed movement into/out of a fund (OKX rows, Deribit bankruptcies) or one inferred from balances."""

    venue: str
    pool_id: str
    asset: str
    ts: datetime
    flow_type: str  # liquidation_balance_deposit | bankruptcy_loss | platform_revenue | adl | ...
    amount: Decimal | None
    balance_after: Decimal | None = None
    inferred: bool = False
    detail: str = "{}"  # JSON text of venue extras (adlType, maxBal, ...)


@dataclass(frozen=True, slots=True)
class OpenInterest:
    venue: str
    symbol: str  # venue-native contract id (BTCUSDT, BTC-USDT-SWAP, XBTUSD)
    ts: datetime
    base_asset: str
    settle_asset: str
    oi_raw: str  # as served
    oi_unit: str  # contracts | base | usd | quote
    contract_size: float | None
    inverse: bool
    oi_base: float | None  # base-asset quantity (one side)
    oi_usd: float | None  # USD notional
    ts_source: str = TS_VENUE
    # contracts not quoted in USD/USDT/USDC: how oi_usd was converted, or why it is empty (never guessed)
    oi_usd_note: str | None = None


@dataclass(frozen=True, slots=True)
class FundingRate:
    venue: str
    symbol: str
    ts: datetime
    funding_rate: float
    funding_rate_raw: str
    next_funding_ts: datetime | None = None
    interval_h: float | None = None
    mark_price: float | None = None
    ts_source: str = TS_VENUE
    # Deribit: ``funding_rate`` is the current rate, this the trailing 8 h rate (may differ in sign)
    funding_8h: float | None = None
    funding_8h_raw: str | None = None


@dataclass(frozen=True, slots=True)
class Price:
    """A USD price of an asset as seen on a venue (mark, index, candle close)."""

    venue: str
    asset: str
    ts: datetime
    price_usd: float
    source: str  # mark | index | last | ohlcv_1d


@dataclass(frozen=True, slots=True)
class AdlSignal:
    """A venue's own ADL indicator (Bybit adlAlert, Binance symbolAdlRisk, OKX adl rows, HTX clawback)."""

    venue: str
    scope: str  # symbol or pool id
    ts: datetime
    signal_type: str  # bybit_adl_alert | binance_adl_risk | okx_adl | htx_clawback
    level: str | None = None  # high|medium|low, rate_adl_start, ...
    value: float | None = None  # e.g. pnlRatio, estimated_clawback
    threshold: float | None = None  # e.g. adlTriggerThreshold
    distance: float | None = None  # how far from triggering, in the signal's own units
    detail: str = "{}"


@dataclass(frozen=True, slots=True)
class LiquidationTotal:
    """A venue's own total of liquidated positions in one time bucket (Gate ``contract_stats``): the
    venue's aggregate, not a sample, so it is kept apart from per-event liquidation rows. Written from
    ``Batch.extra[LIQUIDATION_TOTALS]``; only completed buckets (a running one would be frozen short)."""

    venue: str
    symbol: str
    ts: datetime  # bucket start
    interval_s: int
    long_usd: float | None  # long positions liquidated, USD
    short_usd: float | None
    long_base: float | None  # base-asset quantity
    short_base: float | None
    long_contracts_raw: str | None  # as served
    short_contracts_raw: str | None


LIQUIDATION_TOTALS = "liquidation_totals"  # Batch.extra key


@dataclass(slots=True)
class Batch:
    """Everything one job run produced; written atomically with its run row."""

    funds: list[FundBalance] = field(default_factory=list)
    pool_members: list[PoolMember] = field(default_factory=list)
    fund_flows: list[FundFlow] = field(default_factory=list)
    open_interest: list[OpenInterest] = field(default_factory=list)
    funding: list[FundingRate] = field(default_factory=list)
    prices: list[Price] = field(default_factory=list)
    adl: list[AdlSignal] = field(default_factory=list)
    extra: dict[str, list[Any]] = field(default_factory=dict)  # other tables (liquidations, ...)

    def row_count(self) -> int:
        fixed = (
            len(self.funds) + len(self.fund_flows) + len(self.open_interest)
            + len(self.funding) + len(self.prices) + len(self.adl)
        )
        return fixed + sum(len(rows) for rows in self.extra.values())

    def merge(self, other: Batch) -> Batch:
        self.funds += other.funds
        self.pool_members += other.pool_members
        self.fund_flows += other.fund_flows
        self.open_interest += other.open_interest
        self.funding += other.funding
        self.prices += other.prices
        self.adl += other.adl
        for key, rows in other.extra.items():
            self.extra.setdefault(key, []).extend(rows)
        return self


@dataclass(frozen=True, slots=True)
class Capability:
    """What a venue publishes for one dataset: drives scheduling, staleness and the capability table."""

    dataset: str
    endpoint: str
    cadence_s: float  # how often the venue's value changes (expected data age)
    history: str = "none"  # none | full | "30 days" | "latest N rows" ...
    unit: str = ""
    note: str = ""
