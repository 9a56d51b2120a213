"""Damaged and re-shaped copies of the committed modules, made in memory for the ELF reader's tests.

The field layouts are the ELF specification's (``Elf32_Ehdr``/``Elf64_Ehdr``,
``_Shdr``, ``_Phdr``, ``_Sym`` in the gABI and sys/sys/elf32.h, elf64.h), written
out here independently of tracebridge, so that a test can say "this module,
with its ``.symtab``'s ``sh_link`` set to 0" in a line and compare what
tracebridge reads with readelf's view of the original.
"""

from __future__ import annotations

import struct
from pathlib import Path

#: field -> (offset, struct format), per ELF class.
EHDR = {
    64: {"type": (16, "H"), "machine": (18, "H"), "version": (20, "I"), "entry": (24, "Q"), "phoff": (32, "Q"),
         "shoff": (40, "Q"), "flags": (48, "I"), "ehsize": (52, "H"), "phentsize": (54, "H"), "phnum": (56, "H"),
         "shentsize": (58, "H"), "shnum": (60, "H"), "shstrndx": (62, "H")},
    32: {"type": (16, "H"), "machine": (18, "H"), "version": (20, "I"), "entry": (24, "I"), "phoff": (28, "I"),
         "shoff": (32, "I"), "flags": (36, "I"), "ehsize": (40, "H"), "phentsize": (42, "H"), "phnum": (44, "H"),
         "shentsize": (46, "H"), "shnum": (48, "H"), "shstrndx": (50, "H")},
}
SHDR = {
    64: {"name": (0, "I"), "type": (4, "I"), "flags": (8, "Q"), "addr": (16, "Q"), "offset": (24, "Q"),
         "size": (32, "Q"), "link": (40, "I"), "info": (44, "I"), "addralign": (48, "Q"), "entsize": (56, "Q")},
    32: {"name": (0, "I"), "type": (4, "I"), "flags": (8, "I"), "addr": (12, "I"), "offset": (16, "I"),
         "size": (20, "I"), "link": (24, "I"), "info": (28, "I"), "addralign": (32, "I"), "entsize": (36, "I")},
}
PHDR = {
    64: {"type": (0, "I"), "flags": (4, "I"), "offset": (8, "Q"), "vaddr": (16, "Q"), "paddr": (24, "Q"),
         "filesz": (32, "Q"), "memsz": (40, "Q"), "align": (48, "Q")},
    32: {"type": (0, "I"), "offset": (4, "I"), "vaddr": (8, "I"), "paddr": (12, "I"), "filesz": (16, "I"),
         "memsz": (20, "I"), "flags": (24, "I"), "align": (28, "I")},
}
SYM = {
    64: {"name": (0, "I"), "info": (4, "B"), "other": (5, "B"), "shndx": (6, "H"), "value": (8, "Q"),
         "size": (16, "Q")},
    32: {"name": (0, "I"), "value": (4, "I"), "size": (8, "I"), "info": (12, "B"), "other": (13, "B"),
         "shndx": (14, "H")},
}
SIZES = {"shdr": {64: 64, 32: 40}, "phdr": {64: 56, 32: 32}, "sym": {64: 24, 32: 16}}
SHT_SYMTAB, SHT_RELA, SHT_REL, SHT_DYNSYM = 2, 4, 9, 11
SHF_ALLOC, SHN_LORESERVE, PT_GNU_STACK = 0x2, 0xFF00, 0x6474E551


