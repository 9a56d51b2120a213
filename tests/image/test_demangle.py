"""Both demangler backends give rustc-demangle's names; bad names come back unchanged."""

from __future__ import annotations

import pytest
from hypothesis import given, settings, strategies as st

from fixture_paths import EXPECTED
from tracebridge.image import demangle
def rustfilt_pairs(suffix: str) -> list[tuple[str, str]]:
    pairs = []
    for path in sorted(EXPECTED.glob(f"*.{suffix}.txt")):
        for line in path.read_text().splitlines():
            if "\t" in line:
                pairs.append(tuple(line.split("\t", 1)))
    return pairs


@pytest.fixture(params=["pyderust", "demangle"])
def backend(request):
    previous = demangle.BACKEND
    demangle.use_backend(request.param)
    yield request.param
    demangle.use_backend(previous)


def test_both_backends_match_rustfilt(backend):
    plain = rustfilt_pairs("rustfilt")
    full = dict(rustfilt_pairs("rustfilt-hash"))
    assert len(plain) > 100
    for mangled, expected in plain:
        d = demangle.demangle_symbol(mangled)
        assert d.name == expected, (backend, mangled)
        assert d.full == full[mangled], (backend, mangled)


@pytest.mark.parametrize(
    "mangled, scheme, name",
    [
        ("_ZN3foo3bar17h0123456789abcdefE", "rust-legacy", "foo::bar"),
        ("__ZN3foo3bar17h0123456789abcdefE", "rust-legacy", "foo::bar"),
        ("ZN3foo3bar17h0123456789abcdefE", "rust-legacy", "foo::bar"),
        ("_ZN3foo3bar17h0123456789abcdefE.llvm.1234567", "rust-legacy", "foo::bar"),
        ("_RNvCs1234_7mycrate3foo", "rust-v0", "mycrate::foo"),
        ("_ZN3foo3barEv", "c++", "foo::bar()"),
        ("_ZNK3foo3barEv", "c++", "foo::bar() const"),
        ("rem_attach", "c", "rem_attach"),
        ("_ZN3foo", "c", "_ZN3foo"),
        ("_RNvC", "c", "_RNvC"),
        ("", "c", ""),
    ],
)
def test_schemes(backend, mangled, scheme, name):
    d = demangle.demangle_symbol(mangled)
    assert (d.scheme, d.name) == (scheme, name)


def test_legacy_hash_and_crate():
    d = demangle.demangle_symbol("_ZN3drv2em16Adapter$LT$T$GT$8rx_frame17h0123456789abcdefE")
    assert d.name == "drv::em::Adapter<T>::rx_frame"
    assert d.hash == "0123456789abcdef"
    assert d.crate == "drv"
    assert d.short == "Adapter<T>::rx_frame"
    assert d.path == ("drv", "em", "Adapter<T>", "rx_frame")


def test_generic_instances_stay_apart():
    a = demangle.demangle_symbol("_ZN3drv7Adapter8rx_frame17h0123456789abcdefE")
    b = demangle.demangle_symbol("_ZN3drv7Adapter8rx_frame17hfedcba9876543210E")
    assert a.name == b.name
    assert demangle.display_names([a, b]) == ["drv::Adapter::rx_frame#01234567", "drv::Adapter::rx_frame#fedcba98"]


def test_impl_crate():
    d = demangle.demangle_symbol("_ZN64_$LT$$u5b$u32$u3b$$u20$4$u5d$$u20$as$u20$rem..em..rx..RxDesc$GT$9from_word17h34f214ee447be37fE")
    assert d.name == "<[u32; 4] as rem::em::rx::RxDesc>::from_word"
    assert d.crate == "rem"
    assert d.path == ("<[u32; 4] as rem::em::rx::RxDesc>", "from_word")


@pytest.mark.parametrize("size", [1000, 100_000])
def test_huge_and_hostile_names_are_bounded(backend, size):
    for name in ("_ZN" + "3foo" * size + "E", "_RNv" + "B_" * size, "_R" + "\udcff" * 10, "_ZN\x00E"):
        d = demangle.demangle_symbol(name)
        assert isinstance(d.name, str)


def test_hash_before_an_llvm_suffix():
    """ThinLTO renames local copies ``<symbol>.llvm.<n>``: the legacy hash is still the one before it."""
    d = demangle.demangle_symbol("_ZN3rem3foo17h0123456789abcdefE.llvm.12345")
    assert (d.name, d.hash) == ("rem::foo", "0123456789abcdef")
    twins = [demangle.demangle_symbol("_ZN3rem3foo17h0123456789abcdefE.llvm.1"),
             demangle.demangle_symbol("_ZN3rem3foo17hfedcba9876543210E")]
    assert demangle.display_names(twins) == ["rem::foo#01234567", "rem::foo#fedcba98"]


def test_cpp_with_an_extra_underscore():
    """Mach-O adds a leading underscore: ``__Z`` is still C++."""
    d = demangle.demangle_symbol("__ZN3foo3barEv")
    assert (d.scheme, d.name) == (demangle.CPP, "foo::bar()")


