"""Hostile and mistaken CLI input: one clear line on stderr, a non-zero exit, never a traceback (issue #10
item 6); and the CLI's manners (issue #14): global options after the subcommand, help texts, plain output
when piped, an empty window refused, alert targets validated at config load and never printed."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest

from backstop.cli import reorder_global_options
from collectors.base import Batch
from collectors.registry import venue_keys
from storage.batch_writes import RunRecord
from storage.db import DatabaseBusy, ensure_database, read_connection, write_connection
from storage.writer import Store
from tests.conftest import wait_until

ROOT = Path(__file__).resolve().parent.parent


def backstop(*args: str, cwd: Path, env: dict[str, str] | None = None, user: str | None = None,
             timeout: float = 120) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    return subprocess.run([sys.executable, "-m", "backstop.cli", *args], capture_output=True, text=True,
                          cwd=cwd, env=full_env, timeout=timeout, user=user)


def assert_one_line_error(result: subprocess.CompletedProcess[str], needle: str) -> str:
    assert result.returncode != 0, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr + result.stdout, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert needle in lines[0], lines[0]
    return lines[0]


def offline_config(tmp_path: Path, extra: str = "") -> Path:
    """Only binance enabled, pointed at a closed local port: nothing ever leaves this machine."""
    lines = [f"[venues.{key}]\nenabled = false\n" for key in venue_keys() if key != "binance"]
    lines.append("[venues.binance]\nbase_url = 'http://127.0.0.1:9'\n")
    path = tmp_path / "offline.toml"
    path.write_text("\n".join(lines) + extra)
    path.chmod(0o644)  # readable by the unprivileged user of the read-only tests
    return path


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "ok.duckdb"
    ensure_database(path)
    return path


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["export", "funds", "--since", "99999999999d"], "--since"),
        (["export", "funds", "--until", "99999999999999999999999h"], "--until"),
        (["backfill", "--since", "99999999999d"], "--since"),
        (["alerts", "list", "--days", "inf"], "--days"),
        (["alerts", "list", "--days", "1e308"], "--days"),
        (["alerts", "list", "--days", "nan"], "--days"),
        (["export", "funds", "--out", "{tmp}"], "--out"),
        (["export", "funds", "--out", "{tmp}/missing/funds.csv"], "--out"),
        (["export", "funds", "--out", "{tmp}/funds.parquet"], "--out"),
        (["export", "funds", "--out", "{tmp}/funds.json"], "--out"),
        (["export", "funds", "--out", "/proc/backstop-cannot-write-here.csv"], "--out"),
        (["export", "funds", "--since", "1d", "--until", "2d"], "empty window"),
        (["export", "funds", "--since", "2026-01-02", "--until", "2026-01-02"], "empty window"),
    ],
)
def test_bad_arguments_are_one_line(tmp_path: Path, db: Path, args: list[str], needle: str) -> None:
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    assert_one_line_error(backstop("--db", str(db), *args, cwd=tmp_path), needle)


def test_export_into_a_closed_pipe_is_quiet(tmp_path: Path, db: Path) -> None:
    """`backstop export ... | head -1`: the reader leaving early is no error message (exit 141 like other
    Unix tools killed by SIGPIPE)."""
    with write_connection(db) as con:
        con.execute("INSERT INTO prices SELECT 'okx', 'BTC', now() - to_seconds(i), 1.0, 'x', now() "
                    "FROM range(200000) t(i)")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "backstop.cli", "--db", str(db), "export", "prices"],
                            cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    assert proc.stdout.readline().startswith(b"venue,")
    proc.stdout.close()  # the reader goes away, as `head -1` does
    stderr = proc.stderr.read().decode()
    assert proc.wait(120) == 141 and stderr == "", stderr


@pytest.mark.parametrize("command", [["status"], ["export", "funds"], ["alerts", "list"]])
@pytest.mark.parametrize("kind", ["not-duckdb", "directory"])
def test_unusable_database_is_one_line(tmp_path: Path, command: list[str], kind: str) -> None:
    path = tmp_path / "x.duckdb"
    if kind == "directory":
        path.mkdir()
    else:
        path.write_text("id,name\n1,this is a CSV, not a database\n")
    line = assert_one_line_error(backstop("--db", str(path), *command, cwd=tmp_path), str(path))
    assert "DuckDB" in line or "directory" in line


def test_malformed_targets_json_in_the_environment(tmp_path: Path, db: Path) -> None:
    secret = "slack://TOKENA/TOKENB/TOKENC"
    result = backstop("--db", str(db), "status", cwd=tmp_path,
                      env={"BACKSTOP_ALERTS__TARGETS": f'["{secret}", oops'})
    line = assert_one_line_error(result, "BACKSTOP_ALERTS__TARGETS")
    assert "TOKENA" not in result.stderr + result.stdout and "JSON" in line


def test_poll_interval_below_one_second_is_a_config_error(tmp_path: Path, db: Path) -> None:
    config = tmp_path / "fast.toml"
    config.write_text("[venues.okx.intervals]\nfunds = 0.5\n")
    assert_one_line_error(backstop("--config", str(config), "--db", str(db), "status", cwd=tmp_path),
                          "venues.okx.intervals.funds")
    config.write_text("[venues.okx.intervals]\nfunds = 0\nprices = 1\n")  # 0 = off and 1 s are fine
    assert backstop("--config", str(config), "--db", str(db), "status", cwd=tmp_path).returncode == 0


@pytest.mark.parametrize("target", ["not a url", "https://hooks.example/SECRETPART", "nosuchscheme://SECRETPART"])
def test_alert_target_checked_by_apprise_at_load_and_never_printed(tmp_path: Path, db: Path, target: str) -> None:
    config = tmp_path / "alerts.toml"
    config.write_text(f"[alerts]\ntargets = ['json://127.0.0.1:9/ok', {json.dumps(target)}]\n")
    result = backstop("--config", str(config), "--db", str(db), "status", cwd=tmp_path)
    line = assert_one_line_error(result, "alerts.targets")
    assert "targets[1]" in line or "targets.1" in line
    assert target not in result.stderr and "SECRETPART" not in result.stderr
    env_result = backstop("--db", str(db), "status", cwd=tmp_path,
                          env={"BACKSTOP_ALERTS__TARGETS": json.dumps([target])})
    assert_one_line_error(env_result, "alerts.targets")
    assert "SECRETPART" not in env_result.stderr


@pytest.fixture
def unwritable_db() -> Iterator[tuple[Path, str | None]]:
    """A migrated database the CLI process cannot write, and the user to run the CLI as: root ignores file
    modes, so as root the CLI runs as 'nobody' in a world-readable folder of its own (pytest's tmp_path is
    private to root)."""
    folder = Path(tempfile.mkdtemp(prefix="backstop-readonly-"))
    folder.chmod(0o755)
    db = folder / "ro.duckdb"
    ensure_database(db)
    db.chmod(0o444)
    try:
        yield db, ("nobody" if os.geteuid() == 0 else None)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def test_collect_once_on_read_only_database(unwritable_db: tuple[Path, str | None]) -> None:
    db, user = unwritable_db
    result = backstop("--config", str(offline_config(db.parent)), "--db", str(db), "collect", "--once",
                      cwd=db.parent, user=user)
    line = assert_one_line_error(result, str(db))
    assert "writ" in line


def test_collector_daemon_on_unwritable_database_exits_with_one_line(unwritable_db: tuple[Path, str | None]) -> None:
    db, user = unwritable_db
    started = time.monotonic()
    result = backstop("--config", str(offline_config(db.parent)), "--db", str(db), "collect",
                      cwd=db.parent, user=user, timeout=90)
    assert time.monotonic() - started < 90  # it stopped by itself, it did not keep running
    assert_one_line_error(result, str(db))


def test_collector_daemon_whose_database_turns_read_only_stops_with_one_line(tmp_path: Path) -> None:
    """The file becomes read-only while the daemon runs: it keeps its batches in memory for
    ``unwritable_exit_s``, then stops with one line and a non-zero exit (a supervisor restarts it),
    never a log line per poll for ever; what was written before stays."""
    folder = Path(tempfile.mkdtemp(prefix="backstop-turns-ro-"))
    user = "nobody" if os.geteuid() == 0 else None
    try:
        folder.chmod(0o777)  # the daemon (as 'nobody' under root) creates the file and its write-ahead log
        db = folder / "turns.duckdb"
        config = offline_config(folder, "\n[collector]\nunwritable_exit_s = 2\nmax_retries = 0\n"
                                        "[venues.binance.intervals]\nfunds = 1\n")  # a poll a second to store
        proc = subprocess.Popen(
            [sys.executable, "-m", "backstop.cli", "--config", str(config), "--db", str(db), "collect"],
            cwd=folder, env={**os.environ, "PYTHONPATH": str(ROOT)}, user=user,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            wait_until(lambda: _runs_stored(db) > 0 or proc.poll() is not None, 120, "the daemon's first run rows")
            assert proc.poll() is None, proc.communicate()
            stored_before = _runs_stored(db)
            db.chmod(0o444)
            _out, err = proc.communicate(timeout=120)  # it stops by itself
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        # a daemon logs as it goes (stderr); its end is one error line, never a traceback
        assert proc.returncode != 0 and "Traceback" not in err, err
        errors = [line for line in err.splitlines() if line.startswith("backstop: error:")]
        assert len(errors) == 1, err
        assert "refused writes" in errors[0] and str(db) in errors[0], errors[0]
        assert "permission denied" in errors[0] and "not written" in errors[0], errors[0]
        db.chmod(0o644)
        assert _runs_stored(db) >= stored_before
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _runs_stored(db: Path) -> int:
    """Run rows in the file, 0 while it does not exist yet or the daemon holds it this instant."""
    if not db.exists():
        return 0
    try:
        with read_connection(db, budget_s=1.0) as con:
            return int(con.execute("SELECT count(*) FROM collection_runs").fetchall()[0][0])
    except (DatabaseBusy, duckdb.Error):
        return 0


# -- issue #14: the CLI's manners ------------------------------------------------------------------------

def test_global_options_after_the_subcommand(tmp_path: Path, db: Path) -> None:
    for args in (["export", "funds", "--db", str(db)], ["status", "--db", str(db)],
                 ["alerts", "list", f"--db={db}"], ["export", "runs", "--log-level", "error", "--db", str(db)]):
        result = backstop(*args, cwd=tmp_path)
        assert result.returncode == 0, (args, result.stderr)
    config = offline_config(tmp_path)
    result = backstop("status", "--config", str(config), "--db", str(tmp_path / "missing.duckdb"), cwd=tmp_path)
    assert_one_line_error(result, "missing.duckdb")


def test_reorder_keeps_a_commands_own_option() -> None:
    # demo and dashboard have their own --db: it stays theirs
    assert reorder_global_options(["demo", "--db", "d.duckdb"]) == ["demo", "--db", "d.duckdb"]
    assert reorder_global_options(["export", "funds", "--db", "x", "--venue", "okx"]) == \
        ["--db", "x", "export", "funds", "--venue", "okx"]
    assert reorder_global_options(["alerts", "list", "--config=c.toml", "--days", "2"]) == \
        ["--config=c.toml", "alerts", "list", "--days", "2"]
    # an option's value that looks like a global option is left alone, and so is everything after --
    assert reorder_global_options(["export", "funds", "--venue", "--db"]) == ["export", "funds", "--venue", "--db"]
    assert reorder_global_options(["export", "funds", "--", "--db"]) == ["export", "funds", "--", "--db"]


COMMANDS = [["collect"], ["backfill"], ["status"], ["export"], ["simulate"], ["demo"], ["dashboard"], ["run"],
            ["compact"], ["alerts", "test"], ["alerts", "list"], []]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "backstop")
def test_help_is_plain_and_complete(tmp_path: Path, command: list[str]) -> None:
    result = backstop(*command, "--help", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "<bool>" not in result.stdout and "<list" not in result.stdout and "╭" not in result.stdout


def test_alerts_test_help_keeps_brackets(tmp_path: Path) -> None:
    assert "[alerts]" in backstop("alerts", "test", "--help", cwd=tmp_path).stdout


def test_every_option_has_help_and_choices_are_listed() -> None:
    import typer
    from typer._click.core import Context

    from backstop.cli import SCENARIO_HELP, app
    from simulator.scenarios import SCENARIOS

    group = typer.main.get_command(app)
    missing = []
    stack: list[tuple[str, Any]] = [("backstop", group)]
    while stack:
        name, command = stack.pop()
        for param in command.params:
            if param.param_type_name == "option" and not (param.help or "").strip():
                missing.append(f"{name} {param.opts[0]}")
        stack += [(f"{name} {sub}", cmd) for sub, cmd in (getattr(command, "commands", None) or {}).items()]
    assert not missing, missing
    assert all(scenario in SCENARIO_HELP for scenario in SCENARIOS)
    ctx = Context(group)
    for path, option, choices in [([], "--log-level", ["debug", "info", "warning", "error"]),
                                  (["demo"], "--scenario", SCENARIOS), (["simulate"], "--scenario", SCENARIOS),
                                  (["simulate"], "--fault", ["429", "latency", "disconnect"])]:
        command: Any = group
        for part in path:
            command = command.commands[part]
        (param,) = [p for p in command.params if option in getattr(p, "opts", [])]
        record = param.get_help_record(ctx)
        assert record is not None and all(choice in record[1] for choice in choices), record


def test_status_piped_is_one_line_per_row(tmp_path: Path, db: Path) -> None:
    store = Store(db)
    now = datetime.now(UTC)
    pairs = [(v, d) for v in venue_keys() for d in ("funds", "open_interest", "funding", "prices")][:52]
    for i, (venue, dataset) in enumerate(pairs):
        status = "error" if i % 2 else "ok"
        store.write(Batch(), RunRecord(f"r{i}", venue, dataset, "poll", now - timedelta(minutes=5), now, status,
                                    "NetworkError" if i % 2 else None,
                                    "contracts unavailable: DNS lookup failed for a very long host name "
                                    "that would wrap in a table" if i % 2 else None, 1))
    store.flush()
    result = backstop("--db", str(db), "status", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    table, _, assessments = result.stdout.partition("\n\n")  # the table, a blank line, then the assessments
    lines = table.splitlines()
    assert len(lines) == 1 + len(pairs), result.stdout[:2000]  # a header, then one line per row
    assert "nan: nan" not in table and "\tnan" not in table  # no error: an empty cell, never "nan: nan"
    assert assessments.startswith("assessments")
    header = lines[0].split("\t")
    assert header[:2] == ["venue", "dataset"]
    assert all(len(line.split("\t")) == len(header) for line in lines[1:])
