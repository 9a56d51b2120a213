"""What a module's relocated fields will hold once the kernel linker has loaded it.

Two questions need this, both about bytes the file does not yet contain:

* FBT's jump-table heuristic reads 8 (4 on i386) bytes around a ``ret`` as a
  pointer and asks whether it points into the function: in the file those
  bytes are still unrelocated.
* ``MODULE_DEPEND`` records live in the ``set_modmetadata_set`` linker set as
  pointers to ``struct mod_metadata``, whose name field is again a pointer.

An absolute, pointer-sized relocation against something defined in the module
(a symbol, a section, or an ET_DYN ``R_*_RELATIVE``) always holds ``base +
target`` with a ``target`` known from the file; that is all either question
needs, and it does not depend on where the module is loaded.  Relocations
against other files' symbols, and the PC-relative and 32-bit kinds, only tell
where a field is rewritten (:meth:`Relocations.overlaps`).

ET_REL modules carry ``.rela.<section>`` sections whose ``sh_info`` names the
section they patch; ET_DYN modules one ``.rel(a).dyn`` addressed by virtual
address.  Both are read lazily, one section at a time, because a Rust module
has one relocation section per function and most are never asked about.
"""

from __future__ import annotations

import bisect
import struct
import sys
from array import array
from dataclasses import dataclass

from tracebridge.image.elf import (SHF_ALLOC, SHT_NOBITS, SHT_REL, SHT_RELA, SHT_SYMTAB_SHNDX, ModuleImage,
                                   Section)
from tracebridge.support import native

SHN_UNDEF, SHN_LORESERVE, SHN_XINDEX = 0, 0xFF00, 0xFFFF
#: This machine's byte order, as :mod:`struct` writes it.
_NATIVE_ORDER = "<" if sys.byteorder == "little" else ">"

#: Absolute pointer-sized relocations: (symbol + addend) and (base + addend) kinds,
#: from each psABI (x86-64, i386, AArch64 ELF, RISC-V ELF).
_ABSOLUTE = {"amd64": 1, "i386": 1, "arm64": 257, "riscv": 2}
_RELATIVE = {"amd64": 8, "i386": 8, "arm64": 1027, "riscv": 3}
#: Bytes rewritten by the x86 relocation types that are not pointer-sized;
#: anything unknown is taken as pointer-sized, which only makes
#: :meth:`Relocations.overlaps` answer "yes" more often.
_FIELD_SIZES = {
    "amd64": {0: 0, 2: 4, 3: 4, 4: 4, 9: 4, 10: 4, 11: 4, 12: 2, 13: 2, 14: 1, 15: 1, 19: 4, 20: 4,
              21: 4, 22: 4, 23: 4, 26: 4, 32: 4, 41: 4, 42: 4},
    "i386": {0: 0, 20: 2, 21: 2, 22: 1, 23: 1},
}


@dataclass(frozen=True, slots=True)
class Relocation:
    """One relocated field, as a position inside the section it patches."""

    offset: int
    size: int
    #: Module-relative offset the field will point to (the run-time value is
    #: ``base + target``), for absolute pointer-sized relocations to this
    #: module's own code or data; None for anything else.
    target: int | None


