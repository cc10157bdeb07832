"""Exact JSON numbers for ccxt clients of venues that serve balances as JSON *numbers* (HTX, MEXC).

ccxt parses response bodies with float semantics, so ``425018.32968325152473812`` would arrive as the
nearest double. Venue adapters that store such numbers as ``Decimal`` swap in a parser that keeps every
JSON number with a fraction as ``Decimal``; ``parsing.dec`` then takes the exact value as served.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import ccxt.async_support as ccxt_async


def _loads_exact(text: str) -> Any:
    return json.loads(text, parse_float=Decimal)


def use_exact_numbers(exchange: ccxt_async.Exchange) -> ccxt_async.Exchange:
    """Make ``exchange`` decode JSON fractions as ``Decimal`` (ccxt documents ``on_json_response`` as the
    override point; an instance attribute takes precedence over the class's static parser)."""
    exchange.on_json_response = _loads_exact
    return exchange
