"""Description fields: lexer-safe, at most 191 characters, selecting exactly one function."""

from __future__ import annotations

import re

from dcheck import PSPEC
from tracebridge.probes.dglob import matches
from tracebridge.probes.probedesc import (FUNCTION_MAX, FunctionField, FunctionFields, d_text, description,
                                          literal_field, module_field)

HASH = "17h0123456789abcdefE"


def test_literal_field():
    assert literal_field("_ZN3rem2em16Adapter$LT$T$GT$3new" + HASH) == "_ZN3rem2em16Adapter?LT?T?GT?3new" + HASH
    assert literal_field("a:b*c[d]e\\f g\"h\xe9") == "a?b?c?d?e?f?g?h?"
    assert literal_field("_RNvCs1234_3rem3foo") == "_RNvCs1234_3rem3foo"


def test_d_text_cannot_break_out():
    hostile = 'x*/ y /* z "q" \\ \n\t% <script>\xe9\u20ac'
    out = d_text(hostile)
    assert "*/" not in out and "/*" not in out and '"' not in out and "\n" not in out and "%" not in out
    assert out.isascii() and out.isprintable()
    assert "<script>" in out  # harmless in D, kept readable
    assert d_text("rem::em::rx::Adapter<T>::new") == "rem::em::rx::Adapter<T>::new"


def test_collisions_are_narrowed_or_refused():
    fields = FunctionFields(["a$b", "axb", "a$c", "a.b"])
    field = fields.field("a$b").text
    assert field == "a[!.x]b"
    assert [n for n in ("a$b", "axb", "a$c", "a.b") if matches(n, field)] == ["a$b"]
    # "a$b" and "a<b" differ only where neither can be written literally.
    refused = FunctionFields(["a$b", "a<b"]).field("a$b")
    assert refused.text is None and "another function" in refused.problem


def test_long_names_keep_the_hash_and_stay_unique():
    stem = "_ZN" + "x" * 250
    names = [stem + HASH, stem + "17h0123456789abcdeeE", "_ZN" + "y" * 250 + HASH]
    fields = FunctionFields(names)
    for name in names:
        field = fields.field(name).text
        assert len(field) <= FUNCTION_MAX and "*" in field
        assert field.endswith(name[-20:])
        assert [n for n in names if matches(n, field)] == [name]


def test_a_name_of_a_length_no_function_has():
    """A field asked for a name outside the module, of a length none of its names has: no name can match it."""
    fields = FunctionFields(["a$b", "axb"])
    assert fields.field("ab$cd") == FunctionField("ab?cd")


def test_same_name_twice_is_marked():
    field = FunctionFields(["dup", "dup", "other"]).field("dup")
    assert field.text == "dup" and field.duplicates == 2


def test_descriptions_pass_the_lexer():
    text = description(module_field("if_rem"), literal_field("_ZN3foo$LT$T$GT$3bar" + HASH), "entry")
    assert PSPEC.fullmatch(text) and "$" not in text
    assert module_field("x" * 80).endswith("*") and len(module_field("x" * 80)) == 63
    assert re.fullmatch(r"[a-z_?]+", module_field("if rem+x"))


def test_fields_are_exact_when_many_names_share_a_head():
    # More names share each head than the prefix slice is scanned for, so the
    # length/tail buckets narrow the search instead; the answer must not change.
    short = [f"_ZN4core3ptr13drop_in_place$LT${kind}$GT$17h{i:016x}E"
             for i in range(40) for kind in ("A", "B$u20$C", "Vec")]
    short += [name.replace("$", "<") for name in short[:30]]  # differ only where "?" stands
    long_head = "_RNvMs1_" + "Cs4abcd_9rustc_mid" * 12
    long = [f"{long_head}{i % 7}x{'y' * (i % 5)}Cs1JQ_18rustc_hir_analysis" for i in range(150)]
    names = short + long
    fields = FunctionFields(names)
    for name in dict.fromkeys(names):
        field = fields.field(name)
        if field.text is None:
            assert "another function" in field.problem or "no glob" in field.problem
            continue
        assert len(field.text) <= FUNCTION_MAX
        assert [n for n in dict.fromkeys(names) if matches(n, field.text)] == [name], (name, field.text)


def test_characters_beyond_latin1():
    """A name decoded as Latin-1 never holds them, but a caller's text may: ``?`` in a field,
    the UTF-8 bytes in D text; a Latin-1 character is one octal escape."""
    assert literal_field("a\u20acb") == "a?b"
    assert d_text("\xe9") == "\\351"
    assert d_text("\u0100") == "\\304\\200"
    assert d_text("a\u20acb") == "a\\342\\202\\254b"


def test_module_field_of_exactly_63_characters_stays_whole():
    assert module_field("m" * 63) == "m" * 63
    assert module_field("m" * 64) == "m" * 62 + "*"


def test_fixed_length_is_the_length_of_every_matching_name():
    """``_fixed_length`` sizes the candidate search for ``*``-free fields; checked against the
    kernel matcher on one string each field matches (a set or an escape stands for one character)."""
    from tracebridge.probes.probedesc import _fixed_length

    for field, sample in [("abc", "abc"), ("a?c", "abc"), ("a\\?c", "a?c"), ("a[!x]c", "abc"),
                          ("[!.x]b[!y]", "abz"), ("a[]]c", "a]c"), ("a[!]]c", "axc"), ("a[\\]]c", "a]c"),
                          ("[x\\]y]z", "yz"), ("a[x\\]]c", "a]c"), ("[ab][cd]", "ac"), ("\\\\x", "\\x")]:
        assert matches(sample, field), field
        assert _fixed_length(field) == len(sample), field
    for malformed in ("a[bc", "a[!", "a[", "a[\\", "[]"):
        assert _fixed_length(malformed) is None, malformed
