"""`pmcstat -R -G` callgraphs fold to what stackcollapse-pmc.pl prints.

The captures and the real script's output on them are in tests/data/pmcstat/
(see make_captures.py there).  The script prints an empty frame where a
caller level was never filled (its line was malformed); tracebridge writes
``[unknown]`` there.  The other intended difference: a hex node that the
script prints bare names its image in tracebridge, as DTrace would (the
kernel's nodes are addresses: `` kernel`0xADDR ``; a module's are offsets
from its base: ``if_em.ko+0xOFF``).
"""

from __future__ import annotations

import os
import re
from collections import Counter
from pathlib import Path

import pytest

import readelf_text
from fixture_paths import EXPECTED, MODULES
from tracebridge.cli import main
from tracebridge.render.folded import folded_lines
from tracebridge.profile.labels import LabelOptions
from tracebridge.readers.placement import open_images
from tracebridge.readers.pmcgraph import MISSING, read_callgraph

DATA = Path(__file__).parents[1] / "data" / "pmcstat"
CAPTURES = ["multi-image", "malformed"]


@pytest.fixture(autouse=True)
def _both_paths(each_path):
    """Every test here runs on the native scanner and fold and on their numpy twins."""


def hex_nodes(name: str) -> dict[str, str]:
    """Each hex node of a graph -> its text naming its image (read off the ``@ path`` lines here, by indentation)."""
    spelled = {}
    images: list[str] = []  # the image of the last node at each depth
    for line in (DATA / f"{name}.graph").read_text().splitlines():
        node = re.fullmatch(r"( *)[0-9.]+%  \[\d+\] +(\S+)(?: @ (\S+))?", line)
        if node is None:
            continue
        depth = len(node.group(1))
        del images[depth:]
        images.append(os.path.basename(node.group(3)) if node.group(3) else images[-1])
        if node.group(2).startswith("0x"):
            spelled[node.group(2)] = (f"kernel`{node.group(2)}" if images[-1] == "kernel"
                                      else f"{images[-1]}+{node.group(2)}")
    return spelled


def perl_folded(name: str) -> Counter:
    spelled = hex_nodes(name)
    assert len(spelled) >= 5, "the graph should hold hex nodes of the kernel and of two modules"
    stacks: Counter = Counter()
    for line in (DATA / f"{name}.perl.folded").read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        stacks[";".join(spelled.get(frame, frame) or MISSING for frame in stack.split(";"))] += int(count)
    return stacks


def folded(profile, labels=LabelOptions()) -> Counter:
    stacks: Counter = Counter()
    for line in folded_lines(profile, labels):
        stack, _, count = line.rpartition(" ")
        stacks[stack] += int(count)
    return stacks


@pytest.mark.parametrize("name", CAPTURES)
def test_same_stacks_and_counts_as_stackcollapse_pmc(name):
    profile = read_callgraph(DATA / f"{name}.graph")
    assert folded(profile, LabelOptions(demangle=False)) == perl_folded(name)


@pytest.mark.parametrize("name", CAPTURES)
def test_names_are_demangled_as_rustfilt_does(name):
    rustfilt = dict(line.split("\t") for line in (EXPECTED / "rem_legacy_fp.rustfilt.txt").read_text().splitlines())
    want = Counter()
    for stack, count in perl_folded(name).items():
        want[";".join(rustfilt.get(frame, frame) for frame in stack.split(";"))] += count
    assert folded(read_callgraph(DATA / f"{name}.graph")) == want


def layout_function(offset: int) -> str:
    """The function of rem_legacy_fp.ko holding a module offset, from readelf's text alone."""
    secs = readelf_text.sections(EXPECTED / "rem_legacy_fp.readelf-S.txt")
    placed, _ = readelf_text.kernel_layout(secs)
    for sym in readelf_text.symbols(EXPECTED / "rem_legacy_fp.readelf-s.txt"):
        if sym.type == "FUNC" and sym.ndx.isdigit() and int(sym.ndx) in placed:
            start = placed[int(sym.ndx)] + sym.value
            if start <= offset < start + sym.size:
                return sym.name
    raise AssertionError(f"no function at {offset:#x}")