def test_fn_pointer_arrow_is_no_closing_bracket():
    assert demangle.split_path("rem::Q<fn() -> core::num::Wrapping<u8>>::push") == (
        "rem", "Q<fn() -> core::num::Wrapping<u8>>", "push")


def test_name_of_exactly_the_size_limit_is_demangled(backend):
    n = demangle.MAX_NAME - len("_ZN3rem") - len("17h0123456789abcdefE") - 5
    name = f"_ZN3rem{n}{'a' * n}17h0123456789abcdefE"
    assert len(name) == demangle.MAX_NAME
    assert demangle.demangle_symbol(name).name == "rem::" + "a" * n
    longer = f"_ZN3rem{n + 1}{'a' * (n + 1)}17h0123456789abcdefE"
    assert len(longer) == demangle.MAX_NAME + 1
    assert demangle.demangle_symbol(longer).scheme == demangle.C  # one over: left alone


@settings(max_examples=400, deadline=None)
@given(name=st.one_of(st.text(max_size=12), st.from_regex(r"[ -~]{0,12}", fullmatch=True),
                      st.sampled_from(["", "_", "R", "Z", "_ZN3foo3barE", "_RNvC3foo3bar", "ZN3a1bE", "0x1f", "a b"])))
def test_plain_c_names_are_what_demangle_symbol_leaves_alone(name):
    """The shortcut symbol_frame takes agrees with demangle_symbol on every name it takes."""
    if demangle.is_plain_c(name):
        shown = demangle.demangle_symbol(name)
        assert (shown.scheme, shown.name, shown.crate) == (demangle.C, name, None)
def test_crate_with_a_non_ascii_name(backend):
    """v0 spells identifiers in Punycode (``u7caf_dma``: ``café``); the crate is the first component,
    though it is no ASCII identifier."""
    d = demangle.demangle_symbol("_RNvNtCs1234_u7caf_dma1x1f")
    assert (d.name, d.scheme, d.crate) == ("café::x::f", demangle.RUST_V0, "café")


def test_names_without_a_crate_path():
    assert demangle.crate_of("rem_intr") is None
    assert demangle.split_path("rem::X::Xf") == ("rem", "X", "Xf")  # letters are no brackets
    assert demangle.split_path("rem::Q<X::Y>::f") == ("rem", "Q<X::Y>", "f")


def test_strip_hashes_says_none_when_nothing_is_left_or_taken():
    assert demangle.strip_hashes("rem::em::poll") is None  # no hash
    assert demangle.strip_hashes("::h0123456789abcdef") is None  # nothing but a hash
    assert demangle.strip_hashes("rem::em::poll::h0123456789abcdef") == "rem::em::poll"


def test_plain_c_names_keep_their_symbol():
    d = demangle.demangle_symbol("rem_intr")
    assert (d.mangled, d.scheme, d.name, d.full) == ("rem_intr", demangle.C, "rem_intr", "rem_intr")


def test_unknown_backend_is_refused():
    with pytest.raises(ValueError, match="^unknown demangler backend 'rustfilt'$"):
        demangle.use_backend("rustfilt")


class _Binding:
    """A stand-in for a demangler binding: answers from a table, raises for anything else.

    The pyderust bindings are optional; what is tested here is tracebridge's own
    bound on their output, which must keep every backend's answers the same (MAX_DEMANGLED)."""

    def __init__(self, answers):
        self.answers = answers

    def demangle(self, name, include_hash=False):
        if name not in self.answers:
            raise ValueError(name)
        return self.answers[name]


def test_binding_output_is_bounded(monkeypatch):
    limit = demangle.MAX_DEMANGLED
    binding = _Binding({"_Zfits": "f" * limit, "_Zlong": "l" * (limit + 1), "_ZN3foo3barEv": "foo::bar()"})
    monkeypatch.setattr(demangle, "_pyderust", binding)
    wrapper = demangle._pyderust_full
    assert wrapper("_ZN3foo3barEv") == "foo::bar()"
    assert wrapper("_Zfits") == "f" * limit
    assert wrapper("_Zlong") == "_Zlong"  # over the bound: left mangled
    assert wrapper("_Zbad") == "_Zbad"  # refused by the binding
    assert demangle._pyderust_plain("_Zfits") == "f" * limit
    assert demangle._pyderust_plain("_Zlong") is None and demangle._pyderust_plain("_Zbad") is None


def test_pyderust_backend_needs_pyderust(monkeypatch):
    monkeypatch.setattr(demangle, "_pyderust", None)
    with pytest.raises(ValueError, match="^pyderust is not installed$"):
        demangle.use_backend("pyderust")


def test_display_names_number_twins_without_a_hash():
    """C functions of one name (local statics in several files) have no hash: ``#1``, ``#2``; a name
    that occurs once stays as it is."""
    items = demangle.demangle_all(["helper", "rem_intr", "helper", "_ZN3rem3foo17h0123456789abcdefE", "helper"])
    assert demangle.display_names(items) == ["helper#1", "rem_intr", "helper#2", "rem::foo", "helper#3"]
