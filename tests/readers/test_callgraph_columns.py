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
from tracebridge.profile.model import Profile, symbol_frame
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
