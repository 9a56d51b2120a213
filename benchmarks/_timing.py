"""Timing helpers shared by the benchmark scripts: best-of-N wall time of a shell command."""

from __future__ import annotations

import subprocess
import time


def wall_time(command: str | list[str], repeat: int = 3) -> float:
    """Best wall time in seconds over ``repeat`` runs; output goes to /dev/null.

    A string is run through the shell (so reference pipelines like
    ``perl stackcollapse.pl x | rustfilt`` work); a list is run directly.
    """
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run(command, shell=isinstance(command, str), check=True, stdin=subprocess.DEVNULL,
                       stdout=subprocess.DEVNULL)
        best = min(best, time.perf_counter() - start)
    return best


def report(label: str, ours: float, reference: float, reference_label: str, target: str) -> None:
    ratio = ours / reference
    print(f"{label}: tracebridge {ours:.3f} s, {reference_label} {reference:.3f} s, "
          f"ratio {ratio:.2f}x ({target})")
