"""Pausing Python's cyclic garbage collector around bulk work.

Reading a 100k-function module creates hundreds of thousands of small,
acyclic objects (functions, probe results, name fields).  Every few hundred
allocations the collector walks the young objects, and every so often *all*
live ones: on such a module those passes cost as much as the work itself.
Nothing built here forms reference cycles, so pausing the collector for the
duration loses nothing; it is restored afterwards, whatever happens.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator


@contextlib.contextmanager
def paused() -> Iterator[None]:
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
