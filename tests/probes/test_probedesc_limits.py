"""Description fields at the 191-character limit and for long names that share their ends.

Each case is one a wrong field would get past the other tests: a glob that
also selects a neighbour merges two functions' data without any error.
"""

from __future__ import annotations

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from fixture_paths import MODULES
from tracebridge.image.elf import open_module
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
    """Every name's field with each glob of a long name checked by the search (:meth:`FunctionFields.others`),
    not counted (:meth:`_LongNames.alone`)."""
    fields = FunctionFields(names)
    long_names = fields._long_names()

    class Searched:
        def alone(self, name: str, suffix: int) -> bool:
            return not fields.others(name[:FUNCTION_MAX - 1 - suffix] + "*" + name[-suffix:], name)

        def __getattr__(self, attribute: str):
            return getattr(long_names, attribute)

    searched = Searched()
    fields._long_names = lambda: searched
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
def test_two_long_names_sharing_their_tail_are_told_apart():
    """Two 250-character names that share their last 16 characters (and more) must not be cut where
    the first glob tried (64-character tail) selects both; a 32-character name ending like them
    must not make the tail look unique either."""
    names = ["x" * 126 + f"{i:060d}" + "y" * 64 for i in range(2)] + ["z" * 16 + "y" * 16]
    fields = FunctionFields(names)
    for name in names[:2]:
        field = fields.field(name)
        assert [n for n in names if matches(n, field.text)] == [name]


def test_long_name_glob_keeps_as_much_of_the_name_as_fits():
    name = "_ZN" + "a" * 189
    assert len(FunctionFields([name]).field(name).text) == FUNCTION_MAX


def test_long_names_no_glob_can_separate_are_refused_and_counted():
    """400-character names that differ only at character 200: no cut keeps it (the longest head is
    170 characters, the longest tail 189), so no field; each name is there twice."""
    one, two = "a" * 200 + "b" + "a" * 199, "a" * 200 + "c" + "a" * 199
    field = FunctionFields([one, one, two]).field(one)
    assert field.text is None and field.duplicates == 2
    assert field.problem == "no glob of at most 191 characters selects only this 400-character name"


def test_duplicates_are_counted_on_every_path():
    long = "_ZN" + "x" * 250 + "17h0123456789abcdefE"
    assert FunctionFields([long, long]).field(long).duplicates == 2  # <prefix>*<suffix>
    assert FunctionFields(["a$b", "a$b"]).field("a$b").duplicates == 2  # "?" that collides with nothing
    narrowed = FunctionFields(["a$b", "a$b", "axb"]).field("a$b")
    assert narrowed.text == "a[!x]b" and narrowed.duplicates == 2
    refused = FunctionFields(["a$b", "a$b", "a<b"]).field("a$b")
    assert refused.text is None and refused.duplicates == 2


def test_narrowed_field_up_to_191_characters():
    """Narrowing ``?`` to ``[!x]`` adds three characters: a field that reaches exactly 191 is kept,
    one that would pass it is refused rather than written too long for libdtrace."""
    fits = "a" * 186 + "$b"  # 188 characters, 191 once narrowed
    field = FunctionFields([fits, fits.replace("$", "x")]).field(fits)
    assert field.text == "a" * 186 + "[!x]b" and len(field.text) == FUNCTION_MAX
    too_long = "a" * 187 + "$b"
    refused = FunctionFields([too_long, too_long.replace("$", "x")]).field(too_long)
    assert refused.text is None and "another function" in refused.problem


def test_every_colliding_position_is_narrowed():
    """``a$b$c`` collides with ``axb$c`` at its first ``?`` and with ``a$bxc`` at its second."""
    names = ["a$b$c", "axb$c", "a$bxc"]
    field = FunctionFields(names).field("a$b$c")
    assert field.text == "a[!x]b[!x]c"
    assert [n for n in names if matches(n, field.text)] == ["a$b$c"]


def test_unique_tail_shortcut_only_for_a_literal_tail():
    """The two names differ at character 4, inside their last 16 characters, where ``$`` becomes
    ``?``: their tails are different, yet ``abcd?fgh...`` selects both; the field must be narrowed."""
    names = ["abcd$fghijklmnopqrst", "abcdxfghijklmnopqrst"]
    field = FunctionFields(names).field(names[0])
    assert field.text == "abcd[!x]fghijklmnopqrst"


def test_later_cut_among_many_sharing_head_and_tail():
    """Names that the first cut (126 + 64 characters) cannot tell apart, where the next cut's head
    (150 characters) and tail (40) are each shared by more than 64 names: the tails are then counted
    per head, and the answer must be the search's and select its name only."""
    def name(head: str, middle: str, tail: str) -> str:
        return head + middle + tail

    tails = [f"{i:040d}" for i in range(65)]
    family = [name("a" * 150, "m" * 60, tail) for tail in tails]  # one head, 65 tails
    twins = [name("a" * 126 + "q" * 24, "m" * 60, tail) for tail in tails]  # first cut shared with family
    shared_tail = [name(f"{i:0150d}", "m" * 60, tails[0]) for i in range(64)]  # 64 more with tails[0]
    names = family + twins + shared_tail
    fields = FunctionFields(names)
    found = [fields.field(n) for n in family[:3] + twins[:2]]
    assert found == [f for n, f in zip(names, searched_fields(names)) if n in family[:3] + twins[:2]]
    for n, field in zip(family[:3] + twins[:2], found):
        assert field.text is not None and len(field.text) <= FUNCTION_MAX
        assert [other for other in names if matches(other, field.text)] == [n]
    assert fields._long._cuts_in_group  # the per-group count was the path taken


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(st.sampled_from("ab$_.\0\u0101") | st.characters(max_codepoint=0x17f), max_size=12)
                | st.sampled_from(["a" * 200 + "$", "a" * 200 + "b", "_ZN3foo$LT$E", "_ZN3fooxLTxE"]),
                min_size=1, max_size=30))
