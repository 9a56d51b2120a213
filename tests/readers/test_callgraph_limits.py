"""pmcstat -G callgraph lines at the reader's limits, and what stackcollapse-pmc.pl's pattern rejects."""

from __future__ import annotations

from collections import Counter

import pytest

from tracebridge.profile.labels import LabelOptions
from tracebridge.render.folded import folded_lines
from tracebridge.readers.pmcgraph import MAX_DEPTH, MISSING, CallgraphFolder, read_callgraph
from tracebridge.support.errors import InputError
from tracebridge.readers.source import Source


@pytest.fixture(autouse=True)
def _both_paths(each_path):
    """Every test here runs on the native scanner and fold and on their numpy twins."""


def fold(tmp_path, text: str, **options) -> Counter:
    path = tmp_path / "cg.graph"
    path.write_text(text)
    stacks: Counter = Counter()
    for line in folded_lines(read_callgraph(path, **options), LabelOptions(demangle=False)):
        stack, _, count = line.rpartition(" ")
        stacks[stack] += int(count)
    return stacks


def test_lines_with_other_spacing_are_skipped(tmp_path, capsys):
    text = ("@ cycles [6 samples]\n"
            "100.0%  [3]  foo\n"
            "100.0%   [2]  three_spaces\n"
            "100.0% [1]  one_space\n"
            "100.0%\t [1]  tab_first\n"
            "100.0% \t[1]  tab_second\n")
    assert fold(tmp_path, text) == {"foo": 3}
    assert "skipped 4 line(s)" in capsys.readouterr().err


def test_deepest_indentation(tmp_path):
    line = "100.0%  [1]  leaf\n"
    deepest = fold(tmp_path, "100.0%  [1]  root\n" + " " * MAX_DEPTH + line)
    assert deepest == {";".join(["leaf"] + [MISSING] * (MAX_DEPTH - 1) + ["root"]): 1}
    with pytest.raises(InputError, match=f"cg.graph:4: a callgraph line indented {MAX_DEPTH + 1} deep"):
        fold(tmp_path, "@ cycles [1 samples]\n100.0%  [1]  root\n" + " " * MAX_DEPTH + line
             + " " * (MAX_DEPTH + 1) + line)


def test_too_deep_in_a_later_block_names_its_line():
    folder = CallgraphFolder("cg.graph")
    folder.feed(1, b"@ cycles [2 samples]\n\n100.0%  [1]  root\n")
    with pytest.raises(InputError, match=f"cg.graph:5: a callgraph line indented {MAX_DEPTH + 1} deep"):
        folder.feed(4, b" 100.0%  [1]   caller\n" + b" " * (MAX_DEPTH + 1) + b"100.0%  [1]  leaf\n")


def test_the_folder_counts_the_newlines_of_the_block_fed_last():
    """What Source.byte_blocks asks to number the next block's lines: the count the block's scan found."""
    folder = CallgraphFolder("cg.graph")
    block = b"@ cycles [2 samples]\n\n100.0%  [1]  root\nlast line without its newline"
    with pytest.raises(ValueError, match="^newlines_of: not the block fed last$"):
        folder.newlines_of(block)
    folder.feed(1, block)
    assert folder.newlines_of(block) == 3
    with pytest.raises(ValueError, match="not the block fed last"):
        folder.newlines_of(block[:-1] + block[-1:])   # equal, but another block
    empty = bytes(1)[:0]
    folder.feed(4, empty)
    assert folder.newlines_of(empty) == 0
    with pytest.raises(ValueError):
        folder.newlines_of(block)


def test_largest_count(tmp_path):
    eighteen = "9" * 18
    assert fold(tmp_path, f"100.0%  [{eighteen}]  foo\n") == {"foo": int(eighteen)}
    with pytest.raises(InputError, match="/cg.graph:3: a callgraph count too large to be a sample count$"):
        fold(tmp_path, f"100.0%  [1]  root\n100.0%  [{eighteen}]  foo\n100.0%  [1" + "0" * 18 + "]  foo\n")


def test_a_pmc_boundary_ends_the_stack(tmp_path):
    """With one PMC chosen, its last line is a leaf even when the next PMC's tree starts indented."""
    text = ("@ cycles [1 samples]\n"
            "100.0%  [1]  foo\n"
            "@ instructions [1 samples]\n"
            " 100.0%  [1]   bar\n")
    assert fold(tmp_path, text, pmc="cycles") == {"foo": 1}


def test_a_pmc_boundary_between_blocks_ends_the_stack():
    """The same, when the boundary falls between two blocks of a streamed file."""
    folder = CallgraphFolder("cg.graph", pmc="cycles")
    folder.feed(1, b"@ cycles [1 samples]\n100.0%  [1]  foo\n")
    folder.feed(3, b"@ instructions [1 samples]\n 100.0%  [1]   bar\n")
    stacks = {tuple(f.name for f in frames): weight for frames, weight in folder.finish()}
    assert stacks == {("foo",): 1}


def test_skipped_lines_are_counted_over_every_block(capsys):
    folder = CallgraphFolder("cg.graph")
    folder.feed(1, b"garbage\n100.0%  [1]  foo\n")
    folder.feed(3, b"more garbage\n100.0%  [1]  bar\nand more\n")
    folder.finish()
    assert "cg.graph:1: skipped 3 line(s)" in capsys.readouterr().err


def test_frames_for_levels_never_filled_in_two_blocks_are_one_frame():
    """The [unknown] frame is made once, and the second block's stacks use the same one."""
    folder = CallgraphFolder("cg.graph")
    folder.feed(1, b"100.0%  [1]  a\n  100.0%  [1]  a2\n")
    folder.feed(3, b"100.0%  [2]  b\n  100.0%  [2]  b2\n")
    stacks = {tuple(f.symbol for f in frames): weight for frames, weight in folder.finish()}
    assert stacks == {("a2", MISSING, "a"): 1, ("b2", MISSING, "b"): 2}


