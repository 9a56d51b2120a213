"""The ELF reader on damaged and re-shaped copies of the committed modules (made here, in memory).

Each copy changes one thing a real file can hold (a field the kernel linker
reads, a table placed elsewhere, a byte order, a type); the result is either
the original's reading (which test_elf_views and test_edge_modules compare
with readelf) or one exact error line.
"""

from __future__ import annotations

import dataclasses
import struct

import pytest

import readelf_text
from elf_surgery import ElfCopy
from fixture_paths import EDGE, EXPECTED, MODULES
from test_code_spans import spans
from tracebridge.cli import main
from tracebridge.image import elf
from tracebridge.image.elf import open_module
from tracebridge.support.errors import InputError

REL = EDGE / "edges_amd64.ko"  # ET_REL amd64, 11 sections; .symtab 8, .strtab 9, .shstrtab 10
DYN = MODULES / "rem_i386.ko"  # ET_DYN i386, 6 program headers, .symtab and .dynsym
DYN64 = EDGE / "edges_arm64.ko"  # ET_DYN arm64, PT_LOADs in program headers 1-3; .text (4) at 0x102f4
SHN_XINDEX, SHT_SYMTAB_SHNDX, SHT_DYNSYM, SHT_INIT_ARRAY = 0xFFFF, 18, 11, 14


def functions(image) -> list[tuple]:
    return sorted((f.name, f.type, f.binding, f.section, f.shndx, f.value, f.size, f.offset) for f in image.functions)


def reopened(copy: ElfCopy, tmp_path, **options):
    return open_module(copy.write(tmp_path / "copy.ko"), **options)


def refusal(copy: ElfCopy, tmp_path) -> str:
    path = copy.write(tmp_path / "copy.ko")
    with pytest.raises(InputError) as err:
        open_module(path)
    assert str(err.value).startswith(f"{path}: ")
    return str(err.value).removeprefix(f"{path}: ")


def cut(size):
    def edit(c):
        c.data[:] = c.data[:size]
    return edit


def symtab_field(field, value):
    return lambda c: c.section(c.section_index(".symtab"), field, value)


def symbol_name_at(name, delta):
    """The symbol ``name``'s st_name set to the string table's size plus ``delta``."""
    def edit(c):
        symtab = c.section_index(".symtab")
        c.symbol(symtab, c.symbol_index(name), "name", c.section(c.section(symtab, "link"), "size") + delta)
    return edit


