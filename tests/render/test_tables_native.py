"""JSON rows written from columns by the native core: the same text as json.dumps writes from dicts."""

from __future__ import annotations

import dataclasses
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tracebridge.render.tables import Attribute, encode_chunk, encode_json_columns
from tracebridge.support import native

#: Text UTF-8 can hold (a lone surrogate is refused on both paths: test_text_utf8_cannot_hold_is_refused_on_both_paths).
TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",)))
VALUES = st.one_of(st.none(), st.booleans(), st.integers(), TEXT, st.floats(),
                   st.text(alphabet=st.characters(max_codepoint=0x3000, blacklist_categories=("Cs",))))


def expected(columns, values) -> bytes:
    return encode_chunk([dict(zip(columns, row)) for row in zip(*values)], columns, "json").encode()


@settings(max_examples=300, deadline=None)
@given(st.lists(TEXT, min_size=1, max_size=4, unique=True).flatmap(
    lambda columns: st.tuples(st.just(columns), st.integers(0, 5).flatmap(
        lambda n: st.lists(st.lists(VALUES, min_size=n, max_size=n), min_size=len(columns),
                           max_size=len(columns))))))
def test_json_rows_match_json_dumps(native_core, table):
    columns, values = table
    assert encode_json_columns(columns, values) == expected(columns, values)


def test_strings_of_every_length_around_the_words(native_core):
    """Strings are scanned eight bytes at a time: every length, with an escape at every place or none."""
    texts = ["a" * n for n in range(41)] + ["é" * n for n in range(20)]
    texts += [s[:at] + c + s[at:] for s in ("abcdefghijklmnopq",) for at in range(18) for c in '"\\\n\x1f']
    for text in texts:
        assert native_core.json_rows(("k",), ([text],)) == json.dumps([{"k": text}], ensure_ascii=False)[1:-1].encode()


def test_every_escape_and_byte(native_core):
    text = "".join(map(chr, range(0x100))) + "\u2028\U0001f600"
    columns, values = ["name", "n"], [[text, "", "\\\""], [2**64 + 5, -(2**63), 0]]
    assert native_core.json_rows(tuple(columns), tuple(values)) == json.dumps(
        [dict(zip(columns, row)) for row in zip(*values)], ensure_ascii=False)[1:-1].encode()


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_values_it_leaves_to_json_dumps(native_core, value):
    with pytest.raises(TypeError):
        native_core.json_rows(("a",), ([value],))
    assert encode_json_columns(["a"], [[value]]) == expected(["a"], [[value]])


def test_text_utf8_cannot_hold_is_refused_on_both_paths(each_path):
    with pytest.raises(UnicodeEncodeError):
        encode_json_columns(["a"], [["\ud800"]])


def test_other_types_are_refused(native_core):
    with pytest.raises(TypeError):
        native_core.json_rows(("a",), ([object()],))


def test_bad_shapes_are_refused(native_core):
    with pytest.raises(ValueError):
        native_core.json_rows(("a", "b"), ([1],))
    with pytest.raises(ValueError):
        native_core.json_rows(("a", "b"), ([1], [1, 2]))
    with pytest.raises(TypeError):
        native_core.json_rows(("a",), ((1,),))


def test_pure_python_path(pure_python):
    assert native.core is None
    assert encode_json_columns(["a", "b"], [[1, None], ["x", "y"]]) == b'{"a": 1, "b": "x"}, {"a": null, "b": "y"}'


@dataclasses.dataclass(slots=True)
class _Slotted:
    a: object
    b: object = None


class _Plain:
    def __init__(self, a):
        self.a = a


class _Computed:
    __slots__ = ("_a",)

    def __init__(self, a):
        self._a = a

    @property
    def a(self):
        return self._a


class _Asked(_Slotted):
    """Reads its attributes through __getattribute__: never straight from the slot."""

    __slots__ = ()

    def __getattribute__(self, name):
        return "asked" if name == "a" else object.__getattribute__(self, name)


HOLDERS = st.sampled_from([_Slotted, _Plain, _Computed, _Asked])


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(HOLDERS, VALUES), max_size=8), st.booleans())
def test_attribute_columns_are_the_attributes(rows, same_type):
    """Objects that hold the values, of one class (read from the slot) or of several (getattr), give the
    text of the values' list; on the pure path too."""
    holders = [(rows[0][0] if same_type and rows else holder)(value) for holder, value in rows]
    values = [getattr(h, "a") for h in holders]
    text = expected(["a", "n"], [values, list(range(len(values)))])
    for path in ("native", "pure"):
        core = native.core if path == "native" else None
        if path == "native" and core is None:
            continue
        saved, native.core = native.core, core
        try:
            assert encode_json_columns(["a", "n"], [Attribute(holders, "a"), list(range(len(holders)))]) == text
        finally:
            native.core = saved


