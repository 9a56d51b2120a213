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
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import stat
import sys
import tempfile
from typing import BinaryIO

from tracebridge.support.errors import SHOWN_AS, reading

#: ``-`` as an input path: standard input, as most Unix tools read it.
STDIN = "-"


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
    handle = tempfile.NamedTemporaryFile(prefix="tracebridge-", suffix="-" + suffix, delete=False)
    SHOWN_AS[handle.name] = shown_as
    with handle:
        shutil.copyfileobj(source, handle, 1 << 20)
    return handle.name


@atexit.register
def remove_all() -> None:
    """Remove every spooled copy (the data was the pipe's: nothing the user owns)."""
    while SHOWN_AS:
        copy, _ = SHOWN_AS.popitem()
        with contextlib.suppress(OSError):
            os.unlink(copy)
