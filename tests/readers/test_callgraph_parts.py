"""A big ``pmcstat -G`` callgraph folded in two processes says what one pass says.

:func:`pmcgraph.fold_in_parts` cuts the file where a tree starts, folds the
second range in a second process starting with the image carried into it,
and :func:`render.folded.write_folded_parts` merges the two folded texts.
The text, the warnings and the errors must be those of one pass over the
file, wherever the cut falls, on both paths: on every committed capture cut
at every tree start, and on files made so that the second range needs the
first (a depth it never sets, an error, skipped lines, a carried image).
"""

from __future__ import annotations

import contextlib
import io
import os
from pathlib import Path

import pytest

from tracebridge.cli import main
from tracebridge.readers import pmcgraph
from tracebridge.readers.registry import load_profile
from tracebridge.readers.source import Source
from tracebridge.render.folded import callgraph_folded_parts, folded_bytes, folded_text, write_folded_parts
from tracebridge.support import parallel
from tracebridge.support.errors import InputError

DATA = Path(__file__).parents[1] / "data" / "pmcstat"
GRAPHS = sorted(DATA.glob("*.graph"))


def said(run) -> tuple[str, str]:
    """What ``run()`` gives (or the error it raises) and what it says on standard error."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        try:
            result = run()
        except InputError as error:
            result = f"error: {error}"
    return result, err.getvalue()


def one_pass(path: Path) -> tuple[str, str]:
    return said(lambda: folded_text(load_profile([path])))


def in_parts(path: Path, cut: int) -> tuple[str, str]:
    """Folded in two ranges, cut at ``cut`` (in two processes unless parallel.usable_cpus says one)."""
    def run() -> str:
        out = io.BytesIO()
        write_folded_parts(out, pmcgraph.fold_in_parts(Source(path), folded_bytes, cut))
        return out.getvalue().decode()

    return said(run)


def parts_text(path: Path) -> bytes | None:
    """What the fold command writes of a callgraph folded in two parts (None: not cut)."""
    texts = callgraph_folded_parts(Source(path))
    if texts is None:
        return None
    out = io.BytesIO()
    write_folded_parts(out, texts)
    return out.getvalue()


def tree_starts(path: Path) -> list[int]:
    """Every place a tree starts (but the first): where fold_in_parts may cut."""
    source = Source(path)
    lines = [i + 1 for i, byte in enumerate(source.data) if byte == 10]
    starts = {pmcgraph._tree_start(source, position) for position in lines}
    return sorted(start for start in starts if start)


@pytest.mark.parametrize("graph", GRAPHS, ids=lambda p: p.name)
def test_every_capture_cut_at_every_tree_start_folds_as_one_pass(each_path, monkeypatch, graph):
    monkeypatch.setattr(parallel, "usable_cpus", lambda: 1)   # both ranges in this process: fast, same answers
    expected = one_pass(graph)
    starts = tree_starts(graph)
    assert starts
    for cut in starts:
        assert in_parts(graph, cut) == expected, cut


@pytest.mark.parametrize("graph", GRAPHS, ids=lambda p: p.name)
def test_two_processes_fold_every_capture_as_one_pass(each_path, monkeypatch, tmp_path, graph):
    starts = tree_starts(graph)
    pids, fold_later = tmp_path / "pids", pmcgraph._fold_later

    def later(*args):
        result = fold_later(*args)
        with open(pids, "a") as out:
            out.write(f"{os.getpid()} {result is not None}\n")
        return result

    cut = starts[len(starts) // 2]
    alone = fold_later(Source(graph), cut, folded_text)   # None where the range needs the first (malformed lines)
    assert (alone is None) == (graph.name in ("edges.graph", "edges-controls.graph"))
    monkeypatch.setattr(pmcgraph, "_fold_later", later)
    assert in_parts(graph, cut) == one_pass(graph)
    # the second range folded by another process, its text used when it has one
    [(pid, used)] = [line.split() for line in pids.read_text().splitlines()]
    assert int(pid) != os.getpid() and used == str(alone is not None)


HEAD = (b"@ cycles [9 samples]\n"
        b"100.0%  [2]  a @ /boot/kernel/kernel\n"
        b" 100.0%  [2]  b\n"
        b"  100.0%  [2]  0x1f @ /boot/modules/m.ko\n")


@pytest.mark.parametrize("tail", [
    # a depth the second range never sets (its line malformed): the first range's frame stands there
    b"100.0%  [3]  d\n junk\n  100.0%  [3]  e\n",
    # an error in the second range names its line in the file
    b"100.0%  [3]  d\n" + b" " * 1100 + b"100.0%  [3]  e\n",
    b"100.0%  [3]  d\n 100.0%  [12345678901234567890]  e\n",
    # skipped lines and a module met in the second range only; the carried image names a hex node
    b"100.0%  [3]  0x20\n junk\n 100.0%  [3]  f @ /boot/modules/other.ko\n",
    b"@ instructions [2 samples]\n100.0%  [3]  0x20\n",
], ids=["unset-depth", "too-deep", "count-too-long", "skipped-and-module", "header"])
def test_a_second_range_that_needs_the_first_folds_as_one_pass(each_path, monkeypatch, tmp_path, tail):
    graph = tmp_path / "cut.graph"
    graph.write_bytes(HEAD + tail)
    expected = one_pass(graph)
    assert in_parts(graph, len(HEAD)) == expected
    with monkeypatch.context() as patch:
        patch.setattr(parallel, "usable_cpus", lambda: 1)
        assert in_parts(graph, len(HEAD)) == expected


def test_the_second_range_folded_alone_gives_its_text_and_what_it_read(each_path):
    tail = (b"100.0%  [3]  0x20\n junk\n 100.0%  [3]  f @ /boot/modules/other.ko\n"
            b"@ instructions [2 samples]\nmore junk\n100.0%  [4]  g\n")
    later = pmcgraph._fold_later(Source(_written(HEAD + tail)), len(HEAD), folded_text)
    assert later is not None
    text, read = later
    # 0x20 under the image carried past the cut (m.ko: an offset), f under other.ko, g carried on
    assert text == "f;m.ko+0x20 3\ng 4\n"
    assert read == pmcgraph.RangeRead(tree_lines=3, skipped=2, first_skipped=2, events=["instructions"],
                                      modules={"m.ko", "other.ko"})
    folder = pmcgraph.CallgraphFolder("cut.graph")
    folder.feed(1, HEAD)
    folder.close()
    assert pmcgraph._fold_later(Source(_written(HEAD + b"100.0%  [3]  d\n junk\n  100.0%  [3]  e\n")), len(HEAD),
                                folded_text) is None   # depth 1 never set in the range: it needs the first
    folder.absorb(read, 5)
    assert (folder.tree_lines, folder.skipped, folder.first_skipped) == (6, 2, 6)
    assert list(folder.events) == ["cycles", "instructions"] and folder.elsewhere == {"m.ko", "other.ko"}
    assert "no ELF given to check: m.ko, other.ko" in said(folder.finish)[1]


def test_the_image_carried_past_the_cut_is_the_last_one_printed(each_path):
    data = b"".join(b"100.0%%  [1]  f%d @ /boot/modules/m%d.ko\n" % (i, i) for i in range(5000)) + b"100.0%  [1]  g\n"
    cut = data.rindex(b"100.0%  [1]  g")
    data += b"100.0%  [1]  h @ /after/the/cut\n"
    source = Source(_written(data))
    assert pmcgraph._image_before(source, cut) == b"/boot/modules/m4999.ko"
    far = b"100.0%  [1]  f @ /boot/kernel/kernel\n" + b"100.0%  [1]  g\n" * 20000   # found by a wider look
    assert pmcgraph._image_before(Source(_written(far)), len(far)) == b"/boot/kernel/kernel"
    assert pmcgraph._image_before(Source(_written(b"100.0%  [1]  g\n" * 10)), 32) is None
    # The first look starts inside a line that is no tree line, though what the look sees of it would be one.
    first = b"100.0%  [1]  a @ /right\n"
    long = b"junk 1%  [1]  f @ /w" + b"x" * (65541 - 21) + b"\n"
    assert len(long) == 65541 and (len(first) + len(long)) - (1 << 16) == len(first) + 5
    graph = Source(_written(first + long + b"100.0%  [1]  g\n"))
    assert pmcgraph._image_before(graph, len(first) + len(long)) == b"/right"


def test_a_tree_is_looked_for_within_cut_window_bytes(each_path, monkeypatch):
    data = b"x\n" + b" 100.0%  [1]  a\n" * 5 + b"100.0%  [1]  b\n"
    source = Source(_written(data))
    assert pmcgraph._tree_start(source, 1) == len(data) - 15
    monkeypatch.setattr(pmcgraph, "CUT_WINDOW", len(data) - 2)   # the tree's line not whole in the window
    assert pmcgraph._tree_start(source, 1) is None


def test_a_tree_starts_only_at_a_tree_line_of_depth_0(each_path, tmp_path):
    data = b"x\n 100.0%  [1]  a\n1 junk\n@ cycles [1 samples]\n100.0%  [1]  b\n100.0%  [1]  c\n"
    source = Source(_written(data))
    b = data.index(b"100.0%  [1]  b")
    assert [pmcgraph._tree_start(source, p) for p in (0, 1, b, b + 1)] == [b, b, b, data.index(b"100.0%  [1]  c")]
    assert pmcgraph._tree_start(Source(_written(b"100.0%  [1]  a\n" + b"x" * 100)), 20) is None   # no line ends
    assert pmcgraph._tree_start(Source(_written(b"100.0%  [1]  a\n")), 0) == 0   # the file's first line
    assert pmcgraph._tree_start(Source(_written(b"100.0%  [1]  a\n")), 1) is None


def test_small_callgraphs_fold_in_one_process_and_big_ones_at_a_tree_near_the_middle(monkeypatch):
    graph = GRAPHS[0]
    assert parts_text(graph) is None   # below SPLIT_BYTES
    monkeypatch.setattr(pmcgraph, "SPLIT_BYTES", 0)
    looked, tree_start = [], pmcgraph._tree_start
    monkeypatch.setattr(pmcgraph, "_tree_start", lambda source, position: looked.append(position) or tree_start(
        source, position))
    assert parts_text(graph) == one_pass(graph)[0].encode()
    assert looked == [int(graph.stat().st_size * pmcgraph.FIRST_SHARE)]
    monkeypatch.setattr(pmcgraph, "SPLIT_BYTES", graph.stat().st_size)   # from SPLIT_BYTES on
    assert parts_text(graph) == one_pass(graph)[0].encode() and len(looked) == 2
    monkeypatch.setattr(pmcgraph, "SPLIT_BYTES", graph.stat().st_size + 1)
    assert parts_text(graph) is None
    monkeypatch.setattr(pmcgraph, "SPLIT_BYTES", 0)
    monkeypatch.setattr(parallel, "usable_cpus", lambda: 1)
    assert parts_text(graph) is None   # one CPU


@pytest.mark.parametrize("graph", GRAPHS, ids=lambda p: p.name)
def test_the_fold_command_writes_what_one_pass_writes(each_path, monkeypatch, tmp_path, graph):
    outputs = []
    for split in (1 << 60, 0):
        monkeypatch.setattr(pmcgraph, "SPLIT_BYTES", split)
        out = tmp_path / f"{split}.folded"
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            assert main(["fold", str(graph), "-o", str(out)]) == 0
        outputs.append((out.read_bytes(), err.getvalue()))
    assert outputs[0] == outputs[1]


def test_the_fold_command_in_parts_writes_standard_output_as_a_file(each_path, monkeypatch, tmp_path, capsys):
    graph = DATA / "multi-image.graph"
    monkeypatch.setattr(pmcgraph, "SPLIT_BYTES", 0)
    for output in ("-", None):
        assert main(["fold", str(graph), *(["-o", output] if output else [])]) == 0
        assert capsys.readouterr().out == one_pass(graph)[0]
    assert main(["fold", str(graph), "-o", str(tmp_path / "out")]) == 0
    assert (tmp_path / "out").read_text() == one_pass(graph)[0]


def test_an_unreadable_callgraph_in_parts_is_reported_before_the_output_is_opened(each_path, monkeypatch, tmp_path,
                                                                                   capsys):
    """A line past the limit in the first range: one error line, and no output opened (an ``-o`` FIFO would wait
    for a reader, a device be written to)."""
    from tracebridge.cli import fold
    from tracebridge.readers import source

    graph = tmp_path / "long.graph"
    graph.write_bytes((DATA / "multi-image.graph").read_bytes().replace(b"\n", b" " * 300 + b"\n", 1))
    monkeypatch.setattr(pmcgraph, "SPLIT_BYTES", 0)
    monkeypatch.setattr(source, "BLOCK", 64)
    monkeypatch.setattr(source, "MAX_LINE", 128)
    opened = []
    monkeypatch.setattr(fold, "open_output", lambda *args, **kwargs: opened.append(args))
    assert main(["fold", str(graph), "-o", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert opened == [] and f"{graph}:1: has a line longer than" in err and len(err.splitlines()) == 1


def _written(data: bytes) -> Path:
    import tempfile

    with tempfile.NamedTemporaryFile("wb", suffix=".graph", delete=False) as handle:
        handle.write(data)
    return Path(handle.name)


@pytest.mark.parametrize("cpus", [1, 2])
def test_the_second_ranges_text_is_the_one_its_folder_wrote(each_path, monkeypatch, cpus, tmp_path):
    """The text of the second range comes from its own folder (folding it again after the first would give the same
    text: a mark added to it tells which was used), in this process or another."""
    graph = DATA / "multi-image.graph"
    fold_later = pmcgraph._fold_later

    def marked(*args):
        text, read = fold_later(*args)
        return text + b"zz-marked 1\n", read

    monkeypatch.setattr(parallel, "usable_cpus", lambda: cpus)
    monkeypatch.setattr(pmcgraph, "_fold_later", marked)
    text, err = in_parts(graph, tree_starts(graph)[len(tree_starts(graph)) // 2])
    assert text == one_pass(graph)[0] + "zz-marked 1\n" and err == one_pass(graph)[1]