def test_frames_for_levels_never_filled_in_stacks_folded_in_two_blocks():
    """The same when each block's fold ends such a stack itself (not the line left pending for the next
    block): the second fold finds the [unknown] frame the first one made."""
    folder = CallgraphFolder("cg.graph")
    folder.feed(1, b"100.0%  [1]  a\n  100.0%  [1]  a2\n100.0%  [3]  a3\n")
    folder.feed(4, b"100.0%  [2]  b\n  100.0%  [2]  b2\n100.0%  [4]  b3\n")
    folder.feed(7, b"100.0%  [5]  c\n")
    profile = folder.finish()
    stacks = {tuple(f.symbol for f in frames): weight for frames, weight in profile}
    assert stacks == {("a2", MISSING, "a"): 1, ("a3",): 3, ("b2", MISSING, "b"): 2, ("b3",): 4, ("c",): 5}
    assert [f.symbol for f in profile.frames].count(MISSING) == 1


def test_lines_before_the_first_header_belong_to_no_pmc(tmp_path):
    """Even to a PMC whose header prints an empty event name."""
    text = ("100.0%  [1]  before\n"
            "@  [2 samples]\n"
            "100.0%  [2]  after\n")
    assert fold(tmp_path, text, pmc="") == {"after": 2}
    assert fold(tmp_path, text) == {"before": 1, "after": 2}


def test_a_callgraph_without_headers_counts_samples(tmp_path):
    path = tmp_path / "cg.graph"
    path.write_text("100.0%  [1]  foo\n")
    assert read_callgraph(path).metadata.event == "samples"


@pytest.mark.parametrize("header", [b"@ cyc\xe9les [1 samples]\n", b"@ cyc\xe9les\n"])
def test_an_event_name_that_is_not_utf8(tmp_path, header):
    """A header's bad bytes (with the samples count or without: the event is then the rest of the line)
    are replaced, as in names, not a traceback."""
    path = tmp_path / "cg.graph"
    path.write_bytes(header + b"100.0%  [1]  foo\n")
    assert read_callgraph(path).metadata.event == "cyc\ufffdles"
    assert read_callgraph(path, pmc="cyc\ufffdles").metadata.event == "cyc\ufffdles"


def test_a_pmc_asked_of_a_callgraph_without_headers(tmp_path):
    with pytest.raises(InputError, match=r"cg.graph: has no callgraph for PMC 'cycles' \(it has: none\)$"):
        fold(tmp_path, "100.0%  [1]  foo\n", pmc="cycles")


def test_a_block_of_many_names_in_many_images(tmp_path):
    """1,000 distinct functions over 8 modules in one block (more name and image pairs than a table of them
    is worth): each folds to the chain written, in its module."""
    from pmcstat_text import callgraph

    chains = [([(f"fn_{i}", f"/boot/modules/m{i % 8}.ko"), ("fork_exit", "/boot/kernel/kernel")], i + 1)
              if i % 100 == 0 else ([(f"fn_{i}", f"/boot/modules/m{i % 8}.ko")], i + 1) for i in range(1000)]
    path = tmp_path / "cg.graph"
    path.write_text(callgraph([("cycles", chains)]))
    profile = read_callgraph(path)
    got = {tuple((f.module, f.symbol) for f in frames): weight for frames, weight in profile}
    assert got == {tuple((image.rpartition("/")[2], name) for name, image in reversed(frames)): count
                   for frames, count in chains}


def test_the_folder_reads_views_of_one_buffer(tmp_path, monkeypatch):
    """The blocks the folder feeds itself are views of the buffer the file is read into, not copies of it."""
    monkeypatch.setattr("tracebridge.readers.source.BLOCK", 64)
    path = tmp_path / "cg.graph"
    path.write_bytes(b"@ cycles [9 samples]\n" + b"100.0%  [1]  root\n 100.0%  [1]  leaf\n" * 20)
    folder = CallgraphFolder(str(path))
    blocks = []
    for first, data in folder.blocks(Source(path)):
        blocks.append((first, data, data.obj))
        folder.feed(first, data)
    assert [first for first, _, _ in blocks][:3] == [1, 4, 7] and len(blocks) > 10   # 64 bytes: 3 lines a block
    assert all(isinstance(data, memoryview) and data.readonly for _, data, _ in blocks)
    assert len({id(buffer) for _, _, buffer in blocks}) == 1   # one buffer, read into again and again


@pytest.mark.parametrize("reuse", [False, True])
def test_lines_are_refused_past_the_limit_not_past_twice_it(tmp_path, monkeypatch, reuse):
    """The buffer a long line grows into is bounded by the limit (MAX_LINE is 16 blocks, as here): a line
    of the limit is read whole, one a block past it refused, whichever way the blocks are handed out; their
    newlines counted without a reader's count too."""
    monkeypatch.setattr("tracebridge.readers.source.BLOCK", 64)
    monkeypatch.setattr("tracebridge.readers.source.MAX_LINE", 1024)
    path = tmp_path / "long.txt"
    path.write_bytes(b"a\n" + b"x" * 1023 + b"\nb\n")
    assert [(first, bytes(data)) for first, data in Source(path).byte_blocks(reuse=reuse)][-1] == (3, b"b\n")
    path.write_bytes(b"a\n" + b"x" * 1100 + b"\nb\n")
    with pytest.raises(InputError, match="has a line longer than"):
        list(Source(path).byte_blocks(reuse=reuse))
