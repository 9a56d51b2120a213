"""dtrace or pmcstat running in the background, stopped the way each wants to be stopped.

Both tools end a system-wide capture only on a signal, and both treat signals
in ways that decide whether the data survives:

* dtrace (``cddl/contrib/opensolaris/cmd/dtrace/dtrace.c``) installs one
  handler, ``intr()``, for SIGINT and SIGTERM once tracing has begun: the
  first signal stops tracing and prints the aggregations; a *second* one sets
  ``g_impatient`` and dtrace exits without printing them.
* pmcstat (``usr.sbin/pmcstat/pmcstat.c``) takes SIGINT through its kqueue,
  closes the log and exits; SIGTERM is left at its default and kills it.

So each tool runs in a process group of its own: a Ctrl-C typed at the
terminal reaches tracebridge (and the workload) but not the tracer, which
then gets exactly one SIGINT, from us, once the workload has stopped.  If
that does not end it within a grace period it gets SIGTERM (dtrace then gives
up on printing), and finally SIGKILL.  The tools' own output (dtrace's
"matched N probes", errors, pmcstat's warnings) goes to a file in the
bundle, so a failure can be quoted and the terminal stays the workload's.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Sequence

from tracebridge.capture.outdir import OutputDirectory
from tracebridge.readers.bundle import TracerRecord
from tracebridge.support import blas
from tracebridge.support.errors import TracebridgeError

#: Seconds a tool gets after SIGINT (dtrace prints its aggregations then), and after SIGTERM.
INTERRUPT_GRACE = 60.0
TERMINATE_GRACE = 5.0


class ToolFailed(TracebridgeError):
    """A tracing tool could not start or run; its message is quoted."""


class Tracer:
    """One started tool; ``name`` is how messages and the manifest call it."""

    def __init__(self, name: str, argv: Sequence[str], directory: OutputDirectory, messages: str):
        """Start ``argv`` in ``directory`` (entered by descriptor), its output into the new file ``messages``."""
        self.name = name
        self.argv = list(argv)
        self.directory = directory
        self.messages = messages
        self.output = directory.join(messages)
        self.signals: list[str] = []
        self.exited_early = False
        with directory.create(messages) as sink:
            try:
                self._process = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=sink,
                                                 stderr=subprocess.STDOUT, process_group=0, env=blas.user_environment(),
                                                 preexec_fn=directory.enter)
            except OSError as exc:
                raise ToolFailed(f"cannot run {self.argv[0]}: {exc.strerror or exc}") from None

    @property
    def pid(self) -> int:
        return self._process.pid

    def wait_started(self, settle: float) -> None:
        """Return once the tool has run ``settle`` seconds; raise :class:`ToolFailed` if it ends before.

        The generated scripts are quiet, so dtrace says nothing when tracing
        begins; a script that does not compile, a missing provider or an
        unknown PMC event all end the tool within moments, though.
        """
        try:
            status = self._process.wait(timeout=settle)
        except subprocess.TimeoutExpired:
            return
        raise ToolFailed(f"{self.name} exited with status {status} as it started: {self.last_words()} "
                         f"(all of its output is in {self.output})")

    def stop(self) -> None:
        """SIGINT, then SIGTERM, then SIGKILL, each after the previous one's grace period ran out."""
        if self._process.poll() is not None:
            self.exited_early = True
            return
        for number, grace in ((signal.SIGINT, INTERRUPT_GRACE), (signal.SIGTERM, TERMINATE_GRACE),
                              (signal.SIGKILL, None)):
            self._send(number)
            try:
                self._process.wait(timeout=grace)
                return
            except subprocess.TimeoutExpired:
                continue

    def kill(self) -> None:
        """Make sure the tool is gone (after an error or a second Ctrl-C): SIGKILL and reap."""
        if self._process.poll() is None:
            self._send(signal.SIGKILL)
            self._process.wait()

    def record(self) -> TracerRecord:
        return TracerRecord(self._process.returncode, tuple(self.signals), self.exited_early)

    def last_words(self) -> str:
        return last_line(self.directory, self.messages)

    def _send(self, number: signal.Signals) -> None:
        self.signals.append(number.name)
        with contextlib.suppress(ProcessLookupError):
            os.kill(self._process.pid, number)


def last_line(directory: OutputDirectory, name: str) -> str:
    """The last line a tool printed into ``name`` in the bundle directory (its error, usually)."""
    data = directory.tail(name, 4096) or b""
    lines = data.decode("utf-8", "replace").strip().splitlines()
    return lines[-1].strip() if lines else "it printed nothing"
