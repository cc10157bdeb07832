"""Two set-up commands for a fresh machine with only Python 3.11 and pip.

    python tasks.py run    # venv + install, then collectors + dashboard on ./data/backstop.duckdb
    python tasks.py test   # venv + install (+ Debian chromium when root), then ruff, import-linter, mypy, pytest

Extra arguments after the command are passed through (to `backstop run` or to pytest).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PY = BIN / "python"
STAMP = VENV / ".installed-stamp"


def _run(*args: str | Path) -> None:
    proc = subprocess.run([str(a) for a in args], cwd=ROOT)
    if proc.returncode != 0:
        sys.exit(proc.returncode)


def ensure_venv(dev: bool) -> None:
    """Create .venv once; reinstall only when pyproject.toml changed since the last install."""
    if not PY.exists():
        venv.EnvBuilder(with_pip=True).create(VENV)
    wanted = f"{(ROOT / 'pyproject.toml').stat().st_mtime_ns}:{dev}"
    if STAMP.exists() and STAMP.read_text() == wanted:
        return
    extra = ".[dev]" if dev else "."
    _run(PY, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-e", extra)
    STAMP.write_text(wanted)


def ensure_chromium() -> None:
    """The browser test drives Debian's chromium; install it when we can (root with apt)."""
    if shutil.which("chromium") or not shutil.which("apt-get") or os.geteuid() != 0:
        return
    subprocess.run(["apt-get", "update", "-qq"], check=False)
    subprocess.run(["apt-get", "install", "-y", "-qq", "chromium"], check=False,
                   env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] not in {"run", "test"}:
        print("usage: python tasks.py run|test [args...]", file=sys.stderr)
        sys.exit(2)
    command, rest = sys.argv[1], sys.argv[2:]
    if command == "run":
        ensure_venv(dev=False)
        _run(BIN / "backstop", "run", *rest)
    else:
        ensure_venv(dev=True)
        ensure_chromium()
        _run(BIN / "ruff", "check", ".")
        _run(BIN / "lint-imports")
        _run(BIN / "mypy")  # strict for collectors, storage, metrics, alerts, records ([tool.mypy])
        _run(PY, "-m", "pytest", "-q", *rest)


if __name__ == "__main__":
    main()
