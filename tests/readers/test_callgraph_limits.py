"""pmcstat -G callgraph lines at the reader's limits, and what stackcollapse-pmc.pl's pattern rejects."""

from __future__ import annotations

from collections import Counter

import pytest

from tracebridge.profile.labels import LabelOptions
from tracebridge.render.folded import folded_lines
from tracebridge.readers.pmcgraph import MAX_DEPTH, MISSING, CallgraphFolder, read_callgraph
from tracebridge.support.errors import InputError


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
    with pytest.raises(InputError, match=f"indented {MAX_DEPTH + 1} deep"):
        fold(tmp_path, "100.0%  [1]  root\n" + " " * (MAX_DEPTH + 1) + line)


def test_largest_count(tmp_path):
    eighteen = "9" * 18
    assert fold(tmp_path, f"100.0%  [{eighteen}]  foo\n") == {"foo": int(eighteen)}
    with pytest.raises(InputError, match="count too large"):
        fold(tmp_path, "100.0%  [1" + "0" * 18 + "]  foo\n")


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
