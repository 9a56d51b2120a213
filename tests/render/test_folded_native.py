"""The native folded writer (src/native/folded_text.h) writes what its pure-Python twin writes.

Both paths run on every committed DTrace and pmcstat capture and folded
example, under every label option, and on hypothesis-made profiles: labels
with the escaped characters, non-ASCII and unencodable text, labels that
collide (their stacks merge), int weights past 64 bits, float weights whole
or not, and weights the pure path refuses (its error must stay).
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

from tracebridge.profile.labels import LabelOptions
from tracebridge.profile.model import Frame, Profile
from tracebridge.readers.registry import load_profile
from tracebridge.render.folded import folded_bytes, folded_lines, folded_text

DATA = Path(__file__).parents[1] / "data"
EXAMPLES = Path(__file__).parents[2] / "examples"
CAPTURES = sorted([*(DATA / "pmcstat").glob("*.graph"), *(DATA / "dtrace").glob("*.txt"),
                   *EXAMPLES.rglob("*.folded")])
LABELS = [LabelOptions(), LabelOptions(demangle=False), LabelOptions(hash=True), LabelOptions(include_offset=True)]


def both(profile: Profile, labels: LabelOptions, monkeypatch) -> tuple[str, str]:
    """The text on both paths, checked to be what folded_bytes gives encoded on either path."""
    native = folded_text(profile, labels)
    assert folded_bytes(profile, labels) == native.encode()
    with monkeypatch.context() as patch:
        patch.setattr("tracebridge.support.native.core", None)
        pure = folded_text(profile, labels)
        assert folded_bytes(profile, labels) == pure.encode()
    return native, pure


@pytest.mark.parametrize("capture", CAPTURES, ids=lambda p: p.name)
def test_every_capture_writes_the_same_on_both_paths(native_core, monkeypatch, capsys, capture):
    try:
        profile = load_profile([capture])
    except Exception as exc:  # a capture of aggregations only, or one that needs its module
        pytest.skip(f"{capture.name}: {exc}")
    for labels in LABELS:
        native, pure = both(profile, labels, monkeypatch)
        assert native == pure, labels
        lines = folded_lines(profile, labels)
        assert pure == ("\n".join(lines) + "\n" if lines else "")


LABEL_TEXT = st.text(alphabet=st.sampled_from(["a", "b", ";", "\\", " ", ":", "é", "\u2028", "\U0001f600", "\x00"]),
                     max_size=4)
WEIGHTS = st.one_of(st.integers(0, 1 << 70), st.floats(0, 1e20, allow_nan=False),
                    st.integers(0, 100).map(float), st.just(-0.0))


@settings(max_examples=300, deadline=None)
@given(names=st.lists(LABEL_TEXT, min_size=1, max_size=6),
       stacks=st.lists(st.tuples(st.lists(st.integers(0, 5), max_size=5), WEIGHTS), max_size=12))
def test_generated_profiles_write_the_same_on_both_paths(names, stacks):
    profile = Profile()
    ids = [profile.intern(Frame("m", f"s{i}", name)) for i, name in enumerate(names)]
    for stack, weight in stacks:
        profile.add_ids(tuple(ids[i % len(ids)] for i in stack), weight)
    with pytest.MonkeyPatch.context() as monkeypatch:
        native, pure = both(profile, LabelOptions(), monkeypatch)
    assert native == pure


@pytest.mark.parametrize("weight, error", [(math.inf, OverflowError), (math.nan, ValueError)])
def test_weights_the_pure_path_refuses_are_refused_alike(native_core, weight, error):
    profile = Profile()
    profile.add_ids((profile.intern(Frame("m", "f", "f")),), weight)
    with pytest.raises(error):
        folded_text(profile)


def test_unencodable_labels_and_odd_weights_take_the_pure_path(native_core, monkeypatch):
    profile = Profile()
    lone = profile.intern(Frame("m", "f", "a\ud800b"))   # a lone surrogate: no UTF-8 spelling
    profile.add_ids((lone,), 1)
    assert native_core.folded_text(["a\ud800b"], profile.stacks) is None
    assert native_core.folded_text(["a\ud800b"], profile.stacks, True) is None
    assert folded_text(profile) == "a\ud800b 1\n"
    with pytest.raises(UnicodeEncodeError):   # as writing that text to a UTF-8 file raises
        folded_bytes(profile)
    assert native_core.folded_text(["f"], {(0,): True}) is None      # a bool weight: the pure path decides
    assert native_core.folded_text(["f"], {(1,): 1}) is None         # an id past the labels
    assert native_core.folded_text(["f"], {(-1,): 1}) is None
    assert native_core.folded_text([], {(): 2}) == " 2\n" and native_core.folded_text([], {}) == ""
    assert native_core.folded_text(["a;b", "c\\"], {(0, 1): 2, (): 1, (1, 0): 1.5}) == " 1\na\\;b;c\\\\ 2\nc\\\\;a\\;b 1.5\n"
    assert native_core.folded_text(["é"], {(0,): 2}, True) == "é 2\n".encode() and native_core.folded_text([], {}, 1) == b""


@pytest.mark.parametrize("weight", [0, 1, 9, 10, 99, 100, 1234567890123456789, (1 << 63) - 1, 1 << 63, 1 << 64,
                                    -1, -10, -(1 << 63), -(1 << 63) - 1])
def test_int_weights_are_written_as_python_writes_them(native_core, weight):
    """Every digit count, the ends of a 64-bit int and past them (negative ones only through the core itself:
    folded_text refuses them before)."""
    assert native_core.folded_text(["f"], {(0,): weight}) == f"f {weight}\n"