@example(names=["a\0$"])  # one new name holding one NUL: as many NULs as two names would have
def test_fields_in_bulk_are_the_fields_one_by_one(names):
    """NULs inside names (the bulk path then takes them one by one), characters past Latin-1 and
    long names included."""
    assert FunctionFields(names).fields(names) == [FunctionFields(names).field(n) for n in names]
    assert FunctionFields(names).fields([]) == []


@pytest.mark.parametrize("path", sorted(MODULES.glob("*.ko")), ids=lambda path: path.name)
def test_fields_in_bulk_on_every_module(path):
    names = [f.name for f in open_module(path).functions] if path.stem != "rem_stripped" else []
    assert FunctionFields(names).fields(names) == [FunctionFields(names).field(n) for n in names]


def test_long_name_with_a_dollar_is_not_told_apart_by_its_raw_characters():
    """Two 250-character names that differ only at character 100, where the first has ``$`` and the
    second ``x``: the first's field has ``?`` there, which selects the second too, so neither their
    different raw heads nor a shared (non-unique) tail may let a ``<prefix>*<suffix>`` glob through.
    Every cut keeps character 100 or none of the difference, so the first gets no field at all."""
    dollar = "_ZN" + "a" * 97 + "$" + "a" * 129 + "17h0123456789abcdefE"
    names = [dollar, dollar.replace("$", "x")]
    assert len(dollar) == 250
    fields = FunctionFields(names)
    for name in names:
        field = fields.field(name)
        if field.text is not None:
            assert [n for n in names if matches(n, field.text)] == [name]
    assert fields.field(names[1]).text is not None


def test_long_name_with_a_dollar_near_its_end_gets_a_glob():
    """A 230-character name alone in its module whose last 16 characters hold ``$`` (so they are no
    literal tail to count): the search finds no other name, and the glob is written."""
    name = "_ZN" + "b" * 200 + "$u7b$closure$u7d$E" + "c" * 9
    assert "$" in name[-16:]
    fields = FunctionFields([name, "_ZN" + "b" * 40 + "E"])
    field = fields.field(name)
    assert field.glob and len(field.text) <= FUNCTION_MAX and matches(name, field.text)
    assert not matches("_ZN" + "b" * 40 + "E", field.text)


def test_many_long_names_with_a_dollar_sharing_head_and_tail_get_a_field_each():
    """70 names of 250 characters with ``$`` at character 100 that differ only in the middle: the
    glob of each is searched (its ``?`` rules the counts out) among more than 64 names sharing its
    literal head and tail, so the candidate search takes its slow path; a ``*`` glob matches names
    of any length, so the candidates must not be narrowed to the glob's own length."""
    names = ["_ZN" + "a" * 97 + "$" + "a" * 25 + f"{i:060d}" + "y" * 64 for i in range(70)]
    fields = FunctionFields(names)
    for name in names[:3]:
        field = fields.field(name)
        assert field.text is not None and "*" in field.text and len(field.text) <= FUNCTION_MAX
        assert [n for n in names if matches(n, field.text)] == [name]


@pytest.mark.parametrize("field, shorter", [
    ("[!x]" + "a" * 187, "b" + "a" * 187),  # 191 characters, no "*": names of 188 only
    ("*" + "a" * 189 + "*", "a" * 189),  # two "*"
    ("[!x]" + "a" * 185 + "*" + "a", "b" + "a" * 186),  # one "*" and a set: 187 characters and more
    ("\\a" + "a" * 188 + "*", "a" * 189),  # one "*" and an escape: 189 characters and more
    ("a*b", "aXYZb"),  # a short "*" glob
])
def test_only_fields_of_long_names_search_the_long_names_alone(field, shorter):
    """A field of at least 191 characters with one ``*`` and nothing else that stands for more or fewer
    than one character selects only names of at least 190: the others are searched among all names."""
    assert FunctionFields([shorter, "b" * 200]).others(field, "a" * 300) == [shorter]


def test_a_long_glob_does_not_count_a_189_character_name():
    """``a{126}*a{64}`` selects names of 190 characters or more: a 189-character name with the same
    ends must not take the first cut away from a 192-character one."""
    name = "a" * 192
    field = FunctionFields([name, "a" * 189]).field(name)
    assert field.text == "a" * 126 + "*" + "a" * 64


def test_later_cut_told_apart_by_the_longer_head():
    """Two 250-character names that differ at character 130 only: past the first cut's head (126) and
    inside the second's (150), which then selects each alone."""
    one, two = "x" * 130 + "a" + "x" * 119, "x" * 130 + "b" + "x" * 119
    fields = FunctionFields([one, two])
    assert fields.field(one).text == one[:150] + "*" + one[-40:]
    assert fields.field(two).text == two[:150] + "*" + two[-40:]


def test_later_cuts_counted_per_group():
    """Two groups of 70 names, each group sharing its first tail (64 characters), whose names come in
    pairs that differ at character 180 only: the first three cuts miss it, the 96-character tail keeps
    it.  The groups' counts are kept apart, though the last 32 characters of all the names are one."""
    names = [f"{i:03d}" + "h" * 123 + "m" * 54 + variant + "m" * 5 + group * 32 + "z" * 32
             for group in "12" for i in range(35) for variant in "ab"]
    assert len(names[0]) == 250 and names[0][180] == "a"
    fields = FunctionFields(names)
    for name in names[::17]:
        assert fields.field(name).text == name[:94] + "*" + name[-96:]
    assert len(fields._long._cuts_in_group) == 2
