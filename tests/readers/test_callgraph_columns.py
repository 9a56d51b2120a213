"""Named ``pmcstat -G`` nodes kept as columns give what one ``symbol_frame`` per node gave.

The reader interns named nodes with ``Profile.add_symbols`` (demangled in
bulk, no frame object until an output needs one).  On every committed
callgraph capture, with and without the module whose hex nodes then resolve
to named frames, and on the native and the pure-Python path: the frames, once
built, are those ``symbol_frame`` made, in the same order, and the folded
stacks, flame graph and speedscope file are the same as from a profile whose
frames were each built and interned one by one, as before.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from fixture_paths import MODULES

from tracebridge.profile.labels import LabelOptions
from tracebridge.profile.model import Profile, address_frame, symbol_frame
from tracebridge.readers.placement import open_images
from tracebridge.readers.pmcgraph import read_callgraph
from tracebridge.render.flamegraph import render_flamegraph
from tracebridge.render.folded import folded_lines
from tracebridge.render.speedscope import write_speedscope

DATA = Path(__file__).parents[1] / "data" / "pmcstat"
CASES = [pytest.param(graph, modules, id=f"{graph.name}{'+' if modules else ''}{''.join(modules)}")
         for graph in sorted(DATA.glob("*.graph")) for modules in ([], ["rem_legacy_fp.ko"])]
LABELS = [LabelOptions(), LabelOptions(demangle=False), LabelOptions(hash=True), LabelOptions(include_offset=True)]


@pytest.fixture(params=["native", "pure"])
def path(request, monkeypatch):
    if request.param == "native":
        request.getfixturevalue("native_core")
    else:
        monkeypatch.setattr("tracebridge.support.native.core", None)
    return request.param


def read(graph: Path, modules: list[str]) -> Profile:
    images = open_images([MODULES / name for name in modules], DATA / "kernel") if modules else None
    return read_callgraph(graph, images)


def one_by_one(profile: Profile) -> Profile:
    """The profile as the reader made it before: every named frame built by symbol_frame and interned alone."""
    return profile.map_frames(lambda f: symbol_frame(f.module, f.symbol) if f.resolved and f.offset is None else f)


def outputs(profile: Profile, labels: LabelOptions) -> tuple:
    speedscope = io.StringIO()
    write_speedscope(speedscope, profile, labels)
    return folded_lines(profile, labels), render_flamegraph(profile, labels=labels), speedscope.getvalue()


@pytest.mark.parametrize("graph, modules", CASES)
def test_columns_give_the_frames_and_outputs_one_frame_per_node_gave(path, capsys, graph, modules):
    columns = read(graph, modules)
    assert columns._columns is not None   # the named nodes are columns until something needs frames
    lines = folded_lines(columns, LabelOptions())
    assert columns._columns is not None   # folded text with default labels never builds them
    before = one_by_one(read(graph, modules))
    assert columns.frames == before.frames and columns.stacks == before.stacks
    assert any(frame.is_rust for frame in columns.frames) and any(frame.crate for frame in columns.frames)
    assert lines == folded_lines(before, LabelOptions())
    for labels in LABELS:
        assert outputs(read(graph, modules), labels) == outputs(before, labels), labels


def test_a_hex_node_resolving_to_a_named_frame_is_one_frame(path):
    """With the module given, a hex node inside a function pmcstat also named is that frame, not a second one."""
    profile = read(DATA / "multi-image.graph", ["rem_legacy_fp.ko"])
    frames = profile.frames
    assert len(set(frames)) == len(frames)
    assert one_by_one(profile).stacks == profile.stacks


def test_add_symbols_finds_frames_already_interned_either_way():
    profile = Profile()
    built = profile.intern(symbol_frame("m.ko", "_ZN3rem2em2rx17h0123456789abcdefE"))
    ids = profile.add_symbols(["m.ko", None, "m.ko", "m.ko"],
                              ["_ZN3rem2em2rx17h0123456789abcdefE", "f", "g", "g"])
    assert ids == [built, 1, 2, 2]
    assert profile.add_symbols([None], ["f"]) == [1]
    assert profile.intern(symbol_frame(None, "f")) == 1   # equal to a row not built yet: the same id
    assert profile._columns is None and profile.frames[2] == symbol_frame("m.ko", "g")
    assert profile.frames[0].name == "rem::em::rx" and profile.frames[0].crate == "rem"


def test_new_symbols_are_added_without_a_pair_index_until_a_lookup_needs_one():
    profile = Profile()
    assert profile.add_symbols(["m.ko", None], ["f", "g"]) == [0, 1]
    assert profile.add_symbols(["m.ko"], ["h"]) == [2]
    columns = profile._columns
    assert columns.keys is None and columns.seen == {"f", "g", "h"}
    assert profile.frame_id(symbol_frame("m.ko", "other")) is None and columns.keys is None   # a symbol never seen
    assert profile.frame_id(symbol_frame(None, "f")) is None     # f's symbol, another module: the index is made
    assert columns.keys == {("m.ko", "f"): 0, (None, "g"): 1, ("m.ko", "h"): 2} and profile._columns is columns
    assert profile.add_symbols(["m.ko"], ["k"]) == [3] and columns.keys[("m.ko", "k")] == 3   # kept up to date
    assert profile.intern(symbol_frame(None, "x")) == 4 and columns.seen >= {"x"} and (None, "x") in columns.built
    assert profile.add_symbols([None, "m.ko"], ["x", "y"]) == [4, 5]    # x: the frame built before, y: a row
    assert profile._columns is columns and profile.frame_id(symbol_frame("m.ko", "k")) == 3
    assert profile._columns is None and [f.symbol for f in profile.frames] == ["f", "g", "h", "k", "x", "y"]


def test_one_symbol_in_two_modules_in_one_batch_is_two_frames():
    profile = Profile()
    assert profile.add_symbols(["a.ko", "b.ko", "a.ko"], ["f", "f", "f"]) == [0, 1, 0]
    assert profile.add_symbols(["b.ko", "c.ko"], ["f", "g"]) == [1, 2]
    assert profile.frames == [symbol_frame("a.ko", "f"), symbol_frame("b.ko", "f"), symbol_frame("c.ko", "g")]


def test_a_row_equal_to_a_frame_interned_later_is_that_frame():
    profile = Profile()
    assert profile.add_symbols(["m.ko"], ["_ZN3rem2em2rx17h0123456789abcdefE"]) == [0]
    assert profile._columns.keys is None
    assert profile.intern(symbol_frame("m.ko", "_ZN3rem2em2rx17h0123456789abcdefE")) == 0
    assert profile._columns is None and profile.frames[0].crate == "rem"


def test_the_labels_of_rows_in_batches_around_built_frames_are_their_names():
    profile = Profile()
    assert profile.add_symbols(["m.ko", None], ["f", "_ZN3foo3bar17h0123456789abcdefE"]) == [0, 1]
    assert profile.intern(address_frame(None, 0x10)) == 2   # built between two batches
    assert profile.add_symbols([None, "m.ko"], ["g", "h"]) == [3, 4]
    assert profile.intern(address_frame(None, 0x20)) == 5
    labels = profile.frame_labels(lambda frame: f"built {frame.name}")
    assert labels == ["f", "foo::bar", "built 0x10", "g", "h", "built 0x20"]
    assert profile._columns is not None   # still rows, never built
    assert profile.frame_labels(lambda frame: frame.name) == [frame.name for frame in profile.frames]
