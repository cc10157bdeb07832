"""Typed configuration: built-in defaults < backstop.toml < BACKSTOP_* environment variables.

Below the composition root (the dashboard reads the settings file too): imports only ``records`` and
``metrics``; the known venues come from the generated venue catalog (``records.venue_catalog``).

Unknown keys, bad types and bad URLs raise ``ConfigError`` with a one-line message naming the key, so the
CLI can print it and exit non-zero without a traceback.
"""

from __future__ import annotations

import json
import os
import re
import tomllib
from pathlib import Path
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict, SettingsError

from metrics import stress as stress_model
from records.config import (  # the types the layers read, importable from here as before
    AlertRuleConfig,
    AlertsConfig,
    CollectorConfig,
    ConfigError,
    DashboardConfig,
    DatasetRetention,
    Intervals,
    LakeConfig,
    MetricsConfig,
    RetentionConfig,
    VenueConfig,
)
from records.venue_catalog import venue_keys  # the collector registry, as generated plain data

DEFAULT_DB_PATH = Path("data") / "backstop.duckdb"
DEFAULT_CONFIG_PATH = Path("backstop.toml")

__all__ = [
    "ConfigError", "Intervals", "VenueConfig", "CollectorConfig", "DashboardConfig", "AlertRuleConfig",
    "AlertsConfig", "DatasetRetention", "LakeConfig", "MetricsConfig", "RetentionConfig", "Settings", "StressConfig", "load_settings", "DEFAULT_DB_PATH",
    "DEFAULT_CONFIG_PATH",
]


class StressConfig(BaseModel):
    """The stress test's assumptions (defaults: metrics.stress; README "Stress test")."""

    model_config = ConfigDict(extra="forbid")

    leverage_tiers: dict[str, float] = Field(
        default_factory=lambda: {f"{lev:g}": share for lev, share in stress_model.DEFAULT_TIERS},
        description="leverage -> share of one side's open interest (the rest is unlevered/hedged)")
    maintenance_margin: float = Field(default=stress_model.DEFAULT_MAINTENANCE_MARGIN, ge=0, lt=0.5)
    entry_spread: float = Field(default=stress_model.DEFAULT_ENTRY_SPREAD, ge=0, le=1)
    calm_deficit_rate: float = Field(default=stress_model.DEFAULT_CALM_DEFICIT_RATE, ge=0, le=1)
    fill_degradation: float = Field(default=stress_model.DEFAULT_FILL_DEGRADATION, ge=0)
    max_deficit_rate: float = Field(default=stress_model.DEFAULT_MAX_DEFICIT_RATE, ge=0, le=1)
    daily_turnover: float = Field(default=stress_model.DEFAULT_DAILY_TURNOVER, gt=0)
    calibrate: bool = True
    calibration_days: int = Field(default=30, ge=1)
    min_calibration_days: int = Field(default=stress_model.MIN_CALIBRATION_DAYS, ge=1)
    history_days: int = Field(default=365, ge=1)
    scope: str = Field(default="all", pattern="^(all|family)$")

    @model_validator(mode="after")
    def _valid_distribution(self) -> StressConfig:
        self.distribution()
        return self

    def distribution(self) -> stress_model.LeverageDistribution:
        try:
            tiers = tuple(sorted((float(lev), float(share)) for lev, share in self.leverage_tiers.items()))
        except ValueError:
            raise ValueError("leverage_tiers keys must be numbers (the leverage)") from None
        return stress_model.LeverageDistribution(tiers, self.maintenance_margin, self.entry_spread)

    def fill_model(self, fill_degradation: float | None = None) -> stress_model.FillModel:
        degradation = self.fill_degradation if fill_degradation is None else fill_degradation
        return stress_model.FillModel(self.calm_deficit_rate, degradation, self.max_deficit_rate, self.daily_turnover)


def _default_venues() -> dict[str, VenueConfig]:
    return {key: VenueConfig() for key in venue_keys()}


