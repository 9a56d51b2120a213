"""Hostile DWARF: loops in abstract origins, truncated units, absurd lengths, random damage.

Each gives an index (with the bad unit skipped and a warning) or one
InputError -- never another exception or a hang.
"""

from __future__ import annotations

import dataclasses
import random
import struct

import pytest

from fixture_paths import MODULES
from tracebridge.image.debuginfo import load_debug_sections
from tracebridge.image.dwarf import AddressIndex, open_dwarf
from tracebridge.image.elf import open_module
from tracebridge.support.errors import InputError


@pytest.fixture(scope="module")
def debug():
    image = open_module(MODULES / "inl_legacy.ko")
    return load_debug_sections(image, str(MODULES / "inl_legacy.ko.debug"))


def with_section(debug, name: str, data: bytes):
    return dataclasses.replace(debug, sections={**debug.sections, name: bytes(data)})


def origins(debug) -> list[tuple[int, int, int]]:
    """(DIE offset, attribute value offset, unit offset) of every inlined subroutine's abstract origin."""
    dwarf = open_dwarf(debug)
    found = []
    for unit in dwarf.iter_CUs():
        for die in unit.iter_DIEs():
            if die.tag == "DW_TAG_inlined_subroutine":
                attribute = die.attributes["DW_AT_abstract_origin"]
                assert attribute.form == "DW_FORM_ref4"
                found.append((die.offset, attribute.offset, unit.cu_offset))
    return found


def test_abstract_origin_loops_end(debug):
    info = bytearray(debug.sections[".debug_info"])
    sites = origins(debug)
    # One DIE naming itself, and two naming each other.
    (a, a_attr, unit), (b, b_attr, _), (c, c_attr, _) = sites[:3]
    struct.pack_into("<I", info, a_attr, a - unit)
    struct.pack_into("<I", info, b_attr, c - unit)
    struct.pack_into("<I", info, c_attr, b - unit)
    index = AddressIndex(with_section(debug, ".debug_info", info))
    assert index.inlined_count == len(sites)  # every inlined copy still indexed, with some name


def test_truncated_unit_is_skipped_with_a_warning(debug, capsys):
    info = debug.sections[".debug_info"]
    index = AddressIndex(with_section(debug, ".debug_info", info[:len(info) // 2]))
    assert index.warnings and "warning" in capsys.readouterr().err


def test_absurd_unit_length(debug):
    info = bytearray(debug.sections[".debug_info"])
    struct.pack_into("<I", info, 0, 0xFFFFFFF0)
    index = AddressIndex(with_section(debug, ".debug_info", info))
    assert len(index) == 0 or index.warnings


@pytest.mark.parametrize("section", [".debug_info", ".debug_line", ".debug_ranges", ".debug_abbrev"])
def test_random_damage_never_escapes(debug, section):
    rng = random.Random(section)
    original = debug.sections[section]
    for _ in range(12):
        data = bytearray(original)
        for _ in range(rng.randint(1, 8)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        try:
            index = AddressIndex(with_section(debug, section, data))
        except InputError:
            continue
        index.frames_many(range(0, 0x700, 3))
