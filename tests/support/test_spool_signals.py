"""Spooled copies of pipes and devices are removed on SIGTERM and SIGHUP too (issue 19, item 7).

``timeout 3 tracebridge fold /dev/zero`` left a 1.2 GB copy in the temporary
directory: only a normal exit or Ctrl-C removed it.  Here a real
``tracebridge fold /dev/zero`` is signalled while it copies; the copy must be
gone and the process must still end by that signal.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("number", [signal.SIGTERM, signal.SIGHUP])
def test_signal_removes_the_copy_and_still_ends_the_process(tmp_path, number):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TMPDIR": str(tmp_path)}
    process = subprocess.Popen([sys.executable, "-m", "tracebridge", "fold", "/dev/zero"], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            copies = list(tmp_path.glob("tracebridge-*"))
            if copies and copies[0].stat().st_size > (8 << 20):
                break
            time.sleep(0.02)
        else:
            raise AssertionError("no copy of /dev/zero appeared")
        process.send_signal(number)
        status = process.wait(timeout=30)
    finally:
        process.kill()
        process.wait()
    assert status == -number
    assert list(tmp_path.iterdir()) == []
