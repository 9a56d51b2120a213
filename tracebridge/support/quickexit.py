"""Ending the command-line process without freeing what the command built.

Freeing a big module's records one object at a time when a command ends
takes about a tenth of ``gen-probes``' own work (0.08 s for the 600k objects
of librustc_driver's plan and image).  The command-line entry points
(``python -m tracebridge`` and the ``tracebridge`` script) run
:func:`tracebridge.cli.main` through :func:`run`.  When the command handed
objects to :func:`keep` (``gen-probes`` and ``symbols``, which write every
file inside ``with`` blocks and start no thread), the process leaves with
``os._exit`` once ``main`` has done its own clean-up (spooled inputs) and
standard output and error are flushed, and those objects are never freed;
any other command ends as usual.  Called in-process (tests, other
programs), ``main`` returns as usual and :func:`keep` holds nothing.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import NoReturn

#: What commands kept for the process's end; None unless :func:`run` runs the command line.
_kept: list[object] | None = None


def keep(*objects: object) -> None:
    """Leave ``objects`` to the operating system at the end of a command-line run (no effect in-process)."""
    if _kept is not None:
        _kept.extend(objects)


def run(main: Callable[[], int]) -> NoReturn:
    """``main()``'s exit status as the process's, without the interpreter's own teardown."""
    global _kept
    _kept = []
    status = main()
    if not _kept:
        sys.exit(status)
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a reader gone away (main reported it), or a stream main closed
            pass
    os._exit(status)
