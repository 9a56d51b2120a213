"""DWARF range lists read straight from the section bytes (``.debug_ranges``, ``.debug_rnglists``).

An optimised Rust module gives most inlined copies several address ranges,
so the index reads tens of thousands of lists; pyelftools builds a
``construct`` container per entry, which cost about a sixth of the index's
build time.  The encodings are small and fixed (DWARF 4 section 2.17.3,
DWARF 5 sections 2.17.3 and 7.25), so they are decoded here by hand; a list
running off the end of its section is a ``ValueError`` (the unit is skipped
with a warning, as for any corrupt unit).
"""

from __future__ import annotations

from collections.abc import Callable

from tracebridge.image.dwarfbytes import ByteReader

#: DW_RLE_* entry kinds (DWARF 5 table 7.30).
_END, _BASE_X, _STARTX_ENDX, _STARTX_LENGTH, _OFFSET_PAIR, _BASE, _START_END, _START_LENGTH = range(8)


class RangeLists:
    """The range lists of one debug file."""

    def __init__(self, ranges: bytes | None, rnglists: bytes | None, little_endian: bool, address_size: int):
        self._ranges = ranges or b""
        self._rnglists = rnglists or b""
        self._little = little_endian
        self._size = address_size
        self._max = (1 << (8 * address_size)) - 1

    def read(self, offset: int, base: int, version: int, address: Callable[[int], int],
             spend: Callable[[], None] = lambda: None) -> list[tuple[int, int]]:
        """Non-empty ``[low, high)`` ranges of the list at ``offset``; ``base`` is the unit's base address,
        ``address(index)`` reads ``.debug_addr`` for DWARF 5's indexed forms, ``spend()`` is called before
        each entry is read (a budget may raise)."""
        if version >= 5:
            return self._rnglist(offset, base, address, spend)
        return self._ranges_v4(offset, base, spend)

    def _ranges_v4(self, offset: int, base: int, spend: Callable[[], None]) -> list[tuple[int, int]]:
        reader = ByteReader(self._ranges, offset, len(self._ranges), self._little, "a range list in .debug_ranges")
        size, top = self._size, self._max
        out = []
        while True:
            spend()
            begin, end = reader.unsigned(size), reader.unsigned(size)
            if begin == 0 and end == 0:
                return out
            if begin == top:  # base address selection
                base = end
            elif end > begin:
                out.append((begin + base, end + base))

    def _rnglist(self, offset: int, base: int, address: Callable[[int], int],
                 spend: Callable[[], None]) -> list[tuple[int, int]]:
        reader = ByteReader(self._rnglists, offset, len(self._rnglists), self._little,
                            "a range list in .debug_rnglists")
        size = self._size
        out = []
        while True:
            spend()
            kind = reader.byte()
            if kind == _END:
                return out
            if kind == _BASE_X:
                base = address(reader.uleb())
                continue
            if kind == _BASE:
                base = reader.unsigned(size)
                continue
            if kind == _OFFSET_PAIR:
                begin = base + reader.uleb()
                end = base + reader.uleb()
            elif kind == _STARTX_ENDX:
                begin = address(reader.uleb())
                end = address(reader.uleb())
            elif kind == _STARTX_LENGTH:
                begin = address(reader.uleb())
                end = begin + reader.uleb()
            elif kind == _START_END:
                begin = reader.unsigned(size)
                end = reader.unsigned(size)
            elif kind == _START_LENGTH:
                begin = reader.unsigned(size)
                end = begin + reader.uleb()
            else:
                raise ValueError(f"unknown range list entry kind {kind:#x} in .debug_rnglists")
            if end > begin:
                out.append((begin, end))