class ElfCopy:
    """A module's bytes, with its header, section headers, program headers and symbols editable by name."""

    def __init__(self, path: Path | str):
        self.data = bytearray(Path(path).read_bytes())
        self.bits = 64 if self.data[4] == 2 else 32
        self.order = "<" if self.data[5] == 1 else ">"

    def _field(self, at: int, fmt: str, value: int | None) -> int:
        if value is not None:
            struct.pack_into(self.order + fmt, self.data, at, value)
        return struct.unpack_from(self.order + fmt, self.data, at)[0]

    def header(self, field: str, value: int | None = None) -> int:
        at, fmt = EHDR[self.bits][field]
        return self._field(at, fmt, value)

    def section(self, index: int, field: str, value: int | None = None) -> int:
        at, fmt = SHDR[self.bits][field]
        return self._field(self.header("shoff") + index * SIZES["shdr"][self.bits] + at, fmt, value)

    def program(self, index: int, field: str, value: int | None = None) -> int:
        at, fmt = PHDR[self.bits][field]
        return self._field(self.header("phoff") + index * SIZES["phdr"][self.bits] + at, fmt, value)

    def symbol(self, table: int, index: int, field: str, value: int | None = None) -> int:
        at, fmt = SYM[self.bits][field]
        return self._field(self.section(table, "offset") + index * SIZES["sym"][self.bits] + at, fmt, value)

    @property
    def section_count(self) -> int:
        """e_shnum, or section 0's sh_size when e_shnum is 0 (extended section numbering)."""
        return self.header("shnum") or self.section(0, "size")

    def section_name(self, index: int) -> str:
        names = self.section(self.header("shstrndx"), "offset")
        start = names + self.section(index, "name")
        return self.data[start:self.data.index(0, start)].decode("latin-1")

    def section_index(self, name: str) -> int:
        return next(i for i in range(self.section_count) if self.section_name(i) == name)

    def symbol_count(self, table: int) -> int:
        return self.section(table, "size") // SIZES["sym"][self.bits]

    def symbol_name(self, table: int, index: int) -> str:
        start = self.section(self.section(table, "link"), "offset") + self.symbol(table, index, "name")
        return self.data[start:self.data.index(0, start)].decode("latin-1")

    def symbol_index(self, name: str, table: str = ".symtab") -> int:
        at = self.section_index(table)
        return next(i for i in range(self.symbol_count(at)) if self.symbol_name(at, i) == name)

    def append(self, blob: bytes, align: int = 8) -> int:
        """Put ``blob`` at the end of the file (aligned); return its offset."""
        self.data += bytes(-len(self.data) % align)
        at = len(self.data)
        self.data += blob
        return at

    def add_section(self, **fields: int) -> int:
        """One more section header (the table moves to the end of the file); return its index."""
        size = SIZES["shdr"][self.bits]
        table = bytes(self.data[self.header("shoff"):self.header("shoff") + self.section_count * size])
        self.header("shoff", self.append(table + bytes(size)))
        index = self.section_count
        if self.header("shnum"):
            self.header("shnum", index + 1)
        else:
            self.section(0, "size", index + 1)
        for field, value in fields.items():
            self.section(index, field, value)
        return index

    def swap_sections(self, a: int, b: int) -> None:
        """Exchange two section headers and mend every reference to them (links, symbols, shstrndx)."""
        def mend(index: int) -> int:
            return {a: b, b: a}.get(index, index)

        size = SIZES["shdr"][self.bits]
        shoff = self.header("shoff")
        first, second = (bytes(self.data[shoff + i * size:shoff + (i + 1) * size]) for i in (a, b))
        self.data[shoff + a * size:shoff + (a + 1) * size] = second
        self.data[shoff + b * size:shoff + (b + 1) * size] = first
        for i in range(self.section_count):
            self.section(i, "link", mend(self.section(i, "link")))
            if self.section(i, "type") in (SHT_REL, SHT_RELA):
                self.section(i, "info", mend(self.section(i, "info")))
            if self.section(i, "type") in (SHT_SYMTAB, SHT_DYNSYM):
                for s in range(self.symbol_count(i)):
                    self.symbol(i, s, "shndx", mend(self.symbol(i, s, "shndx")))
        self.header("shstrndx", mend(self.header("shstrndx")))

    def move(self, delta: int) -> None:
        """Make an ET_DYN/ET_EXEC image look linked ``delta`` bytes higher, as far as a reader of its tables can tell.

        Allocated sections' addresses, the program headers' addresses and the
        defined symbols' values move; the contents (code, relocations, dynamic
        section) stay as they are.
        """
        for i in range(self.section_count):
            if self.section(i, "flags") & SHF_ALLOC:
                self.section(i, "addr", self.section(i, "addr") + delta)
            if self.section(i, "type") in (SHT_SYMTAB, SHT_DYNSYM):
                for s in range(self.symbol_count(i)):
                    if 0 < self.symbol(i, s, "shndx") < SHN_LORESERVE:
                        self.symbol(i, s, "value", self.symbol(i, s, "value") + delta)
        for i in range(self.header("phnum")):
            if self.program(i, "type") != PT_GNU_STACK:
                self.program(i, "vaddr", self.program(i, "vaddr") + delta)
                self.program(i, "paddr", self.program(i, "paddr") + delta)

    def big_endian(self) -> ElfCopy:
        """The same module written big-endian: ELF header, section and program headers, symbol tables.

        Section contents other than symbol tables keep their bytes (the
        reader under test does not interpret them).
        """
        other = ElfCopy.__new__(ElfCopy)
        other.data, other.bits, other.order = bytearray(self.data), self.bits, ">"
        other.data[5] = 2

        def copy(fields: dict[str, tuple[int, str]], base: int) -> None:
            for at, fmt in fields.values():
                value = struct.unpack_from(self.order + fmt, self.data, base + at)[0]
                struct.pack_into(">" + fmt, other.data, base + at, value)

        copy(EHDR[self.bits], 0)
        for i in range(self.section_count):
            copy(SHDR[self.bits], self.header("shoff") + i * SIZES["shdr"][self.bits])
            if self.section(i, "type") in (SHT_SYMTAB, SHT_DYNSYM):
                for s in range(self.symbol_count(i)):
                    copy(SYM[self.bits], self.section(i, "offset") + s * SIZES["sym"][self.bits])
        for i in range(self.header("phnum") if self.header("phoff") else 0):
            copy(PHDR[self.bits], self.header("phoff") + i * SIZES["phdr"][self.bits])
        return other

    def write(self, path: Path) -> Path:
        path.write_bytes(bytes(self.data))
        return path
