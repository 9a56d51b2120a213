"""The hand-run range lists and line programs give what pyelftools' own readers give.

tracebridge decodes ``.debug_ranges``/``.debug_rnglists`` and runs the line
number programs itself (image/rangelists.py, image/lineprogram.py) because
pyelftools' per-entry containers were a third of the index build; pyelftools,
a reader written independently of them, is the reference here, on the
fixtures' DWARF 4 (inl_legacy) and DWARF 5 (inl_dwarf5) debug files, and on
truncated sections (an error, never a hang).
"""

from __future__ import annotations

import pytest

from fixture_paths import MODULES
from tracebridge.image.debuginfo import load_debug_sections
from tracebridge.image.dwarf import open_dwarf
from tracebridge.image.elf import open_module
from tracebridge.image.lineprogram import run_line_program
from tracebridge.image.rangelists import RangeLists

NAMES = ["inl_legacy", "inl_dwarf5"]


def debug_of(name: str):
    return load_debug_sections(open_module(MODULES / f"{name}.ko"), str(MODULES / f"{name}.ko.debug"))


def lists_of(debug) -> RangeLists:
    sections = debug.sections
    return RangeLists(sections.get(".debug_ranges"), sections.get(".debug_rnglists"), debug.little_endian,
                      debug.address_size)


@pytest.mark.parametrize("name", NAMES)
def test_range_lists_equal_pyelftools(name):
    debug = debug_of(name)
    dwarf = open_dwarf(debug)
    lists, reference = lists_of(debug), dwarf.range_lists()
    checked = 0
    for unit in dwarf.iter_CUs():
        top = unit.get_top_DIE()
        base = top.attributes["DW_AT_low_pc"].value if "DW_AT_low_pc" in top.attributes else 0
        for die in unit.iter_DIEs():
            if "DW_AT_ranges" not in die.attributes:
                continue
            offset = die.attributes["DW_AT_ranges"].value
            want, current = [], base
            for entry in reference.get_range_list_at_offset(offset, cu=unit):
                if hasattr(entry, "base_address"):
                    current = entry.base_address
                    continue
                begin, end = entry.begin_offset, entry.end_offset
                if not entry.is_absolute:
                    begin, end = begin + current, end + current
                if end > begin:
                    want.append((begin, end))
            assert lists.read(offset, base, unit.header.version, lambda i: dwarf.get_addr(unit, i)) == want
            checked += 1
    assert checked > 50


@pytest.mark.parametrize("name", NAMES)
def test_line_programs_equal_pyelftools(name):
    debug = debug_of(name)
    dwarf = open_dwarf(debug)
    for unit in dwarf.iter_CUs():
        program = dwarf.line_program_for_CU(unit)
        want = [(e.state.address, e.state.file, e.state.line, e.state.end_sequence)
                for e in program.get_entries() if e.state is not None]
        got = []
        run_line_program(debug.sections[".debug_line"], program.program_start_offset, program.program_end_offset,
                         program.header, debug.little_endian, lambda *row: got.append(row))
        assert got == want and len(got) > 100


def test_truncated_sections_are_errors():
    debug = debug_of("inl_dwarf5")
    dwarf = open_dwarf(debug)
    unit = next(dwarf.iter_CUs())
    program = dwarf.line_program_for_CU(unit)
    data = debug.sections[".debug_line"]
    cut = program.program_start_offset + (program.program_end_offset - program.program_start_offset) // 2
    with pytest.raises(ValueError):
        run_line_program(data[:cut], program.program_start_offset, program.program_end_offset, program.header,
                         True, lambda *row: None)
    rnglists = debug.sections[".debug_rnglists"]
    short = RangeLists(None, rnglists[:0x9a], True, 8)  # cut inside the list at 0x98
    with pytest.raises(ValueError):
        short.read(0x98, 0, 5, lambda i: 0)
    with pytest.raises(ValueError):
        RangeLists(b"\x00" * 12, None, True, 8).read(0, 0, 4, lambda i: 0)  # no end-of-list pair
