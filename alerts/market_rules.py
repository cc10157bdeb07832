"""Alert rules on market stress the venues publish: a liquidation cascade running (``cascade``) and a
venue's own ADL indicator near or past its trigger (``adl_near``).

Pure functions over typed rows (``metrics.alert_rows``), like ``alerts.fund_rules`` (see there): one
signal per cascade, one per venue x ADL signal type.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from alerts.parameters import ADL_NEAR, CASCADE, AdlParams, CascadeParams
from metrics.alert_rows import AdlReading, CascadeEvent, Signal
from metrics.formatting import (
    fmt_age,
    fmt_change_pct,
    fmt_compact,
    fmt_number,
    fmt_signed,
    fmt_time,
    iso_or_none,
    venue_label,
)


def cascade(events: Sequence[CascadeEvent], params: CascadeParams, as_of: datetime,
            labels: Mapping[str, str] = {}) -> list[Signal]:  # noqa: B006
    """A liquidation cascade started (within ``lookback_h``) and is running or ended less than
    ``hold_h`` ago. One signal per cascade; critical above ``critical_notional_usd``."""
    if not params.enabled:
        return []
    signals = []
    for event in sorted(events, key=lambda e: (e.venue, e.started_at)):
        age_h = (as_of - event.started_at).total_seconds() / 3600
        if age_h > params.lookback_h or age_h < -1:
            continue
        if event.ended_at is not None and (as_of - event.ended_at).total_seconds() / 3600 > params.hold_h:
            continue
        notional = event.notional_usd
        if notional is not None and notional < params.min_notional_usd:
            continue
        name = "Market-wide" if event.venue == "market" else venue_label(labels, event.venue)
        span_end = event.ended_at or as_of
        duration = (fmt_age(event.minutes * 60) if event.minutes
                    else fmt_age(max((span_end - event.started_at).total_seconds(), 0)))
        amount = f"{'≥ ' if event.lower_bound else ''}{fmt_compact(notional)} USD" if notional is not None else "liquidations"
        parts = [f"{name} liquidation cascade since {fmt_time(event.started_at)}: {amount} liquidated in {duration}"]
        if event.side:
            parts[0] += f", mostly {event.side}s"
        if event.ended_at is None:
            parts[0] += ", ongoing"
        if event.dominant_asset and event.price_move_pct is not None:
            parts.append(f"{event.dominant_asset} {fmt_change_pct(event.price_move_pct)}")
        if event.fund_change_usd is not None:
            parts.append(f"fund {fmt_signed(event.fund_change_usd / 1e6)} M USD")
        if event.incomplete:
            parts.append("a feed gap overlaps it")
        critical = notional is not None and notional >= params.critical_notional_usd
        signals.append(Signal(
            rule=CASCADE, venue=event.venue, scope=f"cascade:{event.cascade_id}",
            severity="critical" if critical else params.severity, message="; ".join(parts),
            metrics={
                "cascade_id": event.cascade_id, "started_at": iso_or_none(event.started_at),
                "ended_at": iso_or_none(event.ended_at), "notional_usd": notional, "side": event.side,
                "minutes": event.minutes, "dominant_asset": event.dominant_asset,
                "price_move_pct": event.price_move_pct, "fund_change_usd": event.fund_change_usd,
                "incomplete": event.incomplete, "lower_bound": event.lower_bound,
            },
            data_ts=event.started_at,
        ))
    return signals


OKX_ADL_END = "adl_end"


def adl_near(readings: Sequence[AdlReading], params: AdlParams, as_of: datetime,
             labels: Mapping[str, str] = {}) -> list[Signal]:  # noqa: B006
    """A venue's own ADL indicator says ADL is near or running:

    * Bybit ``bybit_adl_alert``: ``distance`` = pnlRatio − insurancePnlRatio <= ``max_distance``
      (<= 0 or level not ``normal``: the trigger condition holds -> critical);
    * Binance ``binance_adl_risk``: level ``high``;
    * OKX ``okx_adl``: the latest event of a pool is an ``*_adl_start`` (not ``adl_end``) -> critical;
    * HTX ``htx_clawback``: ``estimated_clawback`` > 0 (HTX expects to claw back profits) -> critical;
    * Gate ``gate_adl_risk``: level ``warning`` (near), ``adl_risk`` -> critical.

    One signal per venue x signal type, naming the affected symbols/pools."""
    if not params.enabled:
        return []
    grouped: dict[tuple[str, str], list[tuple[int, AdlReading]]] = {}
    for row in readings:
        age_h = (as_of - row.ts).total_seconds() / 3600
        level = (row.level or "").lower()
        if row.signal_type == "bybit_adl_alert":
            if age_h > params.lookback_h:
                continue
            triggered = level not in ("", "normal") or (row.distance is not None and row.distance <= 0)
            near = row.distance is not None and row.distance <= params.max_distance
            if triggered or near:
                grouped.setdefault((row.venue, row.signal_type), []).append((2 if triggered else 1, row))
        elif row.signal_type == "binance_adl_risk":
            if age_h <= params.lookback_h and level == "high":
                grouped.setdefault((row.venue, row.signal_type), []).append((1, row))
        elif row.signal_type == "okx_adl":
            if age_h <= params.okx_lookback_h and level and level != OKX_ADL_END:
                grouped.setdefault((row.venue, row.signal_type), []).append((2, row))
        elif row.signal_type == "htx_clawback":
            if age_h <= params.lookback_h and row.value is not None and row.value > 0:
                grouped.setdefault((row.venue, row.signal_type), []).append((2, row))
        elif row.signal_type == "gate_adl_risk":
            if age_h <= params.lookback_h and level in ("warning", "adl_risk"):
                grouped.setdefault((row.venue, row.signal_type), []).append((2 if level == "adl_risk" else 1, row))
    signals = []
    for (venue, kind), found in sorted(grouped.items()):
        found.sort(key=lambda item: (-item[0], item[1].distance if item[1].distance is not None else 0,
                                     -(item[1].value or 0.0) if kind == "htx_clawback" else 0.0, item[1].scope))
        rank, worst = found[0]
        scopes = [r.scope for _, r in found]
        listed = ", ".join(scopes[:6]) + (f" and {len(scopes) - 6} more" if len(scopes) > 6 else "")
        name = venue_label(labels, venue)
        if kind == "bybit_adl_alert":
            if worst.value is not None and worst.threshold is not None:
                detail = (f"{worst.scope} pool drawdown ratio {fmt_number(worst.value)} vs ADL trigger "
                          f"{fmt_number(worst.threshold)} (headroom {fmt_signed(worst.distance or 0.0, 3)})")
            else:
                detail = f"{worst.scope} headroom {fmt_signed(worst.distance or 0.0, 3)}"
            state = "ADL trigger condition met" if rank == 2 else "near its ADL trigger"
            message = f"{name} {state}: {detail}" + (f"; also {listed}" if len(scopes) > 1 else "")
        elif kind == "binance_adl_risk":
            message = f"{name} ADL risk high: {listed}"
        elif kind == "htx_clawback":
            message = (f"{name} expects a clawback of {fmt_number((worst.value or 0.0) * 100)} % of profits "
                       f"on {listed} (estimated_clawback)")
        elif kind == "gate_adl_risk":
            message = f"{name} ADL state {worst.level} on {listed}"
        else:
            message = f"{name} ADL started ({worst.level}) on {listed} at {fmt_time(worst.ts)}"
        signals.append(Signal(
            rule=ADL_NEAR, venue=venue, scope=kind,
            severity="critical" if rank == 2 else params.severity, message=message,
            metrics={
                "signal_type": kind, "scopes": scopes[:50], "count": len(scopes), "level": worst.level,
                "value": worst.value, "threshold": worst.threshold, "distance": worst.distance,
                "ts": iso_or_none(worst.ts), "max_distance": params.max_distance,
            },
            data_ts=worst.ts,
        ))
    return signals
