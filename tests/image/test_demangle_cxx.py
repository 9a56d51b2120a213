"""C++ names read the same through LLVM's demangler (pycxxfilt) and the pure-Python package.

The pure ``demangle`` package is the reference: it is what runs where
pycxxfilt has no wheel (FreeBSD).  LLVM reads a name only where the two were
seen to agree (``_cpp_llvm``); these tests run both over real names
(tests/data/demangle/cxx-names.txt.gz, from librustc_driver, libstdc++,
libLLVM and libclang-cpp) and over generated ones, and check that the names
LLVM would read otherwise, or could spell without bound, never reach it.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tracebridge.image import demangle

CORPUS = Path(__file__).parents[1] / "data" / "demangle" / "cxx-names.txt.gz"
NAMES = gzip.decompress(CORPUS.read_bytes()).decode().splitlines()
needs_pycxxfilt = pytest.mark.skipif(demangle._pycxxfilt is None, reason="pycxxfilt is not installed")


@needs_pycxxfilt
def test_real_names_read_alike():
    llvm = [demangle._cpp_llvm(name) for name in NAMES]
    pure = [demangle._cpp_pure(name) for name in NAMES]
    assert [spelled if spelled is not None else p for spelled, p in zip(llvm, pure)] == pure
    assert [demangle._cpp_both(name) for name in NAMES] == pure
    assert sum(spelled is not None for spelled in llvm) > 0.85 * len(NAMES)  # LLVM reads most (long names are over-sampled)


@needs_pycxxfilt
def test_the_names_llvm_spells_otherwise_take_the_package():
    """Real names where LLVM alone would differ from the package: lambdas' closure types (``Ul``), and
    names LLVM refuses (transaction clones)."""
    def raw(name):
        try:
            return demangle._pycxxfilt.itanium_demangle(name) or name
        except ValueError:
            return name

    differ = [name for name in NAMES if "Ul" in name and raw(name) != demangle._cpp_pure(name)]
    assert len(differ) >= 6
    assert [demangle._cpp_both(name) for name in differ] == [demangle._cpp_pure(name) for name in differ]
    refused = [name for name in NAMES if name.startswith("_ZGTt")]
    assert len(refused) >= 69 and all(raw(name) == name for name in refused)
    assert all(demangle._cpp_both(name).startswith("transaction clone for ") for name in refused)


@needs_pycxxfilt
def test_both_cpp_backends_give_the_same_symbols():
    """demangle_symbol and the bulk path with each C++ backend, on a sample of the real names."""
    sample = NAMES[::40] + ["_ZGTtNKSt11logic_error4whatEv", "_Z3a\x1bbv", "_ZN3foo3barEv.cold"]
    previous, found = demangle.CPP_BACKEND, {}
    try:
        for backend in ("pycxxfilt", "demangle"):
            demangle.use_cpp_backend(backend)
            found[backend] = [demangle.demangle_symbol(name) for name in sample], demangle.demangle_names(sample)
    finally:
        demangle.use_cpp_backend(previous)
    assert found["pycxxfilt"] == found["demangle"]
    items = found["demangle"][0]
    assert sum(item.scheme == demangle.CPP for item in items) > 0.9 * len(sample)
    assert (items[-3].name, items[-2].name, items[-1].name) == (
        "transaction clone for std::logic_error::what() const", "a\\x1bb()", "foo::bar() (.cold)")


def _seq(index: int) -> str:
    """The substitution ``S<seq-id>_`` of the index-th entry (base 36; the first is ``S_``)."""
    if index < 0:
        return "S_"
    digits = ""
    while True:
        digits = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"[index % 36] + digits
        index //= 36
        if not index:
            return f"S{digits}_"


def _doubling(levels: int, identifier: str = "a") -> str:
    """``f(A<int, int>, A<A<int, int>, A<int, int>>, ...)``: each parameter spells the one before twice."""
    return "_Z1f" + f"{len(identifier)}{identifier}IiiE" + "".join(
        f"S_I{_seq(level - 1)}{_seq(level - 1)}E" for level in range(1, levels))


#: Identifiers with control and non-ASCII characters, each after an ``x``: a digit first would run into its length.
IDENTIFIER = st.text(st.characters(min_codepoint=1, max_codepoint=0x2FF), max_size=12).map(lambda i: "x" + i)
TYPES = st.sampled_from(["v", "i", "Pc", "RKi", "PFivE", "Dn", "e", "PKN3foo3barE", "St6size_t", "PDxFvvE"])
SUFFIXES = st.sampled_from(["", ".cold", ".isra.0", ".constprop.0", ".constprop.0.isra.0", ".part.1", ".llvm.123",
                            ".cold.1", "@GLIBCXX_3.4", "@@LLVM_22.1", ".\n", "."])
#: Deep names around the package's 256 levels: pointers, references, const, arrays, function
#: pointers, templates, thunks.
DEEP = [lambda k: f"_Z1f{'P' * k}i", lambda k: f"_Z1f{'R' * k}i", lambda k: f"_Z1f{'K' * k}i",
        lambda k: f"_Z1f{'A_' * k}i", lambda k: f"_Z1f{'PF' * k}v{'E' * k}", lambda k: f"_ZN{'1aI' * k}i{'E' * k}E",
        lambda k: f"_Z{'Th0_' * k}1fv"]


@st.composite
def cxx_names(draw) -> str:
    """Names of every shape that matters here: nested, templates, clones, versions, control and
    non-ASCII characters in identifiers (their lengths counted in characters or UTF-8 bytes),
    transaction clones, long and deep names, doublings, Mach-O's extra underscore."""
    kind = draw(st.sampled_from(["real", "nested", "template", "long", "deep", "doubling"]))
    if kind == "real":
        name = draw(st.sampled_from(NAMES))
    elif kind in ("nested", "template"):
        parts = "".join(f"{len(i.encode('utf-8'))}{i}" if draw(st.booleans()) else f"{len(i)}{i}"
                        for i in draw(st.lists(IDENTIFIER, min_size=2, max_size=4)))
        parameters = "".join(draw(st.lists(TYPES, min_size=1, max_size=4)))
        if kind == "template":  # a function template's name has its return type first, and T_ is its first argument
            arguments = "".join(draw(st.lists(TYPES, min_size=1, max_size=3)))
            parameters = draw(TYPES) + parameters + draw(st.sampled_from(["", "T_", "RKT_"]))
            name = f"_ZN{parts}I{arguments}EE{parameters}"
        else:
            name = f"_ZN{parts}E{parameters}"
        name = draw(st.sampled_from(["_Z", "_ZGTt"])) + name[2:]
    elif kind == "long":  # around _LLVM_MAX_NAME
        size = draw(st.integers(200, 260))
        name = f"_ZN3foo{size - 11}{'x' * (size - 11)}Ev"
    elif kind == "deep":
        name = draw(st.sampled_from(DEEP))(draw(st.integers(100, 300)))
    else:
        name = _doubling(draw(st.integers(2, 14)), "a" * draw(st.integers(1, 30)))
    return draw(st.sampled_from(["_Z", "__Z"])) + name[2:] + draw(SUFFIXES)


