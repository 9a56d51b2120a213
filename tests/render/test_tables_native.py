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
