"""Raw hwpmc log records packed as ``sys/sys/pmclog.h`` lays them out (for tests and benchmarks).

Nothing here uses tracebridge: a 16-byte header (the word ``0xEE << 24 |
type << 16 | length``, a spare word, the 64-bit TSC), then the record's fields.
"""

from __future__ import annotations

import struct


def record(kind: int, body: bytes, order: str = "<") -> bytes:
    length = 16 + len(body)
    return struct.pack(order + "IIQ", 0xEE << 24 | kind << 16 | length, 0, 123456789) + body


def padded(text: bytes) -> bytes:
    """A NUL-terminated string padded to whole 32-bit words."""
    text += b"\0"
    return text + bytes(-len(text) % 4)
