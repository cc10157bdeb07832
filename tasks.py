"""Two set-up commands for a fresh machine with only Python 3.11 and pip.

    python tasks.py run    # venv + locked install, then collectors + dashboard on ./data/backstop.duckdb
    python tasks.py test   # venv + locked install (+ Debian chromium, prometheus when root), then ruff, import-linter, mypy, pytest

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
LOCK = ROOT / "requirements.lock"  # pip-compile --extra dev --generate-hashes (see README, "Dependencies")


def _run(*args: str | Path) -> None:
    proc = subprocess.run([str(a) for a in args], cwd=ROOT)
    if proc.returncode != 0:
        sys.exit(proc.returncode)


def ensure_venv() -> None:
    """Create .venv once; install the pinned, hash-checked requirements.lock (every dependency, dev tools
    included), then the project itself without resolving anything else. Reinstalls only when the lock or
    pyproject.toml changed since the last install."""
    if not PY.exists():
        venv.EnvBuilder(with_pip=True).create(VENV)
    wanted = f"{LOCK.stat().st_mtime_ns}:{(ROOT / 'pyproject.toml').stat().st_mtime_ns}"
    if STAMP.exists() and STAMP.read_text() == wanted:
        return
    quiet = ["--quiet", "--disable-pip-version-check"]
    _run(PY, "-m", "pip", "install", *quiet, "--require-hashes", "-r", LOCK)
    _run(PY, "-m", "pip", "install", *quiet, "--no-deps", "-e", ".")
    STAMP.write_text(wanted)


SYSTEM_PACKAGES = {"chromium": "chromium", "prometheus": "prometheus"}  # command -> Debian package


def ensure_system_packages() -> None:
    """The browser tests drive Debian's chromium and the metrics test scrapes with Debian's prometheus;
    install what is missing when we can (root with apt)."""
    missing = [pkg for cmd, pkg in SYSTEM_PACKAGES.items() if not shutil.which(cmd)]
    if not missing or not shutil.which("apt-get") or os.geteuid() != 0:
        return
    subprocess.run(["apt-get", "update", "-qq"], check=False)
    subprocess.run(["apt-get", "install", "-y", "-qq", *missing], check=False,
                   env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] not in {"run", "test"}:
        print("usage: python tasks.py run|test [args...]", file=sys.stderr)
        sys.exit(2)
    command, rest = sys.argv[1], sys.argv[2:]
    if command == "run":
        ensure_venv()
        _run(BIN / "backstop", "run", *rest)
    else:
        ensure_venv()
        ensure_system_packages()
        _run(BIN / "ruff", "check", ".")
        _run(BIN / "lint-imports")
        _run(BIN / "mypy")  # strict for every package ([tool.mypy] files)
        _run(PY, "-m", "pytest", "-q", *rest)


if __name__ == "__main__":
    main()
