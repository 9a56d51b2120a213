"""Each class of broken ELF the hardening issue names, made by hand from a real module.

A class either still gives a correct result (the damage is somewhere the
kernel linker would not look either) or one line naming the file, exit 2;
every command that reads modules is run on it.
"""

from __future__ import annotations

import struct
import sys
from pathlib import Path

import pytest

from fixture_paths import MODULES

sys.path.insert(0, str(Path(__file__).parents[2] / "fuzz"))

from _harness import check_result, run_cli  # noqa: E402

GOOD = (MODULES / "rem_legacy_fp.ko").read_bytes()  # ELF64, little-endian, ET_REL, amd64
SHOFF, SHNUM = struct.unpack_from("<Q", GOOD, 0x28)[0], struct.unpack_from("<H", GOOD, 0x3C)[0]
#: Field offsets in an Elf64_Shdr.
SH_TYPE, SH_OFFSET, SH_SIZE, SH_LINK, SH_ADDRALIGN, SH_ENTSIZE = 4, 24, 32, 40, 48, 56


def header(index: int) -> int:
    return SHOFF + 64 * index


def section_of_type(kind: int) -> int:
    return next(i for i in range(SHNUM) if struct.unpack_from("<I", GOOD, header(i) + SH_TYPE)[0] == kind)


def section_named(name: bytes) -> int:
    names = struct.unpack_from("<Q", GOOD, header(struct.unpack_from("<H", GOOD, 0x3E)[0]) + SH_OFFSET)[0]
    return next(i for i in range(SHNUM)
                if GOOD[names + struct.unpack_from("<I", GOOD, header(i))[0]:].startswith(name + b"\0"))


SYMTAB = section_of_type(2)
METADATA = section_named(b"set_modmetadata_set")
STRTAB = struct.unpack_from("<I", GOOD, header(SYMTAB) + SH_LINK)[0]


def first_function_symbol() -> int:
    """File offset of the first STT_FUNC symbol."""
    start, size = struct.unpack_from("<QQ", GOOD, header(SYMTAB) + SH_OFFSET)
    for at in range(start, start + size, 24):
        if GOOD[at + 4] & 0xF == 2:
            return at
    raise AssertionError("no function symbol")


def patched(*changes: tuple[int, str, int]) -> bytes:
    data = bytearray(GOOD)
    for offset, fmt, value in changes:
        struct.pack_into("<" + fmt, data, offset, value)
    return bytes(data)


def every_section(field: int, fmt: str, value: int) -> bytes:
    return patched(*((header(i) + field, fmt, value) for i in range(SHNUM)))


TEXT_OFFSET = struct.unpack_from("<Q", GOOD, header(SYMTAB - 1) + SH_OFFSET)[0]

#: Class -> (the module, whether a result is expected (True) or a refusal (a word of its message)).
CASES = {
    "section-offset-past-end": (patched((header(SYMTAB) + SH_OFFSET, "Q", 0xFFFF_FFFF_00)), "past the end"),
    "section-size-4gb": (patched((header(SYMTAB) + SH_SIZE, "Q", 4 << 30)), "past the end"),
    "string-table-size-4gb": (patched((header(STRTAB) + SH_SIZE, "Q", 4 << 30)), "past the end"),
    "symbol-section-index-out-of-range": (patched((first_function_symbol() + 6, "H", SHNUM + 3)), True),
    "symbol-name-past-string-table": (patched((first_function_symbol(), "I", 0xFFFFFF)), "name offset"),
    "section-count-too-large": (patched((0x3C, "H", SHNUM + 500)), "past the end"),
    "section-count-too-small": (patched((0x3C, "H", SYMTAB)), "out of range"),
    "section-name-table-index-out-of-range": (patched((0x3E, "H", SHNUM + 1)), "out of range"),
    "section-header-size-wrong": (patched((0x3A, "H", 40)), "entry size"),
    "symbol-table-without-string-table": (patched((header(SYMTAB) + SH_LINK, "I", SYMTAB)), "string table"),
    "symbol-entry-size-wrong": (patched((header(SYMTAB) + SH_ENTSIZE, "Q", 7)), "entry size"),
    "extended-index-without-shndx-section": (patched((first_function_symbol() + 6, "H", 0xFFFF)), "extended"),
    "overlapping-sections": (every_section(SH_OFFSET, "Q", TEXT_OFFSET), True),
    # link_elf_obj.c's int alignmask = 0 - 1 = -1 puts the section at address 0 (not gABI's "no alignment").
    "zero-addralign": (every_section(SH_ADDRALIGN, "Q", 0), "sh_addralign 0x0 gives link_elf_obj.c the int alignmask -1"),
    "non-x86-machine-arm64": ((MODULES / "rem_arm64.ko").read_bytes(), True),
    "unsupported-machine-ppc64": (patched((18, "H", 21)), "unsupported machine"),
    "truncated-in-section-headers": (GOOD[:SHOFF + 64 * 3], "past the end"),
    # fuzz_elf: a 4 GB set_modmetadata_set in a 44 KB file had the module metadata reader loop for hours.
    "loaded-section-past-end": (patched((header(METADATA) + SH_SIZE, "Q", 1 << 62)), "lies past the end"),
    "nobits-metadata-set-of-1tb": (patched((header(METADATA) + SH_TYPE, "I", 8), (header(METADATA) + SH_SIZE, "Q", 1 << 40)),
                                   True),
    # e_shnum 0: the count is in section 0's header (extended numbering), which pyelftools reads past the end.
    "extended-section-count-past-end": (patched((0x3C, "H", 0), (0x28, "Q", len(GOOD) + 8)), "malformed ELF header"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_broken_module(tmp_path, case):
    data, expected = CASES[case]
    path = tmp_path / "broken.ko"
    path.write_bytes(data)
    status, _, err = run_cli(["symbols", "-f", "json", str(path)])
    check_result(status, err)
    if expected is True:
        assert status == 0, err
        for argv in (["inspect", str(path)], ["gen-probes", str(path), "-o", str(tmp_path / "p.d")]):
            status, _, err = run_cli(argv)
            check_result(status, err)
            # A module left with nothing to probe gets no empty script: one line saying so, exit 2.
            assert status == 0 or (argv[0] == "gen-probes" and status == 2 and (
                "has no function for the 'count' template" in err or "template has no probe" in err)), err
    else:
        assert status == 2
        assert err.startswith(f"tracebridge: {path}: ") and expected in err, err
