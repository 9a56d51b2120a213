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
from itertools import compress, count, repeat
from operator import is_, not_
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
#: Bytes :func:`scan_stacks` classifies at once.
CHUNK = 1 << 18
_ID = Struct("=i")
_BAD = re.compile(rb"[^\t\n\x20-\x7e]")
#: The bytes the scan reads (``bytes.translate`` deletes them: what is left is bad).
_GOOD = bytes([9, 10, *range(0x20, 0x7f)])
#: A line starting with a digit: a count is printed `" %16lld"`, so this is a value a quiet firing
#: traced after its stack (``%lld``), or no stack entry at all.
_UNINDENTED_NUMBER = re.compile(rb"\n[0-9]")  # (a multi-line `^` search is ten times slower)


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
    #: Stack id -> the cut ids of the entries of that stack, root first, native int32s (entries whose
    #: frames differ only in their offsets have one stack).
    stacks: list[bytes] = field(default_factory=list)
    #: Entry id -> its stack id, native int32s.
    stack_of: bytearray = field(default_factory=bytearray)
    #: Printed ids of the entry being read (it may go on in the next block).
    pending: bytearray = field(default_factory=bytearray)
    #: The entries the last scans found, in order, and their counts (the reader empties them).
    found: list[int] = field(default_factory=list)
    counts: list[int] = field(default_factory=list)
    keep_offsets: bool = False
    #: The scanner's own lookup of texts, cut texts and entries to ids: the native one's hash tables, or
    #: :func:`scan_stacks`' dicts (texts, cut texts, entries, stacks to ids) and its list of each printed
    #: id's cut id.
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
    key, or a value without one) is :data:`NOT_PLAIN`, and so is a frame
    past :data:`MAX_ENTRY` in one entry.  The position returned is the start
    of the line the scan stopped at.

    The lines up to the first that is none of these are classified at once
    (by their distinct words) and their entries cut where the counts are;
    where that would stop early (:data:`NOT_PLAIN`), :func:`_scan_lines`
    reads line by line, saying where.
    """
    if not 0 <= pos <= len(block):
        raise ValueError("position outside the block")
    if table.index is None:
        table.index = ({}, {}, {}, [], {})
    while True:
        # At most CHUNK bytes at a time, so that a stop re-reads little of the block after it.
        end = pos + CHUNK
        end = len(block) if end >= len(block) else (block.rfind(b"\n", pos, end) + 1 or len(block))
        bad = _BAD.search(block, pos, end) if block[pos:end].translate(None, _GOOD) else None
        if bad is not None:  # read up to the line holding it
            end = block.rfind(b"\n", pos, bad.start()) + 1 or pos
        status, pos, after_probe = _scan_chunk(block, pos, end, after_probe, table)
        if status != END or pos == len(block):
            return status, pos, after_probe
        if bad is not None:
            return BAD_BYTE, pos, after_probe


def _scan_chunk(block: bytes, pos: int, end: int, after_probe: bool, table: StackTable) -> tuple[int, int, bool]:
    """:func:`scan_stacks` on the whole lines of ``block[pos:end]`` (or up to the end): END at ``end`` when read."""
    segment = block[pos:end]
    lines = segment.split(b"\n")
    if not segment or segment.endswith(b"\n"):
        lines.pop()
    words = list(map(bytes.strip, lines))
    if after_probe and words:
        if words[0]:
            return OTHER, pos, True
        after_probe = False
    if segment[:1].isdigit() or _UNINDENTED_NUMBER.search(segment):  # no count: read line by line, to stop there
        return _scan_lines(block, pos, after_probe, table)
    counts, others = set(), set()
    for word in set(words):
        if not word or (b" " not in word and b"\t" not in word and (b"`" in word or word.startswith(b"0x"))):
            continue
        (counts if word.isdigit() and len(word) <= MAX_DIGITS else others).add(word)
    stop = next(compress(count(), map(others.__contains__, words)), len(words))
    tokens = list(filter(None, words[:stop]))
    is_count = list(map(counts.__contains__, tokens))
    ends = list(compress(count(), is_count))
    runs = [b - a - 1 for a, b in zip([-1, *ends], [*ends, len(tokens)])]
    runs[0] += len(table.pending) // _ID.size
    if (ends and runs[0] == 0) or 0 in runs[1:-1] or max(runs) > MAX_ENTRY:
        return _scan_lines(block, pos, after_probe, table)
    text_ids = table.index[0]
    frame_words = list(compress(tokens, map(not_, is_count)))
    for word in dict.fromkeys(frame_words):
        if word not in text_ids:
            _intern_text(table, word)
    raw = array("i", map(text_ids.__getitem__, frame_words)).tobytes()
    size = _ID.size
    bounds = [size * (end - number) for number, end in enumerate(ends)]  # where each entry's frames end in raw
    keys = [raw[start:end] for start, end in zip([0, *bounds], bounds)]
    if keys and table.pending:
        keys[0] = bytes(table.pending) + keys[0]
        del table.pending[:]
    entries = list(map(table.index[2].get, keys))
    for number in compress(count(), map(is_, entries, repeat(None))):
        entries[number] = _entry_id(table, keys[number])
    table.found += entries
    table.counts += map(int, compress(tokens, is_count))
    table.pending += raw[bounds[-1]:] if bounds else raw
    if stop < len(words):
        return OTHER, pos + sum(map(len, lines[:stop])) + stop, after_probe
    return END, end, after_probe


def _scan_lines(block: bytes, pos: int, after_probe: bool, table: StackTable) -> tuple[int, int, bool]:
    """:func:`scan_stacks` one line at a time, as the native scanner reads."""
    text_ids = table.index[0]
    pending = table.pending
    bad = _BAD.search(block, pos) if block[pos:].translate(None, _GOOD) else None
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
            pending += _ID.pack(_intern_text(table, line) if printed is None else printed)
        elif line.isdigit() and len(line) <= MAX_DIGITS and block[at:at + 1] in (b" ", b"\t"):
            if not pending:
                return NOT_PLAIN, at, after_probe
            table.found.append(_entry_id(table, bytes(pending)))
            table.counts.append(int(line))
            del pending[:]
        else:
            return OTHER, at, after_probe
        at = end + 1 if newline >= 0 else end_of_block
    return END, at, after_probe


def _intern_text(table: StackTable, line: bytes) -> int:
    """The printed id of a new frame text, its cut text interned too."""
    text_ids, cut_ids, _, cut_list, _ = table.index
    printed = text_ids[line] = len(text_ids)
    text = line.decode("ascii")
    cut = text if table.keep_offsets else split_offset(text)[0]
    cut_id = cut_ids.get(cut)
    if cut_id is None:
        cut_id = cut_ids[cut] = len(cut_ids)
        table.cuts.append(cut)
    table.texts.append(text)
    table.cut_of += _ID.pack(cut_id)
    cut_list.append(cut_id)
    return printed


def _entry_id(table: StackTable, key: bytes) -> int:
    """The id of an entry (its printed ids, leaf first), kept with its root-first cut stack (interned) when new."""
    _, _, entry_ids, cut_list, stack_ids = table.index
    entry = entry_ids.get(key)
    if entry is None:
        entry = entry_ids[key] = len(entry_ids)
        table.entries.append(key)
        stack = array("i", map(cut_list.__getitem__, reversed(array("i", key)))).tobytes()
        stack_id = stack_ids.get(stack)
        if stack_id is None:
            stack_id = stack_ids[stack] = len(stack_ids)
            table.stacks.append(stack)
        table.stack_of += _ID.pack(stack_id)
    return entry
