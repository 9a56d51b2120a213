"""Raw hwpmc logs (what ``pmcstat -O FILE`` writes), read without a FreeBSD machine.

The layout is ``sys/sys/pmclog.h`` of FreeBSD 12 and later: records made of
32-bit words, each starting with a 16-byte header -- a word ``0xEE << 24 |
type << 16 | length in bytes``, a spare word, and the 64-bit TSC -- then the
record's fields in the kernel's byte order.  tracebridge needs four kinds:

* ``CALLCHAIN`` (16): pid, tid, PMC id, cpuflags (CPU in the upper 16 bits,
  ``PMC_CC_F_USERSPACE`` = 1 in the lower), then the PCs (``uintptr_t``);
* ``MAP_IN`` (14): pid, pad, start (``uintfptr_t``), NUL-terminated path;
* ``MAP_OUT`` (15): pid, pad, start, end;
* ``PMCALLOCATEDYN`` (17): PMC id, event, flags, pad, the event name.

A plain ``PMCALLOCATE`` (5) carries only an event code, whose name needs
libpmc's tables: such a PMC is called ``event-0xCODE``.  The records are
turned into the lines ``pmcstat -R FILE -o`` would print, so one reader
(:mod:`tracebridge.readers.pmcstat`) handles both.  Logs of 64-bit kernels in
either byte order are read; 32-bit kernels and the 12-byte headers of
FreeBSD 11 and earlier are refused with a message (convert those with
``pmcstat -R FILE -o`` on FreeBSD).
"""

from __future__ import annotations

import mmap
import os
import struct
from collections.abc import Iterator

from tracebridge.support.errors import InputError, reading

MAGIC = 0xEE
HEADER = 16
INITIALIZE, PMCALLOCATE, MAP_IN, MAP_OUT, CALLCHAIN, PMCALLOCATEDYN = 3, 5, 14, 15, 16, 17
#: Before FreeBSD 12 the record types counted from 0: ``initlog`` was 2.
OLD_INITIALIZE = 2
#: The smallest initialize record of the 16-byte-header layout (version, cpu, tsc_freq, timespec, cpuid).
MIN_INITIALIZE = HEADER + 4 + 4 + 8 + 16
USERSPACE = 0x1


def is_binary_log(head: bytes) -> bool:
    """True when ``head`` starts with an ``initlog`` record header (any release, either byte order)."""
    if len(head) < 4:
        return False
    little, big = struct.unpack("<I", head[:4])[0], struct.unpack(">I", head[:4])[0]
    return any(word >> 24 == MAGIC and (word >> 16) & 0xFF in (INITIALIZE, OLD_INITIALIZE) for word in (little, big))


def log_lines(path: str | os.PathLike[str]) -> Iterator[bytes]:
    """Every record tracebridge reads, as the line(s) ``pmcstat -R log -o`` prints for it (one item per record)."""
    path = os.fspath(path)
    try:
        with reading(path), open(path, "rb") as handle, \
                mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data:
            yield from _records(path, data)
    except ValueError:  # mmap of an empty file
        raise InputError(path, "is empty: no hwpmc records") from None


def _records(path: str, data: mmap.mmap) -> Iterator[bytes]:
    order = "<" if struct.unpack_from("<I", data, 0)[0] >> 24 == MAGIC else ">"
    word = struct.Struct(order + "I")
    size = len(data)
    offset = 0
    while offset < size:
        if size - offset < HEADER:
            raise _error(path, offset, "a record header cut short at the end of the file")
        header = word.unpack_from(data, offset)[0]
        kind, length = (header >> 16) & 0xFF, header & 0xFFFF
        if header >> 24 != MAGIC:
            raise _error(path, offset, f"no record header here (word {header:#010x}): not a hwpmc log, or damaged")
        if length < HEADER or length % 4 or offset + length > size:
            raise _error(path, offset, f"record length {length} does not fit (the file is damaged or cut short)")
        if offset == 0 and (kind != INITIALIZE or length < MIN_INITIALIZE):
            raise _error(path, offset, "a log from FreeBSD 11 or earlier (12-byte record headers): "
                                       "convert it with `pmcstat -R LOG -o out.txt`")
        body = offset + HEADER
        if kind == CALLCHAIN:
            yield _callchain(path, data, order, body, length - HEADER, offset)
        elif kind == MAP_IN:
            pid, start = struct.unpack_from(order + "i4xQ", data, body)
            name = bytes(data[body + 16:offset + length]).split(b"\0", 1)[0]
            yield b'map-in    %d %#x "%s"\n' % (pid, start, name)
        elif kind == MAP_OUT:
            yield b"map-out   %d %#x %#x\n" % struct.unpack_from(order + "i4xQQ", data, body)
        elif kind == PMCALLOCATEDYN:
            pmcid, flags = struct.unpack_from(order + "I4xI", data, body)
            name = bytes(data[body + 16:offset + length]).split(b"\0", 1)[0]
            yield b'allocate  %#x "%s" %#x\n' % (pmcid, name, flags)
        elif kind == PMCALLOCATE:
            pmcid, event, flags = struct.unpack_from(order + "III", data, body)
            yield b'allocate  %#x "event-%#x" %#x\n' % (pmcid, event, flags)
        elif kind == INITIALIZE:
            yield b'initlog   %#x "cputype-%d"\n' % struct.unpack_from(order + "II", data, body)
        offset += length


def _callchain(path: str, data: mmap.mmap, order: str, body: int, size: int, offset: int) -> bytes:
    """The header line and the PC lines, in one piece (one format for all the PCs)."""
    if size < 16 or (size - 16) % 8:
        raise _error(path, offset, "a callchain record whose PCs are not 64-bit (a 32-bit kernel's log): "
                                   "convert it with `pmcstat -R LOG -o out.txt`")
    pid, _, pmcid, cpuflags = struct.unpack_from(order + "iIII", data, body)
    count = (size - 16) // 8
    pcs = struct.unpack_from(f"{order}{count}Q", data, body + 16)
    mode = b"u" if cpuflags & USERSPACE else b"s"
    return b"callchain %d %#x %d %d %c\n" % (pid, pmcid, cpuflags >> 16, count, mode) + b"...       %#x\n" * count % pcs


def _error(path: str, offset: int, message: str) -> InputError:
    return InputError(path, message, f"byte {offset:#x}")
