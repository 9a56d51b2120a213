"""Reading DWARF's encodings from section bytes: LEB128 numbers and fixed-size integers.

Shared by the hand-run decoders (range lists, line programs); reading past
``end`` is a ``ValueError`` naming ``what`` is being read, so a truncated
section is an error, never an endless loop or an IndexError.
"""

from __future__ import annotations


class ByteReader:
    """A cursor over ``data[offset:end]``."""

    __slots__ = ("data", "offset", "end", "order", "what")

    def __init__(self, data: bytes, offset: int, end: int, little_endian: bool, what: str):
        self.data, self.offset, self.end, self.what = data, offset, min(end, len(data)), what
        self.order = "little" if little_endian else "big"

    def _past_end(self) -> ValueError:
        return ValueError(f"{self.what} runs past the end of its section")

    def byte(self) -> int:
        if self.offset >= self.end:
            raise self._past_end()
        self.offset += 1
        return self.data[self.offset - 1]

    def uleb(self) -> int:
        return self._leb(False)

    def sleb(self) -> int:
        return self._leb(True)

    def _leb(self, signed: bool) -> int:
        value = shift = 0
        while True:
            byte = self.byte()
            value |= (byte & 0x7F) << shift
            shift += 7
            if byte < 0x80:
                return value - (1 << shift) if signed and byte & 0x40 else value

    def unsigned(self, size: int) -> int:
        if self.offset + size > self.end:
            raise self._past_end()
        self.offset += size
        return int.from_bytes(self.data[self.offset - size:self.offset], self.order)
