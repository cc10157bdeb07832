"""Normalised liquidation records, the vocabulary of what they cover, and the pure helpers every venue
parser shares (event keys, notional from contracts, WebSocket URLs). The feed interface and the runner
that keeps a feed's stream going are ``collectors.liquidations.runner``.

Side semantics differ per venue (reference §0.6) and are normalised here to the liquidated POSITION side:
``long`` (a long was force-closed by a sell order) or ``short``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlsplit

from collectors.parsing import to_json
from records.vocabulary import STABLE_ASSETS

LONG = "long"
SHORT = "short"

# coverage of a feed: what a sum of its rows means
COMPLETE = "complete"  # the venue says every liquidation is pushed (Bybit allLiquidation)
SAMPLED = "sampled"  # the venue throttles/samples (Binance ≤1/symbol/s, OKX, Gate WS): a lower bound
UNCONFIRMED = "unconfirmed"  # completeness not documented: treated as a lower bound

STABLES = STABLE_ASSETS  # one list: records.vocabulary


@dataclass(frozen=True, slots=True)
class FeedInfo:
    """One venue subscription and what its data covers (stored with every row it produces)."""

    venue: str
    feed: str  # e.g. "forceOrder:usdm", "allLiquidation:linear", "liquidation-orders:SWAP"
    source: str  # ws | rest: overlapping sources of one venue are combined with max(), never summed
    coverage: str  # complete | sampled | unconfirmed
    note: str  # human text, e.g. "≤ 1 per symbol per second: a lower bound"

    @property
    def lower_bound(self) -> bool:
        return self.coverage != COMPLETE


@dataclass(frozen=True, slots=True)
class ContractSpec:
    """What one contract is worth: ``contract_size`` is base per contract (linear) or USD per contract
    (inverse)."""

    symbol: str
    base: str
    quote: str
    contract_size: Decimal
    inverse: bool


@dataclass(frozen=True, slots=True)
class LiquidationRecord:
    """One liquidation as the venue reported it, normalised. Field order = table column order."""

    venue: str
    feed: str
    source: str
    event_key: str  # venue event key: idempotency (no venue gives public liquidation ids on WS)
    ts: datetime  # venue timestamp of the liquidation, UTC
    symbol: str  # venue-native contract id
    base_asset: str
    quote_asset: str
    side: str  # liquidated POSITION side: long | short
    price: float
    price_kind: str  # average_fill | fill | bankruptcy
    qty_base: float | None  # base units; None when a needed contract spec is unknown
    qty_contracts: float | None  # as served, when the venue counts in contracts
    contract_size: float | None
    inverse: bool
    notional_usd: float | None  # from raw fields and contract specs; None = unknown (never guessed)
    notional_source: str  # quote_turnover | base_x_price | contracts_x_usd | no_spec | non_usd_quote
    coverage: str
    lower_bound: bool
    raw: str  # the raw message, trimmed to this one event (JSON text)
    received_at: datetime


@dataclass(frozen=True, slots=True)
class LiquidationGap:
    """A window in which a feed was down: volumes over it are incomplete. ``end`` None = still down."""

    venue: str
    feed: str
    start_ts: datetime
    end_ts: datetime | None
    reason: str


# -- small pure helpers --------------------------------------------------------------------------------

def norm_number(value: Any) -> str:
    """Canonical text of a number for event keys: ``479``, ``479.000000`` and ``4.79E+2`` agree."""
    try:
        number = Decimal(value) if isinstance(value, str | int | Decimal) else Decimal(repr(float(value)))
    except (InvalidOperation, ValueError, TypeError):
        return str(value)
    if not number.is_finite():
        return str(value)
    text = format(number.normalize(), "f")
    return "0" if text in ("-0", "") else text


def event_key(*parts: Any) -> str:
    return "|".join(norm_number(p) if isinstance(p, int | float | Decimal) else str(p) for p in parts)


def notional(spec_inverse: bool, qty: Decimal, qty_is_contracts: bool, contract_size: Decimal | None,
             price: Decimal, quote: str) -> tuple[float | None, float | None, str]:
    """(qty_base, notional_usd, how). Linear: base = contracts x size (or served in base), USD = base x
    price. Inverse: USD = contracts x USD-per-contract, base = USD / price (ccxt gets this wrong, §0.7)."""
    if spec_inverse:
        if contract_size is None:
            return None, None, "no_spec"
        usd = qty * contract_size
        base = usd / price if price else None
        return (float(base) if base is not None else None), float(usd), "contracts_x_usd"
    if qty_is_contracts:
        if contract_size is None:
            return None, None, "no_spec"
        base_qty = qty * contract_size
    else:
        base_qty = qty
    if quote.upper() not in STABLES:
        return float(base_qty), None, "non_usd_quote"
    return float(base_qty), float(base_qty * price), "base_x_price"


def raw_json(obj: Any) -> str:
    return to_json(obj)


def utcnow() -> datetime:
    return datetime.now(UTC)


def ws_base(base_url: str) -> str:
    """http://127.0.0.1:8800/bybit -> ws://127.0.0.1:8800/bybit (https -> wss)."""
    parts = urlsplit(base_url)
    scheme = {"http": "ws", "https": "wss"}.get(parts.scheme, parts.scheme)
    return f"{scheme}://{parts.netloc}{parts.path.rstrip('/')}"


def rebase_ws(url: str, base: str) -> str:
    """wss://stream.{hostname}/v5/public/linear -> {ws base}/v5/public/linear (the real path is kept)."""
    parts = urlsplit(url.replace("{hostname}", "hostname.invalid"))
    return base.rstrip("/") + parts.path
