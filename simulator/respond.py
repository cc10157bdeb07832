"""JSON responses as the venues write them (Decimals as exact JSON numbers)."""

from __future__ import annotations

import json
import re
from decimal import Decimal
from typing import Any

from aiohttp import web

_DEC_RE = re.compile(r'"__DEC__(-?[0-9.Ee+-]+)__"')


def _mark_decimals(node: Any) -> Any:
    if isinstance(node, Decimal):
        return f"__DEC__{node}__"
    if isinstance(node, dict):
        return {k: _mark_decimals(v) for k, v in node.items()}
    if isinstance(node, list | tuple):
        return [_mark_decimals(v) for v in node]
    return node


def dumps(data: Any) -> str:
    """JSON with Decimals written as exact JSON numbers (venues that serve numbers, e.g. HTX)."""
    return _DEC_RE.sub(r"\1", json.dumps(_mark_decimals(data), separators=(",", ":")))


def reply(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(text=dumps(data), status=status, content_type="application/json", headers=headers)
