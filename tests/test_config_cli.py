"""Config validation and the CLI contract: one clear line and a non-zero exit on bad input."""

from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

from backstop.config import ConfigError, load_settings
from collectors.registry import venue_keys

ROOT = Path(__file__).resolve().parent.parent


def backstop(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    # this checkout's code, whatever copy of backstop the interpreter has installed
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "backstop.cli", *args], capture_output=True, text=True,
                          cwd=cwd, timeout=120, env=env)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "backstop.toml"
    path.write_text(text)
    return path


def test_defaults_cover_every_registered_venue(tmp_path: Path) -> None:
    settings = load_settings(db_path=tmp_path / "x.duckdb")
    assert list(settings.venues) == venue_keys()
    assert settings.dashboard.host == "127.0.0.1"


@pytest.mark.parametrize(
    ("toml", "needle"),
    [
        ("[venues.binance]\nenabld = true\n", "unknown key 'venues.binance.enabld'"),
        ("[venues.binance]\nenabled = 'yes please'\n", "'venues.binance.enabled'"),
        ("[venues.binance]\nbase_url = 'not a url'\n", "'venues.binance.base_url'"),
        ("[venues.nosuchvenue]\nenabled = true\n", "unknown venue 'nosuchvenue'"),
        ("[venues.binance.intervals]\nfunds = -5\n", "'venues.binance.intervals.funds'"),
        ("colour = 'blue'\n", "unknown key 'colour'"),
        ("[venues.binance\n", "not valid TOML"),
    ],
)
def test_bad_config_names_the_key(tmp_path: Path, toml: str, needle: str) -> None:
    path = write(tmp_path, toml)
    with pytest.raises(ConfigError) as err:
        load_settings(path)
    assert needle in str(err.value)


def test_environment_overrides_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, "[venues.binance]\nenabled = true\n")
    monkeypatch.setenv("BACKSTOP_VENUES__BINANCE__ENABLED", "false")
    monkeypatch.setenv("BACKSTOP_DASHBOARD__PORT", "9999")
    settings = load_settings(path)
    assert settings.venues["binance"].enabled is False
    assert settings.dashboard.port == 9999


def test_alert_targets_are_secret(tmp_path: Path) -> None:
    path = write(tmp_path, "[alerts]\ntargets = ['slack://TOKENA/TOKENB/TOKENC']\n")  # a URL apprise accepts (targets are checked at load)
    settings = load_settings(path)
    assert "TOKENA" not in repr(settings) and "TOKENA" not in str(settings.alerts)
    assert settings.alerts.targets[0].get_secret_value().startswith("slack://TOKENA")


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--config", "/does/not/exist.toml", "status"], "config file not found"),
        (["export", "nonsense"], "unknown dataset 'nonsense'"),
        (["collect", "--once", "--venue", "nowhere"], "unknown venue 'nowhere'"),
        (["export", "funds", "--since", "last tuesday"], "--since"),
        (["collect", "--bogus-flag"], "No such option"),
        (["simulate", "--port", "99999"], "--port"),
    ],
)
def test_cli_errors_are_one_line(tmp_path: Path, args: list[str], needle: str) -> None:
    result = backstop("--db", str(tmp_path / "none.duckdb"), *args, cwd=tmp_path)
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert needle in lines[0]
    assert "Traceback" not in result.stderr + result.stdout


def test_bad_config_file_via_cli(tmp_path: Path) -> None:
    path = write(tmp_path, "[venues.binance]\nbase_url = 'ftp:/x'\n")
    result = backstop("--config", str(path), "status", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().startswith("backstop: error:") and "venues.binance.base_url" in result.stderr


def test_every_command_has_help() -> None:
    for command in ["collect", "backfill", "status", "export", "simulate", "demo", "dashboard", "run"]:
        result = backstop(command, "--help")
        assert result.returncode == 0, (command, result.stderr)
        assert "--config" not in result.stdout or command == ""  # global options live on the group


@pytest.mark.e2e
def test_collect_once_and_export_via_cli(sim_factory, tmp_path: Path) -> None:
    sim = sim_factory(["binance"])
    lines = [f"[venues.{key}]\nenabled = false\n" for key in venue_keys() if key != "binance"]
    lines.append(f"[venues.binance]\nbase_url = '{sim.base_url('binance')}'\n")
    config = write(tmp_path, "\n".join(lines))
    db = tmp_path / "cli.duckdb"
    once = backstop("--config", str(config), "--db", str(db), "collect", "--once", cwd=tmp_path)
    assert once.returncode == 0, once.stderr
    assert "binance" in once.stdout and "funds" in once.stdout
    out = backstop("--config", str(config), "--db", str(db), "export", "funds", "--venue", "binance", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    rows = list(csv.DictReader(io.StringIO(out.stdout)))
    assert rows and all(r["venue"] == "binance" for r in rows)
    assert rows[0]["ts"].endswith("Z")
    status = backstop("--config", str(config), "--db", str(db), "status", cwd=tmp_path)
    assert status.returncode == 0 and "binance" in status.stdout
