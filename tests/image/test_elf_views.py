"""ModuleImage's section headers, symbol columns and header facts against readelf's views of the same files.

The committed ``readelf -SW`` and ``readelf -sW`` outputs (tests/fixtures/expected,
edge) are the independent reading; the section header and symbol records of
:func:`section_header_dtype` and :func:`symbol_dtype` are checked field by field
on the raw tables, as pmcimage writes them.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

import readelf_text
from fixture_paths import CROSS, EDGE, EXPECTED, MODULES
from tracebridge.image.elf import open_module, section_header_dtype, symbol_dtype
from tracebridge.support.errors import InputError

#: readelf -SW's type names (binutils readelf.c get_section_type_name) -> sh_type.
TYPES = {"NULL": 0, "PROGBITS": 1, "SYMTAB": 2, "STRTAB": 3, "RELA": 4, "HASH": 5, "DYNAMIC": 6, "NOTE": 7,
         "NOBITS": 8, "REL": 9, "DYNSYM": 11, "INIT_ARRAY": 14, "FINI_ARRAY": 15, "X86_64_UNWIND": 0x70000001}
#: readelf's flag letters -> SHF_ bits.
FLAGS = {"W": 0x1, "A": 0x2, "X": 0x4, "M": 0x10, "S": 0x20, "I": 0x40, "L": 0x80, "G": 0x200, "T": 0x400}
#: readelf -sW's special section indices.
NDX = {"UND": 0, "ABS": 0xFFF1, "COM": 0xFFF2}
#: What ``readelf -h`` prints for each module (class, data, OS/ABI, type, flags), as run on the committed files.
HEADERS = {
    MODULES / "rem_legacy_fp.ko": (64, True, 9, "ET_REL", 0, "amd64"),
    MODULES / "rem_i386.ko": (32, True, 9, "ET_DYN", 0, "i386"),
    MODULES / "rem_arm64.ko": (64, True, 9, "ET_DYN", 0, "arm64"),
    EDGE / "edges_riscv.ko": (64, True, 9, "ET_DYN", 0x5, "riscv"),  # Flags: 0x5, RVC, double-float ABI
    CROSS / "xinl_riscv.ko": (64, True, 3, "ET_DYN", 0x5, "riscv"),  # OS/ABI: UNIX - GNU (ELFOSABI_GNU)
}

_SECTION = re.compile(r"^\s*\[\s*(\d+)\]\s+(\S*)\s+(\S+)\s+([0-9a-f]+)\s+([0-9a-f]+)\s+([0-9a-f]+)\s+([0-9a-f]+)"
                      r"\s+([A-Za-z]*)\s+(\d+)\s+(\d+)\s+(\d+)\s*$")
#: Every readelf -SW view: (module, view).
VIEWS = sorted((MODULES / f"{p.name.split('.')[0]}.ko{'.debug' if '.debug.' in p.name else ''}", p)
               for p in EXPECTED.glob("*.readelf-S.txt") if "stripped" not in p.name)


def readelf_sections(view) -> list[dict]:
    """Every column of readelf -SW: index, name, type, addr, offset, size, entsize, flags, link, info, align."""
    rows = []
    for line in view.read_text().splitlines():
        if m := _SECTION.match(line):
            flags = sum(FLAGS[letter] for letter in m[8])
            rows.append({"index": int(m[1]), "name": m[2], "type": TYPES[m[3]], "addr": int(m[4], 16),
                         "offset": int(m[5], 16), "size": int(m[6], 16), "entsize": int(m[7], 16), "flags": flags,
                         "link": int(m[9]), "info": int(m[10]), "addralign": int(m[11])})
    return rows


def known_flags(flags: int) -> int:
    return flags & sum(FLAGS.values())


@pytest.mark.parametrize("module, view", VIEWS, ids=lambda p: p.name)
def test_section_headers_equal_readelf(module, view):
    image = open_module(module)
    rows = readelf_sections(view)
    assert image.section_count == len(rows) == len(image.sections)
    for row, section in zip(rows, image.sections):
        assert image.section(row["index"]) is section
        got = {"index": section.index, "name": section.name, "type": section.type, "addr": section.addr,
               "offset": section.file_offset, "size": section.size, "entsize": section.entsize,
               "flags": known_flags(section.flags), "link": section.link, "info": section.info,
               "addralign": section.addralign}
        assert got == row
        assert section.executable == bool(row["flags"] & FLAGS["X"])
    # The same columns, read by name from the raw table with the public record type.
    raw = np.frombuffer(image.data, dtype=section_header_dtype(image.bits, "<"), count=len(rows),
                        offset=int(re.search(r"starting at offset (0x[0-9a-f]+)", view.read_text())[1], 16))
    for field in ("type", "addr", "offset", "size", "entsize", "link", "info", "addralign"):
        assert raw[field].tolist() == [row[field] for row in rows], field
    assert [known_flags(f) for f in raw["flags"].tolist()] == [row["flags"] for row in rows]
    with pytest.raises(IndexError, match=rf"^section index {len(rows)} outside 0\.\.{len(rows) - 1}$"):
        image.section(len(rows))
    with pytest.raises(IndexError, match=rf"^section index -1 outside 0\.\.{len(rows) - 1}$"):
        image.section(-1)


@pytest.mark.parametrize("module, view", VIEWS, ids=lambda p: p.name)
def test_contents_relocations_and_names_equal_readelf(module, view):
    image = open_module(module)
    rows = readelf_sections(view)
    data = module.read_bytes()
    for row in rows:
        want = b"" if row["type"] == TYPES["NOBITS"] else data[row["offset"]:row["offset"] + row["size"]]
        assert image.section_bytes(row["index"]) == want
        patching = [r["index"] for r in rows
                    if r["type"] in (TYPES["REL"], TYPES["RELA"]) and r["info"] == row["index"]]
        assert [s.index for s in image.relocation_sections_for(row["index"])] == patching
        assert [s.index for s in image.sections_named(row["name"])] == [r["index"] for r in rows
                                                                        if r["name"] == row["name"]]
    assert image.sections_named(".no_such_section") == []


@pytest.mark.parametrize("module, view", [v for v in VIEWS if ".debug" not in v[0].name], ids=lambda p: p.name)
def test_load_offsets_and_loaded_contents_follow_the_kernel_linker(module, view):
    """ET_REL: placed as link_elf_obj does (from readelf's columns); ET_DYN: sh_addr from the first page."""
    image = open_module(module)
    secs = readelf_text.sections(view)
    rows = readelf_sections(view)
    if image.elf_type == "ET_REL":
        placed, size = readelf_text.kernel_layout(secs, image.machine)
    else:
        allocated = [r for r in rows if r["flags"] & FLAGS["A"] and r["size"]]
        low = min(r["addr"] for r in allocated) // 4096 * 4096
        placed = {r["index"]: r["addr"] - low for r in allocated}
        size = None
    assert image.load_offsets == placed
    assert {s.index: s.load_offset for s in image.sections if s.loaded} == placed
    assert all(s.load_offset is None for s in image.sections if not s.loaded)
    if size is not None:
        assert image.size == size
    data = module.read_bytes()
    assert image.loaded_contents() == [(placed[r["index"]], data[r["offset"]:r["offset"] + r["size"]])
                                       for r in rows if r["index"] in placed and r["type"] != TYPES["NOBITS"]]


def readelf_symbols(path, table: str) -> list[tuple[int, int]]:
    return [(s.value, NDX[s.ndx] if s.ndx in NDX else int(s.ndx)) for s in readelf_text.symbols(path, table)]


SYMBOL_VIEWS = [(MODULES / f"{p.name.split('.')[0]}.ko", p, ".symtab") for p in EXPECTED.glob("rem_*.readelf-s.txt")
                if "stripped" not in p.name]
SYMBOL_VIEWS += [(MODULES / "rem_i386.ko", EXPECTED / "rem_i386.readelf-s.txt", ".dynsym")]
SYMBOL_VIEWS += [(p.with_name(p.name.replace(".readelf-s.txt", ".ko")), p, ".symtab")
                 for p in EDGE.glob("*.readelf-s.txt") if "dynsym" not in p.name]
SYMBOL_VIEWS += [(EDGE / "rem_i386_dynsym.ko", EDGE / "rem_i386_dynsym.readelf-s.txt", ".dynsym")]


@pytest.mark.parametrize("module, view, table", sorted(SYMBOL_VIEWS), ids=lambda p: getattr(p, "name", p))
def test_symbol_columns_equal_readelf(module, view, table):
    image = open_module(module)
    index, = (s.index for s in image.sections_named(table))
    values, shndx = image.symbol_columns(index)
    assert values.dtype == np.uint64 and shndx.dtype == np.int64
    assert list(zip(values.tolist(), shndx.tolist())) == readelf_symbols(view, table)
    # The raw records by name, as pmcimage writes them.
    section = image.section(index)
    raw = np.frombuffer(image.data, dtype=symbol_dtype(image.bits, "<"), count=section.size // section.entsize,
                        offset=section.file_offset)
    expected = readelf_text.symbols(view, table)
    assert raw["size"].tolist() == [s.size for s in expected]
    assert raw["value"].tolist() == values.tolist() and raw["shndx"].tolist() == shndx.tolist()
    visibility = ("DEFAULT", "INTERNAL", "HIDDEN", "PROTECTED")
    assert [visibility[v & 3] for v in raw["other"].tolist()] == [s.vis for s in expected]
    assert [("LOCAL", "GLOBAL", "WEAK")[i >> 4] for i in raw["info"].tolist()] == [s.bind for s in expected]


@pytest.mark.parametrize("bad", [0, -1, "strtab", "count"])
def test_symbol_columns_refuses_what_is_no_symbol_table(bad):
    path = MODULES / "inl_v0.ko.debug"
    image = open_module(path)
    index = {"strtab": image.sections_named(".strtab")[0].index, "count": image.section_count}.get(bad, bad)
    with pytest.raises(InputError) as err:
        image.symbol_columns(index)
    assert str(err.value) == f"{path}: relocations name symbol table {index}, which is not one"


@pytest.mark.parametrize("path", sorted(HEADERS), ids=lambda p: p.name)
def test_header_facts_equal_readelf(path):
    bits, little, osabi, elf_type, flags, machine = HEADERS[path]
    image = open_module(path)
    assert (image.bits, image.little_endian, image.osabi, image.elf_type, image.e_flags, image.machine) == (
        bits, little, osabi, elf_type, flags, machine)
    assert image.fixed_base is None and image.frame_module == path.name
    first = image.functions[0]
    assert image.address(first) is None and first.address(None) is None
    assert image.address(first, 0xC1000000) == first.address(0xC1000000) == 0xC1000000 + first.offset


EVERY_FILE = sorted(p for p in [*MODULES.glob("*.ko*"), *EDGE.glob("*.ko"), *CROSS.glob("*.ko*")]
                    if p.stem != "rem_stripped")


@pytest.mark.parametrize("path", EVERY_FILE, ids=lambda p: p.name)
def test_sections_named_finds_every_section_of_that_name(path):
    """Names may sit at several places in the name table (xinl_arm64.ko.full: ".plt" three times)."""
    image = open_module(path)
    for name in {s.name for s in image.sections}:
        assert [s.index for s in image.sections_named(name)] == [s.index for s in image.sections if s.name == name]
