"""A module's function names and records, made natively in bulk or in Python: the same objects.

``latin1_slices`` and ``slot_records`` (src/native/symbol_records.h; their twins
``tracebridge.image.elf._latin1_slices``, ``tracebridge.support.records``) build
what :func:`tracebridge.image.elf.open_module` used to build one Python call
at a time.  Every committed module (the big ones and the edge cases) is read
on both paths and gives equal functions, names shared where the symbols
share a string-table offset; hypothesis feeds both twins made-up slices and
rows; slices outside the buffer, and classes or columns the native builder
cannot fill, are refused with an error before anything is built.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fixture_paths import CROSS, EDGE, MODULES
from tracebridge.image import elf
from tracebridge.image.elf import Function, open_module
from tracebridge.support import native
from tracebridge.support.records import slot_records

ALL_MODULES = sorted([*MODULES.glob("*.ko"), *EDGE.glob("*.ko"), *CROSS.glob("*.ko")], key=lambda p: p.name)


def pure(twin, *args):
    """``twin(*args)`` on the pure-Python path."""
    core, native.core = native.core, None
    try:
        return twin(*args)
    finally:
        native.core = core


def read_both(path, monkeypatch):
    native_image = open_module(path)
    with monkeypatch.context() as patch:
        patch.setattr(native, "core", None)
        pure_image = open_module(path)
    return native_image, pure_image


@pytest.mark.parametrize("path", ALL_MODULES, ids=lambda p: p.name)
def test_every_module_reads_the_same_on_both_paths(native_core, monkeypatch, path):
    if path.stem == "rem_stripped":  # no symbol table: the same refusal on both paths
        with pytest.raises(elf.InputError) as native_error:
            open_module(path)
        monkeypatch.setattr(native, "core", None)
        with pytest.raises(elf.InputError) as pure_error:
            open_module(path)
        assert str(native_error.value) == str(pure_error.value)
        return
    native_image, pure_image = read_both(path, monkeypatch)
    assert native_image.functions and native_image.functions == pure_image.functions
    assert all(type(f) is Function and type(f.name) is str for f in native_image.functions)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=64), st.lists(st.tuples(st.integers(0, 70), st.integers(0, 70)), max_size=12))
def test_slices_are_the_latin1_decoding(data, pairs):
    starts = np.array([min(a, b) for a, b in pairs], dtype=np.int64)
    ends = np.array([max(a, b) for a, b in pairs], dtype=np.int64)
    expected = [data[a:b].decode("latin-1") for a, b in zip(starts.tolist(), ends.tolist())]
    if all(end <= len(data) for end in ends.tolist()):
        assert pure(elf._latin1_slices, data, starts, ends) == expected
        if native.core is not None:
            assert native.core.latin1_slices(data, starts, ends) == expected
    elif native.core is not None:
        with pytest.raises(ValueError, match="outside the"):
            native.core.latin1_slices(data, starts, ends)


@pytest.mark.parametrize("start, end", [(-1, 2), (3, 2), (0, 9)])
def test_a_slice_outside_the_buffer_is_refused(native_core, start, end):
    with pytest.raises(ValueError, match=r"slice 1 \(.*\) lies outside the 8-byte buffer"):
        native.core.latin1_slices(b"abcdefgh", np.array([0, start], dtype=np.int64), np.array([1, end], dtype=np.int64))
    with pytest.raises(ValueError, match="differ in length"):
        native.core.latin1_slices(b"abcdefgh", np.array([0, 1], dtype=np.int64), np.array([1], dtype=np.int64))


ROWS = st.lists(st.tuples(st.integers(0, 2**64 - 1), st.text(max_size=8), st.text(max_size=8), st.integers(0, 2**20),
                          st.integers(0, 2**64 - 1), st.integers(0, 2**64 - 1), st.sampled_from(["LOCAL", "GLOBAL"]),
                          st.sampled_from(["FUNC", "IFUNC"]), st.integers(0, 2**64 - 1)), max_size=20)


@settings(max_examples=100, deadline=None)
@given(ROWS)
def test_records_are_the_dataclass_built_by_its_init(rows):
    columns = tuple(list(column) for column in zip(*rows)) if rows else tuple([] for _ in Function.__slots__)
    expected = [Function(*row) for row in rows]
    assert pure(slot_records, Function, columns) == expected
    if native.core is not None:
        made = native.core.slot_records(Function, columns)
        assert made == expected and all(type(f) is Function for f in made)
        assert [f.address(0x1000) for f in made] == [f.address(0x1000) for f in expected]


class _Dict:
    def __init__(self, a):
        self.a = a


class _Slotted:
    __slots__ = ("a",)


class _Overridden:
    __slots__ = ("a",)


_Overridden.a = 1  # the name no longer stands for the slot


def test_what_slot_records_cannot_fill_is_refused(native_core):
    build = native.core.slot_records
    with pytest.raises(TypeError, match="no __dict__"):
        build(_Dict, ([1],))
    with pytest.raises(TypeError, match="one name per column"):
        build(_Slotted, ([1], [2]))
    with pytest.raises(TypeError, match="member of the class itself"):
        build(_Overridden, ([1],))
    with pytest.raises(TypeError, match="must be lists"):
        build(_Slotted, ((1,),))
    with pytest.raises(ValueError, match="differ in length"):
        build(Function, tuple([1] if k else [1, 2] for k in range(len(Function.__slots__))))
    assert [r.a for r in build(_Slotted, ([3, 4],))] == [3, 4]