REFUSED = {
    "no magic": (REL, lambda c: c.data.__setitem__(slice(0, 4), b"\x7fELG"), "not an ELF file (no \\x7fELF magic)"),
    "shorter than a header": (REL, cut(51), "truncated ELF: the file is shorter than an ELF header"),
    "an ELF32 header alone": (DYN, cut(52), "the section header table (17 entries) lies past the end of the file "
                                            "(offset 0x26d0, size 0x2a8, file size 0x34)"),
    "class 3": (REL, lambda c: c.data.__setitem__(4, 3), "unknown ELF class/data encoding (3/1)"),
    "data encoding 3": (REL, lambda c: c.data.__setitem__(5, 3), "unknown ELF class/data encoding (2/3)"),
    "ET_CORE": (REL, lambda c: c.header("type", 4),
                "ELF type ET_CORE is not a kernel module or kernel (expected ET_REL, ET_DYN or ET_EXEC)"),
    "EM_PPC64": (REL, lambda c: c.header("machine", 21), "unsupported machine EM_PPC64; "
                 "FreeBSD kernel modules for amd64, i386, arm64 and riscv are understood"),
    "no e_shoff": (REL, lambda c: c.header("shoff", 0), "has no section headers (a kernel module needs them)"),
    "no e_shnum": (REL, lambda c: c.header("shnum", 0), "has no section headers (a kernel module needs them)"),
    "e_shentsize": (REL, lambda c: c.header("shentsize", 40), "section header entry size is 40, expected 64"),
    "section headers past EOF": (REL, lambda c: c.header("shoff", len(c.data) - 64),
                                 "the section header table (11 entries) lies past the end of the file "
                                 "(offset 0x4d8, size 0x2c0, file size 0x518)"),
    "e_shstrndx 0": (REL, lambda c: c.header("shstrndx", 0),
                     "section name string table index 0 is out of range (0..10)"),
    "e_shstrndx e_shnum": (REL, lambda c: c.header("shstrndx", 11),
                           "section name string table index 11 is out of range (0..10)"),
    "section names past EOF": (REL, lambda c: c.section(10, "offset", len(c.data) - 4),
                               "the section name string table lies past the end of the file "
                               "(offset 0x514, size 0x58, file size 0x518)"),
    "section name past its table": (REL, lambda c: c.section(3, "name", c.section(10, "size") + 1),
                                    "section 3 name offset is past the end of the section name table"),
    "e_phentsize": (DYN, lambda c: c.header("phentsize", 56), "program header entry size is 56, expected 32"),
    "program headers past EOF": (DYN, lambda c: c.header("phoff", len(c.data) - 8),
                                 "the program header table lies past the end of the file "
                                 "(offset 0x2970, size 0xc0, file size 0x2978)"),
    "ET_REL with .dynsym only": (REL, symtab_field("type", SHT_DYNSYM),
                                 "has no symbol table (.symtab): the module was stripped; "
                                 "FBT and tracebridge need it, rebuild without stripping"),
    "symbol entry size": (REL, symtab_field("entsize", 17), "symbol table entry size is 17, expected 24"),
    "symbols past EOF": (REL, symtab_field("offset", 0x510), "symbol table .symtab lies past the end of the file "
                                                            "(offset 0x510, size 0xf0, file size 0x518)"),
    "no string table": (REL, symtab_field("link", 0), "symbol table .symtab has no valid string table (sh_link 0)"),
    "string table index e_shnum": (REL, symtab_field("link", 11),
                                   "symbol table .symtab has no valid string table (sh_link 11)"),
    "string table not STRTAB": (REL, symtab_field("link", 1),
                                "symbol table .symtab has no valid string table (sh_link 1)"),
    "strings past EOF": (REL, lambda c: c.section(9, "offset", 0x500),
                         "string table .strtab lies past the end of the file "
                         "(offset 0x500, size 0x47, file size 0x518)"),
    # A name starting just past the table's end; the one before it (at the end: empty) is fine.
    "symbol name past its table": (REL, lambda c: (symbol_name_at("after_fn", 0)(c), symbol_name_at("jt_fn", 1)(c)),
                                   "symbol 7 name offset is past the end of .strtab"),
    "extended index without its table": (REL, lambda c: c.symbol(8, 3, "shndx", SHN_XINDEX),
                                         "symbols use extended section indices but there is no .symtab_shndx "
                                         "section"),
    # The kernel linker sums sizes in size_t and maps round_page of the sum: past 2**64 it wraps.
    "NOBITS of 2**64-1": (REL, lambda c: c.section(7, "size", 2**64 - 1),
                          "malformed ELF: section 7 ends at 0x1000000000000003a, past the 64-bit address space: "
                          "the kernel linker could not map the module"),
    # link_elf_obj.c: int alignmask = sh_addralign - 1 (32 bits kept); (mapbase + alignmask) & ~alignmask.
    # A mask of -1 (alignment 0, 2**32, 2**63) sends the section to address 0.
    "alignment 0": (REL, lambda c: c.section(4, "addralign", 0),
                    "malformed ELF: section 4: sh_addralign 0x0 gives link_elf_obj.c the int alignmask -1, and "
                    "(mapbase + alignmask) & ~alignmask wraps below mapbase, to a low address (0 for sh_addralign 0): "
                    "the kernel linker could not load the module"),
    "alignment 2**32": (REL, lambda c: c.section(7, "addralign", 2**32),
                        "malformed ELF: section 7: sh_addralign 0x100000000 gives link_elf_obj.c the int alignmask -1, "
                        "and (mapbase + alignmask) & ~alignmask wraps below mapbase, to a low address "
                        "(0 for sh_addralign 0): the kernel linker could not load the module"),
    "alignment 2**63": (REL, lambda c: (c.section(7, "addralign", 2**63), c.section(7, "size", 2**63)),
                        "malformed ELF: section 7: sh_addralign 0x8000000000000000 gives link_elf_obj.c the int "
                        "alignmask -1, and (mapbase + alignmask) & ~alignmask wraps below mapbase, to a low address "
                        "(0 for sh_addralign 0): the kernel linker could not load the module"),
    "PT_LOAD past 2**64": (DYN64, lambda c: c.program(3, "memsz", 2**64 - 0x20368),
                           "malformed ELF: PT_LOAD segment 3 of 3 ends at 0x10000000000000000, past the 64-bit "
                           "address space: the kernel linker could not map the module"),
    "section past 2**64, no PT_LOAD": (DYN64, lambda c: (c.header("phnum", 0), c.section(4, "size", 2**64 - 0x10000)),
                                       "malformed ELF: section 4 ends at 0x100000000000002f4, past the 64-bit "
                                       "address space: the kernel linker could not map the module"),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_refused_with_one_exact_line(tmp_path, case):
    base, edit, message = REFUSED[case]
    copy = ElfCopy(base)
    edit(copy)
    assert refusal(copy, tmp_path) == message


#: edges_amd64.ko's loaded sections: .text (1) 0x34 bytes at 0, .text.overlong (3) 3 at 0x34,
#: .text.after (4) 4 at 0x37, .bss.nobits (7) 0x10 at 0x3b; all sh_addralign 1; lf->size 0x4b.
#: Copies with other alignments -> (load offsets, lf->size), worked out by hand with the kernel's
#: mapsize = (mapsize + (sh_addralign - 1)) & ~(sh_addralign - 1), int mask, 64-bit size_t:
ALIGNED = {
    # 3 -> mask 0b10: (0x34 + 2) & ~2 = 0b110110 & ~0b10 = 0b110100 = 0x34 (a multiple of 3 would be 0x36)
    ".text.overlong aligned to 3": ({3: 3}, {1: 0, 3: 0x34, 4: 0x37, 7: 0x3b}, 0x4b),
    # 6 -> mask 0b101: (0x37 + 5) & ~5 = 0b111100 & ~0b101 = 0b111000 = 0x38 (not 0x3c); .bss.nobits at 0x3c
    ".text.after aligned to 6": ({4: 6}, {1: 0, 3: 0x34, 4: 0x38, 7: 0x3c}, 0x4c),
    # 3 -> (0x3b + 2) & ~2 = 0b111101 & ~0b10 = 0b111101 = 0x3d (not 0x3c); 6 -> (0x3b + 5) & ~5 = 0x40 & ~5 = 0x40
    ".bss.nobits aligned to 3": ({7: 3}, {1: 0, 3: 0x34, 4: 0x37, 7: 0x3d}, 0x4d),
    ".bss.nobits aligned to 6": ({7: 6}, {1: 0, 3: 0x34, 4: 0x37, 7: 0x40}, 0x50),
    # 2**32 + 4 -> the int keeps 32 bits of 2**32 + 3: mask 3, (0x3b + 3) & ~3 = 0x3c, as alignment 4 would
    ".bss.nobits aligned to 2**32 + 4": ({7: 2**32 + 4}, {1: 0, 3: 0x34, 4: 0x37, 7: 0x3c}, 0x4c),
    # a power of two rounds up as ever: 16 -> (0x37 + 15) & ~15 = 0x40
    ".text.after aligned to 16": ({4: 16}, {1: 0, 3: 0x34, 4: 0x40, 7: 0x44}, 0x54),
}


@pytest.mark.parametrize("case", sorted(ALIGNED))
def test_alignments_are_the_kernels_mask_arithmetic(tmp_path, case):
    aligns, offsets, size = ALIGNED[case]
    copy = ElfCopy(REL)
    for index, align in aligns.items():
        copy.section(index, "addralign", align)
    image = reopened(copy, tmp_path)
    assert (image.load_offsets, image.size) == (offsets, size)
    # A function's offset is its section's plus st_value (after_fn and nobits_fn are at 0 in theirs).
    assert {f.name: f.offset for f in image.functions if f.name in ("after_fn", "nobits_fn")} == {
        "after_fn": offsets[4], "nobits_fn": offsets[7]}


@pytest.mark.parametrize("align", [0, 2**32])
def test_the_cli_refuses_a_misaligned_copy_in_one_line(tmp_path, capsys, align):
    copy = ElfCopy(REL)
    copy.section(4, "addralign", align)
    path = copy.write(tmp_path / "copy.ko")
    assert main(["symbols", str(path)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == (f"tracebridge: {path}: malformed ELF: section 4: sh_addralign {align:#x} gives "
                            "link_elf_obj.c the int alignmask -1, and (mapbase + alignmask) & ~alignmask wraps below "
                            "mapbase, to a low address (0 for sh_addralign 0): the kernel linker could not load the "
                            "module\n")


def test_empty_file_and_directory(tmp_path):
    (tmp_path / "empty.ko").write_bytes(b"")
    for path, message in ((tmp_path / "empty.ko", "is empty, not an ELF kernel module"),
                          (tmp_path, "is a directory, expected a kernel module"),
                          (tmp_path / "gone.ko", "no such file")):
        with pytest.raises(InputError) as err:
            open_module(path)
        assert str(err.value) == f"{path}: {message}"


def test_header_parser_errors_and_others_are_one_line(tmp_path, monkeypatch):
    """pyelftools' errors say "malformed ELF header"; numpy's and Python's on lying tables "malformed ELF"."""
    copy = ElfCopy(REL)
    cut(60)(copy)  # an ELF64 header needs 64 bytes
    assert refusal(copy, tmp_path).startswith("malformed ELF header: ")

    def fails(exc):
        def link_elf_obj(*args, **kwargs):
            raise exc
        return link_elf_obj

    for exc, detail in ((ValueError("negative dimensions are not allowed"), "negative dimensions are not allowed"),
                        (MemoryError(), "MemoryError"), (OverflowError("too big"), "too big")):
        monkeypatch.setattr(elf.layout, "link_elf_obj", fails(exc))
        assert refusal(ElfCopy(REL), tmp_path) == f"malformed ELF: {detail}"


def test_big_endian_copy_reads_the_same(tmp_path):
    """The byte order comes from EI_DATA: a big-endian copy of a module reads as the module does."""
    for path in (REL, DYN):
        original = open_module(path)
        image = reopened(ElfCopy(path).big_endian(), tmp_path)
        assert not image.little_endian and original.little_endian
        assert functions(image) == functions(original)
        assert image.load_offsets == original.load_offsets and image.size == original.size
        assert [dataclasses.astuple(s) for s in image.sections] == [dataclasses.astuple(s) for s in original.sections]
        symtab = image.sections_named(".symtab")[0].index
        assert [c.tolist() for c in image.symbol_columns(symtab)] == [c.tolist() for c in
                                                                      original.symbol_columns(symtab)]


def test_kernel_image_runs_where_it_was_linked(tmp_path):
    """ET_EXEC (the kernel): offsets from its first page, and that page's address is fixed."""
    copy = ElfCopy(EDGE / "rem_i386_at_4m.ko")
    copy.header("type", 2)
    image = reopened(copy, tmp_path)
    assert image.elf_type == "ET_EXEC" and image.fixed_base == 0x400000
    assert image.frame_module == "kernel" and image.modname == "copy"
    readelf = {s.name: s.value for s in readelf_text.symbols(EDGE / "rem_i386_at_4m.readelf-s.txt")}
    assert image.functions and all(image.address(f) == image.address(f, 0xC1000000) == readelf[f.name]
                                   for f in image.functions)
    assert functions(image) == functions(open_module(EDGE / "rem_i386_at_4m.ko"))


def test_sections_of_a_module_linked_at_4m_are_placed_from_its_first_page():
    at_zero, at_4m = open_module(DYN), open_module(EDGE / "rem_i386_at_4m.ko")
    assert at_4m.load_offsets == at_zero.load_offsets
    assert [s.addr - 0x400000 for s in at_4m.sections if s.loaded] == [s.addr for s in at_zero.sections if s.loaded]


@pytest.mark.parametrize("edit, size", [
    (lambda c: None, 0x4000),
    # The kernel maps what the PT_LOAD segments span, not what the sections do.
    (lambda c: c.program(3, "memsz", c.program(3, "memsz") + 0x3000), 0x7000),
    (lambda c: c.header("phnum", 1), 0x1000),  # the first PT_LOAD alone: headers and .dynsym
    # Without program headers (e_phoff or e_phnum 0) the allocated sections bound the image.
    (lambda c: (c.program(3, "memsz", c.program(3, "memsz") + 0x3000), c.header("phnum", 0)), 0x4000),
    (lambda c: (c.program(3, "memsz", c.program(3, "memsz") + 0x3000), c.header("phoff", 0)), 0x4000),
], ids=["as built", "last segment longer", "one segment", "no e_phnum", "no e_phoff"])
def test_module_size_follows_the_load_segments(tmp_path, edit, size):
    copy = ElfCopy(DYN)
    edit(copy)
    image = reopened(copy, tmp_path)
    assert image.size == size
    assert functions(image) == functions(open_module(DYN))


@pytest.mark.parametrize("moved", [".dynstr", ".dynsym", ".shstrtab"])
def test_tables_at_section_index_1(tmp_path, moved):
    """Any section may be the first after the null one: the string, symbol and name tables too."""
    path = EDGE / "rem_i386_dynsym.ko"
    copy = ElfCopy(path)
    copy.swap_sections(1, copy.section_index(moved))
    image = reopened(copy, tmp_path)
    assert image.sections[1].name == moved
    assert functions(image) == functions(open_module(path))
    values, shndx = image.symbol_columns(image.sections_named(".dynsym")[0].index)
    original = open_module(path)
    assert values.tolist() == original.symbol_columns(2)[0].tolist()
    assert len(shndx) == 9


def test_names_at_the_very_end_of_their_tables_are_empty(tmp_path):
    """The tables are read as if a NUL followed them: an offset equal to the table's size names ""."""
    copy = ElfCopy(REL)
    copy.section(3, "name", copy.section(10, "size"))
    symbol_name_at("jt_fn", 0)(copy)
    image = reopened(copy, tmp_path)
    assert image.sections[3].name == ""
    assert {f.name for f in image.functions} == {f.name for f in open_module(REL).functions} - {"jt_fn"} | {""}


def test_symbol_entry_size_0_is_read_as_the_standard_size(tmp_path):
    copy = ElfCopy(REL)
    symtab_field("entsize", 0)(copy)
    assert functions(reopened(copy, tmp_path)) == functions(open_module(REL))


def test_reserved_binding_is_shown_as_its_number(tmp_path):
    copy = ElfCopy(REL)
    at = copy.symbol_index("plain_fn")
    copy.symbol(8, at, "info", (13 << 4) | 2)  # STB_LOPROC, STT_FUNC
    binding = {f.name: f.binding for f in reopened(copy, tmp_path).functions}
    assert binding["plain_fn"] == "13" and binding["jt_fn"] == "GLOBAL"


def test_functions_in_no_real_section_are_not_listed(tmp_path):
    """A section index past the table, or a reserved one (SHN_ABS), places no function."""
    copy = ElfCopy(REL)
    copy.symbol(8, copy.symbol_index("plain_fn"), "shndx", 11)
    copy.symbol(8, copy.symbol_index("jt_fn"), "shndx", 0xFFF1)
    got = {f.name for f in reopened(copy, tmp_path).functions}
    assert got == {f.name for f in open_module(REL).functions} - {"plain_fn", "jt_fn"}


def test_extended_section_indices(tmp_path):
    """Symbols whose st_shndx is SHN_XINDEX take their section from the .symtab_shndx linked to .symtab.

    Another symbol table's SHT_SYMTAB_SHNDX comes first (its entries would
    place every function in section 5), and the real one is the file's last bytes.
    """
    copy = ElfCopy(REL)
    count = copy.symbol_count(8)
    real = [copy.symbol(8, i, "shndx") for i in range(count)]
    for i in range(count):
        if copy.symbol(8, i, "info") & 0xF in (2, 10):
            copy.symbol(8, i, "shndx", SHN_XINDEX)
    decoy = copy.append(struct.pack(f"<{count}I", *[5] * count), 4)
    copy.add_section(type=SHT_SYMTAB_SHNDX, offset=decoy, size=4 * count, link=9, entsize=4, addralign=4)
    table = struct.pack(f"<{count}I", *real)
    copy.add_section(type=SHT_SYMTAB_SHNDX, size=4 * count, link=8, entsize=4, addralign=4)
    copy.section(12, "offset", copy.append(table, 4))
    assert len(copy.data) == copy.section(12, "offset") + len(table)
    image = reopened(copy, tmp_path)
    assert functions(image) == functions(open_module(REL))
    copy.data[:] = copy.data[:-4]  # the last entry cut off
    assert refusal(copy, tmp_path) == (f".symtab_shndx lies past the end of the file (offset "
                                       f"{copy.section(12, 'offset'):#x}, size 0x28, file size {len(copy.data):#x})")


def test_init_and_fini_arrays_are_loaded_by_newer_kernels_only(tmp_path):
    """link_elf_obj maps SHT_INIT_ARRAY/SHT_FINI_ARRAY since 2024 (open_module's init_fini_arrays)."""
    path = MODULES / "rem_legacy_fp.ko"
    copy = ElfCopy(path)
    index = copy.section_index("set_modmetadata_set")
    copy.section(index, "type", SHT_INIT_ARRAY)
    original = open_module(path)
    assert reopened(copy, tmp_path).load_offsets == original.load_offsets
    older = reopened(copy, tmp_path, init_fini_arrays=False)
    assert set(older.load_offsets) == set(original.load_offsets) - {index}
    assert older.size < original.size


def test_relocatable_module_ignores_section_addresses(tmp_path):
    """In ET_REL symbol values are section offsets; sh_addr (here made non-zero) is not read."""
    copy = ElfCopy(REL)
    for index in (1, 3, 4):
        copy.section(index, "addr", 0x1000)
    image, original = reopened(copy, tmp_path), open_module(REL)
    assert [image.code(f) for f in image.functions] == [original.code(f) for f in original.functions]
    assert spans(image, image.functions) == spans(original, original.functions)
    assert [image.offset_in_section(f) for f in image.functions] == [f.value for f in image.functions]


def test_loaded_section_may_be_the_whole_file(tmp_path):
    """Bounds are checked to the byte: a loaded section covering the file is read, one byte more is refused."""
    copy = ElfCopy(REL)
    copy.section(4, "offset", 0)
    copy.section(4, "size", len(copy.data))
    assert len(reopened(copy, tmp_path).section_bytes(4)) == len(copy.data)
    copy.section(4, "size", len(copy.data) + 1)
    assert refusal(copy, tmp_path) == ("section 4 (.text.after) lies past the end of the file "
                                       "(offset 0x0, size 0x519, file size 0x518)")


def test_unloaded_section_past_the_end_is_refused_when_read(tmp_path):
    copy = ElfCopy(REL)
    copy.section(10, "size", len(copy.data) - copy.section(10, "offset"))  # .shstrtab to the end of the file
    copy.section(5, "offset", len(copy.data))  # .data: empty, at the end
    image = reopened(copy, tmp_path)
    assert image.section_bytes(10) == bytes(copy.data[copy.section(10, "offset"):])
    assert image.section_bytes(5) == b""
    copy.section(2, "offset", len(copy.data) - 0x47)  # .rela.text: 0x48 bytes, one past the end
    image = reopened(copy, tmp_path)
    with pytest.raises(InputError) as err:
        image.section_bytes(2)
    assert str(err.value) == f"{image.path}: section 2 (.rela.text) lies past the end of the file"


def test_reader_reads_from_the_first_byte_to_the_last():
    data = REL.read_bytes()
    reader = elf._Reader(str(REL), data)
    assert reader.slice(0, 4, "the magic") == b"\x7fELF"
    assert reader.slice(len(data), 0, "nothing") == b""
    assert reader.slice(0, len(data), "everything") == data


def test_kernel_linked_high_keeps_every_address_bit(tmp_path):
    """A 64-bit kernel lives at 0xffffffff8...: offsets and code spans need all 64 bits (no float64 on the way)."""
    path = MODULES / "rem_arm64.ko"
    copy = ElfCopy(path)
    copy.move(0xFFFFFFFF80000000)
    copy.header("type", 2)  # ET_EXEC
    image, original = reopened(copy, tmp_path), open_module(path)
    assert image.fixed_base == 0xFFFFFFFF80000000
    assert [(f.name, f.offset) for f in image.functions] == [(f.name, f.offset) for f in original.functions]
    readelf = {s.name: s.value for s in readelf_text.symbols(EXPECTED / "rem_arm64.readelf-s.txt")}
    assert all(image.address(f) == 0xFFFFFFFF80000000 + readelf[f.name] for f in image.functions)
    assert spans(image, image.functions) == [original.code_span(f) for f in original.functions]
    assert [image.code(f) for f in image.functions] == [original.code(f) for f in original.functions]


def test_undefined_function_symbol_even_with_a_loaded_section_0(tmp_path):
    """st_shndx 0 is SHN_UNDEF whatever section 0's header says (here SHF_ALLOC with a size, so "loaded")."""
    copy = ElfCopy(DYN)
    copy.section(0, "flags", 0x2)
    copy.section(0, "size", 0x10)
    symtab = copy.section_index(".symtab")
    copy.symbol(symtab, copy.symbol_index("rem_attach"), "shndx", 0)
    image = reopened(copy, tmp_path)
    assert image.sections[0].loaded
    assert {f.name for f in image.functions} == {f.name for f in open_module(DYN).functions} - {"rem_attach"}


def test_extended_section_numbering_with_65530_sections(tmp_path):
    """More than SHN_LORESERVE sections (a big Rust module): e_shnum 0 and the count in section 0's sh_size.

    Indices 0xff00..0xffff are then real sections too, but a symbol's st_shndx
    in that range still means a reserved index (SHN_LORESERVE, SHN_ABS);
    only SHN_XINDEX sends to .symtab_shndx.  The copy's sections 0xff00,
    0xfff1 and 65400 are copies of .text.
    """
    copy = ElfCopy(REL)
    plain, jt, ifunc = (copy.symbol_index(name) for name in ("plain_fn", "jt_fn", "ifunc_fn"))
    text = bytes(copy.data[copy.header("shoff") + 64:copy.header("shoff") + 128])
    table = bytearray(copy.data[copy.header("shoff"):copy.header("shoff") + 11 * 64]) + bytes(64 * (65530 - 11))
    for index in (0xFF00, 0xFFF1, 65400):
        table[index * 64:(index + 1) * 64] = text
    copy.header("shoff", copy.append(bytes(table)))
    copy.header("shnum", 0)
    copy.section(0, "size", 65530)
    count = copy.symbol_count(8)
    indices = [copy.symbol(8, i, "shndx") for i in range(count)]
    copy.symbol(8, plain, "shndx", 0xFF00)
    copy.symbol(8, jt, "shndx", 0xFFF1)
    copy.symbol(8, ifunc, "shndx", SHN_XINDEX)
    indices[ifunc] = 65400
    shndx = copy.add_section(type=SHT_SYMTAB_SHNDX, size=4 * count, link=8, entsize=4, addralign=4)
    copy.section(shndx, "offset", copy.append(struct.pack(f"<{count}I", *indices), 4))
    image = reopened(copy, tmp_path)
    assert image.section_count == 65531
    by_name = {f.name: f for f in image.functions}
    assert set(by_name) == {f.name for f in open_module(REL).functions} - {"plain_fn", "jt_fn"}
    assert by_name["ifunc_fn"].shndx == 65400 and by_name["ifunc_fn"].section == ".text"
    assert image.code(by_name["ifunc_fn"]) == open_module(REL).code(next(f for f in open_module(REL).functions
                                                                         if f.name == "ifunc_fn"))


def test_alias_shown_is_global_then_largest_then_first_by_name(tmp_path):
    """alias_rank on symbols sharing an address.

    .text's section symbol (no name) is made a 64-byte LOCAL function at
    ifunc_fn's address (GLOBAL, 13 bytes), and plain_fn (6 bytes) is moved
    onto zero_fn (0 bytes).
    """
    copy = ElfCopy(REL)
    copy.symbol(8, 1, "info", 2)  # STB_LOCAL, STT_FUNC
    copy.symbol(8, 1, "size", 64)
    copy.symbol(8, copy.symbol_index("plain_fn"), "value", 0x13)
    image = reopened(copy, tmp_path)
    groups: dict[int, list] = {}
    for function in image.functions:
        groups.setdefault(function.offset, []).append(function)
    shown = {offset: min(group, key=elf.alias_rank).name for offset, group in groups.items() if len(group) > 1}
    assert shown == {0: "ifunc_fn", 0x13: "plain_fn"}
    assert sorted((f.name, f.binding, f.size) for f in groups[0]) == [("", "LOCAL", 64), ("ifunc_fn", "GLOBAL", 13)]


def _strings_budget(tmp_path, spare: int):
    """edges_amd64.ko with 8,000 function symbols naming 4,000 suffixes of one 20,000-byte name (each twice).

    The distinct names take 72,002,000 bytes; the string table is sized so
    that this is ``spare`` bytes under the limit (2 x (table + 1) + MAX_NAME_BYTES).
    """
    copy = ElfCopy(REL)
    length, distinct = 20000, 4000
    total = distinct * (length + 1) - distinct * (distinct + 1) // 2
    assert total == 72_002_000 and (total + spare - elf.MAX_NAME_BYTES) % 2 == 0
    table_size = (total + spare - elf.MAX_NAME_BYTES) // 2 - 1
    strings = (b"\0" + b"a" * length + b"\0").ljust(table_size, b"\0")
    symbols = bytes(24) + b"".join(struct.pack("<IBBHQQ", 1 + i % distinct, 0x12, 0, 1, 0, 1)
                                   for i in range(2 * distinct))
    copy.section(9, "offset", copy.append(strings))
    copy.section(9, "size", len(strings))
    copy.section(8, "offset", copy.append(symbols))
    copy.section(8, "size", len(symbols))
    return copy, total, len(strings) + 1


def test_names_up_to_the_budget_are_held(tmp_path):
    copy, _, _ = _strings_budget(tmp_path, 0)
    image = reopened(copy, tmp_path)
    assert len(image.functions) == 8000
    assert {len(f.name) for f in image.functions} == set(range(20000 - 3999, 20001))


def test_names_one_byte_over_the_budget_are_refused(tmp_path):
    copy, total, size = _strings_budget(tmp_path, -2)
    assert refusal(copy, tmp_path) == (f"its function names would take {total:,} bytes from a {size:,}-byte .strtab "
                                       "(symbols pointing into each other's names): refusing to hold them")


def test_relocations_naming_a_symbol_table_past_the_end_are_refused(tmp_path):
    """symbol_columns reads the table a relocation section names; here a second .symtab-typed one, cut off."""
    copy = ElfCopy(REL)
    index = copy.add_section(type=2, size=0x30, link=9, entsize=24)
    copy.section(index, "offset", len(copy.data) - 0x10)
    image = reopened(copy, tmp_path)
    assert [len(column) for column in image.symbol_columns(8)] == [10, 10]
    with pytest.raises(InputError) as err:
        image.symbol_columns(index)
    assert str(err.value) == (f"{image.path}: the symbol table lies past the end of the file "
                              f"(offset {len(copy.data) - 0x10:#x}, size 0x30, file size {len(copy.data):#x})")
