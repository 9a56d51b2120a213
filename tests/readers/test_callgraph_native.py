"""The native ``pmcstat -G`` block scanner reads every block as the numpy one does, and folds the same.

Both paths run on every committed callgraph capture, on blocks cut anywhere,
and on hypothesis-made lines around stackcollapse-pmc.pl's pattern (the
spacing, the field limits, tabs and other white space, headers, bytes that
are not UTF-8, a last line without its newline).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from scanner_twins import assert_same_block
from tracebridge.profile.labels import LabelOptions
from tracebridge.readers import pmcgraph
from tracebridge.render.folded import folded_lines

DATA = Path(__file__).parents[1] / "data" / "pmcstat"
GRAPHS = sorted(DATA.glob("*.graph"))


@pytest.mark.parametrize("graph", GRAPHS, ids=lambda p: p.name)
def test_every_capture_scans_the_same(native_core, graph):
    data = graph.read_bytes()
    assert_same_block(data, native_core)
    assert_same_block(data.replace(b"\n", b"\r\n"), native_core)
    assert_same_block(data.rstrip(b"\n"), native_core)   # the last line without its newline


@pytest.mark.parametrize("block", [1, 53, 4 << 20])
@pytest.mark.parametrize("graph", GRAPHS, ids=lambda p: p.name)
def test_every_capture_folds_the_same_on_both_paths(native_core, monkeypatch, graph, block):
    monkeypatch.setattr("tracebridge.readers.source.BLOCK", block)

    def fold() -> tuple:
        profile = pmcgraph.read_callgraph(graph)
        return profile.frames, list(profile.stacks.items()), folded_lines(profile, LabelOptions())

    native = fold()
    monkeypatch.setattr("tracebridge.support.native.core", None)
    assert native == fold()


@pytest.mark.parametrize("text", [
    "100.0%  [1]  root\n  100.0%  [1]  deep\n100.0%  [2]  shallow\n",   # a depth never seen, then unused
    "  100.0%  [1]  a\n100.0%  [3]  b\n 50.0%  [1]  c\n",
])
def test_frames_for_depths_never_seen_on_both_paths(native_core, monkeypatch, tmp_path, text):
    """The [unknown] frame is interned at the same point by both paths, and only when a stack holds it."""
    graph = tmp_path / "cg.graph"
    graph.write_text(text)

    def fold() -> tuple:
        profile = pmcgraph.read_callgraph(graph)
        return profile.frames, list(profile.stacks.items())

    native = fold()
    monkeypatch.setattr("tracebridge.support.native.core", None)
    assert native == fold()


@pytest.mark.parametrize("data", [
    b"", b"\n", b" \t\x0b\x0c\r\n", b"@", b"@ ", b"@ x [1 samples]", b"%  [1]  x",
    b"0%  [1]  x", b"0%  [1]x", b"0%  [1]", b"0%  [1]  ", b"0%  [1]\n  x", b"0%  [1]  x @ ", b"0%  [1]  x @  ",
    b"0%  [1]  x @  /a b  ", b"0%  [1]  x  @ /a", b"0%  [1]  x @\t/a", b"0%  [1]  x @ /a\r\n",
    b"1" * 32 + b"%  [1]  x", b"1" * 33 + b"%  [1]  x", b"0%  [" + b"9" * 32 + b"]  x",
    b"0%  [" + b"9" * 33 + b"]  x", b"0%  [" + b"1" * 19 + b"]  x", b"\t0%  [1]  x", b" \x00 0%  [1]  x",
    b"  0%  [1]  \xff\xfe @ /\xc3", b"0%%  [1]  x", b"0.%  [1]  x", b"..%  [1]  x", b"0%  [1]]  x", b"0%  [a]  x",
])
def test_edge_lines_scan_the_same(native_core, data):
    assert_same_block(data, native_core)
    assert_same_block(data + b"\n" + data + b"\n", native_core)


_PIECES = st.sampled_from([b" ", b"  ", b"\t", b"\r", b"\x0b", b"\n", b"%", b"[", b"]", b"@", b"@ ", b" @ ", b".",
                           b"0", b"7", b"100.0", b"05.26", b"[12]", b"%  [", b"]  ", b"foo", b"_ZN3foo3barE", b"0x1a",
                           b"/boot/kernel/kernel", b"\xff", b"\x00", b"\xc3\xa9"])


@st.composite
def callgraph_lines(draw) -> bytes:
    """Lines mostly shaped like pmcstat's, with pieces mixed in anywhere."""
    lines = []
    for _ in range(draw(st.integers(0, 12))):
        if draw(st.booleans()):
            line = b" " * draw(st.integers(0, 4)) + draw(st.sampled_from([b"100.0", b"05.26", b"1" * 33, b"x"])) \
                + b"%  [" + str(draw(st.integers(0, 10**20))).encode() + b"]" + b" " * draw(st.integers(0, 3)) \
                + draw(st.sampled_from([b"foo", b"0x1f", b"bar\xff", b""])) \
                + draw(st.sampled_from([b"", b" @ /boot/kernel/kernel", b" @ /m.ko ", b" @ "]))
        else:
            line = b"".join(draw(st.lists(_PIECES, max_size=8)))
        lines.append(line)
    return b"\n".join(lines) + draw(st.sampled_from([b"", b"\n"]))


