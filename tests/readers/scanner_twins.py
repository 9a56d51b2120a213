"""Checks that a native scanner reads a block exactly as its pure-Python twin does.

Shared by the readers' tests and by fuzz/fuzz_pmcstat.py.  A plain module,
without hypothesis tests of its own: a fuzz check imports it while a
hypothesis test is running, and importing a module that defines ``@given``
tests there fails hypothesis' nested-``@given`` health check.
"""

from __future__ import annotations

import sys
from dataclasses import fields

import numpy as np

from tracebridge.readers import pmcgraph
from tracebridge.readers.callchain_scan import END, FULL, OTHER, scan_callchains


def assert_same_block(data: bytes, core) -> None:
    """``core`` (the native_core fixture) is what pmcgraph.scan_block calls."""
    native = pmcgraph.scan_block(data)
    numpy = pmcgraph._scan_block_numpy(data)
    for field in fields(pmcgraph.GraphBlock):
        ours, theirs = getattr(native, field.name), getattr(numpy, field.name)
        if isinstance(theirs, np.ndarray):
            assert ours.dtype == theirs.dtype and ours.tolist() == theirs.tolist(), (field.name, data)
        else:
            assert ours == theirs, (field.name, data)


def id_bytes(*pmcids: int) -> bytes:
    """PMC ids as the callchain scanners take them: native uint64s."""
    return b"".join(pmcid.to_bytes(8, sys.byteorder) for pmcid in pmcids)


def assert_same_scan(core, block: bytes, selected: bytes | None = None, chunk: int = 1 << 20) -> int:
    """Scan ``block`` to its end with both scanners, taking each line they stop at by hand; how many stops."""
    pos, line, batched, stops = 0, 0, 0, 0
    while pos < len(block):
        ours = core.callchain_scan(block, pos, line, selected, batched, chunk)
        assert scan_callchains(block, pos, line, selected, batched, chunk) == ours
        pos, line, reason, _, pcs, _ = ours
        batched = 0 if reason == FULL else batched + len(pcs) // 8
        if reason == END:
            break
        if reason == OTHER:
            stops += 1
            end = block.find(b"\n", pos)
            pos, line = end + 1, line + 1
    return stops
