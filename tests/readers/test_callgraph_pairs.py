"""The native (name, image) pair table of ``pmcstat -G`` folding, against the pure path that finds pairs per block.

With the native core, :class:`CallgraphFolder` keeps every (name, image)
pair of the file in a table (src/native/name_table.h) and interns only the
pairs new to it; the pure-Python path finds each block's distinct pairs again
(:meth:`CallgraphFolder._frame_ids`).  Both must give the same frames in the
same order, the same stacks in the same order and the same evidence, however
the file is cut into blocks: on every committed capture, on hand-made files
where the order of new pairs matters, and on hypothesis-made ones.
"""

from __future__ import annotations

from pathlib import Path
from unittest import mock

import numpy as np
import pytest
from fixture_paths import MODULES
from hypothesis import given, settings, strategies as st

from scanner_twins import assert_same_fold, blocks_of
from tracebridge.image.demangle import demangle_names, is_plain_c
from tracebridge.profile.model import shown_names
from tracebridge.readers import pmcgraph
from tracebridge.readers.placement import open_images
from tracebridge.support import native

DATA = Path(__file__).parents[1] / "data" / "pmcstat"
GRAPHS = sorted(DATA.glob("*.graph"))


@pytest.mark.parametrize("lines_per_block", [1, 2, 7, 1000])
@pytest.mark.parametrize("graph", GRAPHS, ids=lambda p: p.name)
def test_every_capture_folds_the_same_however_cut(native_core, graph, lines_per_block):
    assert_same_fold(graph.read_bytes(), lines_per_block, native_core)


@pytest.mark.parametrize("lines_per_block", [1, 3, 1000])
@pytest.mark.parametrize("graph", GRAPHS, ids=lambda p: p.name)
def test_every_capture_gives_the_same_evidence_for_a_watched_module(native_core, graph, lines_per_block):
    images = open_images([MODULES / "rem_legacy_fp.ko"], DATA / "kernel")
    assert_same_fold(graph.read_bytes(), lines_per_block, native_core, images)


# A name seen with several images, an image carried into the next block, lines before any image,
# hex nodes among named ones, and a name that is not UTF-8.
ORDER = (b"100.0%  [1]  zeta\n"                         # no image yet
         b" 100.0%  [1]  alpha @ /boot/kernel/kernel\n"
         b"  100.0%  [1]  0x1f\n"
         b"100.0%  [2]  beta @ /boot/modules/m.ko\n"
         b" 100.0%  [2]  alpha\n"
         b"  100.0%  [2]  0x1f @ /boot/kernel/kernel\n"
         b"100.0%  [3]  zeta\n"                         # the kernel carried
         b" 100.0%  [3]  gamma\xff @ /boot/modules/m.ko\n"
         b"  100.0%  [3]  alpha\n"
         b"100.0%  [4]  0xABCDEF @ /boot/kernel/kernel\n"
         b" 100.0%  [4]  beta\n")


@pytest.mark.parametrize("lines_per_block", [1, 2, 3, 4, 5, 100])
def test_pairs_are_interned_in_the_pure_paths_order(native_core, lines_per_block):
    assert_same_fold(ORDER, lines_per_block, native_core)


def test_the_table_hands_each_new_pair_once_in_the_pure_paths_order(native_core):
    table = native_core.pmcgraph_names()
    head, tail = ORDER.split(b"100.0%  [3]  zeta\n")
    first = pmcgraph.scan_paired(table, head)
    assert first.pairs.tolist() == [0, 1, 2, 3, 4, 2]   # by first line; the last line's pair seen before
    # New pairs by each name's first line in the block, then by its image's first line (none: after all).
    assert first.new_names == ["zeta", "alpha", "alpha", "0x1f", "beta"]
    assert first.new_paths.tolist() == [-1, 0, 1, 0, 1]
    assert first.new_pairs.tolist() == [0, 1, 4, 2, 3]
    assert first.hexes == [3] and first.unplain == []
    assert first.paths == [b"/boot/kernel/kernel", b"/boot/modules/m.ko"]
    rest = pmcgraph.scan_paired(table, b"100.0%  [3]  zeta\n" + tail)
    # zeta under the kernel carried in; alpha under m.ko seen in the first block; gamma not UTF-8.
    assert rest.pairs.tolist() == [5, 6, 4, 7, 8]
    assert rest.new_names == ["zeta", "gamma\ufffd", "0xABCDEF", "beta"]
    assert rest.new_paths.tolist() == [0, 1, 0, 0]
    assert rest.new_pairs.tolist() == [5, 6, 7, 8]
    assert rest.hexes == [2] and rest.unplain == [1]   # gamma\ufffd: not ASCII
    assert rest.paths == first.paths


