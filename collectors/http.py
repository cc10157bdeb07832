"""Plain async HTTP for endpoints ccxt lacks (BitMEX, dYdX node REST, ...), with the same discipline:
a per-venue rate limit, timeouts, exact JSON numbers, and errors raised as the ccxt classes that
``collectors.errors.classify`` already knows."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import aiohttp
import ccxt

from collectors.errors import PayloadError, RetryAfter
from collectors.exact_json import loads_exact


class JsonHttpClient:
    def __init__(self, base_url: str, timeout_s: float, min_interval_s: float = 0.05) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = aiohttp.ClientTimeout(total=timeout_s)
        self.min_interval_s = min_interval_s
        self._session: aiohttp.ClientSession | None = None
        self._lock = asyncio.Lock()
        self._last_request = 0.0

    async def _throttle(self) -> None:
        async with self._lock:
            wait = self._last_request + self.min_interval_s - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            self._last_request = time.monotonic()

    def _session_or_new(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self.timeout)
        return self._session

    async def request(self, method: str, path: str, params: dict[str, Any] | None = None,
                      body: Any = None) -> Any:
        await self._throttle()
        url = f"{self.base_url}/{path.lstrip('/')}"
        session = self._session_or_new()
        try:
            async with session.request(method, url, params=params, json=body) as resp:
                text = await resp.text()
                status = resp.status
                retry_after = resp.headers.get("Retry-After")
        except TimeoutError as exc:
            raise ccxt.RequestTimeout(f"{method} {path}: timed out") from exc
        except aiohttp.ClientError as exc:
            raise ccxt.NetworkError(f"{method} {path}: {type(exc).__name__}: {exc}") from exc
        if status == 429:
            seconds = None
            try:
                seconds = float(retry_after) if retry_after else None
            except ValueError:
                seconds = None
            raise RetryAfter(f"{method} {path}: HTTP 429 rate limited", seconds)
        if status >= 500:
            raise ccxt.ExchangeNotAvailable(f"{method} {path}: HTTP {status}")
        if status in (401, 403):
            raise ccxt.PermissionDenied(f"{method} {path}: HTTP {status}")
        if status >= 400:
            raise ccxt.BadRequest(f"{method} {path}: HTTP {status}: {text[:200]}")
        try:
            return loads_exact(text)
        except json.JSONDecodeError:
            raise PayloadError(f"{method} {path}: malformed JSON ({text[:80]!r})") from None

    async def get(self, path: str, params: dict[str, Any] | None = None) -> Any:
        return await self.request("GET", path, params=params)

    async def post(self, path: str, body: Any) -> Any:
        return await self.request("POST", path, body=body)

    async def close(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()
