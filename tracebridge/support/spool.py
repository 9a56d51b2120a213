"""Inputs that can be read only once -- a pipe, ``-`` or ``/dev/stdin``, ``<(dtrace …)`` -- copied to a file first.

Readers open an input more than once: its head to tell its format, then
the whole to read it (a pmcstat log is sniffed for raw or text records
first, too).  A pipe gives its data to the first reader only, so the
second would see an empty input.  The CLI passes every input path through
:func:`readable` as it parses the command line: a regular file or a
directory is used as it is; anything else is copied, once, in blocks, to a
temporary file that is removed when the command ends (:func:`remove_all`,
called by the CLI; at exit otherwise).  Messages and titles still name the
path the user gave (:func:`tracebridge.support.errors.shown`).

A SIGTERM or SIGHUP (``timeout``, a closed terminal) would end the process
without either, leaving the copy behind (1.2 GB after ``timeout 3
tracebridge fold /dev/zero``).  So while copies exist those signals first
remove them and then end the process as they would have (:func:`_end_by`:
the default handler back, the signal raised again), so the exit status
still says which signal it was.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import signal
import stat
import sys
import tempfile
import threading
from typing import BinaryIO

from tracebridge.support.errors import SHOWN_AS, reading

#: ``-`` as an input path: standard input, as most Unix tools read it.
STDIN = "-"
#: Signals that would end the process without cleanup; handled while spooled copies exist.
ENDING_SIGNALS = (signal.SIGTERM, signal.SIGHUP)


def readable(path: str) -> str:
    """``path``, or a regular-file copy of what it gives when it is a pipe, a device or ``-``."""
    if path == STDIN:
        return _spool(sys.stdin.buffer, "standard input", "stdin")
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return path  # the reader reports it, in its own words
    if stat.S_ISREG(mode) or stat.S_ISDIR(mode):
        return path
    with reading(path), open(path, "rb") as source:
        return _spool(source, path, os.path.basename(path))


def _spool(source: BinaryIO, shown_as: str, suffix: str) -> str:
    """Copy ``source`` to a new temporary file, in blocks; return its path."""
    _remove_on_ending_signals()
    handle = tempfile.NamedTemporaryFile(prefix="tracebridge-", suffix="-" + suffix, delete=False)
    SHOWN_AS[handle.name] = shown_as
    with handle:
        shutil.copyfileobj(source, handle, 1 << 20)
    return handle.name


def _remove_on_ending_signals() -> None:
    """Make SIGTERM and SIGHUP remove the copies first, where they would otherwise just end the process."""
    if threading.current_thread() is not threading.main_thread():
        return  # only the main thread may set handlers; the CLI spools there
    for number in ENDING_SIGNALS:
        if signal.getsignal(number) == signal.SIG_DFL:
            signal.signal(number, _end_by)


def _end_by(number: int, frame: object) -> None:
    """Remove the copies, then die of the signal as the default handler would (the status shows it)."""
    remove_all()
    signal.signal(number, signal.SIG_DFL)
    os.kill(os.getpid(), number)


@atexit.register
def remove_all() -> None:
    """Remove every spooled copy (the data was the pipe's: nothing the user owns)."""
    while SHOWN_AS:
        copy, _ = SHOWN_AS.popitem()
        with contextlib.suppress(OSError):
            os.unlink(copy)