@needs_pycxxfilt
@settings(max_examples=400, deadline=None)
@given(cxx_names())
def test_generated_names_read_alike(name):
    assert demangle._cpp_both(name) == demangle._cpp_pure(name)


class _Recorder:
    """A stand-in for pycxxfilt: records every name it is handed, answers from a table."""

    def __init__(self, answers=None):
        self.seen: list[str] = []
        self.answers = answers or {}

    def itanium_demangle(self, name):
        self.seen.append(name)
        answer = self.answers.get(name, "spelled")
        if isinstance(answer, Exception):
            raise answer
        return answer


@pytest.fixture
def recorder(monkeypatch):
    stub = _Recorder()
    monkeypatch.setattr(demangle, "_pycxxfilt", stub)
    return stub


def test_names_llvm_may_read_otherwise_never_reach_it(recorder):
    size = demangle._LLVM_MAX_NAME
    fits, over = "_ZN3foo" + "x" * (size - 8) + "E", "_ZN3foo" + "x" * (size - 7) + "E"
    assert (len(fits), len(over)) == (size, size + 1)
    assert demangle._cpp_llvm(fits) == "spelled"
    for name in (over, "_Z1fUlvE_v", "_Z1fDxFvvE", "_Z1fv@GLIBC_2.2", "_Z1f\u00e9v", "_Z1f\udcffv"):
        assert demangle._cpp_llvm(name) is None, name
    assert recorder.seen == [fits]