def test_an_unset_slot_is_an_attribute_error_on_both_paths(each_path):
    holder = _Slotted(1)
    del holder.a
    with pytest.raises(AttributeError):
        encode_json_columns(["a"], [Attribute([_Slotted(2), holder], "a")])


def test_attribute_columns_refused_in_other_shapes(native_core):
    for spec in ((["x"],), ("x", "a"), ([], 1), ((1,), "a")):
        with pytest.raises(TypeError, match="a column is a list"):
            native_core.json_rows(("a",), (spec,))
    with pytest.raises(ValueError, match="differ in length"):
        native_core.json_rows(("a", "b"), (([_Slotted(1)], "a"), [1, 2]))
    assert native_core.json_rows(("a",), (([], "a"),)) == b""


def test_an_attribute_that_empties_its_list_is_refused(native_core):
    """Code run by getattr may change the lists being written: the next read is refused, nothing is freed early."""
    holders = []

    class Emptying:
        @property
        def a(self):
            holders.clear()
            return "x" * 100

    holders += [Emptying(), Emptying()]
    with pytest.raises(ValueError, match="changed length"):
        native_core.json_rows(("a", "n"), ((holders, "a"), [1, 2]))


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 4).flatmap(lambda width: st.integers(0, 12).flatmap(
    lambda n: st.lists(st.lists(VALUES, min_size=n, max_size=n), min_size=width, max_size=width))),
    st.integers(0, 64))
def test_parts_are_the_rows_cut_after_max_bytes(values, max_bytes):
    """json_rows_from: whole rows from start, cut after the row that reaches max_bytes; the parts joined
    with ", " are json_rows' text, and encode_json_parts gives them on both paths."""
    from tracebridge.render import tables

    columns = [f"c{k}" for k in range(len(values))]
    whole = expected(columns, values)
    core = native.core
    if core is not None:
        parts, start, count = [], 0, len(values[0])
        try:
            while start < count:
                text, end = core.json_rows_from(tuple(columns), tuple(values), start, max_bytes)
                assert end > start and (end == count or len(text) >= max_bytes > 0)
                parts.append(text)
                start = end
        except TypeError:  # NaN or infinity: json.dumps' business
            parts = None
        if parts is not None:
            assert b", ".join(parts) == whole
    for path in {core, None}:
        native.core = path
        try:
            assert b", ".join(tables.encode_json_parts(columns, values)) == whole
        finally:
            native.core = core


def test_parts_start_where_asked(native_core):
    assert native_core.json_rows_from(("a",), ([1, 2, 3],), 1, 0) == (b'{"a": 2}, {"a": 3}', 3)
    assert native_core.json_rows_from(("a",), ([1, 2, 3],), 1, 1) == (b'{"a": 2}', 2)
    assert native_core.json_rows_from(("a",), ([1, 2, 3],), 3, 1) == (b"", 3)
    assert native_core.json_rows_from(("a",), ([1, 2, 3],), 9, 0) == (b"", 9)
    assert native_core.json_rows_from((), (), 0, 0) == (b"", 0)
    with pytest.raises(ValueError):
        native_core.json_rows_from(("a",), ([1],), -1, 0)


def test_parts_go_on_in_python_from_the_first_row_the_core_does_not_write(native_core, monkeypatch):
    """A NaN past the first part: the parts already made stand, json.dumps writes the rest."""
    from tracebridge.render import tables

    monkeypatch.setattr(tables, "PART_BYTES", 8)
    monkeypatch.setattr(tables, "PART_ROWS", 2)
    values = [[1, 2, 3, float("nan"), 5], ["a", "b", "c", "d", "e"]]
    parts = list(tables.encode_json_parts(["n", "s"], values))
    assert b", ".join(parts) == expected(["n", "s"], values) and len(parts) > 2
    holders = [_Slotted(x) for x in range(5)]
    assert b", ".join(tables.encode_json_parts(["a"], [Attribute(holders, "a")])) == expected(["a"], [list(range(5))])
