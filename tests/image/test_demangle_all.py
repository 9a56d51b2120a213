"""demangle_all and demangle_names (the bulk paths) answer exactly as demangle_symbol does, name by name.

On every committed module's names, on names with control characters, on
names the Rust demangler refuses, and on generated ones, with both Rust
backends (pyderust and the pure-Python package), on the compiled core and
on the pure-Python path; and the native bulk steps give what their twins give.
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
def test_every_module(backend, path, each_path):
    names = [f.name for f in open_module(path).functions]
    assert demangle_all(names) == one_by_one(names)


def test_odd_names_and_repeats(backend, each_path):
    names = ODD + ODD[::-1]
    demangle_symbol.cache_clear()
    assert demangle_all(names) == one_by_one(names)
    assert_bulk_names(names)


@pytest.mark.parametrize("plain", [[], PLAIN[:4], PLAIN])
def test_names_in_bulk(backend, plain, each_path):
    assert_bulk_names(plain + ODD + plain)
    assert_bulk_names(plain)


def test_a_control_character_in_one_name_is_escaped_there_only(backend, each_path):
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
    from tracebridge.support import native

    core = native.core
    try:
        for native.core in {core, None}:  # the compiled core where it is built, and the pure path
            demangle_symbol.cache_clear()
            assert demangle_all(names) == one_by_one(names)
            assert_bulk_names(names + PLAIN[:3])
    finally:
        native.core = core


def test_a_cpp_name_among_printable_names_keeps_its_cpp_reading(backend, each_path):
    """All printable, so the bulk path trusts its Rust answers: a C++ name the Rust demangler refuses
    (LLVM's, as in the toolchain's own librustc_driver) must still reach demangle_symbol and read as C++."""
    names = ["_ZN4llvm5Value7setNameERKNS_5TwineE", "_ZN4core3fmt5write17h0123456789abcdefE", "main"]
    assert_bulk_names(names)
    assert demangle_names(names)[1] == [demangle.CPP, demangle.RUST_LEGACY, demangle.C]


def test_names_over_the_size_limit_stay_mangled_in_bulk(backend, each_path):
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


# The native bulk steps (src/native/demangle_batch.h) and their pure-Python twins, on the same names.

def module_names() -> list[str]:
    return [f.name for path in MODULE_PATHS if path.stem != "rem_stripped" for f in open_module(path).functions]


def names_at_the_limit() -> list[str]:
    """Valid legacy names of exactly MAX_NAME characters and of one more: the first is given to the demangler."""
    n = MAX_NAME - len("_ZN3rem") - len("17h0123456789abcdefE") - 5
    return [f"_ZN3rem{n}{'a' * n}17h0123456789abcdefE", f"_ZN3rem{n + 1}{'a' * (n + 1)}17h0123456789abcdefE", "main"]


@pytest.mark.parametrize("names", [module_names(), ODD + PLAIN + ODD, PLAIN, [], names_at_the_limit()],
                         ids=["modules", "odd", "plain", "none", "limit"])
def test_rust_demangled_native_is_its_twin(backend, native_core, names):
    """The same names, schemes and indices left to demangle_symbol, from the compiled core and from Python."""
    assert native_core.rust_demangled(demangle._rust_call, list(names), MAX_NAME, demangle.MAX_DEMANGLED,
                                      demangle.RUST_V0, demangle.RUST_LEGACY, demangle.C) == demangle._rust_demangled(names)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(["_R", "_ZN", "_Z", "", "R", "__R", "ZN"]).flatmap(
    lambda prefix: st.text(alphabet="NvCsMtXYIEB_0123456789abcfoh\n\x7f\x9c\u2028\u00e9 ", max_size=40).map(
        lambda tail: prefix + tail)), max_size=12))
def test_rust_demangled_native_is_its_twin_on_generated_names(names):
    from tracebridge.support import native

    if native.core is None:
        pytest.skip(native.status_line())
    assert native.core.rust_demangled(demangle._rust_call, names, MAX_NAME, demangle.MAX_DEMANGLED, demangle.RUST_V0,
                                      demangle.RUST_LEGACY, demangle.C) == demangle._rust_demangled(names)


def test_rust_demangled_cuts_at_both_limits(native_core):
    """A name longer than max_name is not given to the demangler; an answer longer than max_demangled,
    None, or an exception is no answer; anything but an Exception goes on."""
    names = ["_RNvCs1_3foo3bar", "_ZN3foo3barE", "_Rlong", "main"]
    answers = {"_RNvCs1_3foo3bar": "foo::bar", "_ZN3foo3barE": None}

    def demangler(name):
        if name == "_Rlong":
            return "x" * 9  # one character too many for max_demangled 8
        return answers[name]

    assert native_core.rust_demangled(demangler, names, 16, 8, "v0", "legacy", "c") == (
        ["foo::bar", "_ZN3foo3barE", "_Rlong", "main"], ["v0", "c", "c", "c"], [1, 2])
    assert native_core.rust_demangled(demangler, names, 15, 9, "v0", "legacy", "c") == (
        ["_RNvCs1_3foo3bar", "_ZN3foo3barE", "x" * 9, "main"], ["c", "c", "v0", "c"], [0, 1])

    def interrupted(name):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        native_core.rust_demangled(interrupted, names, 100, 100, "v0", "legacy", "c")
    with pytest.raises(TypeError):
        native_core.rust_demangled(demangler, [b"_R"], 100, 100, "v0", "legacy", "c")


@pytest.mark.parametrize("names", [module_names(), ODD + PLAIN, []], ids=["modules", "odd", "none"])
def test_demangle_names_are_demangle_alls(backend, each_path, names):
    names = names + names[:50]  # repeats too
    items = demangle_all(names)
    assert demangle_names(names) == ([item.name for item in items], [item.scheme for item in items])


#: Demangled paths and the crate crate_of finds in each: the first identifier followed by "::".
CRATE_PATHS = ["core::fmt::write", "<[u32; 4] as rem::em::RxDesc>::len", "9ab::c", "a-b::c", "::x", "x::", "x:y::z",
               "no path", "", "<T as café::A>::f", "café::x", "_::a", "a1_b::c", "é9::x::y", "x\u00e9y::z", "<u8>::f",
               "a:::b", "ab", "a b::c"]


@pytest.mark.parametrize("names", [CRATE_PATHS, [item.name for item in demangle_all(module_names())]],
                         ids=["paths", "modules"])
def test_crates_of_is_each_names_crate(each_path, names):
    schemes = [demangle.RUST_V0, demangle.RUST_LEGACY, demangle.C, demangle.CPP, demangle.RUST_NAME] * len(names)
    schemes = schemes[:len(names)]
    expected = [demangle.crate_of(name) if scheme in (demangle.RUST_V0, demangle.RUST_LEGACY) else None
                for name, scheme in zip(names, schemes)]
    assert demangle.crates_of(names, schemes) == expected
    rust = [demangle.RUST_V0] * len(names)
    assert demangle.crates_of(names, rust) == list(map(demangle.crate_of, names))


@settings(max_examples=500, deadline=None)
@given(st.lists(st.text(alphabet="ab_9:<> \u00e9", max_size=12), max_size=8))
def test_crates_of_native_is_its_twin_on_generated_paths(names):
    from tracebridge.support import native

    if native.core is None:
        pytest.skip(native.status_line())
    rust = [demangle.RUST_LEGACY] * len(names)
    assert native.core.crates_of(names, rust, demangle._RUST_SCHEMES, demangle.crate_of) == list(
        map(demangle.crate_of, names))


def test_crates_of_checks_its_columns(native_core):
    with pytest.raises(ValueError):
        native_core.crates_of(["a::b"], [], demangle._RUST_SCHEMES, demangle.crate_of)


def test_answers_past_max_demangled_are_no_answers(monkeypatch):
    """An answer of MAX_DEMANGLED characters is kept, one of more is none (the name takes demangle_symbol,
    which bounds it the same way), on both paths of the bulk step."""
    from tracebridge.support import native

    names = ["_RNvCs1_3foo3bar", "_RNvCs1_3foo3baz", "_RNvCs1_3foo3qux"]
    answers = {names[0]: "x" * demangle.MAX_DEMANGLED, names[1]: "y" * (demangle.MAX_DEMANGLED + 1), names[2]: None}
    monkeypatch.setattr(demangle, "_rust_call", answers.get)
    expected = (["x" * demangle.MAX_DEMANGLED, names[1], names[2]], [demangle.RUST_V0, demangle.C, demangle.C], [1, 2])
    assert demangle._rust_demangled(names) == expected
    if native.core is not None:
        assert native.core.rust_demangled(demangle._rust_call, names, MAX_NAME, demangle.MAX_DEMANGLED, demangle.RUST_V0,
                                          demangle.RUST_LEGACY, demangle.C) == expected
