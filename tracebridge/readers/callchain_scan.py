"""The callchain records of a ``pmcstat -R LOG -o`` record log, scanned a block of bytes at a time.

A record log is almost all ``callchain`` records and their PC lines; the
other records (``initlog``, ``allocate``, ``map-in``, ``map-out``...) are a
handful.  :func:`scan_callchains` (and its native twin ``callchain_scan`` in
``src/native/callchain_scan.h``, which must agree with it byte for byte)
reads blank lines and callchain records printed exactly as pmcstat prints
them, and stops at the first line it does not take, so that the reader
(:class:`tracebridge.readers.pmcstat._LogReader`) reads that record, and
with it every error message, itself.  A callchain is taken only whole: its
header and all its PC lines in pmcstat's form, ``callchain PID 0xPMCID CPU
NPC u|s`` then NPC lines ``...       0xPC``, with no field longer than its
bound (NPC at most :data:`MAX_CALLCHAIN`, whatever the header says).
"""

from __future__ import annotations

import re
from array import array

from tracebridge.support import native

#: Why a scan stopped: no complete line is left in the block; a line for the reader; the batch is full
#: (flush it, then scan again from the same place).
END, OTHER, FULL = 0, 1, 2
#: hwpmc records at most this many PCs per callchain (``PMC_CALLCHAIN_DEPTH_MAX`` is far below).
MAX_CALLCHAIN = 4096
#: Columns of each kept callchain in the scan's ``chains``: PCs, line of the first PC, PID, CPU, user mode.
CHAIN_FIELDS = 5

_BLANK = re.compile(rb"[ \t\r\x0b\x0c]*\n")
_HEADER = re.compile(rb"callchain (-?[0-9]{1,10}) 0x([0-9a-fA-F]{1,16}) ([0-9]{1,10}) ([0-9]{1,4}) ([us])\n")
_PC = rb"\.\.\.       0x[0-9a-fA-F]{1,16}\n"
_ONE_PC = re.compile(_PC)
_DIGITS = re.compile(rb"x([0-9a-fA-F]+)\n")
#: NPC -> the pattern of NPC PC lines, made when first needed.
_RUNS: dict[int, re.Pattern[bytes]] = {}


def scanner():
    """``scan(block, pos, line, selected, batched, chunk)``: the native scan when the core is in use, else
    :func:`scan_callchains`."""
    core = native.core
    return core.callchain_scan if core is not None else scan_callchains


def scan_callchains(block: bytes, pos: int, line: int, selected: bytes | None, batched: int,
                    chunk: int) -> tuple[int, int, int, int, bytes, bytes]:
    """Read the blank lines and whole callchain records of ``block`` from ``pos`` (line ``line`` before it).

    ``selected``: the PMC ids whose callchains are kept, native uint64s (None: all).  ``batched``: PCs
    already waiting to be resolved; a kept callchain that would start when ``chunk`` or more wait stops
    the scan (FULL).  Returns ``(pos, line, reason, records, pcs, chains)``: where it stopped and the
    number of the last line read, why, how many callchain records it read (kept or not), the kept
    PCs as native uint64s in log order, and :data:`CHAIN_FIELDS` native int64s per kept callchain.
    """
    wanted = None if selected is None else set(array("Q", selected))
    digits: list[bytes] = []
    chains = array("q")
    records = 0
    reason = END
    size = len(block)
    while pos < size:
        blank = _BLANK.match(block, pos)
        if blank is not None:
            pos = blank.end()
            line += 1
            continue
        header = _HEADER.match(block, pos)
        if header is None:
            reason = OTHER if block.find(b"\n", pos) >= 0 else END
            break
        count = int(header[4])
        if count > MAX_CALLCHAIN:
            reason = OTHER
            break
        run = _RUNS.get(count)
        if run is None:
            run = _RUNS[count] = re.compile(rb"(?:%s){%d}" % (_PC, count))
        body = run.match(block, header.end())
        if body is None:
            reason = _cut_short(block, header.end())
            break
        keep = count > 0 and (wanted is None or int(header[2], 16) in wanted)
        if keep and batched >= chunk:
            reason = FULL
            break
        records += 1
        if keep:
            digits += _DIGITS.findall(block, header.end(), body.end())
            chains.extend((count, line + 2, int(header[1]), int(header[3]), header[5] == b"u"))
            batched += count
        pos = body.end()
        line += 1 + count
    return pos, line, reason, records, _numbers(digits), chains.tobytes()


def _cut_short(block: bytes, pos: int) -> int:
    """Why the PC lines from ``pos`` stop short: a line in another form (OTHER), or the block's end (END)."""
    pc = _ONE_PC.match(block, pos)
    while pc is not None:
        pos = pc.end()
        pc = _ONE_PC.match(block, pos)
    return OTHER if block.find(b"\n", pos) >= 0 else END


def _numbers(digits: list[bytes]) -> bytes:
    """Hex numbers as native uint64s: in one go when all have 16 digits (kernel addresses), else one by one."""
    joined = b"".join(digits)
    if len(joined) == 16 * len(digits):
        import numpy as np  # here: the -G callgraph reader imports this module's reader, numpy-free

        return np.frombuffer(bytes.fromhex(joined.decode("ascii")), dtype=">u8").astype(np.uint64).tobytes()
    return array("Q", [int(number, 16) for number in digits]).tobytes()
