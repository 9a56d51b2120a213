"""`pmcstat -G` lines at the edges of stackcollapse-pmc.pl's pattern fold as the real script folds them.

tests/data/pmcstat/edges.graph (written by make_captures.py, each line with
why it is there) holds percentages of 9 to 32 bytes, good and bad, a lone
dot, an empty count, an 18-digit count, names glued to the ``]``, hex-like
names that are not addresses, `` @ `` marks that are not image changes, a
path with spaces and a level never filled; edges-controls.graph is the same
with ``\\r\\n`` line ends, plus names holding white space perl does not take
for white space and bytes that are not UTF-8.  The ``*.perl.folded`` files
are the real script's output on them.

Stacks are compared by frame symbol: tracebridge writes ``[unknown]`` where
the script prints an empty frame, reads a hex node as a number (pmcstat
prints ``%p``; the symbol is ``0x`` and lower-case hex) and decodes names as
UTF-8, replacing what is not.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest

from fixture_paths import MODULES
from test_callgraph import layout_function
from tracebridge.profile.consistency import Evidence
from tracebridge.readers.placement import open_images
from tracebridge.readers.pmcgraph import MISSING, read_callgraph

DATA = Path(__file__).parents[1] / "data" / "pmcstat"
EDGES = ["edges", "edges-controls"]
_HEX = re.compile(rb"0x[0-9a-fA-F]{1,16}")


@pytest.fixture(autouse=True)
def _both_paths(each_path):
    """Every test here runs on the native scanner and fold and on their numpy twins."""


def symbol(frame: bytes) -> str:
    if not frame:
        return MISSING
    if _HEX.fullmatch(frame):
        return f"0x{int(frame, 16):x}"
    return frame.decode("utf-8", "replace")


def perl_stacks(name: str) -> Counter:
    """The script's stacks (the outermost caller first, as it prints them), by symbol."""
    stacks: Counter = Counter()
    for line in (DATA / f"{name}.perl.folded").read_bytes().splitlines():
        stack, _, count = line.rpartition(b" ")
        stacks[tuple(symbol(frame) for frame in stack.split(b";"))] += int(count)
    return stacks


def stacks(profile) -> Counter:
    out: Counter = Counter()
    for frames, weight in profile:
        out[tuple(f.symbol for f in frames)] += weight
    return out


@pytest.mark.parametrize("block", [1, 29, 4 << 20])
@pytest.mark.parametrize("name", EDGES)
def test_edge_lines_fold_as_stackcollapse_pmc(monkeypatch, capsys, name, block):
    monkeypatch.setattr("tracebridge.readers.source.BLOCK", block)
    profile = read_callgraph(DATA / f"{name}.graph")
    assert stacks(profile) == perl_stacks(name)
    assert profile.metadata.source == str(DATA / f"{name}.graph")
    assert profile.metadata.event == "cycles, instructions, a header without a sample count"
    skipped = {"edges": 8, "edges-controls": 10}[name]   # the script's non-matching lines, headers and blanks aside
    assert f"{name}.graph:8: skipped {skipped} line(s)" in capsys.readouterr().err


def test_edge_lines_name_their_images():
    profile = read_callgraph(DATA / "edges-controls.graph")
    modules = {f.symbol: f.module for f in profile.frames}
    assert modules["first_line"] == "kernel" and modules["first_caller"] == "kernel"
    assert modules["six_deep"] == "x.ko"               # the path with spaces, carried down
    assert modules["0x2a"] == "x.ko"                   # " @ " with nothing after it changes nothing
    assert modules["0xzz"] == "rem_legacy_fp.ko"
    assert modules["not_utf8_\ufffd"] == "\ufffdt\ufffd.ko"
    names = {f.symbol: f.name for f in profile.frames}
    # no ELF given: a module's hex node is its offset, the kernel's an address
    assert names["0x2a"] == "x.ko+0x2a" and names["0x0"] == "rem_legacy_fp.ko+0x0"
    assert names["0xffffffff80200120"] == "kernel`0xffffffff80200120"
    assert names["\x0eshift_out"] == "\\x0eshift_out"