class Relocations:
    """The relocations of one module image, by patched section."""

    def __init__(self, image: ModuleImage):
        self.image = image
        self._data = image._data  # the mapped file; ModuleImage exposes no section reader
        self._order = "<" if image.little_endian else ">"
        self._pointer = image.bits // 8
        self._cache: dict[int, list[Relocation]] = {}
        self._offsets: dict[int, list[int]] = {}
        self._loaded: list[Section] | None = None
        self._starts: list[int] = []
        #: ET_REL: the relocation sections (indices) that patch each section.
        self._by_target: dict[int, list[int]] = {}
        self._dynamic: list[Section] = []
        self._by_address: dict[int, list[Relocation]] | None = None
        self._dynamic_targets: frozenset[int] | None = None
        if image.elf_type == "ET_REL":
            for index in image.section_indices_of_type(SHT_RELA, SHT_REL):
                self._by_target.setdefault(image.section_info(index), []).append(index)
        else:
            self._dynamic = [s for s in image.sections_of_type(SHT_RELA, SHT_REL) if s.flags & SHF_ALLOC]
        # ET_DYN and ET_EXEC: virtual address of module offset 0.
        self._low = 0
        if image.elf_type != "ET_REL":
            for section in image.sections:
                if section.load_offset is not None:
                    self._low = section.addr - section.load_offset
                    break

    # -- questions ---------------------------------------------------------

    def may_patch(self, shndx: int) -> bool:
        """Might any relocation patch section ``shndx``?  (Cheap: ET_REL reads nothing.)"""
        if self.image.elf_type == "ET_REL":
            return shndx in self._by_target
        if self._dynamic_targets is None:
            self._dynamic_targets = self._sections_hit()
        return shndx in self._dynamic_targets

    def _sections_hit(self) -> frozenset[int]:
        """Loaded sections that hold the address of some dynamic relocation (r_offset column only).

        Read as a column (natively, ``src/native/fbt_columns.h``; :func:`_addresses_hit_py` is its twin)
        so that a shared object's 100k relocations, almost all in data, need not be decoded to learn
        that its code has none.
        """
        ranges = [(section.index, self._low + section.load_offset, section.size) for section in self.image.sections
                  if section.load_offset is not None and section.size]
        # A corrupt layout (a start outside 0..2**64 - 1): let the exact path answer, if there are relocations.
        corrupt = {index for index, low, _ in ranges if not 0 <= low < 1 << 64}
        ranges = [r for r in ranges if r[0] not in corrupt]
        hit: set[int] = set()
        lows, sizes = array("Q", [low for _, low, _ in ranges]), array("Q", [size for _, _, size in ranges])
        core = native.core
        addresses_hit = _addresses_hit_py if core is None else core.addresses_hit
        for rel in self._dynamic:
            entry = self._layout(rel)[1]
            raw = self.read(rel, 0, rel.size - rel.size % entry) if rel.size >= entry else None
            if raw:
                hit.update(ranges[at][0] for at in addresses_hit(raw, entry, self._pointer,
                                                                  self._order != _NATIVE_ORDER, lows, sizes))
                hit.update(corrupt)
        return frozenset(hit)

    def _layout(self, rel: Section) -> tuple[str, int]:
        """The struct fields (offset, info, addend with RELA) and size of one entry of relocation section ``rel``."""
        rela = rel.type == SHT_RELA
        if self.image.bits == 64:
            return ("QQq", 24) if rela else ("QQ", 16)
        return ("IIi", 12) if rela else ("II", 8)

    def in_section(self, shndx: int) -> list[Relocation]:
        """Every relocation that patches section ``shndx``, sorted by offset."""
        found = self._cache.get(shndx)
        if found is None:
            if self.image.elf_type == "ET_REL":
                found = [r for rel in self._by_target.get(shndx, ())
                         for r in self._read(self.image.section(rel), None)]
            else:
                if self._by_address is None:
                    self._by_address = self._load_dynamic()
                found = list(self._by_address.get(shndx, ()))
            found.sort(key=lambda r: r.offset)
            self._cache[shndx] = found
            self._offsets[shndx] = [r.offset for r in found]
        return found

    def pointer(self, shndx: int, offset: int) -> int | None:
        """Target of the absolute pointer stored at ``offset`` of section ``shndx``, if any."""
        relocations = self.in_section(shndx)
        i = bisect.bisect_left(self._offsets[shndx], offset)
        while i < len(relocations) and relocations[i].offset == offset:
            if relocations[i].target is not None and relocations[i].size == self._pointer:
                return relocations[i].target
            i += 1
        return None

    def overlaps(self, shndx: int, start: int, end: int) -> bool:
        """Does any relocation rewrite a byte of ``[start, end)`` in section ``shndx``?"""
        relocations = self.in_section(shndx)
        # Fields are at most 8 bytes long: look from start - 8 on.
        i = bisect.bisect_left(self._offsets[shndx], start - 8)
        for relocation in relocations[i:]:
            if relocation.offset >= end:
                return False
            if relocation.offset + relocation.size > start:
                return True
        return False

    def locate(self, module_offset: int) -> tuple[Section, int] | None:
        """The loaded section holding ``module_offset``, and the offset inside it."""
        if self._loaded is None:
            self._loaded = sorted((s for s in self.image.sections if s.loaded), key=lambda s: s.load_offset)
            self._starts = [s.load_offset for s in self._loaded]
        i = bisect.bisect_right(self._starts, module_offset) - 1
        while i >= 0:
            section = self._loaded[i]
            if section.load_offset + section.size > module_offset:
                return section, module_offset - section.load_offset
            if section.load_offset < module_offset:
                return None
            i -= 1
        return None

    def read(self, section: Section, offset: int, size: int) -> bytes | None:
        """``size`` bytes of ``section`` from the file, or None if it has none there."""
        if section.type == SHT_NOBITS or offset < 0 or offset + size > section.size:
            return None
        start = section.file_offset + offset
        if start + size > len(self._data):
            return None
        return bytes(self._data[start:start + size])

    # -- reading -----------------------------------------------------------

    def _load_dynamic(self) -> dict[int, list[Relocation]]:
        """Read every dynamic relocation section once, filing each entry under its section."""
        by_section: dict[int, list[Relocation]] = {}
        for rel in self._dynamic:
            for relocation, address in self._read(rel, self._low):
                located = self._section_at_address(address)
                if located is not None:
                    section, offset = located
                    by_section.setdefault(section.index, []).append(
                        Relocation(offset, relocation.size, relocation.target))
        return by_section

    def _section_at_address(self, address: int) -> tuple[Section, int] | None:
        return self.locate(address - self._low)

    def _read(self, rel: Section, low: int | None):
        """Decode one REL/RELA section.

        For ET_REL (``low`` None) yield :class:`Relocation` with section
        offsets; for dynamic sections yield (relocation, virtual address) pairs
        whose relocation offset is still to be placed.
        """
        machine = self.image.machine
        rela = rel.type == SHT_RELA
        fmt, width = self._layout(rel)
        raw = self.read(rel, 0, rel.size - rel.size % width) if rel.size >= width else b""
        if not raw:
            return
        sizes = _FIELD_SIZES.get(machine, {})
        for entry in struct.iter_unpack(self._order + fmt, raw):
            r_offset, r_info = entry[0], entry[1]
            if self.image.bits == 64:
                symbol, kind = r_info >> 32, r_info & 0xFFFFFFFF
            else:
                symbol, kind = r_info >> 8, r_info & 0xFF
            size = sizes.get(kind, self._pointer)
            addend = entry[2] if rela else None
            target = None
            if kind in (_ABSOLUTE.get(machine), _RELATIVE.get(machine)) and size == self._pointer:
                target = self._target(rel, kind, symbol, addend, r_offset, low)
            if low is None:
                yield Relocation(r_offset, size, target)
            else:
                yield Relocation(0, size, target), r_offset

    def _target(self, rel: Section, kind: int, symbol: int, addend: int | None, r_offset: int,
                low: int | None) -> int | None:
        """Module-relative value of an absolute pointer relocation, or None if external."""
        if addend is None:  # REL: the addend is the field's current content
            addend = self._inplace(rel, r_offset, low)
            if addend is None:
                return None
        if kind == _RELATIVE.get(self.image.machine):
            return addend - (low or 0)
        defined = self._symbol(rel.link, symbol)
        if defined is None:
            return None
        shndx, value = defined
        if self.image.elf_type == "ET_REL":
            section = self.image.section(shndx)
            return section.load_offset + value + addend if section.loaded else None
        return value - (low or 0) + addend

    def _inplace(self, rel: Section, r_offset: int, low: int | None) -> int | None:
        if low is None:
            if not 0 <= rel.info < self.image.section_count:
                return None
            located = (self.image.section(rel.info), r_offset)
        else:
            located = self._section_at_address(r_offset)
        if located is None:
            return None
        raw = self.read(located[0], located[1], self._pointer)
        if raw is None:
            return None
        return int.from_bytes(raw, "little" if self.image.little_endian else "big", signed=True)

    def _symbol(self, symtab_index: int, symbol: int) -> tuple[int, int] | None:
        """(section index, value) of a symbol defined in a loaded section, else None."""
        count = self.image.section_count
        if symbol == 0 or not 0 < symtab_index < count:
            return None
        symtab = self.image.section(symtab_index)
        width = 24 if self.image.bits == 64 else 16
        raw = self.read(symtab, symbol * width, width)
        if raw is None:
            return None
        if self.image.bits == 64:
            _, _, _, shndx, value, _ = struct.unpack(self._order + "IBBHQQ", raw)
        else:
            _, value, _, _, _, shndx = struct.unpack(self._order + "IIIBBH", raw)
        if shndx == SHN_XINDEX:
            shndx = self._extended_index(symtab_index, symbol)
        elif shndx >= SHN_LORESERVE:
            return None
        if shndx is None or shndx == SHN_UNDEF or shndx >= count:
            return None
        return shndx, value

    def _extended_index(self, symtab_index: int, symbol: int) -> int | None:
        for section in self.image.sections_of_type(SHT_SYMTAB_SHNDX):
            if section.link == symtab_index:
                raw = self.read(section, symbol * 4, 4)
                return None if raw is None else int.from_bytes(raw, "little" if self.image.little_endian else "big")
        return None


def _addresses_hit_py(raw: bytes, entry: int, width: int, swap: bool, lows: array, sizes: array) -> list[int]:
    """The positions of the ranges ``lows[j]`` .. ``lows[j] + sizes[j]`` that hold one of the addresses of
    ``raw``: the first ``width`` (4 or 8) bytes of each of its ``entry``-byte entries, in this machine's byte
    order (``swap``: the other).  The native core's ``addresses_hit`` in Python: the addresses sorted (they
    mostly are already, in runs), then one bisection per range."""
    if width not in (4, 8) or entry < width or entry % width or len(raw) % entry:
        raise ValueError("a field is 4 or 8 bytes wide, inside its whole entries, a whole number of times")
    column = array("Q" if width == 8 else "I", raw)
    if swap:
        column.byteswap()
    addresses = sorted(column[::entry // width])
    hit = []
    for at, (low, size) in enumerate(zip(lows, sizes)):
        first = bisect.bisect_left(addresses, low)
        if first < len(addresses) and addresses[first] - low < size:
            hit.append(at)
    return hit