@settings(max_examples=300, deadline=None)
@given(data=callgraph_lines())
def test_generated_lines_scan_the_same(native_core, data):
    assert_same_block(data, native_core)


def test_the_native_scanner_takes_only_bytes_like_objects(native_core):
    with pytest.raises(TypeError):
        native_core.pmcgraph_scan("text")


def test_the_native_fold_checks_its_columns(native_core):
    def column(*values: int) -> np.ndarray:
        return np.array(values, dtype=np.int64)

    latest = np.full(4, -1, dtype=np.int64)
    emit = np.ones(1, dtype=np.uint8)
    with pytest.raises(ValueError, match="beyond the 4 depths"):
        native_core.pmcgraph_fold(column(0), column(4), column(1), emit, latest, {}, 0)
    with pytest.raises(ValueError, match="beyond"):
        native_core.pmcgraph_fold(column(0), column(-1), column(1), emit, latest, {}, 0)
    with pytest.raises(ValueError, match="one length"):
        native_core.pmcgraph_fold(column(0, 1), column(0), column(1), emit, latest, {}, 0)
    with pytest.raises(ValueError, match="one length"):
        native_core.pmcgraph_fold(column(0), column(0), column(1), np.ones(2, dtype=np.uint8), latest, {}, 0)
    with pytest.raises(BufferError):   # latest must be writable
        native_core.pmcgraph_fold(column(0), column(0), column(1), emit, bytes(32), {}, 0)
    stacks = {(7,): 1}
    assert native_core.pmcgraph_fold(column(7, 8), column(0, 1), column(2, 5), np.ones(2, dtype=np.uint8), latest,
                                     stacks, 9) is False
    assert stacks == {(7,): 3, (8, 7): 5} and latest.tolist()[:2] == [7, 8]


def test_the_native_fold_finds_the_leaves_without_an_emit_column(native_core):
    """emit None: a line ends its stack when the next is no deeper; the last waits for the next block."""
    def column(*values: int) -> np.ndarray:
        return np.array(values, dtype=np.int64)

    latest, stacks = np.full(4, -1, dtype=np.int64), {}
    ids, depth, counts = column(7, 8, 9, 6, 5), column(0, 1, 1, 0, 1), column(1, 2, 3, 4, 5)
    assert native_core.pmcgraph_fold(ids, depth, counts, None, latest, stacks, 11) is False
    assert stacks == {(8, 7): 2, (9, 7): 3} and latest.tolist() == [6, 5, -1, -1]   # 6 and 5: deeper lines follow
    assert native_core.pmcgraph_fold(column(4), column(2), column(1), None, latest, stacks, 11) is False
    assert stacks == {(8, 7): 2, (9, 7): 3}   # a block's last line: never emitted here
    stacks.clear()
    assert native_core.pmcgraph_fold(column(3, 2), column(3, 0), column(6, 1), None, latest, stacks, 11) is False
    assert stacks == {(3, 4, 5, 6): 6}
    assert native_core.pmcgraph_fold(column(3, 2), column(2, 0), column(6, 1), None, np.full(4, -1, dtype=np.int64),
                                     stacks, 11) is True
    assert stacks == {(3, 4, 5, 6): 6, (3, 11, 11): 6}


def fnv1a_low_bits(names: np.ndarray, bits: int) -> np.ndarray:
    """The low ``bits`` of the FNV-1a hash of each row of byte values."""
    hashes = np.full(len(names), 1469598103934665603, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for column in names.T:
            hashes = (hashes ^ column.astype(np.uint64)) * np.uint64(1099511628211)
    return hashes & np.uint64((1 << bits) - 1)


def test_names_crafted_to_collide_in_an_unkeyed_hash(native_core):
    """60,000 names whose FNV-1a hashes share one eighth of the low 17 bits (as a file could be crafted):
    with that unkeyed hash the native interner put them all in one run of slots and took 3.7 s of CPU
    (0.01 s for random names); hashed as Python hashes bytes, it reads them as fast, and as its twin does."""
    candidates = np.random.default_rng(1).integers(ord("a"), ord("z") + 1, size=(600_000, 12), dtype=np.uint8)
    names = np.unique(candidates[fnv1a_low_bits(candidates, 17) < 1 << 14], axis=0)[:60_000]
    assert len(names) == 60_000
    data = b"".join(b"100.00%%  [1] %s @ /boot/kernel/kernel\n" % bytes(row) for row in names)
    assert_same_block(data, native_core)
