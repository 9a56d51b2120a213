"""One input file as every reader sees it: its head for sniffing, its text in blocks of whole lines.

Shared by every reader and by ``cputime``'s ``top`` reader; imports no reader,
so no reader imports back into the registry.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from functools import cached_property
from typing import IO

from tracebridge.support.errors import InputError, reading

#: Bytes of each file the sniffers look at.
HEAD_SIZE = 64 * 1024
#: Bytes a streaming reader takes at a time.
BLOCK = 4 << 20
#: Longest line accepted: far beyond any real stack, and it bounds the memory one line takes.
MAX_LINE = 64 << 20


class Source:
    """One input file: its path, the first bytes for sniffing, and its text for reading.

    Readers take the text in blocks of whole lines (:meth:`blocks`,
    :meth:`lines`), so a capture of gigabytes never sits in memory (those
    that need all of a small file take :attr:`data`).  The text is checked
    here, once, for what no reader should have to handle:
    NUL bytes (a binary file), bytes that are not UTF-8, and lines longer
    than :data:`MAX_LINE`; Windows line ends are read as plain ``\\n`` (a
    capture copied through a Windows machine holds the same data), and a
    carriage return that does not end a line is an error.
    """

    def __init__(self, path: str | os.PathLike[str]):
        self.path = os.fspath(path)
        with self._open() as handle:
            self.head_bytes = handle.read(HEAD_SIZE + 1)

    def _open(self) -> IO[bytes]:
        with reading(self.path):
            return open(self.path, "rb")

    def error(self, message: str, line: int | None = None) -> InputError:
        return InputError(self.path, message, line)

    def byte_blocks(self, start: int = 0, stop: int | None = None, line: int = 1,
                    newlines: Callable[[bytes | memoryview], int] | None = None,
                    reuse: bool = False) -> Iterator[tuple[int, bytes | memoryview]]:
        """Blocks of whole lines as bytes, unchecked (the last may lack its newline), with their first line numbers.

        For readers that scan bytes with numpy (or native code) and treat
        odd bytes as the tool they mimic does.  ``start`` and ``stop``, both
        where lines start, give a range of the file, whose first line is
        numbered ``line``.  ``newlines(block)``, asked once the reader is done
        with the block, says how many newlines it holds: a reader whose scan
        counted them spares a second pass over the bytes (``bytes.count``, 0.13 G
        instructions on 26 MB).  ``reuse``: each block is a read-only view of the
        one buffer the file is read into, valid until the next block is asked
        for, for a reader that copies what it keeps (no copy of the block, and
        no fresh memory, a page fault per 4 KiB, for each).
        """
        count = newlines or _newlines
        left = -1 if stop is None else stop - start
        # One buffer read into again and again: a fresh chunk per read is fresh memory, a page fault per 4 KiB.
        buffer = bytearray(BLOCK if left < 0 else max(min(BLOCK, left), 1))
        held = 0  # the start of a line not yet ended, at the buffer's start
        with self._open() as handle:
            handle.seek(start)
            while True:
                if held == len(buffer):  # one line fills the buffer: a larger one (a block handed out may live on)
                    buffer = buffer + bytes(min(len(buffer), MAX_LINE + BLOCK - len(buffer)))
                view = memoryview(buffer).toreadonly()
                room = len(buffer) - held if left < 0 else min(len(buffer) - held, left)
                size = handle.readinto(memoryview(buffer)[held:held + room]) if room else 0
                if not size:
                    break
                left -= size
                end = held + size
                cut = buffer.rfind(b"\n", held, end) + 1
                if not cut:  # no line ends in what was read: part of one long line
                    held = end
                    if held > MAX_LINE:
                        raise self.error(f"has a line longer than {MAX_LINE >> 20} MB: not a text capture", line)
                    continue
                block = view[:cut] if reuse else bytes(view[:cut])
                yield line, block
                line += count(block)
                held = end - cut
                buffer[:held] = buffer[cut:end]  # the unfinished line to the start (a copy: the two may overlap)
        if held:
            yield line, view[:held] if reuse else bytes(view[:held])

    def read_at(self, offset: int, size: int) -> bytes:
        """Up to ``size`` bytes from ``offset`` on."""
        with self._open() as handle:
            handle.seek(offset)
            return handle.read(size)

    def _refuse_nul(self, data: bytes, line: int) -> None:
        nul = data.find(b"\0")
        if nul >= 0:
            raise self.error("contains a NUL byte: binary data, not a text capture", line + data.count(b"\n", 0, nul))

    def _decode(self, data: bytes, line: int) -> str:
        self._refuse_nul(data, line)
        if b"\r" in data:
            data = data.replace(b"\r\n", b"\n")
            stray = data.find(b"\r")
            if stray >= 0:
                raise self.error("contains a carriage return inside a line (corrupt or not a text capture)",
                                 line + data.count(b"\n", 0, stray))
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise self.error(f"is not UTF-8 text (byte {data[exc.start]:#04x})",
                             line + data.count(b"\n", 0, exc.start)) from None

    def blocks(self) -> Iterator[tuple[int, str]]:
        """The checked text in blocks of whole lines (about :data:`BLOCK` bytes), with their first line numbers."""
        for line, data in self.byte_blocks():
            yield line, self._decode(data, line)

    def lines(self) -> Iterator[tuple[int, str]]:
        """``(number, line)`` for every line of the checked text, without its newline."""
        for first, block in self.blocks():
            lines = block.split("\n")
            if lines[-1] == "":
                lines.pop()
            yield from enumerate(lines, first)

    @property
    def data(self) -> bytes:
        """Every byte of the file, for readers that need it all at once."""
        with self._open() as handle:
            return handle.read()

    def lenient_text(self) -> str:
        """All of the text, bytes that are not UTF-8 replaced, line ends as they are; NUL bytes still refused.

        For captures of tools that print names as raw bytes (``top``).
        """
        data = self.data
        self._refuse_nul(data, 1)
        return data.decode("utf-8", errors="replace")

    def check_text(self) -> None:
        """Raise the error that says why this is not text, if it is not (streaming through it)."""
        for _ in self.blocks():
            pass

    @property
    def blank(self) -> bool:
        """Nothing but white space (or nothing) in the file."""
        if self.head_bytes.strip():
            return False
        with self._open() as handle:
            return not any(chunk.strip() for chunk in iter(lambda: handle.read(BLOCK), b""))

    @cached_property
    def head(self) -> str:
        """The first lines (up to :data:`HEAD_SIZE` bytes), leniently decoded, for sniffing only."""
        head = self.head_bytes[:HEAD_SIZE]
        if len(self.head_bytes) > HEAD_SIZE:
            head = head[:head.rfind(b"\n") + 1] or head
        return head.replace(b"\r\n", b"\n").decode("utf-8", errors="replace")

    @property
    def first_line(self) -> str:
        for line in self.head.split("\n"):
            if line.strip():
                return line.strip()
        return ""


def _newlines(block: bytes | memoryview) -> int:
    """The newlines of a block, or of a view of the buffer (``byte_blocks(reuse=True)``: copied to be counted)."""
    return (block if isinstance(block, bytes) else bytes(block)).count(b"\n")
