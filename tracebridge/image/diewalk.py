"""The DIEs of one DWARF unit that the address index reads, straight from the section bytes.

pyelftools builds a DIE object and a container per attribute for every DIE;
on a module with 100k inlined subroutines that walk alone took over 2 s.
The index needs a few attributes of a few tags -- subprograms, inlined
subroutines and the scopes whose names qualify them -- so :func:`walk_unit`
reads the unit's abbreviation table itself, skips every other attribute by
its form (DWARF 2 to 5, and the GNU split-DWARF forms) and decodes the code
DIEs' address ranges (low/high pc, ``.debug_ranges``, ``.debug_rnglists``)
on the way.  It runs in the native core (``src/native/dwarf_walk.h``) when
that is built; the pure-Python walk below gives byte-identical rows, strings
and error messages (``tests/image/test_diewalk.py`` runs both).

Output: one int64 row per DIE of a recorded tag (:data:`RECORD_COLUMNS`),
one ``(low, high, record)`` row per non-empty address range of a code DIE,
and the strings the rows point into.  A corrupt unit is a ``ValueError``
naming what is wrong; the caller skips the unit with a warning.
"""

from __future__ import annotations

from array import array
from typing import NamedTuple

from tracebridge.image.dwarfbytes import ByteReader
from tracebridge.image.rangelists import RangeLists
from tracebridge.support import native

#: Recorded tags, in the order their numbers in the TAG column follow: the two code tags first, then
#: the scopes that qualify a name (namespace, structure, class, union, enumeration).
TAGS = (0x2E, 0x1D, 0x39, 0x13, 0x02, 0x17, 0x04)
SUBPROGRAM, INLINED = 0, 1
#: Columns of a record row.  PARENT: the enclosing DIE's offset (-1 at top level); CODE_PARENT: the record
#: of the innermost enclosing code DIE (-1: none); ORIGIN: DW_AT_abstract_origin, else DW_AT_specification,
#: as a .debug_info offset (-1: none); CALL_FILE: -1 when absent; CALL_LINE: 0 when absent or absurd;
#: NAME, LINKAGE: indexes into the strings (-1: none; LINKAGE falls back to DW_AT_MIPS_linkage_name).
RECORD_COLUMNS = ("offset", "tag", "parent", "code_parent", "origin", "call_file", "call_line", "name", "linkage")
#: The sections the walk reads, in the order :func:`walk_unit` takes them.
SECTIONS = (".debug_info", ".debug_abbrev", ".debug_str", ".debug_line_str", ".debug_str_offsets", ".debug_addr",
            ".debug_ranges", ".debug_rnglists")
MAX_ADDRESS = (1 << 63) - 1
MAX_LINE = (1 << 31) - 1

# Value classes of attribute forms.
_NONE, _ADDR, _ADDRX, _UDATA, _SDATA, _REF, _REF_ADDR, _SEC, _RNGLISTX, _STRING, _STRP, _LINE_STRP, _STRX = range(13)
#: Fixed-size forms: form -> (size, class).  Sizes 0 stand for the unit's address or offset size.
_FIXED = {0x05: (2, _UDATA), 0x06: (4, _UDATA), 0x07: (8, _UDATA), 0x0B: (1, _UDATA),
          0x0C: (1, _NONE), 0x11: (1, _REF), 0x12: (2, _REF), 0x13: (4, _REF), 0x14: (8, _REF),
          0x25: (1, _STRX), 0x26: (2, _STRX), 0x27: (3, _STRX), 0x28: (4, _STRX),
          0x29: (1, _ADDRX), 0x2A: (2, _ADDRX), 0x2B: (3, _ADDRX), 0x2C: (4, _ADDRX),
          0x1C: (4, _NONE), 0x20: (8, _NONE), 0x24: (8, _NONE), 0x1E: (16, _NONE)}