def test_hex_nodes_of_given_modules_are_named_from_the_layout(capsys):
    images = open_images([MODULES / "rem_legacy_fp.ko"], DATA / "kernel")
    profile = read_callgraph(DATA / "multi-image.graph", images)
    symbols = {f.symbol for f in profile.frames}
    for offset in (0x870, 0xCF8, 0x1D10):
        assert layout_function(offset) in symbols
    kernel = {s.name: (s.value, s.size) for s in readelf_text.symbols(DATA / "kernel.readelf-s.txt")}
    start, size = kernel["ether_input"]
    assert start <= 0xFFFFFFFF80200120 < start + size
    assert "0xffffffff80200120" not in symbols and "0x870" not in symbols
    # if_em.ko has no ELF here: its nodes stay as pmcstat printed them.
    assert {"0x1a2b0", "0x18000", "0x19f00"} <= symbols
    assert capsys.readouterr().err == (
        f"tracebridge: warning: {DATA / 'multi-image.graph'}: pmcstat -G names functions of modules with one "
        "section per function (most Rust modules) wrongly, as it ignores section offsets (one section per function: "
        "rem_legacy_fp.ko; no ELF given to check: if_em.ko); only its hex nodes are re-resolved here. For exact "
        "names convert with `pmcstat -R LOG -o out.txt` and read that instead\n")


def test_hex_nodes_keep_the_name_the_callgraph_gives_their_image(tmp_path, capsys):
    """The images are given by the name pmcstat printed, whatever their file is called (here a copy of the
    module built as rem_build.ko, loaded as rem_legacy_fp.ko): the nodes it names from the layout are in
    that module, as the nodes pmcstat named are."""
    copy = tmp_path / "rem_build.ko"
    copy.write_bytes((MODULES / "rem_legacy_fp.ko").read_bytes())
    images = {**open_images([], DATA / "kernel"), "rem_legacy_fp.ko": open_images([copy], None)["rem_build.ko"]}
    profile = read_callgraph(DATA / "multi-image.graph", images)
    by_symbol = {f.symbol: f.module for f in profile.frames}
    assert by_symbol[layout_function(0x870)] == by_symbol[layout_function(0xCF8)] == "rem_legacy_fp.ko"
    assert by_symbol["_ZN3rem2em2rx16Adapter$LT$T$GT$8rx_frame17h183ba40ea4476ec7E"] == "rem_legacy_fp.ko"
    assert "rem_build.ko" not in {f.module for f in profile.frames}


def test_frames_are_numbered_as_their_nodes_first_appear():
    """Frame ids (the order of speedscope's frame table) follow the nodes' first lines, hex nodes among
    the named ones.  No name of this graph is printed with two images, so each node is one frame."""
    nodes = re.findall(r"^ *[0-9.]+%  \[\d+\] +(\S+)", (DATA / "multi-image.graph").read_text(), re.M)
    assert any(node.startswith("0x") for node in nodes)
    assert [f.symbol for f in read_callgraph(DATA / "multi-image.graph").frames] == list(dict.fromkeys(nodes))


def test_one_pmc(capsys):
    profile = read_callgraph(DATA / "multi-image.graph", pmc="inst_retired.any")
    assert sum(folded(profile, LabelOptions(demangle=False)).values()) == 12 + 4 + 3
    assert profile.metadata.event == "inst_retired.any"


def test_malformed_lines_are_skipped_with_one_warning(capsys):
    read_callgraph(DATA / "malformed.graph")
    err = capsys.readouterr().err
    assert f"tracebridge: warning: {DATA / 'malformed.graph'}:4: skipped 5 line(s) that are not callgraph " \
           "entries (as stackcollapse-pmc.pl does)\n" in err


