"""ModuleImage.code_spans_of (all functions at once) gives code_span's answer for every function, on both paths.

Every committed module: plain, edge shapes (IFUNC, NOBITS code, a size past
its section, i386 linked at 4 MB, .dynsym only, arm64, riscv), nightly; and
functions with made-up values, sizes and sections, where the unsigned
arithmetic would wrap if it were done carelessly.
"""

from __future__ import annotations

import dataclasses
import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fixture_paths import EDGE, MODULES
from tracebridge.image.elf import open_module
from tracebridge.support.records import int64s, uint64_columns

ALL_MODULES = sorted([*MODULES.glob("*.ko"), *EDGE.glob("*.ko"), *(MODULES / "nightly").glob("*.ko")])
ALL_MODULES = [path for path in ALL_MODULES if path.stem != "rem_stripped"]


def spans(image, functions) -> list[tuple[int, int]]:
    """The (start, end) of each function's code, from its fields' columns as FBT's scan reads them; the
    positions of the empty ones, listed apart, checked against them."""
    starts, lengths, empty = image.code_spans_of(*uint64_columns(functions, ("shndx", "value", "size")))
    pairs = [(start, start + length) for start, length in zip(int64s(starts), int64s(lengths))]
    assert empty == [at for at, pair in enumerate(pairs) if pair == (0, 0)]
    return pairs


@pytest.mark.parametrize("path", ALL_MODULES, ids=lambda path: path.name)
def test_every_function_of_every_module(each_path, path):
    image = open_module(path)
    assert image.functions
    assert spans(image, image.functions) == [image.code_span(f) for f in image.functions]


def test_no_functions():
    image = open_module(EDGE / "edges_amd64.ko")
    assert spans(image, []) == []


@pytest.mark.parametrize("name", ["edges_amd64.ko", "rem_i386_at_4m.ko"])  # ET_REL and ET_DYN
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.integers(0, 2**64 - 1) | st.integers(0, 0x500000), st.integers(0, 2**64 - 1)
                          | st.integers(0, 0x2000), st.integers(0, 2**16)), min_size=1, max_size=8))
def test_made_up_values_and_sizes(each_path, name, made_up):
    """On both paths (the columns are read natively where the core is built; test_symbol_records checks
    that reading against its twin)."""
    image = open_module(EDGE / name)
    real = image.functions
    functions = [dataclasses.replace(real[pick % len(real)], value=value, size=size)
                 for value, size, pick in made_up]
    assert spans(image, functions) == [image.code_span(f) for f in functions]


def test_relocatable_values_are_offsets_whatever_the_section_address(each_path, tmp_path):
    """In an ET_REL module a symbol's value is its offset in its section, even where a (hand-made) section
    header gives the section an address: ld -r writes 0 there, nothing else must be assumed."""
    original = open_module(EDGE / "edges_amd64.ko")
    shndx = original.functions[0].shndx
    data = bytearray((EDGE / "edges_amd64.ko").read_bytes())
    shoff, shentsize = struct.unpack_from("<QxxxxxxxxxxH", data, 0x28)
    struct.pack_into("<Q", data, shoff + shndx * shentsize + 16, 0x10)  # sh_addr
    (tmp_path / "edges_amd64.ko").write_bytes(data)
    image = open_module(tmp_path / "edges_amd64.ko")
    functions = [f for f in image.functions if f.shndx == shndx]
    assert image.section(shndx).addr == 0x10 and functions
    assert spans(image, functions) == [image.code_span(f) for f in functions] == [
        original.code_span(f) for f in original.functions if f.shndx == shndx]


@pytest.mark.parametrize("path", ALL_MODULES, ids=lambda path: path.name)
def test_values_at_and_past_their_section_end_have_no_code(each_path, path):
    """A symbol value at or past its section's end (the file's next bytes are another section's) has no code."""
    image = open_module(path)
    functions = []
    for function in image.functions:
        section = image.section(function.shndx)
        end = section.size + (0 if image.elf_type == "ET_REL" else section.addr)
        functions += [dataclasses.replace(function, value=end + k, size=8) for k in (0, 1, 16)]
    assert spans(image, functions) == [image.code_span(f) for f in functions] == [(0, 0)] * len(functions)
