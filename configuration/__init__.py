"""Backstop's settings (``configuration.settings``), readable by every process without the composition root."""
