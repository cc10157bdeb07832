"""Typed configuration: built-in defaults < backstop.toml < BACKSTOP_* environment variables.

Unknown keys, bad types and bad URLs raise ``ConfigError`` with a one-line message naming the key, so the
CLI can print it and exit non-zero without a traceback.
"""

from __future__ import annotations

import json
import os
import re
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    AnyHttpUrl,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict, SettingsError

from metrics import stress as stress_model

DEFAULT_DB_PATH = Path("data") / "backstop.duckdb"
DEFAULT_CONFIG_PATH = Path("backstop.toml")
MIN_POLL_INTERVAL_S = 1.0


class ConfigError(ValueError):
    """A configuration problem, worded for a one-line CLI error."""


class Intervals(BaseModel):
    """Poll intervals in seconds per dataset (0 disables the dataset's job)."""

    model_config = ConfigDict(extra="forbid")

    funds: float = Field(default=300, ge=0)
    open_interest: float = Field(default=300, ge=0)
    funding: float = Field(default=600, ge=0)
    prices: float = Field(default=300, ge=0)
    adl: float = Field(default=600, ge=0)
    liquidations: float = Field(default=300, ge=0)

    @field_validator("*", mode="after")
    @classmethod
    def _off_or_at_least_one_second(cls, seconds: float) -> float:
        # sub-second polling would hammer a venue and the database; 0 is the documented "off"
        if 0 < seconds < MIN_POLL_INTERVAL_S:
            raise ValueError(f"a poll interval is 0 (off) or at least {MIN_POLL_INTERVAL_S:g} s, got {seconds:g}")
        return seconds


class VenueConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    base_url: AnyHttpUrl | None = None
    intervals: Intervals = Field(default_factory=Intervals)
    symbols: list[str] = Field(default_factory=list, description="only these venue symbols; empty = all")
    max_symbols: int = Field(default=50, ge=1, description="cap on per-symbol REST calls per cycle")
    timeout_s: float = Field(default=20, gt=0)
    streams: bool = True

    def base_url_str(self) -> str | None:
        return str(self.base_url).rstrip("/") if self.base_url else None


class CollectorConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    jitter_s: float = Field(default=5, ge=0)
    max_retries: int = Field(default=3, ge=0)
    backoff_base_s: float = Field(default=1.0, ge=0)
    backoff_max_s: float = Field(default=60.0, ge=0)
    backfill_days: int = Field(default=90, ge=1)


class DashboardConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    host: str = "127.0.0.1"
    port: int = Field(default=8501, ge=1, le=65535)
    refresh_s: int = Field(default=60, ge=5)
    cache_ttl_s: int = Field(default=30, ge=1)


class AlertRuleConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    severity: str | None = None
    threshold_pct: float | None = None
    windows_h: list[float] | None = None
    params: dict[str, float] = Field(default_factory=dict)


class AlertsConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    targets: list[SecretStr] = Field(default_factory=list, description="apprise URLs (secrets: never logged)")
    cooldown_s: float = Field(default=3600, ge=0)
    delivery_retries: int = Field(default=3, ge=0)
    rules: dict[str, AlertRuleConfig] = Field(default_factory=dict)

    @field_validator("targets", mode="after")
    @classmethod
    def _apprise_accepts(cls, targets: list[SecretStr]) -> list[SecretStr]:
        """Checked with apprise's own URL parsing now, not at the first alert; named by position and
        scheme only (a target URL carries tokens)."""
        if not targets:
            return targets
        from alerts.targets import target_label, target_problem

        for index, target in enumerate(targets):
            url = target.get_secret_value()
            problem = target_problem(url)
            if problem:
                raise ValueError(f"targets[{index}] ({target_label(url)}): {problem}")
        return targets


class DatasetRetention(BaseModel):
    """Raw rows older than ``keep_days`` are downsampled (newest row per series and hour) or dropped."""

    model_config = ConfigDict(extra="forbid")

    keep_days: float = Field(ge=0, description="0 = keep every raw row forever")
    action: Literal["downsample", "drop"] = "downsample"


class RetentionConfig(BaseModel):
    """What ``backstop compact`` (and the collector, every ``compact_every_h`` hours) lets go. Fund rows,
    fund flows, hourly rollups, cascades, gaps and alerts are always kept."""

    model_config = ConfigDict(extra="forbid")

    open_interest: DatasetRetention = Field(default_factory=lambda: DatasetRetention(keep_days=30))
    funding: DatasetRetention = Field(default_factory=lambda: DatasetRetention(keep_days=30))
    prices: DatasetRetention = Field(default_factory=lambda: DatasetRetention(keep_days=30))
    liquidations: DatasetRetention = Field(
        default_factory=lambda: DatasetRetention(keep_days=90, action="drop"))  # per-minute sums kept
    runs: DatasetRetention = Field(default_factory=lambda: DatasetRetention(keep_days=180, action="drop"))
    compact_every_h: float = Field(default=0, ge=0, description="collector compacts on this schedule; 0 = never")

    @field_validator("liquidations", "runs", mode="after")
    @classmethod
    def _drop_only(cls, rule: DatasetRetention) -> DatasetRetention:
        if rule.action != "drop" and rule.keep_days > 0:
            raise ValueError("only action = 'drop' (liquidations keep their per-minute sums; runs are events)")
        return rule


class LakeConfig(BaseModel):
    """The Parquet lake (`backstop lake sync`): a folder or s3://bucket/prefix, optionally synced by the
    collector on a schedule. S3 credentials come from the standard AWS environment variables only."""

    model_config = ConfigDict(extra="forbid")

    dest: str | None = Field(default=None, description="folder or s3://bucket/prefix")
    s3_endpoint: AnyHttpUrl | None = Field(default=None, description="e.g. http://127.0.0.1:9000 (MinIO, moto)")
    s3_region: str | None = None
    sync_every_s: float = Field(default=0, ge=0, description="collector syncs the lake this often; 0 = off")
    datasets: list[str] = Field(default_factory=list, description="only these datasets; empty = all")


class MetricsConfig(BaseModel):
    """Prometheus `/metrics` of the collector (off unless a port is given)."""

    model_config = ConfigDict(extra="forbid")

    host: str = "127.0.0.1"
    port: int | None = Field(default=None, ge=1, le=65535)


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
    from collectors.registry import venue_keys

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
        from collectors.registry import venue_keys

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
