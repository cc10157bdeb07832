"""The settings, for the composition root and the entry points (they live in ``configuration.settings``,
below the root, so the dashboard reads them without importing ``backstop``)."""

from __future__ import annotations

from configuration.settings import (
    DEFAULT_CONFIG_PATH,
    DEFAULT_DB_PATH,
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
    Settings,
    StressConfig,
    VenueConfig,
    load_settings,
)

__all__ = [
    "DEFAULT_CONFIG_PATH", "DEFAULT_DB_PATH", "AlertRuleConfig", "AlertsConfig", "CollectorConfig", "ConfigError",
    "DashboardConfig", "DatasetRetention", "Intervals", "LakeConfig", "MetricsConfig", "RetentionConfig", "Settings", "StressConfig", "VenueConfig",
    "load_settings",
]
