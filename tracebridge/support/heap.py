"""Keeping freed big blocks in the process, for work that allocates megabytes again and again.

Folding a 53 MB callgraph reads it in blocks of a few megabytes, copies each
to whole lines, and makes texts of megabytes.  glibc's malloc gives every
such block fresh pages of its own (``mmap``) and returns them on ``free``,
and trims its heap once 2x that size lies free at its top: each new block
then costs a page fault per 4 KiB touched, about 2 µs each here.  That was
81k page faults and a third of the fold's CPU time as system time; keeping
freed memory for reuse (blocks below :data:`MMAP_THRESHOLD` from the heap,
the heap trimmed only past :data:`TRIM_THRESHOLD`) made it 69k faults and
60 ms of CPU less.  A command that ends right after loses nothing by not
giving memory back.  Other C libraries (FreeBSD's jemalloc, musl) have no
``mallopt`` and keep their own policy.
"""

from __future__ import annotations

#: ``M_TRIM_THRESHOLD`` and ``M_MMAP_THRESHOLD`` (glibc's malloc.h).
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
#: Blocks up to this size come from the heap (glibc's largest allowed value on 64-bit systems).
MMAP_THRESHOLD = 32 << 20
#: Free memory at the heap's top kept up to this size.
TRIM_THRESHOLD = 512 << 20


def keep_freed() -> bool:
    """Ask the C library to reuse freed big blocks rather than give them back; False where it has no ``mallopt``.

    Through the native core when it is built (``import ctypes`` alone costs 2-3 ms, before a fold can fork)."""
    from tracebridge.support import native

    if native.core is not None:
        return native.core.keep_freed(MMAP_THRESHOLD, TRIM_THRESHOLD)
    return _keep_freed_ctypes()


def _keep_freed_ctypes() -> bool:
    """:func:`keep_freed` through ctypes: the native core's twin."""
    import ctypes  # 2-3 ms: only without the native core

    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (AttributeError, OSError):  # not glibc
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD))