#: Forms holding one offset (the unit's offset size).
_OFFSETS = {0x0E: _STRP, 0x17: _SEC, 0x1D: _NONE, 0x1F: _LINE_STRP, 0x1F20: _NONE, 0x1F21: _NONE}
#: Forms holding one unsigned LEB128.
_ULEBS = {0x15: _REF, 0x1A: _STRX, 0x1B: _ADDRX, 0x22: _NONE, 0x23: _RNGLISTX, 0x1F01: _ADDRX, 0x1F02: _STRX}
#: Attributes read: DW_AT_* code -> slot.
_WANTED = {0x03: "name", 0x6E: "linkage", 0x2007: "mips_linkage", 0x31: "origin", 0x47: "specification",
           0x58: "call_file", 0x59: "call_line", 0x11: "low", 0x12: "high", 0x55: "ranges"}
_IMPLICIT_CONST, _INDIRECT = 0x21, 0x16


class UnitShape(NamedTuple):
    """What the walk needs to know of a unit (from its header and top DIE); -1 for an absent base."""

    die_start: int  # the first DIE after the top one
    unit_end: int
    unit_offset: int
    top_offset: int
    version: int
    address_size: int
    offset_size: int
    abbrev_offset: int
    base: int  # the unit's base address (the top DIE's low pc, else 0)
    str_offsets_base: int
    addr_base: int
    rnglists_base: int
    top_has_children: int
    max_depth: int  # code DIEs nested this deep are not read as code


def walk_unit(sections: tuple[bytes, ...], unit: UnitShape, little_endian: bool) -> tuple[bytes, bytes, list[bytes]]:
    """The recorded rows, range rows (int64, native order) and strings of one unit; ValueError if corrupt."""
    if not 1 <= unit.address_size <= 8 or unit.offset_size not in (4, 8):
        raise ValueError("the unit's address or offset size is not supported")
    core = native.core
    if core is not None and little_endian:
        return core.dwarf_walk(sections, tuple(unit))
    return _Walk(sections, unit, little_endian).run()