def test_edge_hex_nodes_named_from_the_module_and_kernel(capsys):
    """With the ELF files, each hex node becomes its function, at any offset in it (offset 0 included)."""
    images = open_images([MODULES / "rem_legacy_fp.ko"], DATA / "kernel")
    profile = read_callgraph(DATA / "edges.graph", images)
    by_stack = stacks(profile)
    assert by_stack[(layout_function(0x0), layout_function(0x870), "ether_input")] == 7
    assert by_stack[("0xzz", layout_function(0x1F), "two_callers", "dot_only")] == 2
    named = {f.symbol: (f.module, f.offset) for f in profile.frames}
    assert named[layout_function(0x0)] == ("rem_legacy_fp.ko", None) and named["ether_input"] == ("kernel", None)
    # the names pmcstat printed stay, hex-like or not, and the unnamed offset of an ELF-less module too
    assert {"0X870", "0x00000000000000870", "0xzz"} <= {f.symbol for f in profile.frames}
    assert "x.ko+0x2a" in {f.name for f in profile.frames}


def test_one_pmc_of_the_edges():
    """Lines before the first header belong to no PMC; a header without a count still names one."""
    assert stacks(read_callgraph(DATA / "edges.graph", pmc="instructions")) == {
        ("0x0", "0x870", "0xffffffff80200120"): 7}
    assert stacks(read_callgraph(DATA / "edges.graph", pmc="a header without a sample count")) == {
        ("last_caller", "last_tree"): 6}
    cycles = stacks(read_callgraph(DATA / "edges.graph", pmc="cycles"))
    assert ("first_caller", "first_line") not in cycles
    assert cycles == {stack: count for stack, count in perl_stacks("edges").items()
                      if stack[-1] not in ("first_line", "0xffffffff80200120", "last_tree")}


def read_watching_edges(tmp_path, text: str):
    """The profile of a callgraph read with edges_amd64.ko given and watched, and the evidence on it."""
    edges = Path(__file__).parents[1] / "fixtures" / "edge" / "edges_amd64.ko"
    graph = tmp_path / "edges.graph"
    graph.write_text(text)
    images = open_images([edges], None)
    evidence = Evidence()
    evidence.watch("edges_amd64.ko", images["edges_amd64.ko"])
    return read_callgraph(graph, images, evidence=evidence), evidence.modules["edges_amd64.ko"]


def test_nodes_are_evidence_whether_the_module_fits(tmp_path):
    """Each distinct node of a given module is checked against its ELF: names against its symbols
    (zero_fn has size 0: a name at offset 0 still fits), hex nodes against its functions."""
    profile, seen = read_watching_edges(tmp_path, "@ cycles [10 samples]\n\n"
                                        "60.00%  [6]        zero_fn @ /boot/modules/edges_amd64.ko\n"
                                        " 50.00%  [3]         no_such_fn\n"
                                        "  100.0%  [3]          0x16\n"
                                        "   100.0%  [3]           fork_exit @ /boot/kernel/kernel\n"
                                        " 50.00%  [3]         0xfff0 @ /boot/modules/edges_amd64.ko\n"
                                        "40.00%  [4]        plain_fn\n"
                                        " 100.0%  [4]         zero_fn\n")
    assert (seen.named.seen, seen.named.off, seen.missing) == (3, 1, ["no_such_fn"])
    assert (seen.in_function.seen, seen.in_function.off) == (1, 0)   # 0x16 in jt_fn; 0xfff0 past the module
    names = {f.symbol: f.name for f in profile.frames}
    assert names["jt_fn"] == "jt_fn" and names["0xfff0"] == "edges_amd64.ko+0xfff0"
    assert {f.symbol: f.module for f in profile.frames}["jt_fn"] == "edges_amd64.ko"


def test_named_nodes_are_evidence_without_hex_nodes(tmp_path):
    """The same when no node of the callgraph is an address (no hex node to resolve)."""
    _, seen = read_watching_edges(tmp_path, "@ cycles [4 samples]\n\n"
                                  "100.0%  [4]        plain_fn @ /boot/modules/edges_amd64.ko\n"
                                  " 100.0%  [4]         no_such_fn\n"
                                  "  100.0%  [4]          fork_exit @ /boot/kernel/kernel\n")
    assert (seen.named.seen, seen.named.off, seen.missing) == (2, 1, ["no_such_fn"])
    assert seen.in_function.seen == 0
