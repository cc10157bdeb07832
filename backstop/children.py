"""Child processes (the Streamlit dashboard) that never outlive Backstop.

Two guards, because either alone leaves an orphan holding the port: signals sent to Backstop (SIGTERM from
systemd, docker or ``kill``; SIGINT; SIGHUP) are forwarded to the child, which then stops cleanly; and on
Linux the child asks the kernel for SIGTERM when its parent dies (``prctl(PR_SET_PDEATHSIG)``), which also
covers ``kill -9`` of Backstop and signals that arrive before any handler is installed. Processes that
run an asyncio loop turn SIGINT/SIGTERM into a stop event (``install_stop_handlers``) and end a child
with ``stop_process``.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from types import FrameType
from typing import Any

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
FORWARDED_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


def _die_with_parent(parent_pid: int) -> None:
    """Runs in the child between fork and exec: SIGTERM when the parent goes away."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        os._exit(1)


def spawn(command: Sequence[str], **popen_kwargs: Any) -> subprocess.Popen[bytes]:
    """``subprocess.Popen`` whose child is terminated when this process dies (Linux; elsewhere the
    caller's signal forwarding and ``finally`` blocks are the guard)."""
    if sys.platform.startswith("linux"):
        parent_pid = os.getpid()
        popen_kwargs["preexec_fn"] = lambda: _die_with_parent(parent_pid)
    return subprocess.Popen(list(command), **popen_kwargs)


def run_forwarding(command: Sequence[str], **popen_kwargs: Any) -> int:
    """Run ``command`` in the foreground until it exits, passing SIGTERM/SIGINT/SIGHUP on to it; the
    exit status is the child's (128 + N when a signal N ended it, as a shell reports it)."""
    proc = spawn(command, **popen_kwargs)

    def forward(signum: int, _frame: FrameType | None) -> None:
        if proc.poll() is None:
            proc.send_signal(signum)

    previous = {sig: signal.signal(sig, forward) for sig in FORWARDED_SIGNALS}
    try:
        while True:
            try:
                code = proc.wait()
                break
            except KeyboardInterrupt:  # pragma: no cover - SIGINT is forwarded by the handler above
                continue
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if proc.poll() is None:
            proc.kill()
    return 128 - code if code < 0 else code


def stop_process(proc: subprocess.Popen[bytes] | None) -> None:
    """Terminate a child that is still running; kill it if it has not exited 10 s later."""
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()


def install_stop_handlers(stop: asyncio.Event) -> None:
    """SIGINT/SIGTERM set ``stop`` (a no-op where the loop cannot take signal handlers)."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):  # not the main thread
            loop.add_signal_handler(sig, stop.set)
