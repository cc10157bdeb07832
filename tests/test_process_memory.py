"""The long-running processes limit glibc's malloc arenas; an operator's MALLOC_ARENA_MAX wins."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROBE = ("import os; from backstop.process_memory import limit_malloc_arenas; "
         "print(limit_malloc_arenas(), os.environ.get('MALLOC_ARENA_MAX'))")


def run_probe(env_value: str | None) -> str:
    env = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"}
    if env_value is not None:
        env["MALLOC_ARENA_MAX"] = env_value
    proc = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=60, check=True)
    return proc.stdout.strip()


def test_limits_arenas_and_passes_the_setting_to_children() -> None:
    assert run_probe(None) == "True 2"  # glibc (Debian): mallopt accepted; children inherit the variable


def test_an_operators_setting_is_kept() -> None:
    assert run_probe("4") == "False 4"
