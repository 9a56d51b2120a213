"""What a capture needs from the machine, checked before anything is started.

A recording that fails after the load test has run wastes the load test, and
one that fails half-started leaves DTrace probes enabled.  So every
precondition that can be checked is checked first, and a missing one is one
line naming exactly what is missing: the tools on PATH (``dtrace`` or
``pmcstat``, and ``kldstat``: on anything but FreeBSD they are simply not
there), root, the workload command, and the module in ``kldstat -v``'s list
(its load address is what names the module's frames).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass

from tracebridge.support.errors import UsageError
from tracebridge.support import blas
from tracebridge.readers.kldstat import KldFile, Kldstat, parse_kldstat

KLDSTAT = "kldstat"
#: Seconds allowed to a query such as ``kldstat -v`` or ``dtrace -V``.
QUERY_TIMEOUT = 20.0


def find_tools(names: Sequence[str]) -> dict[str, str]:
    """Each tool's path on PATH; all missing ones are named in one error."""
    found = {name: shutil.which(name) for name in names}
    missing = [name for name, path in found.items() if path is None]
    if missing:
        listed = " and ".join(missing)
        raise UsageError(f"{listed} not found on PATH: tracebridge record runs as root on the FreeBSD machine "
                         "where the module is loaded")
    return {name: path for name, path in found.items() if path is not None}


def require_root(tool: str) -> None:
    if os.geteuid() != 0:
        raise UsageError(f"{tool} needs root: run tracebridge record as root (e.g. with sudo or doas)")


def require_command(argv: Sequence[str]) -> None:
    if shutil.which(argv[0]) is None:
        raise UsageError(f"workload command {argv[0]!r} not found (not on PATH, or not executable)")


def query(argv: Sequence[str]) -> str | None:
    """A short command's standard output (stripped), or None when it cannot run or fails."""
    try:
        done = subprocess.run(list(argv), stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              errors="replace", timeout=QUERY_TIMEOUT, check=False, env=blas.user_environment())
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


@dataclass(frozen=True)
class Loaded:
    """The ``kldstat -v`` text and, in it, the module and the kernel."""

    text: str
    argv: tuple[str, ...]
    module: KldFile
    kernel: KldFile | None


def find_loaded(kldstat: str, module_file: str) -> Loaded:
    """Run ``kldstat -v`` and find ``module_file`` (matched by file name) in it."""
    argv = (kldstat, "-v")
    try:
        done = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              errors="surrogateescape", timeout=QUERY_TIMEOUT, check=False, env=blas.user_environment())
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise UsageError(f"cannot run {kldstat} -v: {exc}") from None
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no message"])[-1]
        raise UsageError(f"{kldstat} -v failed with status {done.returncode}: {last}")
    listing: Kldstat = parse_kldstat(done.stdout.splitlines(), f"{kldstat} -v")
    module = listing.find(module_file)
    if module is None:
        names = ", ".join(f.name for f in listing.files)
        raise UsageError(f"{module_file} is not loaded (kldstat -v lists: {names}): kldload it first")
    return Loaded(done.stdout, argv, module, listing.find("kernel"))
