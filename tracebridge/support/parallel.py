"""Using the second core for per-function work on big modules.

Demangling and FBT prediction cost a few microseconds per function in
Python; on a 100k-function module that is most of a command's time.  The
work is independent per function, so :func:`split_map` forks once, lets the
child do the second half while the parent does the first, and sends the
child's result back through a pipe.  Fork keeps the loaded module image
(and its mapping) without re-reading anything.

Where fork is unavailable, only one CPU is usable, or the input is small,
it simply calls the function once.  If the child fails for any reason the
parent does the second half itself, so errors surface exactly as they would
without the split.
"""

from __future__ import annotations

import bisect
import os
import pickle
from itertools import accumulate
from collections.abc import Callable, Sequence
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")

#: Below this many items the fork and the pickling cost more than they save.
MIN_ITEMS = 20_000

#: At most this many items' costs are asked for: beyond, every n-th item's cost stands for the n around it.
#: The cut moves by at most n items, and the estimate costs a few milliseconds, not one call per item
#: (librustc_driver: 106k functions, 0.09 s before the fork).
COST_SAMPLES = 8192

#: True while a split is running: work that itself splits then runs in one
#: process, so two cores never carry four processes.
_splitting = False


def usable_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux: FreeBSD, macOS
        return os.cpu_count() or 1


def split_map(work: Callable[[Sequence[T]], list[R]], items: Sequence[T],
              cost: Callable[[T], int] | None = None,
              middle: Callable[[Sequence[T]], int] | None = None) -> list[R]:
    """``work(items)``, computed as ``work(first half) + work(second half)`` on two cores.

    ``cost`` estimates each item's share of the work (1 each without it):
    the halves are cut where the estimates balance, so that one process does
    not wait long for the other.  ``middle(items)``, given instead, says where
    the first half ends, for a caller that can tell without a cost per item.
    """
    global _splitting
    if _splitting or len(items) < MIN_ITEMS or usable_cpus() < 2 or not hasattr(os, "fork"):
        return work(items)
    _splitting = True
    try:
        cut = _middle(items, cost) if middle is None else min(max(middle(items), 0), len(items))
        return _split(work, items, cut)
    finally:
        _splitting = False


def _middle(items: Sequence[T], cost: Callable[[T], int] | None) -> int:
    """Where the first half ends: half the items, or half the estimated cost (of :data:`COST_SAMPLES` items at most)."""
    if cost is None:
        return len(items) // 2
    step = -(-len(items) // COST_SAMPLES)
    running = list(accumulate(map(cost, items[::step])))
    return min(len(items), (bisect.bisect_left(running, running[-1] / 2) + 1) * step)


def _split(work: Callable[[Sequence[T]], list[R]], items: Sequence[T], middle: int) -> list[R]:
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: compute the second half, send it, leave without cleanup handlers
        status = 1
        try:
            os.close(read_end)
            payload = pickle.dumps(work(items[middle:]), protocol=pickle.HIGHEST_PROTOCOL)
            with os.fdopen(write_end, "wb") as pipe:
                pipe.write(payload)
            status = 0
        finally:
            os._exit(status)
    os.close(write_end)
    try:
        first = work(items[:middle])
    finally:
        with os.fdopen(read_end, "rb") as pipe:
            payload = pipe.read()
        _, status = os.waitpid(pid, 0)
    if status == 0 and payload:
        return first + pickle.loads(payload)
    return first + work(items[middle:])
