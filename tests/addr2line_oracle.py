"""Parse ``addr2line -a -i -f -C`` output: the independent reference for DWARF lookups.

The expected files (``tests/fixtures/expected/inl_*.addr2line.txt``) were made
by binutils on a copy of the unstripped module with its sections moved to
their kernel-layout offsets (see ``tests/fixtures/build.sh``).
"""

from __future__ import annotations

from pathlib import Path


#: The module whose addr2line output is each module's reference (its own, unless listed): inl_dwarf5
#: is inl_legacy's code built with DWARF 5, which binutils 2.40 misreads (test_dwarf_vs_addr2line.py).
REFERENCE = {"inl_dwarf5": "inl_legacy"}


def reference(name: str) -> dict[int, list[tuple[str, str | None, int | None]]]:
    """The addr2line chains that hold for fixture module ``name``."""
    from fixture_paths import EXPECTED

    return read_addr2line(EXPECTED / f"{REFERENCE.get(name, name)}.addr2line.txt")


def read_addr2line(path: Path) -> dict[int, list[tuple[str, str | None, int | None]]]:
    """address -> frames innermost first, each (function, file or None, line or None)."""
    chains: dict[int, list[tuple[str, str | None, int | None]]] = {}
    lines = path.read_text().splitlines()
    current: list | None = None
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("0x"):
            current = chains.setdefault(int(line, 16), [])
            i += 1
            continue
        function, location = line, lines[i + 1]
        file, _, number = location.rpartition(":")
        number = number.split(" ")[0]  # "12 (discriminator 3)"
        current.append((function, None if file == "??" else file,
                        int(number) if number.isdigit() and int(number) else None))
        i += 2
    return chains


def line_sites(planner, expected: dict[int, list[tuple[str, str | None, int | None]]]):
    """Every kinst site ``planner.at_line`` places for each (file, line) addr2line gives as an innermost
    frame: yields (file, line, site, addr2line's chain at the site); a KeyError means the site is not
    an instruction start of the listing addr2line was run on."""
    lines = {(file, line) for chain in expected.values() for _, file, line in chain[:1] if line}
    for file, line in sorted(lines):
        sites, _ = planner.at_line(file.rsplit("/", 1)[-1], line)
        for site in sites:
            yield file, line, site, expected[site.module_offset]