def test_cli_detects_a_callgraph(tmp_path, capsys):
    out = tmp_path / "out.folded"
    assert main(["pmc", "resolve", str(DATA / "multi-image.graph"), "-m", str(MODULES / "rem_legacy_fp.ko"),
                 "--kernel", str(DATA / "kernel"), "-o", str(out)]) == 0
    lines = out.read_text().splitlines()
    assert "fork_exit;taskqueue_run;rem_intr;rem::em::rx::Adapter<T>::refill 5" in lines


def test_fold_command_names_hex_nodes_from_the_modules_given(tmp_path, capsys):
    """The shared input table passes the modules (the kernel is one) to the -G reader."""
    out = tmp_path / "out.folded"
    assert main(["fold", str(DATA / "multi-image.graph"), "--module", str(MODULES / "rem_legacy_fp.ko"),
                 "--module", str(DATA / "kernel"), "--no-demangle", "-o", str(out)]) == 0
    frames = {frame for line in out.read_text().splitlines() for frame in line.rpartition(" ")[0].split(";")}
    assert {layout_function(0x870), layout_function(0xCF8), "ether_input"} <= frames
    assert not {"rem_legacy_fp.ko+0x870", "kernel`0xffffffff80200120"} & frames


def test_fold_command_says_when_the_module_given_is_another_build(tmp_path, capsys):
    """pmcstat named the module's functions from its symbols: the v0 build of the same code has none of them."""
    other = tmp_path / "rem_legacy_fp.ko"
    other.write_bytes((MODULES / "rem_v0_fp.ko").read_bytes())
    assert main(["fold", str(DATA / "multi-image.graph"), "--module", str(other), "--strict",
                 "-o", str(tmp_path / "out.folded")]) == 2
    assert "the capture does not fit rem_legacy_fp.ko: 4 of 4 frames the capture names in it name no function" \
        in capsys.readouterr().err


def test_windows_line_ends_and_tabs_fold_the_same(tmp_path):
    """perl's \\s takes \\r and \\t; the indentation must still be spaces only."""
    crlf = tmp_path / "crlf.graph"
    crlf.write_bytes((DATA / "multi-image.graph").read_bytes().replace(b"\n", b"\r\n"))
    assert folded(read_callgraph(crlf), LabelOptions(demangle=False)) == perl_folded("multi-image")
    tabs = tmp_path / "tabs.graph"
    tabs.write_bytes(b"100.0%  [10]       foo @ /boot/kernel/kernel\n"
                     b"\t 50.00%  [5]        not-read\n"     # a tab in the indentation: skipped by the script
                     b" 50.00%  [5]\tbar\n"                  # a tab before the name: read
                     b"  100.0%  [5]         baz\n")
    assert folded(read_callgraph(tabs), LabelOptions(demangle=False)) == {"baz;bar;foo": 5}


def test_fold_command_detects_pmcstat_inputs(tmp_path, capsys):
    """The shared input table (tracebridge fold/report) reads -G output too."""
    out = tmp_path / "out.folded"
    assert main(["fold", str(DATA / "multi-image.graph"), "--no-demangle", "-o", str(out)]) == 0
    stacks = Counter()
    for line in out.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        stacks[stack] += int(count)
    assert stacks == perl_folded("multi-image")


