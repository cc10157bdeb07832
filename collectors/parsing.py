"""Exact number and timestamp parsing shared by the venue parsers."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from email.utils import parsedate_to_datetime
from typing import Any

from collectors.base import TS_FETCH, TS_HTTP_DATE
from collectors.errors import PayloadError

MAX_DATE_SKEW_S = 300  # a Date header further than this from the fetch time is ignored (a cache, a bad clock)

# minimum-unit scales: BitMEX XBt = satoshi, USDt = 1e-6 USDT
UNIT_SCALES: dict[str, tuple[str, Decimal]] = {
    "XBt": ("BTC", Decimal("1e-8")),
    "XBT": ("BTC", Decimal(1)),
    "USDt": ("USDT", Decimal("1e-6")),
    "LAMp": ("USDT", Decimal("1e-6")),
    "MAMUSd": ("USD", Decimal("1e-6")),
    "Gwei": ("ETH", Decimal("1e-9")),
    "mET": ("ETH", Decimal("1e-3")),
}

ASSET_ALIASES = {"XBT": "BTC", "XBt": "BTC", "USDt": "USDT"}

# Quote/settle currencies whose amounts Backstop counts as USD one-for-one (as for OI notional everywhere).
# A contract quoted in anything else (EUR, JPY, BTC, an index basket) needs a rate from the same response,
# else its ``oi_usd`` stays empty with the reason in ``oi_usd_note``.
USD_QUOTES = frozenset({"USD", "USDT", "USDC"})


def usd_quote(code: str) -> bool:
    """True when ``code`` (a quote or settle currency, any venue spelling) is counted as USD."""
    return norm_asset(code) in USD_QUOTES


def no_usd_rate_note(quote: str) -> str:
    """``oi_usd_note`` of a contract whose USD notional is left empty: the response has no rate for it."""
    return f"quoted in {norm_asset(quote)}: no {norm_asset(quote)}/USD rate in the response, USD value not guessed"


def dec(value: Any, field: str = "value") -> Decimal:
    """Decimal from a venue's number text (floats go through ``repr`` so no binary noise is added)."""
    if isinstance(value, bool) or value is None or value == "":
        raise PayloadError(f"{field}: expected a number, got {value!r}")
    try:
        result = Decimal(value) if isinstance(value, str | int | Decimal) else Decimal(repr(float(value)))
    except (InvalidOperation, ValueError, TypeError):
        raise PayloadError(f"{field}: expected a number, got {value!r}") from None
    if not result.is_finite():
        raise PayloadError(f"{field}: not a finite number: {value!r}")
    return result


def opt_dec(value: Any, field: str = "value") -> Decimal | None:
    return None if value in (None, "") else dec(value, field)


def num(value: Any, field: str = "value") -> float:
    return float(dec(value, field))


def opt_num(value: Any, field: str = "value") -> float | None:
    return None if value in (None, "") else num(value, field)


def raw_text(value: Any) -> str:
    """The number's text as the venue served it. Strings are verbatim; JSON numbers decoded by
    ``exact_json.loads_exact`` (every adapter's client) keep their served text; a plain ``Decimal`` is
    written without exponent. A float (a client that decoded with float semantics) can only give its
    shortest repr, which is not always the served text: adapters must not decode that way."""
    if isinstance(value, str):
        return value
    served = getattr(value, "served", None)
    if isinstance(served, str):
        return served
    if isinstance(value, Decimal):
        return format(value, "f")
    return repr(value) if isinstance(value, float) else str(value)


def ts_ms(value: Any, field: str = "ts") -> datetime:
    """UTC datetime from epoch milliseconds (int or numeric string)."""
    try:
        millis = int(Decimal(str(value)))
    except (InvalidOperation, ValueError, TypeError):
        raise PayloadError(f"{field}: expected epoch milliseconds, got {value!r}") from None
    if not 946684800000 <= millis <= 4102444800000:  # 2000-01-01 .. 2100-01-01
        raise PayloadError(f"{field}: epoch milliseconds out of range: {value!r}")
    return datetime.fromtimestamp(millis / 1000, tz=UTC)


def ts_s(value: Any, field: str = "ts") -> datetime:
    """UTC datetime from epoch seconds."""
    try:
        seconds = Decimal(str(value))
    except (InvalidOperation, ValueError, TypeError):
        raise PayloadError(f"{field}: expected epoch seconds, got {value!r}") from None
    if not 946684800 <= seconds <= 4102444800:
        raise PayloadError(f"{field}: epoch seconds out of range: {value!r}")
    return datetime.fromtimestamp(float(seconds), tz=UTC)


def ts_iso(value: Any, field: str = "timestamp") -> datetime:
    if not isinstance(value, str):
        raise PayloadError(f"{field}: expected ISO-8601 text, got {value!r}")
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise PayloadError(f"{field}: not ISO-8601: {value!r}") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def fallback_ts(headers: Mapping[str, Any] | None, fetched_at: datetime) -> tuple[datetime, str]:
    """(timestamp, ts_source) for a response that omitted its own timestamp: the HTTP ``Date`` header
    (the venue's clock, whole seconds) when present and sane, else Backstop's fetch time. Only for a
    *timestamp*: a missing required value is still a PayloadError."""
    for key, value in (headers or {}).items():
        if key.lower() != "date" or not isinstance(value, str):
            continue
        try:
            stamped = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            break
        if stamped.tzinfo is not None and abs((stamped - fetched_at).total_seconds()) <= MAX_DATE_SKEW_S:
            return stamped.astimezone(UTC), TS_HTTP_DATE
        break
    return fetched_at, TS_FETCH


def scale_unit(raw_amount: Any, unit: str, field: str = "amount") -> tuple[str, Decimal]:
    """(asset, amount in whole units) for amounts served in a minimum unit (XBt, USDt)."""
    amount = dec(raw_amount, field)
    if unit in UNIT_SCALES:
        asset, scale = UNIT_SCALES[unit]
        return asset, amount * scale
    return ASSET_ALIASES.get(unit, unit.upper()), amount


def norm_asset(code: str) -> str:
    return ASSET_ALIASES.get(code, code.upper())


def require(mapping: Any, key: str, where: str) -> Any:
    """mapping[key], or a PayloadError naming what was missing (a venue renamed a field)."""
    if not isinstance(mapping, dict):
        raise PayloadError(f"{where}: expected an object, got {type(mapping).__name__}")
    if key not in mapping:
        raise PayloadError(f"{where}: missing field '{key}'")
    return mapping[key]


def require_list(value: Any, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise PayloadError(f"{where}: expected a list, got {type(value).__name__}")
    return value


def to_json(obj: Any) -> str:
    return json.dumps(obj, default=str, sort_keys=True, separators=(",", ":"))