def test_names_that_may_spell_past_the_bound_never_reach_llvm(recorder):
    """64 characters a character, doubled at every substitution or template parameter, times the
    length at every pack expansion: 64 * 64 << 12 and 64 * 64 * 64**2 are exactly the bound."""
    assert demangle._LLVM_MAX_SPELLING == 64 * 64 << 12
    base = "_Z1f"

    def padded(body):
        return base + body + "v" * (64 - len(base) - len(body))

    twelve, thirteen = padded("S_T0_S1A_" + "S_" * 9), padded("S_T0_S1A_" + "S_" * 10)
    packs2, packs3 = padded("DpDp"), padded("Dpsp" + "Dp")
    assert {len(twelve), len(thirteen), len(packs2), len(packs3)} == {64}
    assert demangle._cpp_llvm(twelve) == "spelled" and demangle._cpp_llvm(packs2) == "spelled"
    assert demangle._cpp_llvm(thirteen) is None and demangle._cpp_llvm(packs3) is None
    assert demangle._cpp_llvm(_doubling(14)) is None
    assert recorder.seen == [twelve, packs2]


def test_llvm_answers_past_the_bound_or_refused_take_the_package(recorder):
    limit = demangle.MAX_DEMANGLED
    recorder.answers.update({"_Z1av": "a" * limit, "_Z1bv": "b" * (limit + 1), "_Z1cv": None,
                             "_Z1dv": ValueError("invalid Itanium mangled name: _Z1dv")})
    assert demangle._cpp_llvm("_Z1av") == "a" * limit
    assert demangle._cpp_llvm("_Z1bv") is None and demangle._cpp_llvm("_Z1cv") is None
    assert demangle._cpp_llvm("_Z1dv") is None
    assert demangle._cpp_both("_Z1dv") == "d()" and demangle._cpp_both("_Z1av") == "a" * limit


def test_cpp_backend_choice(monkeypatch):
    with pytest.raises(ValueError, match="^unknown C\\+\\+ demangler backend 'cxxfilt'$"):
        demangle.use_cpp_backend("cxxfilt")
    previous = demangle.CPP_BACKEND
    monkeypatch.setattr(demangle, "_pycxxfilt", _Recorder({"_Z3foov": "foo() from LLVM"}))
    try:
        demangle.use_cpp_backend("pycxxfilt")
        assert (demangle.CPP_BACKEND, demangle.demangle_symbol("_Z3foov").name) == ("pycxxfilt", "foo() from LLVM")
        demangle.use_cpp_backend("demangle")  # and the cache of the other backend's answers is cleared
        assert (demangle.CPP_BACKEND, demangle.demangle_symbol("_Z3foov").name) == ("demangle", "foo()")
        monkeypatch.setattr(demangle, "_pycxxfilt", None)
        with pytest.raises(ValueError, match="^pycxxfilt is not installed$"):
            demangle.use_cpp_backend("pycxxfilt")
        assert demangle.CPP_BACKEND == "demangle"
    finally:
        monkeypatch.undo()
        demangle.use_cpp_backend(previous)
