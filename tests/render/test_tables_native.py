"""JSON rows written from columns by the native core: the same text as json.dumps writes from dicts."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tracebridge.render.tables import encode_chunk, encode_json_columns
from tracebridge.support import native

VALUES = st.one_of(st.none(), st.booleans(), st.integers(), st.text(), st.floats(),
                   st.text(alphabet=st.characters(max_codepoint=0x3000)))


def expected(columns, values) -> str:
    return encode_chunk([dict(zip(columns, row)) for row in zip(*values)], columns, "json")


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(), min_size=1, max_size=4, unique=True).flatmap(
    lambda columns: st.tuples(st.just(columns), st.integers(0, 5).flatmap(
        lambda n: st.lists(st.lists(VALUES, min_size=n, max_size=n), min_size=len(columns),
                           max_size=len(columns))))))
def test_json_rows_match_json_dumps(native_core, table):
    columns, values = table
    assert encode_json_columns(columns, values) == expected(columns, values)


def test_every_escape_and_byte(native_core):
    text = "".join(map(chr, range(0x100))) + "\u2028\U0001f600"
    columns, values = ["name", "n"], [[text, "", "\\\""], [2**64 + 5, -(2**63), 0]]
    assert native_core.json_rows(tuple(columns), tuple(values)) == json.dumps(
        [dict(zip(columns, row)) for row in zip(*values)], ensure_ascii=False)[1:-1]


@pytest.mark.parametrize("value", [float("nan"), float("inf"), "\ud800"])
def test_values_it_leaves_to_json_dumps(native_core, value):
    with pytest.raises((TypeError, UnicodeEncodeError)):
        native_core.json_rows(("a",), ([value],))
    assert encode_json_columns(["a"], [[value]]) == expected(["a"], [[value]])


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
    assert encode_json_columns(["a", "b"], [[1, None], ["x", "y"]]) == '{"a": 1, "b": "x"}, {"a": null, "b": "y"}'
