"""Exact JSON numbers for ccxt clients: every venue adapter decodes JSON numbers as served.

ccxt parses response bodies with float semantics, so ``425018.32968325152473812`` would arrive as the
nearest double and Kraken's ``-0.000000756414717067`` would be re-written as ``-7.56414717067e-07``.
Adapters swap in a parser that keeps every JSON number with a fraction or exponent as a ``ServedNumber``:
a ``Decimal`` (``parsing.dec`` takes the exact value) that also remembers the text the venue wrote
(``parsing.raw_text`` stores it verbatim).
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import ccxt.async_support as ccxt_async


class ServedNumber(Decimal):
    """A JSON number exactly as the venue wrote it: a ``Decimal`` for arithmetic, ``served`` for storage.

    ``str(Decimal("-0.000000756414717067"))`` is ``-7.56414717067E-7``: the text is kept beside it."""

    __slots__ = ("served",)
    served: str

    def __new__(cls, text: str) -> ServedNumber:
        number = super().__new__(cls, text)
        number.served = text
        return number

    def __copy__(self) -> ServedNumber:
        return self  # immutable; Decimal's own copy would rebuild it from str() and lose the text

    def __deepcopy__(self, memo: Any) -> ServedNumber:
        return self


def loads_exact(text: str) -> Any:
    """``json.loads`` keeping fractions exact and as served (plain HTTP clients use it too)."""
    return json.loads(text, parse_float=ServedNumber)


def use_exact_numbers(exchange: ccxt_async.Exchange) -> ccxt_async.Exchange:
    """Make ``exchange`` decode JSON fractions as ``Decimal`` (ccxt documents ``on_json_response`` as the
    override point; an instance attribute takes precedence over the class's static parser)."""
    exchange.on_json_response = loads_exact
    return exchange
