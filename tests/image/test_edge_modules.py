"""Reading modules of rare shapes, against readelf's view of the same files (tests/fixtures/edge)."""

from __future__ import annotations

import struct

import pytest

from fixture_paths import EDGE, MODULES
from readelf_text import symbols
from tracebridge.image.elf import open_module
from tracebridge.support.errors import InputError


def listed(path, table=".symtab"):
    """FUNC and IFUNC symbols defined in a section, as readelf shows them."""
    return sorted((s.name, s.type, s.value, s.size) for s in symbols(path, table)
                  if s.type in ("FUNC", "IFUNC") and s.ndx.isdigit())


def test_ifunc_and_nobits_functions_are_listed():
    image = open_module(EDGE / "edges_amd64.ko")
    got = sorted((f.name, f.type, f.value, f.size) for f in image.functions)
    assert got == listed(EDGE / "edges_amd64.readelf-s.txt")
    assert {f.name: f.type for f in image.functions}["ifunc_fn"] == "IFUNC"


def test_code_is_only_what_the_file_holds():
    image = open_module(EDGE / "edges_amd64.ko")
    by_name = {f.name: f for f in image.functions}
    # In a NOBITS section: nothing in the file, whatever lies at its sh_offset.
    assert image.code(by_name["nobits_fn"]) == b""
    # The symbol claims 64 bytes; its section holds 3 (push, pop, ret); after_fn's bytes follow.
    assert image.code(by_name["overlong_fn"]) == b"\x55\x5d\xc3"
    assert image.code(by_name["after_fn"]) == b"\x55\xc3\xc3\xc3"


def test_stripped_et_dyn_falls_back_to_dynsym():
    """strip(1) of an ET_DYN module keeps .dynsym, which the kernel linker then uses."""
    image = open_module(EDGE / "rem_i386_dynsym.ko")
    assert image.symtab == ".dynsym"
    expected = listed(EDGE / "rem_i386_dynsym.readelf-s.txt", ".dynsym")
    assert sorted((f.name, f.type, f.value, f.size) for f in image.functions) == expected
    assert len(expected) == 6


def test_module_linked_at_a_non_zero_address():
    """Offsets are from the first mapped page, so a module linked at 4 MB lays out as one linked at 0."""
    at_zero = open_module(MODULES / "rem_i386.ko")
    at_4m = open_module(EDGE / "rem_i386_at_4m.ko")
    assert at_4m.size == at_zero.size and at_4m.fixed_base is None
    assert sorted((f.name, f.offset) for f in at_4m.functions) == sorted((f.name, f.offset) for f in at_zero.functions)
    readelf = {s.name: s.value for s in symbols(EDGE / "rem_i386_at_4m.readelf-s.txt")}
    assert all(readelf[f.name] - f.offset == 0x400000 for f in at_4m.functions)
    assert at_4m.address(at_4m.functions[0], 0xC1000000) == 0xC1000000 + at_4m.functions[0].offset


def _move_section_to_end(tmp_path, extra: int):
    """edges_amd64.ko with .text.after's sh_offset moved so that it ends ``extra`` bytes past EOF."""
    data = bytearray((EDGE / "edges_amd64.ko").read_bytes())
    shoff, = struct.unpack_from("<Q", data, 0x28)
    index = 4  # .text.after (readelf -S)
    header = shoff + index * 64
    size, = struct.unpack_from("<Q", data, header + 0x20)
    assert size == 4
    struct.pack_into("<Q", data, header + 0x18, len(data) - size + extra)
    path = tmp_path / "moved.ko"
    path.write_bytes(bytes(data))
    return path


def test_section_ending_at_eof_is_read_one_byte_past_is_refused(tmp_path):
    image = open_module(_move_section_to_end(tmp_path, 0))
    after = next(f for f in image.functions if f.name == "after_fn")
    assert len(image.code(after)) == 4
    with pytest.raises(InputError, match=r"section 4 \(\.text\.after\) lies past the end of the file"):
        open_module(_move_section_to_end(tmp_path, 1))

