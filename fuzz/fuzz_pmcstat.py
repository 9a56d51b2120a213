"""Fuzz the pmcstat text readers (tracebridge/readers/pmcstat.py, pmcgraph.py): -o record logs and -G callgraphs.

With the native core built, ``pmc resolve`` must print the same bytes on the
pure-Python paths, and each input is also scanned as a -G block and as -o
callchain records by the native scanners and their pure-Python twins
(src/native/pmcgraph_scan.h, callchain_scan.h), which must agree field for field, and
folded in blocks of 3 lines through the native (name, image) pair table
(src/native/name_table.h) as through the pure path, and cut near its middle, folded in
two ranges (the second starting with the image carried into it) and merged
(src/native/folded_text.h's merge), as in one pass.
A callgraph the reader takes must fold the same with its named nodes kept as
columns as with every frame built one by one.
"""

from __future__ import annotations

import contextlib
import io

from _harness import DATA, MODULES, ROOT, Target, check_cli, check_native_agrees, files, from_tests, main, scratch

from tracebridge.support import native
from tracebridge.support.errors import TracebridgeError

RESOLVE = ["-m", str(MODULES / "rem_legacy_fp.ko"), "--kernel", str(DATA / "pmcstat" / "kernel"), "-q"]


def seeds() -> list[bytes]:
    return ([from_tests("readers", "test_pmclog").text_log().encode()] + files(ROOT / "examples", "*.pmc.txt")
            + files(DATA / "pmcstat", "*.graph"))


def check(data: bytes) -> None:
    path = scratch("pmcstat.txt", data)
    check_cli(["pmc", "resolve", path, *RESOLVE])
    check_cli(["fold", path])
    check_columns(path)
    if native.core is not None:
        check_native_agrees(["pmc", "resolve", path, *RESOLVE])
        check_scanners(data)
        from_tests("readers", "scanner_twins").assert_same_parts(path, native.core)


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
    """The native scanners read ``data`` as their twins do (an AssertionError if not): as a -G block, folded
    through the pair table in blocks of 3 lines, and as -o callchain records in batches of 5 PCs, all PMCs
    kept and one."""
    twins = from_tests("readers", "scanner_twins")  # not the test modules: their @given tests cannot be imported
    twins.assert_same_block(data, native.core)      # while a hypothesis test runs (test_parsers_fuzz)
    twins.assert_same_fold(data, 3, native.core)
    twins.assert_same_scan(native.core, data, None, 5)
    twins.assert_same_scan(native.core, data, twins.id_bytes(0x20000), 5)


TARGET = Target("pmcstat", seeds, check)

if __name__ == "__main__":
    main(TARGET)
