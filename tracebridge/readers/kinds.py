"""What a file is when it is not the input a command reads: known binary formats, and text files tracebridge knows.

Every reader and the CPU commands ask here first, so that a compressed file,
an ELF module, a chart or a ``top`` capture given in the wrong place is named
for what it is ("this looks like ...: do ...") instead of tripping a parser.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tracebridge.readers.source import Source

#: The first line of each display FreeBSD ``top -b`` prints (``cputime.top`` splits captures here).
TOP_DISPLAY_START = re.compile(r"^(?:last pid:\s*\d+;\s+)?load averages?:")

#: Files given where a profile is expected by mistake, by their first bytes: what they are, what to do.
_MAGICS = (
    (b"\x7fELF", "an ELF file (a kernel module or kernel?): give modules with --module"),
    (b"\x1f\x8b", "gzip-compressed data: decompress it first"),
    (b"\xfd7zXZ\x00", "xz-compressed data: decompress it first"),
    (b"\x28\xb5\x2f\xfd", "zstd-compressed data: decompress it first"),
    (b"PAR1", "a Parquet file (a report or a CPU series), not a profile"),
    (b"\x89PNG", "a PNG image (a chart), not a profile"),
)


def binary_kind(head: bytes) -> str | None:
    """What a file is when its first bytes are a known binary format's magic (compressed, ELF, ...)."""
    return next((what for magic, what in _MAGICS if head.startswith(magic)), None)


def other_kind(source: Source) -> str | None:
    """What a file that no reader takes looks like (for "this looks like ..."), if tracebridge knows it."""
    from tracebridge.readers.kldstat import sniff as sniff_kldstat
    from tracebridge.readers.pmclog import is_binary_log

    head = source.head_bytes  # known binary magics were refused before (load_one, binary_kind)
    if is_binary_log(head):
        return "a raw hwpmc log (pmcstat -O): read it with `tracebridge pmc resolve`"
    first = source.first_line
    if first.startswith("{"):
        return "a JSON document (a probe map? give it with --probe-map)"
    if first.startswith(("<?xml", "<svg")):
        return "an SVG or XML file (a flame graph?), not a capture"
    if sniff_kldstat([first]):
        return "saved kldstat output: give it with --kldstat"
    if TOP_DISPLAY_START.match(first):
        return "a top capture: read it with `tracebridge cpu import` or `tracebridge cpu compare`"
    if first.startswith("time,pid,process,tid,thread,"):
        return "a CPU series: read it with `tracebridge cpu compare`"
    return None
