"""Checks that a native scanner reads a block exactly as its pure-Python twin does.

Shared by the readers' tests and by fuzz/fuzz_pmcstat.py.  A plain module,
without hypothesis tests of its own: a fuzz check imports it while a
hypothesis test is running, and importing a module that defines ``@given``
tests there fails hypothesis' nested-``@given`` health check.
"""

from __future__ import annotations

import contextlib
import io
import re
import sys
from dataclasses import fields
from unittest import mock

import numpy as np

from tracebridge.profile.consistency import Evidence
from tracebridge.readers import pmcgraph
from tracebridge.render.folded import folded_lines
from tracebridge.support import native
from tracebridge.support.errors import InputError
from tracebridge.readers.callchain_scan import END, FULL, OTHER, scan_callchains


def assert_same_block(data: bytes, core) -> None:
    """``core`` (the native_core fixture) is what pmcgraph.scan_block calls."""
    native = pmcgraph.scan_block(data)
    numpy = pmcgraph._scan_block_numpy(data)
    for field in fields(pmcgraph.GraphBlock):
        ours, theirs = getattr(native, field.name), getattr(numpy, field.name)
        if isinstance(theirs, np.ndarray):  # the native columns: int64 memoryviews, read without numpy
            assert theirs.dtype == np.int64 and ours.format == "q" and ours.tolist() == theirs.tolist(), \
                (field.name, data)
        else:
            assert ours == theirs, (field.name, data)


def blocks_of(data: bytes, lines_per_block: int) -> list[tuple[int, bytes]]:
    """``data`` cut into blocks of whole lines, each with the number of its first line, as Source cuts it."""
    lines = re.findall(rb"[^\n]*\n|[^\n]+$", data)
    return [(first + 1, b"".join(lines[first:first + lines_per_block]))
            for first in range(0, len(lines), lines_per_block)]


def fold(data: bytes, lines_per_block: int, core, images=None) -> tuple:
    """Frames, stacks in order, folded lines, evidence and warnings of ``data`` folded block by block on
    ``core``'s path (None: the pure one), or the error it gives."""
    evidence = Evidence()
    for name, image in (images or {}).items():
        evidence.watch(name, image)
    warnings = io.StringIO()
    with mock.patch.object(native, "core", core), contextlib.redirect_stderr(warnings):
        folder = pmcgraph.CallgraphFolder("cg.graph", images, None, evidence)
        for first, block in blocks_of(data, lines_per_block):
            folder.feed(first, block)
        try:
            profile = folder.finish()
        except InputError as error:
            return (str(error),)
    return (profile.frames, list(profile.stacks.items()), folded_lines(profile),
            {name: vars(evidence._module(name)) for name in evidence._images}, warnings.getvalue())


def assert_same_fold(data: bytes, lines_per_block: int, core, images=None) -> None:
    assert fold(data, lines_per_block, core, images) == fold(data, lines_per_block, None, images), data


def parts(path: str, core) -> tuple:
    """``path`` folded in two ranges cut near its middle, both in this process, on ``core``'s path (None: the pure
    one), and folded in one pass: (text, standard error) each, or the error; None when no tree starts there."""
    from tracebridge.readers.source import Source
    from tracebridge.render.folded import folded_bytes, folded_text, write_folded_parts
    from tracebridge.support import parallel

    def said(run) -> tuple:
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            try:
                result = run()
            except InputError as error:
                result = str(error)
        return result, err.getvalue()

    def in_parts() -> str:
        out = io.BytesIO()
        write_folded_parts(out, pmcgraph.fold_in_parts(Source(path), folded_bytes, cut))
        return out.getvalue().decode()

    with mock.patch.object(native, "core", core), mock.patch.object(parallel, "usable_cpus", lambda: 1):
        cut = pmcgraph._tree_start(Source(path), len(Source(path).data) // 2)
        if not cut:
            return None
        return said(in_parts), said(lambda: folded_text(pmcgraph.fold_callgraph(Source(path))))


def assert_same_parts(path: str, core) -> None:
    """Folded in two ranges, ``path`` gives what one pass gives, on both paths."""
    ours, theirs = parts(path, core), parts(path, None)
    assert ours == theirs, path
    assert ours is None or ours[0] == ours[1], path


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