class _Walk:
    """The pure-Python walk: ``src/native/dwarf_walk.h`` step for step."""

    def __init__(self, sections: tuple[bytes, ...], unit: UnitShape, little_endian: bool):
        (self.info, self.abbrev, self.str, self.line_str, self.str_offsets, self.addr,
         ranges, rnglists) = sections
        self.unit = unit
        self.order = "little" if little_endian else "big"
        self.rnglists = rnglists
        self.lists_bytes = len(ranges) + len(rnglists)
        self.lists = RangeLists(ranges, rnglists, little_endian, unit.address_size)
        self.records = array("q")
        self.ranges = array("q")
        self.strings: list[bytes] = []

    def run(self) -> tuple[bytes, bytes, list[bytes]]:
        unit = self.unit
        table = self._table()
        end = min(unit.unit_end, len(self.info))
        reader = ByteReader(self.info, min(unit.die_start, end), end, self.order == "little", "a DIE")
        # As the native walk: a unit decodes at most as many range list entries as it and the range
        # sections have bytes (many DIEs naming one long list would cost time and memory without bound).
        self.entries_left = end - reader.offset + self.lists_bytes
        stack = [(unit.top_offset, -1)] if unit.top_has_children else []
        count = 0
        while reader.offset < end:
            die = reader.offset
            try:
                try:
                    code = reader.uleb()
                except ValueError:
                    raise _Truncated from None
                if code == 0:
                    if stack:
                        stack.pop()
                    continue
                abbrev = table.get(code)
                if abbrev is None:
                    raise ValueError(f"DIE at 0x{die:x}: its abbreviation code is not in the unit's table")
                tag_number, children, specs = abbrev
                tag = TAGS.index(tag_number) if tag_number in TAGS else -1
                wanted: dict[str, tuple[int, object]] = {}
                for name, form, implicit in specs:
                    value = self._value(reader, form, implicit, die)
                    if tag >= 0 and name in _WANTED:
                        wanted[_WANTED[name]] = value
            except _Truncated:
                raise ValueError(f"DIE at 0x{die:x} runs past the end of its unit") from None
            code_parent = stack[-1][1] if stack else -1
            own_code = code_parent
            if tag >= 0:
                record = count
                name = self._string(wanted.get("name"))
                linkage = wanted.get("linkage", (_NONE, 0))
                linkage = self._string(linkage if linkage[0] != _NONE else wanted.get("mips_linkage"))
                origin = self._reference(wanted.get("origin"))
                if origin < 0:
                    origin = self._reference(wanted.get("specification"))
                file_kind, file = wanted.get("call_file", (_NONE, 0))
                line_kind, line = wanted.get("call_line", (_NONE, 0))
                self.records.extend((die, tag, stack[-1][0] if stack else -1, code_parent, origin,
                                     _plain(file) if file_kind in (_UDATA, _SDATA) else -1,
                                     line if line_kind in (_UDATA, _SDATA) and 0 <= line <= MAX_LINE else 0,
                                     name, linkage))
                count += 1
                if tag in (SUBPROGRAM, INLINED) and len(stack) < unit.max_depth:
                    own_code = record
                    self._code_ranges(wanted, record)
            if children:
                stack.append((die, own_code))
        return self.records.tobytes(), self.ranges.tobytes(), self.strings

    def _table(self) -> dict[int, tuple[int, bool, list[tuple[int, int, int]]]]:
        """The unit's abbreviations: code -> (tag, has children, [(attribute, form, implicit const)])."""
        offset = self.unit.abbrev_offset
        reader = ByteReader(self.abbrev, offset, len(self.abbrev), True, "")
        table = {}
        try:
            while True:
                code = reader.uleb()
                if code == 0:
                    return table
                tag, children = reader.uleb(), reader.byte() == 1
                specs = []
                while True:
                    name, form = reader.uleb(), reader.uleb()
                    if name == 0 and form == 0:
                        break
                    specs.append((name, form, reader.sleb() if form == _IMPLICIT_CONST else 0))
                if code < 1 << 64:
                    table.setdefault(code, (tag, children, specs))
        except ValueError:
            raise ValueError(f"the abbreviation table at .debug_abbrev offset 0x{offset:x} runs past its end") from None

    def _value(self, reader: ByteReader, form: int, implicit: int | None, die: int) -> tuple[int, object]:
        """Read one attribute value: (class, value); skipped forms give (_NONE, 0)."""
        unit = self.unit
        try:
            while True:
                if form == 0x01:
                    return _ADDR, reader.unsigned(unit.address_size)
                fixed = _FIXED.get(form)
                if fixed is not None:
                    size, kind = fixed
                    value = reader.unsigned(size) if kind != _NONE else _skip(reader, size)
                    return kind, value
                kind = _OFFSETS.get(form)
                if kind is not None:
                    return kind, reader.unsigned(unit.offset_size)
                kind = _ULEBS.get(form)
                if kind is not None:
                    return kind, reader.uleb()
                if form in (0x03, 0x04, 0x0A):  # block2, block4, block1
                    _skip(reader, reader.unsigned({0x03: 2, 0x04: 4, 0x0A: 1}[form]))
                elif form in (0x09, 0x18):  # block, exprloc
                    _skip(reader, reader.uleb())
                elif form == 0x0F:
                    return _UDATA, reader.uleb()
                elif form == 0x0D:
                    return _SDATA, reader.sleb()
                elif form == _IMPLICIT_CONST and implicit is not None:
                    return _SDATA, implicit
                elif form == 0x08:  # string, in .debug_info itself
                    start = reader.offset
                    nul = self.info.find(b"\0", start, reader.end)
                    if nul < 0:
                        raise _Truncated
                    reader.offset = nul + 1
                    return _STRING, (start, nul - start)
                elif form == 0x10:  # ref_addr: an address in DWARF 2, an offset since
                    return _REF_ADDR, reader.unsigned(unit.address_size if unit.version <= 2 else unit.offset_size)
                elif form == 0x19:  # flag_present
                    pass
                elif form == _INDIRECT:
                    form, implicit = reader.uleb(), None
                    continue
                else:
                    raise ValueError(f"DIE at 0x{die:x}: an attribute has an unknown form")
                return _NONE, 0
        except _Truncated:
            raise
        except ValueError as exc:
            if str(exc).startswith("DIE at"):
                raise
            raise _Truncated from None

    def _string(self, value: tuple[int, object] | None) -> int:
        """Index of a string-class value in the strings (-1 for other classes)."""
        kind, raw = value if value is not None else (_NONE, 0)
        if kind == _STRING:
            start, length = raw
            self.strings.append(self.info[start:start + length])
            return len(self.strings) - 1
        if kind in (_STRP, _STRX):
            data, name = self.str, ".debug_str"
        elif kind == _LINE_STRP:
            data, name = self.line_str, ".debug_line_str"
        else:
            return -1
        offset = raw
        if kind == _STRX:
            offset = self._entry(self.str_offsets, ".debug_str_offsets", self.unit.str_offsets_base,
                                 "DW_AT_str_offsets_base", raw, self.unit.offset_size)
        nul = data.find(b"\0", offset) if offset < len(data) else -1
        if nul < 0:
            raise ValueError(f"a string offset lies past the end of {name}")
        self.strings.append(data[offset:nul])
        return len(self.strings) - 1

    def _reference(self, value: tuple[int, object] | None) -> int:
        kind, raw = value if value is not None else (_NONE, 0)
        if kind == _REF:
            target = self.unit.unit_offset + raw
            return target if target <= MAX_ADDRESS else -1
        if kind == _REF_ADDR:
            return _plain(raw)
        return -1

    def _address(self, index: int) -> int:
        """``.debug_addr`` entry ``index`` of the unit."""
        return self._entry(self.addr, ".debug_addr", self.unit.addr_base, "DW_AT_addr_base", index,
                           self.unit.address_size)

    def _entry(self, data: bytes, section: str, base: int, attribute: str, index: int, size: int) -> int:
        """Entry ``index`` of the ``size``-byte table at ``base`` in ``data`` (DWARF 5's indexed forms)."""
        if base < 0:
            raise ValueError(f"the unit needs {attribute}")
        at = base + index * size
        if at + size > len(data):
            raise ValueError(f"an index into {section} lies past its end")
        return int.from_bytes(data[at:at + size], self.order)

    def _code_ranges(self, wanted: dict, record: int) -> None:
        low_kind, low = wanted.get("low", (_NONE, 0))
        high_kind, high = wanted.get("high", (_NONE, 0))
        have_low = low_kind in (_ADDR, _ADDRX)
        if low_kind == _ADDRX:
            low = self._address(low)
        if have_low and high_kind in (_ADDR, _ADDRX, _UDATA, _SDATA):
            if high_kind == _ADDRX:
                high = self._address(high)
            elif high_kind in (_UDATA, _SDATA):
                if high < 0:
                    return
                high = low + high
            self._add(low, high, record)
            return
        kind, offset = wanted.get("ranges", (_NONE, 0))
        if kind == _RNGLISTX:  # an offset from the unit's base, in the table there
            offset = self.unit.rnglists_base + self._entry(self.rnglists, ".debug_rnglists", self.unit.rnglists_base,
                                                           "DW_AT_rnglists_base", offset, self.unit.offset_size)
        elif kind not in (_SEC, _UDATA):
            return
        for low, high in self.lists.read(offset, self.unit.base, self.unit.version, self._address, self._spend):
            self._add(low, high, record)

    def _spend(self) -> None:
        if self.entries_left == 0:
            raise ValueError("the unit's range lists hold more entries than its sections have bytes")
        self.entries_left -= 1

    def _add(self, low: int, high: int, record: int) -> None:
        if high > low and high <= MAX_ADDRESS:
            self.ranges.extend((low, high, record))


class _Truncated(Exception):
    """A read ran past the unit's end (reported with the DIE's offset by :meth:`_Walk.run`)."""


def _skip(reader: ByteReader, size: int) -> int:
    if reader.offset + size > reader.end:
        raise _Truncated
    reader.offset += size
    return 0


def _plain(value: int) -> int:
    """``value`` when it is a non-negative int64, else -1."""
    return value if 0 <= value <= MAX_ADDRESS else -1
