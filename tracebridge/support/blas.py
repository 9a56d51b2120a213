"""numpy's OpenBLAS held to one thread in tracebridge's own process, never in the programs it starts.

OpenBLAS starts a thread per core when numpy is imported, and the thread
spins waiting for work that never comes (no command calls BLAS): 0.1 s of
CPU in ``gen-probes``, on the core the second process of
:func:`tracebridge.support.parallel.split_map` needs.  The library reads
``OPENBLAS_NUM_THREADS`` only when it loads, so the variable is set at
start-up.  A workload that ``cpu`` measures, or that ``record`` traces, must
run as the user would run it, so the programs tracebridge starts get the
user's environment back (:func:`user_environment`).
"""

from __future__ import annotations

import os

VARIABLE = "OPENBLAS_NUM_THREADS"
#: Whether :func:`hold_to_one_thread` added the variable (the user's own value is never changed).
_added = False


def hold_to_one_thread() -> None:
    """Set ``OPENBLAS_NUM_THREADS=1`` for this process, unless the user chose a value."""
    global _added
    if VARIABLE not in os.environ:
        os.environ[VARIABLE] = "1"
        _added = True


def user_environment() -> dict[str, str] | None:
    """The environment for a program tracebridge starts: None (inherit it as it is) unless the
    variable was added here, else a copy without it."""
    if not _added:
        return None
    environment = dict(os.environ)
    environment.pop(VARIABLE, None)
    return environment
