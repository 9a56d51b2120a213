"""Description fields at the 191-character limit and for long names that share their ends.

Each case is one a wrong field would get past the other tests: a glob that
also selects a neighbour merges two functions' data without any error.
"""

from __future__ import annotations

from tracebridge.probes.dglob import matches
from tracebridge.probes.probedesc import FUNCTION_MAX, FunctionFields


def test_long_names_sharing_head_and_tail_get_a_field_each():
    """70 names of 250 characters that differ only in the middle: no ``<prefix>*<suffix>`` cut
    keeps the difference, but a longer tail does: every field must select exactly its own name.
    More than 64 names share the tail, so the candidate search takes its slow path."""
    names = ["x" * 126 + f"{i:060d}" + "y" * 64 for i in range(70)]
    fields = FunctionFields(names)
    for name in names[:3]:
        field = fields.field(name)
        assert field.text is not None and len(field.text) <= FUNCTION_MAX
        assert [n for n in names if matches(n, field.text)] == [name]


def test_name_of_exactly_191_characters_stays_literal():
    name = "_ZN" + "a" * 188
    assert len(name) == FUNCTION_MAX
    field = FunctionFields([name, name[:-1] + "b"]).field(name)
    assert field.text == name and not field.glob


def test_name_of_192_characters_becomes_a_glob_within_the_limit():
    name = "_ZN" + "a" * 189
    field = FunctionFields([name]).field(name)
    assert field.glob and len(field.text) <= FUNCTION_MAX and matches(name, field.text)


def test_narrowed_field_among_many_same_head_names():
    """``f$tail`` faces 63 names that differ from it only where ``$`` became ``?``, among more than 64
    that share its head and tail: the narrowed ``[!...]`` field is checked again and selects only it."""
    safe = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.`"
    names = ["f$tail"] + [f"f{c}tail" for c in safe] + [f"f{c}{c}tail" for c in "abcdefgh"]
    field = FunctionFields(names).field("f$tail")
    assert field.text is not None and field.text.startswith("f[!")
    assert [n for n in names if matches(n, field.text)] == ["f$tail"]
