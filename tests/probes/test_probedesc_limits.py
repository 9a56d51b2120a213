"""Description fields at the 191-character limit and for long names that share their ends.

Each case is one a wrong field would get past the other tests: a glob that
also selects a neighbour merges two functions' data without any error.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

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


def searched_fields(names: list[str]) -> list:
    """Every name's field with each glob of a long name checked by the search (:meth:`FunctionFields.others`)."""
    fields = FunctionFields(names)
    fields._alone_in_glob = lambda name, suffix: not fields.others(
        name[:FUNCTION_MAX - 1 - suffix] + "*" + name[-suffix:], name)
    return [fields.field(name) for name in names]


#: Where the globs of long names cut them: characters from the start and from the end around each cut.
_FROM_START = (0, 1, 29, 30, 61, 62, 93, 94, 125, 126, 149, 150, 169, 170)
_FROM_END = (1, 19, 20, 21, 39, 40, 41, 63, 64, 65, 96, 97, 128, 129, 160, 161, 189, 190)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from((189, 190, 191, 192, 200, 240, 330)),
                          st.sets(st.sampled_from(_FROM_START), max_size=2),
                          st.sets(st.sampled_from(_FROM_END), max_size=2)), min_size=2, max_size=40))
def test_counted_globs_select_what_the_search_finds(shapes):
    """Long names that differ at a few places around the globs' cuts, so that many share a head and a
    tail: the counts answer as the search does, name by name, and each field selects its name only."""
    names = []
    for length, starts, ends in shapes:
        name = ["a"] * length
        for at in [*starts, *(length - back for back in ends)]:
            name[at] = "z"
        names.append("".join(name))
    fields = FunctionFields(names)
    found = [fields.field(name) for name in names]
    assert found == searched_fields(names)
    for name, field in zip(names, found):
        if field.text is not None:
            assert {other for other in names if matches(other, field.text)} == {name}
