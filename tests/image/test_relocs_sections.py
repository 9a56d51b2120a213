"""Which sections a shared object's dynamic relocations patch: the native ``addresses_hit`` and its twin.

FBT's jump-table heuristic asks, per section, whether any relocation can
make a window of a function's bytes a pointer (``Relocations.may_patch``).
For an ET_DYN module (i386, arm64 and riscv ``.ko``, a shared object) that
is answered from the ``r_offset`` column of its ``.rel(a).dyn`` alone.  Here
on every committed ET_DYN module, on both paths, against every entry decoded
one by one with :mod:`struct`; and on generated columns (both widths and
byte orders, addresses sorted, in a few runs or in more runs than the native
core searches one by one, ranges at the top of the address space).
"""

from __future__ import annotations

import struct
import sys
from array import array

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fixture_paths import EDGE, MODULES
from tracebridge.image.elf import SHT_RELA, open_module
from tracebridge.image.relocs import Relocations, _addresses_hit_py
from tracebridge.support import native

ALL_MODULES = sorted([*MODULES.glob("*.ko"), *EDGE.glob("*.ko")])
DYNAMIC = [path for path in ALL_MODULES if path.stem != "rem_stripped" and open_module(path).elf_type == "ET_DYN"]


def addresses_of(image, relocations: Relocations) -> list[int]:
    """Every dynamic relocation's r_offset, each entry unpacked on its own."""
    order = "<" if image.little_endian else ">"
    found = []
    for rel in relocations._dynamic:
        fmt = ("QQq" if rel.type == SHT_RELA else "QQ") if image.bits == 64 else ("IIi" if rel.type == SHT_RELA else "II")
        width = struct.calcsize(order + fmt)
        raw = relocations.read(rel, 0, rel.size - rel.size % width) or b""
        found += [entry[0] for entry in struct.iter_unpack(order + fmt, raw)]
    return found


def test_there_are_dynamic_modules_with_relocations():
    """i386 (REL) and arm64 (RELA, in .rela.dyn and .rela.plt); edges_arm64 and edges_riscv have none."""
    with_relocations = [path.stem for path in DYNAMIC if addresses_of(open_module(path), Relocations(open_module(path)))]
    assert {"rem_i386", "rem_arm64", "edges_i386"} <= set(with_relocations)


@pytest.mark.parametrize("path", DYNAMIC, ids=lambda path: path.name)
def test_sections_hit_by_every_module_are_those_holding_an_address(each_path, path):
    image = open_module(path)
    relocations = Relocations(image)
    addresses = addresses_of(image, relocations)
    expected = {section.index for section in image.sections if section.load_offset is not None and section.size
                and any(0 <= address - relocations._low - section.load_offset < section.size
                        for address in addresses)}
    assert bool(expected) == bool(addresses)
    assert relocations._sections_hit() == expected
    assert [relocations.may_patch(s.index) for s in image.sections] == [s.index in expected for s in image.sections]


def reference(addresses: list[int], ranges: list[tuple[int, int]]) -> list[int]:
    """The definition: the ranges holding one of the addresses."""
    return [at for at, (low, size) in enumerate(ranges) if any(low <= a < low + size for a in addresses)]


@settings(max_examples=300, deadline=None)
@given(st.sampled_from([(8, 24), (8, 16), (8, 8), (4, 12), (4, 8), (4, 4)]), st.booleans(), st.integers(0, 3),
       st.lists(st.integers(0, 80) | st.integers(0, 2**64 - 1), max_size=40),
       st.lists(st.tuples(st.integers(0, 90) | st.integers(2**64 - 40, 2**64 - 1),
                          st.integers(0, 30) | st.integers(0, 2**64 - 1)), max_size=12))
def test_addresses_hit_is_the_definition_on_both_paths(shape, swap, runs, addresses, ranges):
    """``runs`` > 0: the addresses sorted in that many runs (as a linker writes RELATIVE entries, then the others)."""
    width, entry = shape
    addresses = [a % (1 << (8 * width)) for a in addresses]
    if runs:
        cut = len(addresses) // runs + 1
        addresses = [a for k in range(0, len(addresses), cut) for a in sorted(addresses[k:k + cut])]
    order = sys.byteorder if not swap else ("big" if sys.byteorder == "little" else "little")
    raw = b"".join(a.to_bytes(width, order) + bytes(range(entry - width)) for a in addresses)
    lows, sizes = array("Q", [low for low, _ in ranges]), array("Q", [size for _, size in ranges])
    expected = reference(addresses, ranges)
    assert _addresses_hit_py(raw, entry, width, swap, lows, sizes) == expected
    if native.core is not None:
        assert native.core.addresses_hit(raw, entry, width, swap, lows, sizes) == expected


@pytest.mark.parametrize("arguments", [(b"\0" * 8, 8, 3), (b"\0" * 8, 4, 8), (b"\0" * 10, 8, 8), (b"\0" * 10, 5, 4),
                                       (b"\0" * 24, 12, 8)],
                         ids=["width", "entry", "whole", "fields-not-whole-4", "fields-not-whole-8"])
def test_shapes_that_cannot_be_read_are_refused(each_path, arguments):
    addresses_hit = native.core.addresses_hit if each_path == "native" else _addresses_hit_py
    with pytest.raises(ValueError):
        addresses_hit(*arguments, False, array("Q", [0]), array("Q", [8]))
