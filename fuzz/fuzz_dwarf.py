"""Fuzz the DWARF reader (tracebridge/image/debuginfo.py, diewalk.py, dwarf.py): mutated unstripped modules through lookup.

Seeds are the ``inl_*.ko.full`` fixtures (a module that is its own debug
file), so most mutations land in ``.debug_info``, ``.debug_line``,
``.debug_ranges`` and their relocations.  The DIE walk runs in the native
core when it is built (``src/native/dwarf_walk.h``); every input that gives
a result is then looked up again on the pure-Python paths, which must print
the same bytes.  The on-disk index cache is off meanwhile, so both paths
build the index.
"""

from __future__ import annotations

import os

from _harness import MODULES, Target, check_cli, check_native_agrees, files, main, scratch

def check(data: bytes) -> None:
    path = scratch("fuzz.ko", data)
    argv = ["lookup", path, "0", "40", "3c0", "400", "5d0", "--format", "json"]
    before = os.environ.get("TRACEBRIDGE_NO_CACHE")
    os.environ["TRACEBRIDGE_NO_CACHE"] = "1"
    try:
        if check_cli(argv) == 0:
            check_native_agrees(argv)
    finally:
        if before is None:
            del os.environ["TRACEBRIDGE_NO_CACHE"]
        else:
            os.environ["TRACEBRIDGE_NO_CACHE"] = before


TARGET = Target("dwarf", lambda: files(MODULES, "inl_*.ko.full"), check)

if __name__ == "__main__":
    main(TARGET)