def test_the_carried_image_ranks_after_the_blocks_own_unless_printed(native_core):
    table = native_core.pmcgraph_names()
    pmcgraph.scan_paired(table, b"100.0%  [1]  a @ /k\n")
    block = pmcgraph.scan_paired(table, b"100.0%  [1]  c\n 100.0%  [1]  c @ /m\n")
    assert block.new_names == ["c", "c"] and block.new_paths.tolist() == [1, 0]   # /m first, /k carried last
    assert block.new_pairs.tolist() == [2, 1] and block.pairs.tolist() == [1, 2]


@pytest.mark.parametrize("name, hex_", [(b"0x1f", True), (b"0xABCdef", True), (b"0x" + b"f" * 16, True),
                                        (b"0x" + b"f" * 17, False), (b"0x", False), (b"0x1g", False),
                                        (b"0X1f", False), (b"1f", False), (b"x0x1", False)])
def test_hex_names_on_both_paths(native_core, name, hex_):
    block = pmcgraph.scan_paired(native_core.pmcgraph_names(), b"100.0%  [1]  f\n100.0%  [1]  " + name + b"\n")
    assert block.hexes == ([1] if hex_ else [])
    assert pmcgraph._texts([b"f", name]) == (["f", name.decode()], [1] if hex_ else [])


@pytest.mark.parametrize("name", [b"f", b"_", b"_f", b"R", b"Rf", b"Z", b"ZN3f", b"_ZN3foo3barE", b"_RNvC1a1f", b"aR",
                                  b"f\x7f", b"f\x1f", b"f\x01", b"caf\xc3\xa9", b"\xff", b"~!", b"0x1f"])
def test_the_names_that_are_not_plain_c_are_those_is_plain_c_refuses(native_core, name):
    block = pmcgraph.scan_paired(native_core.pmcgraph_names(), b"100.0%  [1]  f\n100.0%  [1]  " + name + b"\n")
    assert block.unplain == [i for i, text in enumerate(block.new_names) if not is_plain_c(text)]
    assert shown_names(block.new_names, block.unplain) == demangle_names(block.new_names)


def test_texts_of_names_not_all_ascii():
    assert pmcgraph._texts([b"0x1", b"caf\xc3\xa9", b"\xff", b"0x2"]) == (["0x1", "café", "\ufffd", "0x2"], [0, 3])
    assert pmcgraph._texts([b"a", b"0x10"]) == (["a", "0x10"], [1])


def test_events_are_read_once_per_distinct_header():
    with mock.patch.object(pmcgraph, "_event", side_effect=lambda line: line.decode()) as event:
        assert pmcgraph._events([b"a", b"b", b"a", b"a"]) == ["a", "b", "a", "a"]
    assert sorted(call.args[0] for call in event.call_args_list) == [b"a", b"b"]


def test_each_frame_id_is_one_int_object_in_every_stack(native_core):
    """Not one int object per place in each stack, for ids above 256 (those Python does not share) too."""
    data = b"".join(b"100.0%%  [1]  h%d\n" % i for i in range(300)) \
        + b"".join(b"100.0%%  [1]  f%d\n 100.0%%  [1]  g\n" % i for i in range(300))
    with mock.patch.object(native, "core", native_core):
        folder = pmcgraph.CallgraphFolder("cg.graph")
        for first, block in blocks_of(data, 50):
            folder.feed(first, block)
        profile = folder.finish()
    objects: dict[int, set[int]] = {}
    for stack in profile.stacks:
        for ident in stack:
            objects.setdefault(ident, set()).add(id(ident))
    # g (id 301) is in 300 stacks; only those ending a block are added apart (18 blocks), with their own ints.
    assert len(objects) == 601 and sum(301 in stack for stack in profile.stacks) == 300
    assert len(objects[301]) <= 18