def test_warning_only_for_modules_pmcstat_misnames(tmp_path, capsys):
    # rem_legacy_fp_merged.ko has one .text at offset 0 (pmcstat's st_value lookup is right);
    # rem_legacy_fp.ko has a section per function (every Rust function at 0 for pmcstat).
    graph = tmp_path / "two.graph"
    graph.write_text("@ cpu_clk_unhalted.thread_p [5 samples]\n\n"
                     "60.00%  [3]        rem_modevent @ /boot/modules/rem_legacy_fp_merged.ko\n"
                     " 100.0%  [3]         fork_exit @ /boot/kernel/kernel\n"
                     "40.00%  [2]        rem_modevent @ /boot/modules/rem_legacy_fp.ko\n"
                     " 100.0%  [2]         fork_exit @ /boot/kernel/kernel\n")
    read_callgraph(graph, open_images([MODULES / "rem_legacy_fp_merged.ko"], None))
    err = capsys.readouterr().err
    assert "no ELF given to check: rem_legacy_fp.ko" in err and "one section per function:" not in err
    read_callgraph(graph, open_images([MODULES / "rem_legacy_fp_merged.ko", MODULES / "rem_legacy_fp.ko"], None))
    assert "one section per function: rem_legacy_fp.ko)" in capsys.readouterr().err
    graph.write_text(graph.read_text().replace("rem_legacy_fp.ko", "rem_legacy_fp_merged.ko"))
    read_callgraph(graph, open_images([MODULES / "rem_legacy_fp_merged.ko"], None))
    assert capsys.readouterr().err == ""
    # several modules of a kind: listed by name
    graph.write_text(graph.read_text() + "20.00%  [1]        rem_modevent @ /boot/modules/rem_v0_fp.ko\n"
                     "20.00%  [1]        rem_modevent @ /boot/modules/rem_legacy_fp.ko\n"
                     "20.00%  [1]        0x10 @ /boot/modules/if_em.ko\n")
    read_callgraph(graph, open_images([MODULES / "rem_legacy_fp.ko", MODULES / "rem_v0_fp.ko"], None))
    assert "(one section per function: rem_legacy_fp.ko, rem_v0_fp.ko; no ELF given to check: " \
           "if_em.ko, rem_legacy_fp_merged.ko)" in capsys.readouterr().err


@pytest.mark.parametrize("block", [1, 37, 200])
@pytest.mark.parametrize("name", CAPTURES)
def test_blocks_cut_anywhere_fold_the_same(monkeypatch, name, block):
    """A tree (and its last line, whose stack ends only if the next line is no deeper) may span blocks."""
    monkeypatch.setattr("tracebridge.readers.source.BLOCK", block)
    assert folded(read_callgraph(DATA / f"{name}.graph"), LabelOptions(demangle=False)) == perl_folded(name)
    want = folded(read_callgraph(DATA / "multi-image.graph", pmc="inst_retired.any"), LabelOptions(demangle=False))
    assert sum(want.values()) == 12 + 4 + 3


def test_retained_state_stays_constant_over_repeated_trees():
    """Only the distinct frames and stacks stay: after the 60th copy of the trees no more than after the 20th."""
    import gc
    import tracemalloc

    from tracebridge.readers import pmcgraph
    from tracebridge.profile import model

    def held() -> int:  # what the reader and the profile allocated and still hold
        gc.collect()  # which also empties the free lists of dicts and lists, whose memory tracemalloc still counts
        only = [tracemalloc.Filter(True, module.__file__) for module in (pmcgraph, model)]
        return sum(stat.size for stat in tracemalloc.take_snapshot().filter_traces(only).statistics("filename"))

    data = (DATA / "multi-image.graph").read_bytes()
    folder = pmcgraph.CallgraphFolder("repeated.graph")
    tracemalloc.start()
    try:
        for copy in range(60):
            folder.feed(1 + 61 * copy, data)
            if copy == 19:
                after_twenty = held()
        after_sixty = held()
    finally:
        tracemalloc.stop()
    assert after_sixty - after_twenty < 512   # one copy's stacks alone would take more
    assert folded(folder.finish(), LabelOptions(demangle=False)) == \
        Counter({stack: 60 * count for stack, count in perl_folded("multi-image").items()})


def test_last_line_without_a_newline_is_read(tmp_path):
    """A capture cut by the editor or by `head -c` ends without a newline: its last node still counts."""
    cut = tmp_path / "cut.graph"
    cut.write_bytes((DATA / "multi-image.graph").read_bytes().rstrip(b"\n"))
    assert folded(read_callgraph(cut), LabelOptions(demangle=False)) == perl_folded("multi-image")
