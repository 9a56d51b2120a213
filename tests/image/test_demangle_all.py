"""demangle_all and demangle_names (the bulk paths) answer exactly as demangle_symbol does, name by name.

On every committed module's names, on names with control characters, on
names the Rust demangler refuses, and on generated ones, with both Rust
backends (pyderust and the pure-Python package).
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fixture_paths import EDGE, MODULES
from tracebridge.image import demangle
from tracebridge.image.demangle import MAX_NAME, demangle_all, demangle_names, demangle_symbol
from tracebridge.image.elf import open_module

MODULE_PATHS = sorted([*MODULES.glob("*.ko"), *EDGE.glob("*.ko"), *(MODULES / "nightly").glob("*.ko")])
BACKENDS = ["demangle"] + (["pyderust"] if demangle._pyderust is not None else [])
#: Real v0 and legacy names, and names that start like them but are not (or hold control characters).
ODD = ["_R", "_Z", "_ZN", "_RNvCs123_4core3fmt", "_ZN3foo3barE", "_ZN3foo3barEv", "_ZN4core3fmt5write17h0123456789abcdefE",
       "_RNvCsa_3a\n3foo", "_ZN3a\x1b4b17h0123456789abcdefE", "_RNvNtCs1234_7mycrate3foo3bar", "_R" + "x" * MAX_NAME,
       "_ZN" + "3abc" * (MAX_NAME // 4) + "E", "main", "", "R", "__RNvCs1_3foo3bar", "ZN3foo3barE"]
#: Names that start like no mangled form or like one they are not, printable or not: C as they are, or escaped.
PLAIN = ["__mtx_lock_sleep", "_mtx_lock", "Zfoo", "Rfoo", "R", "Z", "ZNfoo", "__Z3foov", "_Z3foov", "__ZN3foo3barE",
         "a\tb", "caf\u00e9", "x\x7fy", "f\u2028", "x" * (MAX_NAME + 1), "_" + "x" * MAX_NAME]


def assert_bulk_names(names: list[str]) -> None:
    expected = one_by_one(names)
    assert demangle_names(names) == ([item.name for item in expected], [item.scheme for item in expected])


@pytest.fixture(params=BACKENDS)
def backend(request):
    before = demangle.BACKEND
    demangle.use_backend(request.param)
    yield request.param
    demangle.use_backend(before)


def one_by_one(names: list[str]) -> list:
    demangle_symbol.cache_clear()
    return [demangle_symbol(name) for name in names]


@pytest.mark.parametrize("path", [p for p in MODULE_PATHS if p.stem != "rem_stripped"], ids=lambda p: p.name)
def test_every_module(backend, path):
    names = [f.name for f in open_module(path).functions]
    assert demangle_all(names) == one_by_one(names)


def test_odd_names_and_repeats(backend):
    names = ODD + ODD[::-1]
    demangle_symbol.cache_clear()
    assert demangle_all(names) == one_by_one(names)
    assert_bulk_names(names)


@pytest.mark.parametrize("plain", [[], PLAIN[:4], PLAIN])
def test_names_in_bulk(backend, plain):
    assert_bulk_names(plain + ODD + plain)
    assert_bulk_names(plain)


def test_a_control_character_in_one_name_is_escaped_there_only(backend):
    names = ["_RNvCs1_3foo3bar", "_ZN4a\x1bbc3foo17h0123456789abcdefE"]
    demangle_symbol.cache_clear()
    out = demangle_all(names)
    assert out == one_by_one(names)
    assert_bulk_names(names)
    assert out[0].name == "foo::bar" and "\x1b" not in out[1].name and "\\x1b" in out[1].name


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(["_R", "_ZN", "_Z", ""]).flatmap(
    lambda prefix: st.text(alphabet="NvCsMtXYIEB_0123456789abcfoh\n\x7f\x9c\u2028", max_size=40).map(
        lambda tail: prefix + tail)), max_size=12))
def test_generated_names(names):
    demangle_symbol.cache_clear()
    assert demangle_all(names) == one_by_one(names)
    assert_bulk_names(names + PLAIN[:3])


def test_a_cpp_name_among_printable_names_keeps_its_cpp_reading(backend):
    """All printable, so the bulk path trusts its Rust answers: a C++ name the Rust demangler refuses
    (LLVM's, as in the toolchain's own librustc_driver) must still reach demangle_symbol and read as C++."""
    names = ["_ZN4llvm5Value7setNameERKNS_5TwineE", "_ZN4core3fmt5write17h0123456789abcdefE", "main"]
    assert_bulk_names(names)
    assert demangle_names(names)[1] == [demangle.CPP, demangle.RUST_LEGACY, demangle.C]


def test_names_over_the_size_limit_stay_mangled_in_bulk(backend):
    """A valid legacy name of MAX_NAME characters is demangled, one character more is not: the Rust
    demangler would read it, so the bulk path must keep it from it, as demangle_symbol does."""
    n = MAX_NAME - len("_ZN3rem") - len("17h0123456789abcdefE") - 5
    exact = f"_ZN3rem{n}{'a' * n}17h0123456789abcdefE"
    longer = f"_ZN3rem{n + 1}{'a' * (n + 1)}17h0123456789abcdefE"
    assert (len(exact), len(longer)) == (MAX_NAME, MAX_NAME + 1)
    assert demangle_names([exact, longer, "main"]) == (["rem::" + "a" * n, longer, "main"],
                                                       [demangle.RUST_LEGACY, demangle.C, demangle.C])
    assert_bulk_names([longer, exact, "_RNvCs1_3foo3bar"])


@settings(max_examples=300, deadline=None)
@given(st.text(st.characters(max_codepoint=0x3000)))
def test_printable_ascii_is_isascii_and_isprintable(text):
    assert demangle._printable_ascii(text) == (text.isascii() and text.isprintable())


@pytest.mark.parametrize("text", ["", "a b~", "a\tb", "\x1f", "\x7f", " ", "~", "caf\u00e9", "\x80", "\x00"])
def test_printable_ascii_edges(text):
    assert demangle._printable_ascii(text) == (text.isascii() and text.isprintable())


def test_full_is_a_cache_no_part_of_the_name(backend):
    """Asking one of two equal answers for its ``full`` form keeps them equal."""
    names = ["_ZN3foo3bar17h0123456789abcdefE", "_RNvCs1234_7mycrate3foo", "_ZN3foo3barEv", "main"]
    first, second = demangle_all(names), one_by_one(names)
    assert [item.full for item in first] == ["foo::bar::h0123456789abcdef", "mycrate[3c1c0]::foo", "foo::bar()", "main"]
    assert first == second
