"""Running the command whose CPU usage is recorded (``tracebridge cpu -- iperf3 ...``).

While the live table redraws the terminal, the workload must not write to the
same terminal behind its back, or both outputs are garbled.  So with a live
view the workload writes into a pseudo-terminal (it still line-buffers as on
a terminal, as iperf3's per-second lines need) and each of its lines is
printed above the live table.  Without a live view it simply inherits our
standard output and error.
"""

from __future__ import annotations

import contextlib
import os
import pty
import subprocess
import threading
import time
from collections.abc import Callable, Sequence

import psutil

from tracebridge.support.errors import UsageError
from tracebridge.support import blas

_STOP_GRACE = 3.0


class Workload:
    """A started command: wait for it, or stop it together with its children."""

    def __init__(self, argv: Sequence[str], relay: Callable[[str], None] | None = None):
        master = slave = None
        streams = {}
        if relay is not None:
            master, slave = pty.openpty()
            streams = {"stdout": slave, "stderr": slave}
        try:
            self._process = subprocess.Popen(list(argv), env=blas.user_environment(), **streams)
        except OSError as exc:
            for fd in (master, slave):
                if fd is not None:
                    os.close(fd)
            raise UsageError(f"cannot run {argv[0]!r}: {exc.strerror or exc}") from None
        self._master = master
        self._reader = None
        if relay is not None:
            os.close(slave)
            self._reader = threading.Thread(target=_relay_lines, args=(master, relay), daemon=True)
            self._reader.start()

    @property
    def pid(self) -> int:
        return self._process.pid

    @property
    def returncode(self) -> int | None:
        return self._process.returncode

    def wait(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds; True once the command has exited."""
        try:
            self._process.wait(timeout=max(0.0, timeout))
        except subprocess.TimeoutExpired:
            return False
        return True

    def stop(self) -> None:
        """End the command and its descendants if still running (TERM, then KILL)."""
        if self._process.poll() is None:
            try:
                root = psutil.Process(self.pid)
                family = [root, *root.children(recursive=True)]
            except psutil.Error:
                family = []
            for member in family:
                with contextlib.suppress(psutil.Error):
                    member.terminate()
            deadline = time.monotonic() + _STOP_GRACE
            while family and time.monotonic() < deadline:
                self._process.poll()  # reap our own child, so it stops counting as alive
                family = [member for member in family if _alive(member)]
                time.sleep(0.02)
            for member in family:
                with contextlib.suppress(psutil.Error):
                    member.kill()
        self._process.wait()
        if self._reader is not None:
            self._reader.join(timeout=1.0)
            os.close(self._master)


def _alive(process: psutil.Process) -> bool:
    """Running and not a zombie (an orphan's zombie may linger until init reaps it)."""
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _relay_lines(master: int, relay: Callable[[str], None]) -> None:
    pending = b""
    while True:
        try:
            chunk = os.read(master, 4096)
        except OSError:  # EIO: every writer of the terminal has gone
            break
        if not chunk:
            break
        *lines, pending = (pending + chunk).split(b"\n")
        for line in lines:
            relay(line.rstrip(b"\r").decode("utf-8", "replace"))
    if pending:
        relay(pending.rstrip(b"\r").decode("utf-8", "replace"))
