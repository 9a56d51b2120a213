"""The kernel's glob matcher: its quirks, and the fast matchers against the literal port."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tracebridge.probes import dglob
from tracebridge.probes.dglob import NUL, GlobDepthError, _match, matches


@pytest.mark.parametrize("name, field, expected", [
    ("abc", "abc", True), ("abc", "ab", False), ("abc", "", True),
    ("abc", "a?c", True), ("ac", "a?c", False),
    ("abc", "a*", True), ("a", "a*", True), ("abc", "*c", True), ("", "*", True), ("", "?", False),
    ("a*c", "a\\*c", True), ("abc", "a\\*c", False), ("a?c", "a\\?c", True), ("abc", "a\\?c", False),
    ("abc", "a[a-c]c", True), ("adc", "a[a-c]c", False), ("adc", "a[!a-c]c", True), ("abc", "a[!a-c]c", False),
    ("a-c", "a[b-]c", True), ("a]c", "a[]]c", True), ("a-c", "a[-b]c", True), ("abc", "a[", False),
    ("a$b", "a?b", True), ("a$b", "a[!x]b", True), ("axb", "a[!x]b", False),
    ("a!b", "a[!x]b", True), ("a[b", "a[!x]b", True),
    # Several ?: each literal run is compared at its own offset.
    ("axbyc", "a?b?c", True), ("aXbbYcc", "a?bb?cc", True), ("abxyc", "a?b?c", False),
    # Range ends are inclusive, in plain and negated sets; a range may be followed by more members.
    ("b", "[b-d]", True), ("d", "[b-d]", True), ("a", "[b-d]", False), ("e", "[b-d]", False),
    ("b", "[!b-d]", False), ("d", "[!b-d]", False), ("e", "[!b-d]", True),
    ("x", "[a-cx]", True), ("d", "[a-cx]", False), ("x", "[!a-cx]", False), ("d", "[!a-cx]", True),
    # \ quotes inside a set: a literal ] or -, or the end of a range.
    ("]", "[\\]]", True), ("-", "[a\\-z]", True), ("b", "[a\\-z]", False),
    ("y", "[a-\\z]", True), ("z", "[a-\\z]", True), ("{", "[a-\\z]", False),
    ("q", "[!a-\\z]", False), ("Q", "[!a-\\z]", True),
    # A pattern that ends inside a set, a range or an escape matches nothing.
    ("a", "[a", False), ("a", "[ab", False), ("a", "[a-", False), ("a", "[a-\\", False), ("a", "[a\\", False),
    ("a", "[!", False), ("a", "[", False),
    ("a", "a\\", False), ("a\\", "a\\", False), ("", "[a]", False), ("ab", "[a]", False), ("a", "[a]?", False),
    # One star with ? on either side of it.
    ("axbzz", "a?b*", True), ("zzaxb", "*a?b", True), ("zzaxc", "*a?b", False),
    # ...and with several stars.
    ("axb1c2d", "a?b*c*d", True), ("axx1c2d", "a?b*c*d", False),
])
def test_kernel_semantics(name, field, expected):
    assert matches(name, field) is expected


def test_ranges_compare_plain_char():
    """Above 0x7f the answer depends on whether the machine's char is signed."""
    assert matches("\xe9", "[a-z]", signed_char=False) is False
    assert matches("\xe9", "[\x80-\xff]", signed_char=False) is True
    # Signed: 0xe9 is -23, 0x80 is -128, 0xff is -1: still inside; but [a-\xff] is empty.
    assert matches("\xe9", "[\x80-\xff]", signed_char=True) is True
    assert matches("\xe9", "[a-\xff]", signed_char=True) is False
    assert matches("\xe9", "[a-\xff]", signed_char=False) is True
    # amd64's signed char is the default, and holds after a star too.
    assert matches("\xe9", "[a-\xff]") is False and dglob.matcher("[a-\xff]")("\xe9") is False
    assert matches("x\xe9", "*[a-\xff]", signed_char=True) is False
    assert matches("x\xe9", "*[a-\xff]", signed_char=False) is True


def test_depth_limit():
    assert matches("abcdefghi", "*a*b*c*d*e*f*g*h*")
    with pytest.raises(GlobDepthError):
        matches("abcdefghij", "*a*b*c*d*e*f*g*h*i*j")


def test_only_glob_characters_make_a_glob():
    assert dglob.is_glob("a?b") and dglob.is_glob("a[b") and dglob.is_glob("a\\b") and dglob.is_glob("*")
    assert not dglob.is_glob("a]b!c-d.e`f")


_PATTERNS = st.text(alphabet="ab$?*", min_size=1, max_size=8)
_NAMES = st.text(alphabet="ab$", max_size=8)


@settings(max_examples=400, deadline=None)
@given(name=_NAMES, field=_PATTERNS)
def test_fast_matchers_equal_the_port(name, field):
    """The run-comparing and regex matchers agree with the line-by-line port of dtrace_match_glob."""
    if len([r for r in field.split("*")]) - 1 > dglob.MAX_DEPTH:
        return
    port = _match(name + NUL, field + NUL, 0, True)
    assert port >= 0
    assert matches(name, field) is (port == 1)


def test_two_negated_sets():
    """tracebridge's own narrowed fields carry several ``[!x]`` sets: each is read from its own place."""
    assert matches("a$b$c", "a[!x]b[!y]c")
    assert not matches("a$b$c", "a[!x]b[!$]c")
    assert matches("a$b$c", "a[!x]b[!y]c", signed_char=False)


def test_star_spans_any_character():
    """The kernel's ``*`` takes every byte, newlines included (the regex path must too)."""
    assert matches("a\nb\nc\nd", "a*b*c*d")
    assert matches("a\nb", "a*b")
    assert matches("x\n", "x*")


def test_consecutive_stars_are_one_level():
    """``**...*`` counts once against the depth limit, in the port as in the fast paths."""
    many = "*" * (dglob.MAX_DEPTH + 4)
    assert matches("ab", "[a]" + many + "b")
    assert matches("ab", "a" + many + "b")
    assert matches("abcdefghi", "*a*b*c*d*e*f*g*h**")


def test_depth_limit_on_every_path():
    """Eight stars that each need a search are within the limit, nine are the kernel's error,
    whichever matcher runs (a trailing star needs no search and does not count)."""
    eight = "".join("*" + c for c in "abcdefgh")
    assert matches("xabcdefgh", eight) and matches("xabcdefgh", eight + "*")
    with pytest.raises(GlobDepthError, match=r"more than 8 nested '\*'"):
        matches("xabcdefghi", eight + "*i")
    with pytest.raises(GlobDepthError, match=r"more than 8 nested '\*'"):
        matches("xabcdefghi", "[x]" + eight + "*i")
    assert matches("xabcdefgh", "[x]" + eight)
