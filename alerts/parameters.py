"""The alert rules' names, severities and parameters: one frozen dataclass of defaults per rule, and
``build_params`` that applies ``[alerts.rules.<name>]`` over them (bad keys raise, naming the key)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, TypeVar

from metrics import divergence as D
from metrics.fund_changes import ANOMALY_MIN_CHANGE_PCT, ANOMALY_Z

SEVERITIES: tuple[str, ...] = ("info", "warning", "critical")

FUND_DRAWDOWN = "fund_drawdown"
COVERAGE_LOW = "coverage_low"
DIVERGENCE = "divergence"
CASCADE = "cascade"
ADL_NEAR = "adl_near"
STALE = "stale"
FUND_ANOMALY = "fund_anomaly"
RULES: tuple[str, ...] = (FUND_DRAWDOWN, COVERAGE_LOW, DIVERGENCE, CASCADE, ADL_NEAR, STALE, FUND_ANOMALY)


def severity_rank(severity: str | None) -> int:
    """-1 for None (nothing notified yet), then info < warning < critical."""
    return SEVERITIES.index(severity) if severity in SEVERITIES else -1


# -- parameters -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RuleParams:
    """Common settings; ``threshold_pct`` and ``windows_h`` mean what each rule's docstring says."""

    enabled: bool = True
    severity: str = "warning"  # the base severity; rules escalate to critical on their own criterion
    threshold_pct: float = 10.0
    windows_h: tuple[float, ...] = ()


@dataclass(frozen=True)
class DrawdownParams(RuleParams):
    threshold_pct: float = 10.0  # fire when a fund is down more than this from its window maximum
    windows_h: tuple[float, ...] = (8.0, 24.0, 168.0)
    critical_pct: float = 25.0
    min_points: int = 2
    min_fund_usd: float = 100_000.0  # ignore small pools (hundreds of tiny isolated pools on Bybit)


@dataclass(frozen=True)
class CoverageParams(RuleParams):
    threshold_pct: float = 0.5  # absolute floor: fund below this % of open interest
    median_fraction: float = 0.5  # or below this fraction of the venue's own median coverage
    median_days: int = 30
    min_days: int = 7  # a median needs this many daily points


_DIV = D.DivergenceRule()  # the one rule's defaults


@dataclass(frozen=True)
class DivergenceParams(RuleParams):
    """``metrics.divergence.DivergenceRule`` as configured in ``[alerts.rules.divergence]``."""

    threshold_pct: float = _DIV.min_gap_pct  # minimum absolute move vs the peers' median, in percentage points
    windows_h: tuple[float, ...] = (24.0,)
    z_threshold: float = _DIV.z_threshold
    min_venues: int = _DIV.min_venues  # venues with a value in the window, the tested one included
    mad_floor_pct: float = _DIV.mad_floor_pct  # scale floor: identical peers must not make any wiggle an outlier
    common_move_factor: float = _DIV.common_move_factor  # scale floor as a share of the peers' median move
    critical_pct: float = 20.0
    include_rises: int = 0  # 1 = a venue's fund jumping up is reported too

    def rule(self) -> D.DivergenceRule:
        return D.DivergenceRule(z_threshold=self.z_threshold, min_gap_pct=self.threshold_pct,
                                mad_floor_pct=self.mad_floor_pct, common_move_factor=self.common_move_factor,
                                min_venues=self.min_venues, include_rises=bool(self.include_rises))


@dataclass(frozen=True)
class CascadeParams(RuleParams):
    threshold_pct: float = 0.0  # unused
    min_notional_usd: float = 0.0
    critical_notional_usd: float = 100_000_000.0
    lookback_h: float = 6.0  # a cascade that started longer ago than this is history
    hold_h: float = 1.0  # keep firing this long after it ended


@dataclass(frozen=True)
class AdlParams(RuleParams):
    threshold_pct: float = 0.0  # unused
    max_distance: float = 0.1  # Bybit: pnlRatio headroom above insurancePnlRatio (ratio units)
    lookback_h: float = 2.0  # readings older than this are ignored (stale rule covers silence)
    okx_lookback_h: float = 36.0  # OKX publishes ADL events daily


@dataclass(frozen=True)
class StaleParams(RuleParams):
    threshold_pct: float = 0.0  # unused
    multiple: float = 3.0  # no successful poll for multiple x poll interval
    data_multiple: float = 3.0  # newest venue timestamp older than data_multiple x cadence
    min_stale_s: float = 600.0  # never call a job stale sooner than this


@dataclass(frozen=True)
class AnomalyParams(RuleParams):
    """A fund's 24 h / 7 d trading change scored against its own history (see ``fund_anomaly``)."""

    threshold_pct: float = ANOMALY_MIN_CHANGE_PCT  # and the change itself is at least this large a fall
    windows_h: tuple[float, ...] = (24.0, 168.0)
    z_threshold: float = ANOMALY_Z  # robust z against the fund's own trailing changes
    history_days: int = 90
    min_history: int = 30  # fewer past trading changes: no score (the fixed drawdown threshold remains)
    min_fund_usd: float = 100_000.0


PARAM_TYPES: dict[str, type[RuleParams]] = {
    FUND_DRAWDOWN: DrawdownParams, COVERAGE_LOW: CoverageParams, DIVERGENCE: DivergenceParams,
    CASCADE: CascadeParams, ADL_NEAR: AdlParams, STALE: StaleParams, FUND_ANOMALY: AnomalyParams,
}

P = TypeVar("P", bound=RuleParams)


def build_params(kind: type[P], config: Any | None) -> P:
    """Defaults < ``[alerts.rules.<name>]`` (an ``AlertRuleConfig``). Unknown ``params`` keys and bad
    severities raise ``ValueError`` naming the key."""
    params = kind()
    if config is None:
        return params
    changes: dict[str, Any] = {"enabled": bool(config.enabled)}
    if config.severity is not None:
        if config.severity not in SEVERITIES:
            raise ValueError(f"severity {config.severity!r} (one of {', '.join(SEVERITIES)})")
        changes["severity"] = config.severity
    if config.threshold_pct is not None:
        changes["threshold_pct"] = float(config.threshold_pct)
    if config.windows_h is not None:
        if not config.windows_h or any(w <= 0 for w in config.windows_h):
            raise ValueError("windows_h must be positive hours")
        changes["windows_h"] = tuple(float(w) for w in config.windows_h)
    known = {f.name: f for f in dataclasses.fields(kind)}
    for key, value in (config.params or {}).items():
        if key not in known or key in {"enabled", "severity", "threshold_pct", "windows_h"}:
            extra = sorted(set(known) - {"enabled", "severity", "threshold_pct", "windows_h"})
            raise ValueError(f"unknown param {key!r} (known: {', '.join(extra)})")
        changes[key] = int(value) if known[key].type in ("int", int) else float(value)
    return dataclasses.replace(params, **changes)
