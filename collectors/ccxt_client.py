"""One ccxt async client per venue for the process lifetime, pointed at ``base_url`` when configured."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit

import ccxt
import ccxt.async_support as ccxt_async

from collectors.errors import PayloadError, RetryAfter

T = TypeVar("T")


def _rebase(url: str, base_url: str) -> str:
    """https://fapi.binance.com/fapi/v1 -> {base_url}/fapi/v1 (the path is the venue's real path)."""
    parts = urlsplit(url.replace("{hostname}", "hostname.invalid"))
    return base_url.rstrip("/") + parts.path


def _rebase_tree(node: Any, base_url: str) -> Any:
    if isinstance(node, str):
        return _rebase(node, base_url) if node.startswith(("http://", "https://")) else node
    if isinstance(node, dict):
        return {key: _rebase_tree(value, base_url) for key, value in node.items()}
    if isinstance(node, list):
        return [_rebase_tree(value, base_url) for value in node]
    return node


def make_exchange(
    exchange_id: str,
    base_url: str | None,
    timeout_s: float,
    options: dict[str, Any] | None = None,
    **config: Any,
) -> ccxt_async.Exchange:
    """A rate-limited async ccxt client; with ``base_url`` every API host is replaced by it."""
    klass = getattr(ccxt_async, exchange_id)
    exchange: ccxt_async.Exchange = klass(
        {
            "enableRateLimit": True,
            "timeout": int(timeout_s * 1000),
            "options": options or {},
            **config,
        }
    )
    if base_url:
        exchange.urls["api"] = _rebase_tree(exchange.urls["api"], base_url)
    status_before_body(exchange)
    return exchange


def status_before_body(exchange: ccxt_async.Exchange) -> None:
    """Let HTTP 429 / 5xx win over a venue's body check: e.g. ccxt's bybit ``handle_errors`` turns any JSON
    body without ``retCode: 0`` (a proxy's 429 page) into a plain ExchangeError, which is never retried."""
    venue_handler: Callable[..., Any] = exchange.handle_errors

    def handle_errors(code: int, reason: str, url: str, method: str, headers: Any, body: str, response: Any,
                      request_headers: Any, request_body: Any) -> Any:
        if code == 429:  # directly: ccxt's okx maps 429 to ExchangeNotAvailable, losing the Retry-After
            raise RetryAfter(f"{exchange.id} {method} {url} 429 {reason}", _retry_after(headers))
        if code >= 500:
            exchange.handle_http_status_code(code, reason, url, method, body)
        return venue_handler(code, reason, url, method, headers, body, response, request_headers, request_body)

    exchange.handle_errors = handle_errors


def _retry_after(headers: dict[str, Any] | None) -> float | None:
    for key, value in (headers or {}).items():
        if key.lower() == "retry-after":
            try:
                return max(0.0, float(value))
            except (TypeError, ValueError):
                return None
    return None


def ccxt_request(exchange: ccxt_async.Exchange, method: str, params: dict[str, Any]) -> Callable[[], Awaitable[Any]]:
    """A request that can be made again: each call awaits a fresh ``exchange.<method>(params)`` through
    ``ccxt_call`` (what ``VenueAdapter.page`` retries inside a history walk; ``params`` bound now)."""
    bound = dict(params)

    async def call() -> Any:
        return await ccxt_call(exchange, getattr(exchange, method)(bound))

    return call


async def ccxt_call(exchange: ccxt_async.Exchange, awaitable: Awaitable[T]) -> T:
    """Await a ccxt call; a 429 becomes ``RetryAfter`` carrying the venue's Retry-After seconds."""
    try:
        result = await awaitable
    except (ccxt.RateLimitExceeded, ccxt.DDoSProtection) as exc:
        if isinstance(exc, RetryAfter):
            raise
        raise RetryAfter(str(exc), _retry_after(getattr(exchange, "last_response_headers", None))) from exc
    if isinstance(result, str) and result[:1] in ("{", "["):
        # ccxt does not raise on a body it cannot decode: it returns the text, which parsers would
        # report as a confusing "expected an object, got str"
        raise PayloadError(f"{exchange.id}: malformed JSON ({result[:80]!r})")
    return result
