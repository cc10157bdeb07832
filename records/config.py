"""Configuration types that the layers below the composition root read: a venue's settings (collectors),
the collector's retry policy, the alert rules (alerts), the dashboard's, the lake's and the metrics
endpoint's. ``backstop.config.Settings`` assembles them with the file and the environment.

Unknown keys and bad types raise pydantic errors that ``backstop.config.load_settings`` turns into one
``ConfigError`` line naming the key.
"""

from __future__ import annotations

from typing import Literal

from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field, SecretStr, field_validator

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
    unwritable_exit_s: float = Field(
        default=120, ge=0, description="a daemon whose database refuses writes this long (read-only, disk full) "
        "stops with one error line rather than buffer without end; 0 = keep buffering")


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
        from records.alert_targets import target_label, target_problem

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

