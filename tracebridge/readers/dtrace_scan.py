"""The lines of a DTrace stack aggregation (``@[stack()] = count()``), scanned a block at a time.

A capture of ``stack()`` counts is half a million frame lines for a few
thousand distinct frames and entries, so what costs is looking at each line.
:func:`scan_stacks` (and its native twin ``dtrace_stacks`` in
``src/native/dtrace_scan.h``, which must agree with it byte for byte) reads
the frame and count lines of a block of bytes into a :class:`StackTable`:
each frame text is interned once as printed and once without its
``+0xOFF`` (as :func:`~tracebridge.readers.dtrace_frames.split_offset` cuts
it), each entry once by its frames as printed, with its root-first stack of
cut ids.  It stops at any other line and says why, so that the reader
(:func:`tracebridge.readers.dtrace.read`) can read that line itself (probe
lines, headers) or give the capture to the line-by-line parser.
"""

from __future__ import annotations

import re
from array import array
from dataclasses import dataclass, field
from struct import Struct

from tracebridge.readers.dtrace_frames import split_offset
from tracebridge.support import native

#: Why a scan stopped: the end of the block, a line for the reader, a byte outside printable
#: ASCII and tab (the checked text path decides), a line that is no plain stack entry.
END, OTHER, BAD_BYTE, NOT_PLAIN = 0, 1, 2, 3
#: Most frames one entry may have before the scan gives up (a stack is at most a few hundred).
MAX_ENTRY = 1 << 16
#: DTrace prints 64-bit counts: at most 20 digits.
MAX_DIGITS = 20
_ID = Struct("=i")
_BAD = re.compile(rb"[^\t\n\x20-\x7e]")


@dataclass
class StackTable:
    """What the scans found so far: distinct texts and entries, and the entries of the last scan.

    Ids count up from 0 in the order first printed and index these lists.
    """

    #: Printed id -> the frame text as printed.
    texts: list[str] = field(default_factory=list)
    #: Printed id -> cut id, native int32s.
    cut_of: bytearray = field(default_factory=bytearray)
    #: Cut id -> the frame text without its offset (as printed with ``keep_offsets``).
    cuts: list[str] = field(default_factory=list)
    #: Entry id -> its printed ids, leaf first, native int32s.
    entries: list[bytes] = field(default_factory=list)
    #: Entry id -> its cut ids, root first, native int32s.
    stacks: list[bytes] = field(default_factory=list)
    #: Printed ids of the entry being read (it may go on in the next block).
    pending: bytearray = field(default_factory=bytearray)
    #: The entries the last scans found, in order, and their counts (the reader empties them).
    found: list[int] = field(default_factory=list)
    counts: list[int] = field(default_factory=list)
    keep_offsets: bool = False
    #: The scanner's own lookup of texts, cut texts and entries to ids (native: its hash tables).
    index: object = None


def scanner():
    """``scan(block, pos, after_probe, table)``: the native scan when the core is in use, else :func:`scan_stacks`."""
    core = native.core
    return core.dtrace_stacks if core is not None else scan_stacks


def stack_tuples(stacks: list[bytes], ids: bytes) -> list[tuple[int, ...]]:
    """Each stack of cut ids (native int32s) as the tuple of their ``ids`` (cut id -> frame id, int32s)."""
    core = native.core
    if core is not None:
        return core.dtrace_stack_tuples(stacks, ids)
    frame_of = array("i", ids)
    return [tuple(map(frame_of.__getitem__, array("i", stack))) for stack in stacks]


def scan_stacks(block: bytes, pos: int, after_probe: bool, table: StackTable) -> tuple[int, int, bool]:
    """Read the lines of ``block`` from byte ``pos`` into ``table``; return why it stopped, where, and ``after_probe``.

    A blank line ends ``after_probe`` (a probe line must be followed by one:
    its firing traced no stack).  A frame line is one word holding a
    backquote or starting ``0x``; a count line at most 20 digits, ending the
    entry of the frames before it.  A count with no frames before it (a
    key, or a value without one) is :data:`NOT_PLAIN`.  The position
    returned is the start of the line the scan stopped at.
    """
    if table.index is None:
        table.index = ({}, {}, {})
    text_ids, cut_ids, entry_ids = table.index
    cut_of, pending = table.cut_of, table.pending
    if not 0 <= pos <= len(block):
        raise ValueError("position outside the block")
    bad = _BAD.search(block, pos)
    bad_at = bad.start() if bad is not None else len(block)
    at, end_of_block = pos, len(block)
    while at < end_of_block:
        newline = block.find(b"\n", at)
        end = newline if newline >= 0 else end_of_block
        if bad_at < end:
            return BAD_BYTE, at, after_probe
        line = block[at:end].strip(b" \t")
        if not line:
            after_probe = False
        elif after_probe:
            return OTHER, at, after_probe
        elif b" " not in line and b"\t" not in line and (b"`" in line or line.startswith(b"0x")):
            if len(pending) >= MAX_ENTRY * _ID.size:
                return NOT_PLAIN, at, after_probe
            printed = text_ids.get(line)
            if printed is None:
                printed = text_ids[line] = len(text_ids)
                text = line.decode("ascii")
                cut = text if table.keep_offsets else split_offset(text)[0]
                cut_id = cut_ids.get(cut)
                if cut_id is None:
                    cut_id = cut_ids[cut] = len(cut_ids)
                    table.cuts.append(cut)
                table.texts.append(text)
                cut_of += _ID.pack(cut_id)
            pending += _ID.pack(printed)
        elif line.isdigit() and len(line) <= MAX_DIGITS:
            if not pending:
                return NOT_PLAIN, at, after_probe
            key = bytes(pending)
            entry = entry_ids.get(key)
            if entry is None:
                entry = entry_ids[key] = len(entry_ids)
                table.entries.append(key)
                table.stacks.append(b"".join(cut_of[i * _ID.size:(i + 1) * _ID.size]
                                             for (i,) in reversed(list(_ID.iter_unpack(key)))))
            table.found.append(entry)
            table.counts.append(int(line))
            del pending[:]
        else:
            return OTHER, at, after_probe
        at = end + 1 if newline >= 0 else end_of_block
    return END, at, after_probe
