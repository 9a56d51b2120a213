"""Fuzz the pmcstat text readers (tracebridge/readers/pmcstat.py, pmcgraph.py): -o record logs and -G callgraphs.

With the native core built, each input is also scanned as a -G block by both
the native scanner and the numpy one, which must agree field for field.  A
callgraph the reader takes must fold the same with its named nodes kept as
columns as with every frame built one by one.
"""

from __future__ import annotations

import contextlib
import io

from _harness import DATA, MODULES, Target, check_cli, files, from_tests, main, scratch

from tracebridge.support import native
from tracebridge.support.errors import TracebridgeError

RESOLVE = ["-m", str(MODULES / "rem_legacy_fp.ko"), "--kernel", str(DATA / "pmcstat" / "kernel"), "-q"]


def seeds() -> list[bytes]:
    return [from_tests("readers", "test_pmclog").text_log().encode()] + files(DATA / "pmcstat", "*.graph")


def check(data: bytes) -> None:
    path = scratch("pmcstat.txt", data)
    check_cli(["pmc", "resolve", path, *RESOLVE])
    check_cli(["fold", path])
    check_columns(path)
    if native.core is not None:
        check_scanners(data)


def check_columns(path: str) -> None:
    """Folded text and frames from the columns equal those of frames built one by one (an AssertionError if not)."""
    from tracebridge.readers.pmcgraph import read_callgraph
    from tracebridge.render.folded import folded_lines

    try:
        with contextlib.redirect_stderr(io.StringIO()):  # its warnings: check_cli saw them
            profile = read_callgraph(path)
    except TracebridgeError:
        return
    lines = folded_lines(profile)
    before = from_tests("readers", "test_callgraph_columns").one_by_one(profile)
    assert lines == folded_lines(before) and profile.frames == before.frames, path


def check_scanners(data: bytes) -> None:
    """The native -G block scanner reads ``data`` as the numpy one does (an AssertionError if not)."""
    from_tests("readers", "test_callgraph_native").assert_same_block(data, native.core)


TARGET = Target("pmcstat", seeds, check)

if __name__ == "__main__":
    main(TARGET)
