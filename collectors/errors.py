"""Every exception a collection can raise is classified here, in one place.

transient (network, timeout, 429 with Retry-After, 5xx) -> bounded retry with backoff;
permanent (bad request, auth, not supported, unparseable payload) -> recorded, no retry storm.
Note: in current ccxt ``RateLimitExceeded`` is *not* a subclass of ``DDoSProtection``.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass

import aiohttp
import ccxt


class PayloadError(ValueError):
    """The venue answered, but not in the shape we parse (missing field, bad number, malformed JSON)."""


class RetryAfter(ccxt.RateLimitExceeded):  # type: ignore[misc]  # ccxt ships no type information
    """429 with a ``Retry-After`` we could read; ``retry_after_s`` is honoured by the runner."""

    def __init__(self, message: str, retry_after_s: float | None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


@dataclass(frozen=True, slots=True)
class ErrorClass:
    transient: bool
    name: str  # stored as the run's error_class
    retry_after_s: float | None = None


_PERMANENT_CCXT = (
    ccxt.AuthenticationError,
    ccxt.PermissionDenied,
    ccxt.BadRequest,
    ccxt.BadSymbol,
    ccxt.NotSupported,
    ccxt.BadResponse,
    ccxt.NullResponse,
    ccxt.ArgumentsRequired,
)
_TRANSIENT_CCXT = (
    ccxt.RateLimitExceeded,
    ccxt.DDoSProtection,
    ccxt.RequestTimeout,
    ccxt.ExchangeNotAvailable,
    ccxt.OnMaintenance,
    ccxt.NetworkError,
)


def classify(exc: BaseException) -> ErrorClass:
    name = type(exc).__name__
    retry_after = getattr(exc, "retry_after_s", None)
    if isinstance(exc, PayloadError):
        return ErrorClass(False, "PayloadError")
    if isinstance(exc, _PERMANENT_CCXT):
        return ErrorClass(False, name)
    if isinstance(exc, _TRANSIENT_CCXT):
        return ErrorClass(True, name, retry_after)
    if isinstance(exc, asyncio.TimeoutError | TimeoutError | aiohttp.ClientError | ConnectionError):
        return ErrorClass(True, name)
    if isinstance(exc, ccxt.ExchangeError):
        # ccxt maps unknown venue error codes here: usually a bad request, not worth hammering
        return ErrorClass(False, name)
    if isinstance(exc, KeyError | TypeError | ValueError | ArithmeticError):
        # a parser met a shape it does not know
        return ErrorClass(False, "PayloadError")
    return ErrorClass(False, name)


_URL_QUERY = re.compile(r"((?:https?|wss?)://[^\s?]+)\?\S*")


def error_message(exc: BaseException, limit: int = 500) -> str:
    """A short, single-line message; URLs' query strings are dropped so no parameter is echoed."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return _URL_QUERY.sub(r"\1", text)[:limit]
