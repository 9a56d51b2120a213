"""The C library keeps a freed big block for the next one (support/heap.py), so that it costs no page faults."""

import resource

import pytest

from tracebridge.support import heap


def _faults() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def test_a_freed_big_block_is_reused_without_page_faults(each_path):
    if not heap.keep_freed():
        pytest.skip("this C library has no mallopt (not glibc)")
    size = 16 << 20   # 4096 pages: glibc would map them afresh for each block, and unmap them on free
    block = b"x" * size
    del block
    before = _faults()
    block = b"y" * size
    assert _faults() - before < 256
    assert block.count(b"y") == size


def test_the_native_core_asks_what_its_ctypes_twin_asks(native_core, monkeypatch):
    """Both ask glibc for the thresholds and say whether it took them (the same answer elsewhere: no mallopt)."""
    asked = heap.keep_freed()
    assert native_core.keep_freed(heap.MMAP_THRESHOLD, heap.TRIM_THRESHOLD) is asked
    assert heap._keep_freed_ctypes() is asked
    monkeypatch.setattr("tracebridge.support.native.core", None)
    assert heap.keep_freed() is asked
