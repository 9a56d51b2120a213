"""Helpers shared by the benchmark scripts: best-of-N wall time of a command, the big test module."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def wall_time(command: str | list[str], repeat: int = 3, fresh: str | None = None) -> float:
    """Best wall time in seconds over ``repeat`` runs; output goes to /dev/null.

    A string is run by bash with ``pipefail`` (so reference pipelines like
    ``perl stackcollapse.pl x | rustfilt`` work, and a failing first stage
    fails the benchmark instead of timing an error message); a list is run
    directly.  ``fresh``: the file the command writes, removed before each
    run (untimed), so that every run writes it anew as the first did: a run
    that replaces the last run's output also pays for freeing its pages
    (7-16 ms for 60 MB of JSON here).
    """
    if isinstance(command, str):
        command = ["bash", "-o", "pipefail", "-c", command]
    best = float("inf")
    for _ in range(repeat):
        _remove(fresh)
        start = time.perf_counter()
        subprocess.run(command, check=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        best = min(best, time.perf_counter() - start)
    return best


def cpu_time(command: str | list[str], repeat: int = 3, fresh: str | None = None) -> float:
    """Best user+system CPU seconds of the command and its children (steadier than wall time on a
    shared machine; a command that uses two cores counts both).  Arguments as in :func:`wall_time`."""
    if isinstance(command, str):
        command = ["bash", "-o", "pipefail", "-c", command]
    best = float("inf")
    for _ in range(repeat):
        _remove(fresh)
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        subprocess.run(command, check=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        best = min(best, after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return best


def _remove(path: str | None) -> None:
    """Remove the output file ``path`` a run is to write anew, if it is there."""
    if path is not None and os.path.exists(path):
        os.remove(path)


def report(label: str, ours: float, reference: float, reference_label: str, target: str) -> None:
    ratio = ours / reference
    print(f"{label}: tracebridge {ours:.3f} s, {reference_label} {reference:.3f} s, "
          f"ratio {ratio:.2f}x ({target})")


def big_module(path: str | None, functions: int, directory: str) -> str:
    """``path`` if given, else a module of ``functions`` functions made by make_big_module.py in ``directory``."""
    if path is not None:
        return path
    path = os.path.join(directory, "big.ko")
    subprocess.run([sys.executable, os.path.join(HERE, "make_big_module.py"), "-n", str(functions), "-o", path],
                   check=True, stdout=subprocess.DEVNULL)
    return path
