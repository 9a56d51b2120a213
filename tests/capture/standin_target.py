"""A FreeBSD target made of stand-in tools (``standins/``), for ``tracebridge record`` tests.

:func:`install_target` builds a ``bin`` directory holding the chosen stand-ins and the
few real commands the tests run (``sh``, ``sleep``, ``uname``, ``touch``), and
makes it, with this Python's directory (the stand-ins' ``#!/usr/bin/env
python3``), the whole PATH: a machine's own ``dtrace`` (systemtap ships one)
can never be picked up.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

HERE = Path(__file__).parent
STANDINS = HERE / "standins"
sys.path.insert(0, str(HERE))

import world  # noqa: E402
from tracebridge.capture import session, tracer  # noqa: E402

MODULE_NAME = "rem_legacy_fp"
MODULE = world.MODULES / f"{MODULE_NAME}.ko"
SYSTEM_COMMANDS = ("sh", "sleep", "uname", "touch")


@dataclass
class Target:
    bin: Path
    calls_file: Path
    env: dict[str, str]

    def calls(self) -> list[list[str]]:
        """Each stand-in run so far: [tool, *argv]."""
        if not self.calls_file.exists():
            return []
        return [json.loads(line) for line in self.calls_file.read_text().splitlines()]

    def ready(self, tool: str, pids: set[int]) -> bool:
        """Whether a stand-in ``tool`` with one of these pids has its signal handlers in place (world.log_ready)."""
        return any(call[0] == f"{tool}-ready" and int(call[1]) in pids for call in self.calls())

    def wait_ready(self, tool: str, pids: set[int], running=lambda: True) -> None:
        """Wait until :meth:`ready`, or ``running()`` says the stand-in ended first (it failed to start)."""
        deadline = time.monotonic() + READY_TIMEOUT
        while not self.ready(tool, pids) and running():
            assert time.monotonic() < deadline, f"the stand-in {tool} never got ready"
            time.sleep(0.01)


def install_target(directory: Path, patch: pytest.MonkeyPatch, tools=("dtrace", "pmcstat", "kldstat"),
                   loaded: bool = True, **extra: str) -> Target:
    """Put the stand-in machine in place: a fresh ``directory/bin`` as the whole PATH, and its environment."""
    bin_dir = directory / "bin"
    if bin_dir.exists():
        shutil.rmtree(bin_dir)
    bin_dir.mkdir(parents=True)
    for tool in tools:
        (bin_dir / tool).symlink_to(STANDINS / tool)
    for command in SYSTEM_COMMANDS:
        (bin_dir / command).symlink_to(shutil.which(command))
    calls = directory / "calls.jsonl"
    env = {"PATH": f"{bin_dir}{os.pathsep}{Path(sys.executable).parent}", "STANDIN_CALLS": str(calls), **extra}
    if loaded:
        env["STANDIN_MODULE"] = MODULE_NAME
    else:
        patch.delenv("STANDIN_MODULE", raising=False)
    for name, value in env.items():
        patch.setenv(name, value)
    # The stand-ins need no privileges; the real effective uid still owns (and is checked against) the output.
    patch.setattr(session, "require_root", lambda tool: None)
    target = Target(bin_dir, calls, env)
    settle = tracer.Tracer.wait_started

    def ready_then_settle(self: tracer.Tracer, seconds: float) -> None:
        """--settle assumes the tool ready within it; a stand-in on a loaded machine may not be, so wait."""
        target.wait_ready(self.name, {self.pid}, running=lambda: self._process.poll() is None)
        settle(self, seconds)

    patch.setattr(tracer.Tracer, "wait_started", ready_then_settle)
    return target


#: Seconds a stand-in may take to start on a loaded machine (it takes a fraction of one when idle).
READY_TIMEOUT = 60.0


#: ``tracebridge`` in a child process, its root check skipped as :func:`install_target` skips this one's.
RECORD_PROCESS = [sys.executable, "-c",
                  "import sys; from tracebridge.capture import session; session.require_root = lambda tool: None; "
                  "from tracebridge.cli import main; "
                  "sys.exit(main(sys.argv[1:]))", "record"]