class Settings(BaseSettings):
    """Everything Backstop reads from config. Env vars: BACKSTOP_DB, BACKSTOP_VENUES__OKX__ENABLED=false, ..."""

    model_config = SettingsConfigDict(
        env_prefix="BACKSTOP_", env_nested_delimiter="__", extra="forbid", validate_default=True
    )

    db: Path = DEFAULT_DB_PATH
    simulated: bool = False
    venues: dict[str, VenueConfig] = Field(default_factory=_default_venues)
    collector: CollectorConfig = Field(default_factory=CollectorConfig)
    dashboard: DashboardConfig = Field(default_factory=DashboardConfig)
    alerts: AlertsConfig = Field(default_factory=AlertsConfig)
    lake: LakeConfig = Field(default_factory=LakeConfig)
    metrics: MetricsConfig = Field(default_factory=MetricsConfig)
    stress: StressConfig = Field(default_factory=StressConfig)
    retention: RetentionConfig = Field(default_factory=RetentionConfig)

    @field_validator("venues", mode="after")
    @classmethod
    def _known_venues(cls, venues: dict[str, VenueConfig]) -> dict[str, VenueConfig]:
        known = venue_keys()
        unknown = sorted(set(venues) - set(known))
        if unknown:
            raise ValueError(f"unknown venue {unknown[0]!r} (known: {', '.join(known)})")
        merged = {key: VenueConfig() for key in known}
        merged.update(venues)
        return merged

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # env beats the file (passed as init kwargs) so one deployment file can be overridden per host
        return (env_settings, init_settings)

    def enabled_venues(self) -> list[str]:
        return [key for key, cfg in self.venues.items() if cfg.enabled]


def _format_validation_error(err: ValidationError, source: str) -> str:
    first = err.errors()[0]
    key = ".".join(str(p) for p in first["loc"]) or "(root)"
    kind = first["type"]
    if kind == "extra_forbidden":
        return f"{source}: unknown key '{key}'"
    return f"{source}: invalid value for '{key}': {first['msg']}"


def _environment_problem(err: SettingsError) -> str:
    """Name the unparseable BACKSTOP_* variable, never its value (alert targets are secrets)."""
    match = re.search(r'field "([^"]+)"', str(err))
    prefix = "BACKSTOP_" + (match.group(1).upper() if match else "")
    names = sorted(name for name in os.environ if name.upper().startswith(prefix))
    for name in names:
        value = os.environ[name].strip()
        if value[:1] in "[{":
            try:
                json.loads(value)
            except json.JSONDecodeError as exc:
                return f"environment: {name} is not valid JSON ({exc.msg} at character {exc.pos})"
    listed = ", ".join(names) or prefix + "*"
    return f"environment: cannot parse {listed} (lists and tables are JSON, e.g. '[\"json://…\"]')"


def load_settings(config_path: Path | None = None, db_path: Path | None = None, **overrides: Any) -> Settings:
    """Load settings. A missing explicit --config file is an error; a missing default one is fine."""
    data: dict[str, Any] = {}
    path = config_path
    if path is None and "BACKSTOP_CONFIG" in os.environ:
        path = Path(os.environ["BACKSTOP_CONFIG"])
    source = str(path) if path else "config"
    if path is not None:
        if not path.exists():
            raise ConfigError(f"config file not found: {path}")
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: not valid TOML: {exc}") from None
        except (OSError, UnicodeDecodeError) as exc:  # a directory, no permission, not text
            raise ConfigError(f"config file {path} cannot be read: {getattr(exc, 'strerror', None) or exc}") from None
    elif DEFAULT_CONFIG_PATH.exists():
        source = str(DEFAULT_CONFIG_PATH)
        try:
            data = tomllib.loads(DEFAULT_CONFIG_PATH.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{DEFAULT_CONFIG_PATH}: not valid TOML: {exc}") from None
    data.update(overrides)
    if db_path is not None:
        data["db"] = db_path
    try:
        settings = Settings(**data)
    except ValidationError as err:
        raise ConfigError(_format_validation_error(err, source)) from None
    except SettingsError as err:  # a BACKSTOP_* variable that pydantic-settings could not even parse
        raise ConfigError(_environment_problem(err)) from None
    if db_path is not None:  # --db beats the environment too
        settings.db = db_path
    return settings
