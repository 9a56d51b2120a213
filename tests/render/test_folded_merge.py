"""Two folded texts merged (render.folded.merge_folded): the native merge (src/native/folded_text.h) and the pure
one give the text of the two profiles folded together, and the native one hands the pure one what it cannot read."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings, strategies as st

from tracebridge.render.folded import merge_folded

KEYS = st.text(alphabet=st.sampled_from(["a", "b", ";", "\\", " ", "é", "\U0001f600", "\x7f"]), max_size=5)


def folded(counts: dict[str, int]) -> str:
    return "".join(f"{key} {counts[key]}\n" for key in sorted(counts))


def pure(first: str, second: str, monkeypatch) -> str:
    with monkeypatch.context() as patch:
        patch.setattr("tracebridge.support.native.core", None)
        return merge_folded(first, second)


@settings(max_examples=300, deadline=None)
@given(first=st.dictionaries(KEYS, st.integers(0, 10 ** 18 - 1), max_size=8),
       second=st.dictionaries(KEYS, st.integers(0, 10 ** 18 - 1), max_size=8))
def test_generated_texts_merge_as_their_counts_added(native_core, first, second):
    expected = folded({key: first.get(key, 0) + second.get(key, 0) for key in {*first, *second}})
    assert native_core.folded_merge(folded(first), folded(second)) == expected
    assert merge_folded(folded(first), folded(second)) == expected
    encoded = expected.encode()   # the same texts in UTF-8, as folded_bytes writes them
    assert native_core.folded_merge(folded(first).encode(), folded(second).encode()) == encoded
    assert merge_folded(folded(first).encode(), folded(second).encode()) == encoded


@pytest.mark.parametrize("first, second", [
    ("a 1\nb 2\n", "a x\n"),                       # not digits
    ("a 1\n", "a 1234567890123456789\n"),          # more than 18 digits
    ("b 1\na 2\n", ""),                            # keys not ascending
    ("a 1\na 2\n", ""),                            # a key twice
    ("a 1", ""),                                   # no newline
    ("1\n", ""),                                   # no key
    ("a 1\n", "b \n"),                             # no count
])
@pytest.mark.parametrize("encoded", [False, True], ids=["str", "bytes"])
def test_lines_the_native_merge_cannot_read_go_to_the_pure_merge(native_core, monkeypatch, first, second, encoded):
    if encoded:
        first, second = first.encode(), second.encode()
    assert native_core.folded_merge(first, second) is None
    try:
        expected = pure(first, second, monkeypatch)
    except ValueError as error:   # int() of what is not a count: the same error either way
        with pytest.raises(ValueError, match=re.escape(str(error))):
            merge_folded(first, second)
    else:
        assert merge_folded(first, second) == expected and type(expected) is type(first)


def test_the_merge_takes_two_str_or_two_bytes(native_core):
    for first, second in ((b"a 1\n", ""), ("a 1\n", b""), (bytearray(b"a 1\n"), bytearray()), (1, 2)):
        with pytest.raises(TypeError):
            native_core.folded_merge(first, second)
    assert native_core.folded_merge(b"a 1\nab 2\n", b"a;b 1\nab 3\n") == b"a 1\na;b 1\nab 5\n"
    assert native_core.folded_merge("\U0001f600 1\n".encode(), "é 2\n".encode()) == "é 2\n\U0001f600 1\n".encode()
    assert native_core.folded_merge("", "") == "" and native_core.folded_merge("a;b 3\n", "") == "a;b 3\n"
    assert native_core.folded_merge("a 1\nab 2\n", "a;b 1\nab 3\n") == "a 1\na;b 1\nab 5\n"
    assert native_core.folded_merge("\U0001f600 1\n", "é 2\n") == "é 2\n\U0001f600 1\n"
