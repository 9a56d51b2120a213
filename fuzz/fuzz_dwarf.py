"""Fuzz the DWARF reader (tracebridge/image/debuginfo.py, dwarf.py): mutated unstripped modules through lookup.

Seeds are the ``inl_*.ko.full`` fixtures (a module that is its own debug
file), so most mutations land in ``.debug_info``, ``.debug_line``,
``.debug_ranges`` and their relocations.
"""

from __future__ import annotations

from _harness import MODULES, Target, check_cli, files, main, scratch


def check(data: bytes) -> None:
    path = scratch("fuzz.ko", data)
    check_cli(["lookup", path, "0", "40", "3c0", "400", "5d0", "--format", "json"])


TARGET = Target("dwarf", lambda: files(MODULES, "inl_*.ko.full"), check)

if __name__ == "__main__":
    main(TARGET)
