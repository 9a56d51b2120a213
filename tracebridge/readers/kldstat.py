"""Saved ``kldstat`` output: which kernel file is loaded where.

``kldstat`` (``sbin/kldstat/kldstat.c``) prints a header
``Id Refs Address<pad> Size Name`` and then one line per linker file,
``"%2d %4d %*p %8zx %s"`` (older releases: ``%p`` unpadded and ``%-8x``;
``-h``: the size humanised, ``%5s``).  The address is ``lf->address``, the
base every module offset is relative to; the size is ``lf->size``.  With
``-v`` the name is followed by `` (pathname)`` and the file's modules are
listed under ``\\tContains modules:`` / ``\\t\\t Id Name`` as
``\\t\\t%3d %s`` (``-d`` appends their data); since 2025 a
``\\tDependencies:`` block with ``depends on`` lines follows.  Addresses are
as wide as a pointer, so a 32-bit (i386) system prints ``0xc0400000``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tracebridge.support.errors import InputError, excerpt, reading

if TYPE_CHECKING:
    from tracebridge.profile.resolve import AddressSpace

_HEADER = re.compile(r"^\s*Id\s+Refs\s+Address( +)Size\s+Name\s*$")
# Matched against the line without trailing white space: `(\S.*?)\s*$` would try every
# split of a long run of blanks, in time that grows with its square.
_FILE = re.compile(r"^\s*(\d{1,10})\s+(\d{1,10})\s+(0x[0-9a-fA-F]+|[0-9a-fA-F]{8,16})\s+(\S+)\s+(\S.*)$")
_PATHNAME = re.compile(r"^(\S+) \((.*)\)$")
_MODULE = re.compile(r"^\s*(\d+)\s+(\S+)")
#: Sub-lines of ``-v`` that carry nothing tracebridge needs.
_VERBOSE_HEADINGS = ("Contains modules:", "Id Name", "Dependencies:", "depends on ")
_HEX = re.compile(r"^[0-9a-fA-F]+$")
#: A humanised size (``kldstat -h``): digits, an optional decimal, a scale letter.
_HUMAN_SIZE = re.compile(r"^\d+(?:\.\d)?[KMGTPE]?$")
#: Blanks between ``Address`` and ``Size`` in the header of ``kldstat -h``
#: (``%5s`` size column) on 64- and 32-bit systems; plain output has 16 or 8,
#: releases before ``-h`` existed 12 or 4.
_HUMANISED_GAPS = (13, 5)


@dataclass(frozen=True)
class KldFile:
    """One loaded kernel file (``kernel`` or a ``.ko``)."""

    id: int
    refs: int
    address: int
    #: ``lf->size`` in bytes, or None when kldstat printed it humanised (``-h``).
    size: int | None
    name: str
    pathname: str | None = None
    modules: tuple[str, ...] = ()
    #: Line number in the saved output, for messages.
    line: int = 0

    @property
    def end(self) -> int | None:
        return None if self.size is None else self.address + self.size


@dataclass
class Kldstat:
    """Every file of one saved ``kldstat`` run, in the order printed."""

    path: str
    files: list[KldFile]

    def find(self, name: str) -> KldFile | None:
        """The loaded file matching a module file name or path (``if_rem.ko``, ``if_rem``, ``/boot/.../if_rem.ko``).

        Matching is by basename: the kernel loads a file under its own name,
        and users hand tracebridge a build artefact of the same name.
        """
        wanted = _stem(os.path.basename(name))
        for file in self.files:
            if _stem(file.name) == wanted:
                return file
        for file in self.files:
            if file.pathname and _stem(os.path.basename(file.pathname)) == wanted:
                return file
        return None

    def place_unread(self, space: AddressSpace) -> None:
        """Place every listed file that ``space`` lacks as a bare region (no ELF read).

        Its addresses then name their file (`` kernel`0xADDR ``) instead of
        staying bare hex: kldstat is what tells the owner of an address that
        DTrace printed without a module.
        """
        for file in self.files:
            if space.find(file.name) is None:
                space.add_region(file.name, file.address, file.end)


def _stem(name: str) -> str:
    return name[:-3] if name.endswith(".ko") else name


def sniff(first_lines: Iterable[str]) -> bool:
    """True when the text starts like ``kldstat`` output (its column header)."""
    for line in first_lines:
        if line.strip():
            return bool(_HEADER.match(line))
    return False


def parse_kldstat(lines: Iterable[str], path: str) -> Kldstat:
    """Parse ``kldstat`` / ``kldstat -v`` / ``kldstat -h`` text; InputError names the bad line."""
    files: list[KldFile] = []
    seen_header = humanised = False
    for number, raw in enumerate(lines, 1):
        line = raw.rstrip("\r\n")
        if not line.strip():
            continue
        header = _HEADER.match(line)
        if header:
            seen_header = True
            humanised = len(header.group(1)) in _HUMANISED_GAPS
            continue
        if not seen_header:
            raise InputError(path, "not kldstat output: expected the header 'Id Refs Address Size Name'", number)
        if line.startswith("\t") or line.startswith("        "):
            _verbose_line(line, files, path, number)
            continue
        files.append(_file_line(line, path, number, humanised))
    if not seen_header:
        raise InputError(path, "empty file, expected saved kldstat output")
    if not files:
        raise InputError(path, "kldstat output lists no loaded files")
    return Kldstat(path, files)


def read_kldstat(path: str | os.PathLike[str]) -> Kldstat:
    path = os.fspath(path)
    with reading(path, expected="saved kldstat output"), \
            open(path, encoding="utf-8", errors="surrogateescape") as handle:
        return parse_kldstat(handle, path)


def _file_line(line: str, path: str, number: int, humanised: bool) -> KldFile:
    match = _FILE.match(line.rstrip())
    if match is None:
        raise InputError(path, f"not a kldstat line (expected 'Id Refs Address Size Name'): {excerpt(path, line.strip(), 80)}",
                         number)
    ident, refs, address, size_text, rest = match.groups()
    # `kldstat -h` sizes ("35M", "4.1K") say too little to use; tracebridge
    # takes the size from the module's own layout anyway.
    if _HUMAN_SIZE.match(size_text) and (humanised or not _HEX.match(size_text)):
        size = None
    elif _HEX.match(size_text):
        size = int(size_text, 16)
    else:
        raise InputError(path, f"size {excerpt(path, size_text)} is neither hexadecimal nor humanised (kldstat -h)", number)
    pathname = None
    named = _PATHNAME.match(rest)
    if named:
        rest, pathname = named.groups()
    if int(address, 16) >> 64:
        raise InputError(path, f"address {address} does not fit in 64 bits", number)
    return KldFile(int(ident), int(refs), int(address, 16), size, rest, pathname, (), number)


def _verbose_line(line: str, files: list[KldFile], path: str, number: int) -> None:
    text = line.strip()
    if not files:
        raise InputError(path, "module list before any file line", number)
    if text.startswith(_VERBOSE_HEADINGS):
        return
    match = _MODULE.match(text)
    if match is None:
        raise InputError(path, f"not a kldstat -v module line: {excerpt(path, text, 80)}", number)
    last = files[-1]
    files[-1] = KldFile(last.id, last.refs, last.address, last.size, last.name, last.pathname,
                        last.modules + (match.group(2),), last.line)