def test_the_frame_table_checks_its_columns(native_core):
    def column(*values: int) -> np.ndarray:
        return np.array(values, dtype=np.int64)

    table = native_core.pmcgraph_names()
    pmcgraph.scan_paired(table, b"100.0%  [1]  a\n 100.0%  [1]  b\n")
    with pytest.raises(ValueError, match="differ in length"):
        native_core.pmcgraph_frame_ids(table, column(0), column(), column())
    for pair in (2, -1):
        with pytest.raises(ValueError, match=f"pair {pair} is not in the table"):
            native_core.pmcgraph_frame_ids(table, column(pair), column(7), column())
    with pytest.raises(ValueError, match="pair 1 has no frame"):
        native_core.pmcgraph_frame_ids(table, column(0), column(7), column(0, 1))
    for pair in (2, -1):
        with pytest.raises(ValueError, match=f"pair {pair} has no frame"):
            native_core.pmcgraph_frame_ids(table, column(), column(), column(pair))
    with pytest.raises(ValueError, match="multiple of 8"):
        native_core.pmcgraph_frame_ids(table, b"1234", column(), column())
    assert np.frombuffer(native_core.pmcgraph_frame_ids(table, column(1), column(9), column(1, 0, 1)),
                         dtype=np.int64).tolist() == [9, 7, 9]
    with pytest.raises(ValueError):   # not a table
        native_core.pmcgraph_frame_ids(object(), column(), column(), column())
    with pytest.raises(ValueError):
        native_core.pmcgraph_pairs(object(), b"")
    with pytest.raises(TypeError):
        native_core.pmcgraph_pairs(table, "text")


_NAMES = st.sampled_from([b"a", b"b", b"_ZN3foo3barE", b"0x1f", b"0x20", b"c\xff", b"caf\xc3\xa9", b"0xzz"])
_IMAGES = st.sampled_from([b"", b"", b"", b" @ /boot/kernel/kernel", b" @ /boot/modules/m.ko", b" @ /m.ko",
                           b" @ /boot/modules/rem_legacy_fp.ko"])


@st.composite
def callgraphs(draw) -> bytes:
    """Tree lines over few names and images (so pairs repeat across blocks), with headers and junk among them."""
    lines = []
    for _ in range(draw(st.integers(0, 30))):
        kind = draw(st.integers(0, 9))
        if kind == 0:
            lines.append(draw(st.sampled_from([b"@ cycles [3 samples]", b"@ instructions [1 samples]", b"junk", b""])))
        else:
            lines.append(b" " * draw(st.integers(0, 4)) + b"100.0%  [" + str(draw(st.integers(0, 99))).encode()
                         + b"]  " + draw(_NAMES) + draw(_IMAGES))
    return b"\n".join(lines) + b"\n"


@settings(max_examples=200, deadline=None)
@given(data=callgraphs(), lines_per_block=st.integers(1, 8))
def test_generated_callgraphs_fold_the_same_however_cut(native_core, data, lines_per_block):
    assert_same_fold(data, lines_per_block, native_core)


def test_new_names_hash_and_compare_as_the_same_text_made_in_python(native_core):
    """An ASCII name comes with the hash the scan made of its bytes: the hash Python gives the same text."""
    table = native_core.pmcgraph_names()
    data = (b"100.0%  [1]  a_name @ /boot/kernel/kernel\n 100.0%  [1]   _ZN3foo3bar17h0123456789abcdefE\n"
            b" 50.0%  [1]   \xc3\xa9t\xc3\xa9\n 50.0%  [1]   bad\xff\n 50.0%  [1]   0x1f\n")
    names = native_core.pmcgraph_pairs(table, data)[5][1]
    assert names == ["a_name", "_ZN3foo3bar17h0123456789abcdefE", "été", "bad\ufffd", "0x1f"]
    again = [name.encode().decode() for name in names]   # equal texts whose hash Python computes
    assert [hash(name) for name in names] == [hash(text) for text in again]
    assert {text: i for i, text in enumerate(again)} == {name: i for i, name in enumerate(names)}
    assert set(again) == set(names) and all(name in set(again) for name in names)
