"""``backstop dashboard`` and ``backstop demo`` never leave Streamlit running after they are stopped
(issue #10 item 7): SIGTERM is forwarded, and on Linux the child dies with its parent even on kill -9."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from storage.db import ensure_database
from tests.conftest import wait_until

ROOT = Path(__file__).resolve().parent.parent
pytestmark = [pytest.mark.e2e, pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc")]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # ignore TIME_WAIT, not a listener
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def answers_http(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2) as response:  # noqa: S310
            return bool(response.status == 200)
    except OSError:
        return False


def descendants(pid: int) -> set[int]:
    """Every process below ``pid`` (from /proc/PID/task/*/children)."""
    found: set[int] = set()
    stack = [pid]
    while stack:
        current = stack.pop()
        try:
            tasks = os.listdir(f"/proc/{current}/task")
        except FileNotFoundError:
            continue
        for task in tasks:
            try:
                children = Path(f"/proc/{current}/task/{task}/children").read_text().split()
            except OSError:
                continue
            for child in map(int, children):
                if child not in found:
                    found.add(child)
                    stack.append(child)
    return found


def alive(pid: int) -> bool:
    """Running (a zombie waiting for its reaper counts as gone)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "\nState:\tZ" not in status


def is_streamlit(pid: int) -> bool:
    try:
        return b"streamlit" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


SEEN: set[int] = set()  # every streamlit pid a test saw, killed at teardown if still there (orphans too)


@pytest.fixture
def started() -> Iterator[list[subprocess.Popen[bytes]]]:
    procs: list[subprocess.Popen[bytes]] = []
    yield procs
    for proc in procs:  # a failed assertion must not leave anything behind either
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)
    for pid in list(SEEN):
        if alive(pid) and is_streamlit(pid):
            os.kill(pid, signal.SIGKILL)
        SEEN.discard(pid)


def start(started: list[subprocess.Popen[bytes]], args: list[str], cwd: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "backstop.cli", *args], cwd=cwd, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    started.append(proc)
    return proc


def stop_and_check(proc: subprocess.Popen[bytes], port: int, sig: signal.Signals) -> None:
    wait_until(lambda: answers_http(port), 180, f"the dashboard answering on port {port}")
    streamlit = {pid for pid in descendants(proc.pid) if is_streamlit(pid)}
    assert streamlit, "no streamlit child found"
    SEEN.update(streamlit)
    proc.send_signal(sig)
    proc.wait(60)
    wait_until(lambda: not any(alive(pid) for pid in streamlit), 60, "the streamlit child to exit")
    wait_until(lambda: port_is_free(port), 60, f"port {port} to be free")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_dashboard_leaves_no_streamlit_behind(tmp_path: Path, started: list[subprocess.Popen[bytes]],
                                              sig: signal.Signals) -> None:
    db = tmp_path / "dash.duckdb"
    ensure_database(db)
    port = free_port()
    proc = start(started, ["--db", str(db), "dashboard", "--port", str(port)], tmp_path)
    stop_and_check(proc, port, sig)
    if sig == signal.SIGTERM:
        assert proc.returncode in (0, 143, -signal.SIGTERM)


def test_demo_leaves_no_streamlit_behind(tmp_path: Path, started: list[subprocess.Popen[bytes]]) -> None:
    port = free_port()
    proc = start(started, ["demo", "--headless", "--db", str(tmp_path / "demo.duckdb"), "--port", str(port),
                           "--scenario", "calm"], tmp_path)
    stop_and_check(proc, port, signal.SIGTERM)
