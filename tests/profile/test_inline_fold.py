"""``--inline``: a DTrace ``stack()`` capture with hex frames, each module PC expanded into its chain.

The expected chains are binutils addr2line's (tests/fixtures/expected/
inl_legacy.addr2line.txt), not tracebridge's: the leaf at its PC, a caller
at its return address - 1 (inside the call instruction).
"""

from __future__ import annotations

import json
import shutil
import xml.etree.ElementTree as ET

from addr2line_oracle import read_addr2line
from fixture_paths import EXPECTED, MODULES
from tracebridge.cli import main

BASE = 0xFFFFFFFF82A00000
SVG = "{http://www.w3.org/2000/svg}"
KERNEL = ["kernel`intr_event_execute_handlers+0x99", "kernel`ithread_loop+0x1a6", "kernel`fork_exit+0x80"]
#: inl_drain+0x18: the return address of its call to <Drain as Iterator>::next (objdump: call at +0x13).
DRAIN, DRAIN_CALL, DRAIN_RETURN, NEXT = 0x2A0, 0x2B3, 0x2B8, 0x260


def capture(path, stacks) -> None:
    text = "\n\n"
    for frames, count in stacks:
        text += "\n" + "".join(f"              {frame}\n" for frame in frames) + f" {count:16d}\n"
    path.write_text(text)


def names(chain) -> list[str]:
    """addr2line's chain (innermost first) as folded frames, outermost first, inlined ones marked."""
    last = len(chain) - 1
    return [name + ("_[i]" if i < last else "") for i, (name, _, _) in reversed(list(enumerate(chain)))]


def fold(capsys, *args) -> tuple[int, str, str]:
    status = main(["fold", *map(str, args)])
    out = capsys.readouterr()
    return status, out.out, out.err


def test_every_leaf_and_caller_becomes_its_addr2line_chain(capsys, tmp_path):
    expected = read_addr2line(EXPECTED / "inl_legacy.addr2line.txt")
    rxeof = 0x3C0
    deep = max((a for a in expected if rxeof <= a < rxeof + 0x206), key=lambda a: (len(expected[a]), -a))
    leaf_in_next = min(a for a in expected if a > NEXT + 8)
    stacks = [([f"{BASE + deep:#x}", *KERNEL], 7),
              ([f"{BASE + leaf_in_next:#x}", f"{BASE + DRAIN_RETURN:#x}", *KERNEL], 3)]
    capture(tmp_path / "stack.txt", stacks)
    status, out, err = fold(capsys, tmp_path / "stack.txt", "--module", MODULES / "inl_legacy.ko",
                            "--base", f"{BASE:x}", "--inline")
    assert status == 0, err
    kernel = ";".join(f.split("`")[1].split("+")[0] for f in reversed(KERNEL))
    want = sorted([
        f"{kernel};{';'.join(names(expected[deep]))} 7",
        f"{kernel};{';'.join(names(expected[DRAIN_CALL]))};{';'.join(names(expected[leaf_in_next]))} 3",
    ])
    assert out.splitlines() == want
    assert len(expected[deep]) >= 4 and "_[i]" in out


def test_report_by_line_ranks_source_lines(capsys, tmp_path):
    expected = read_addr2line(EXPECTED / "inl_legacy.addr2line.txt")
    leaf = max((a for a in expected if 0x3C0 <= a < 0x5C6), key=lambda a: (len(expected[a]), -a))
    capture(tmp_path / "stack.txt", [([f"{BASE + leaf:#x}", *KERNEL], 5)])
    status = main(["report", str(tmp_path / "stack.txt"), "--module", str(MODULES / "inl_legacy.ko"),
                   "--base", f"{BASE:x}", "--by", "line", "--format", "json"])
    rows = json.loads(capsys.readouterr().out)
    assert status == 0
    by_line = {row["line"]: row for row in rows}
    innermost = f"{expected[leaf][0][1]}:{expected[leaf][0][2]}"
    assert by_line[innermost]["self"] == 5
    for _, file, line in expected[leaf][1:]:  # every call site on the chain counts in total
        assert by_line[f"{file}:{line}"]["total"] == 5


def test_without_dwarf_frames_stay_whole_with_a_warning(capsys, tmp_path):
    module = tmp_path / "inl.ko"
    shutil.copy(MODULES / "inl_legacy.ko", module)
    capture(tmp_path / "stack.txt", [([f"{BASE + 0x4C4:#x}", *KERNEL], 2)])
    status, out, err = fold(capsys, tmp_path / "stack.txt", "--module", module, "--base", f"{BASE:x}", "--inline")
    assert status == 0 and out.strip().endswith(";inl_rxeof 2")
    assert "no DWARF found" in err and len(err.splitlines()) == 1


def test_flamegraph_draws_inlined_frames_apart(capsys, tmp_path):
    expected = read_addr2line(EXPECTED / "inl_legacy.addr2line.txt")
    leaf = max((a for a in expected if 0x3C0 <= a < 0x5C6), key=lambda a: (len(expected[a]), -a))
    capture(tmp_path / "stack.txt", [([f"{BASE + leaf:#x}", *KERNEL], 5)])
    args = [str(tmp_path / "stack.txt"), "--module", str(MODULES / "inl_legacy.ko"), "--base", f"{BASE:x}"]
    assert main(["flamegraph", *args, "--inline"]) == 0
    inlined = capsys.readouterr().out
    assert main(["flamegraph", *args]) == 0
    whole = capsys.readouterr().out
    assert "inlined (DWARF)" in inlined and "inlined (DWARF)" not in whole
    innermost = expected[leaf][0][0].replace("<", "&lt;").replace(">", "&gt;")
    assert innermost in inlined and innermost not in whole


def deepest_leaf() -> tuple[int, list]:
    """The instruction inside inl_rxeof with the longest addr2line chain, and that chain."""
    expected = read_addr2line(EXPECTED / "inl_legacy.addr2line.txt")
    leaf = max((a for a in expected if 0x3C0 <= a < 0x5C6), key=lambda a: (len(expected[a]), -a))
    return leaf, expected[leaf]


def assert_tooltips_follow_the_chain(svg_text: str, chain: list) -> None:
    """Every box of the chain says where its code is: addr2line's file:line for that frame."""
    svg = ET.fromstring(svg_text)
    boxes = {int(g.get("data-d")): g.find(SVG + "title").text.splitlines() for g in svg.iter(SVG + "g")}
    first = len(KERNEL) + 1  # depth 0 is "all"
    for depth, (function, file, line) in enumerate(reversed(chain), start=first):  # outermost first, bottom-up
        title = boxes[depth]
        assert title[0] == function
        assert f"source: {file}:{line}" in title
        assert (depth > first) == any(t.startswith("inlined") for t in title)
    assert not any(t.startswith("source: ") for t in boxes[1])  # a kernel frame: no DWARF, no source


def test_flamegraph_tooltips_give_each_frames_file_and_line(capsys, tmp_path):
    leaf, chain = deepest_leaf()
    capture(tmp_path / "stack.txt", [([f"{BASE + leaf:#x}", *KERNEL], 5)])
    assert main(["flamegraph", str(tmp_path / "stack.txt"), "--module", str(MODULES / "inl_legacy.ko"),
                 "--base", f"{BASE:x}", "--inline"]) == 0
    assert_tooltips_follow_the_chain(capsys.readouterr().out, chain)


def test_diff_tooltips_give_each_frames_file_and_line(capsys, tmp_path):
    """The differential graph's boxes say where their code is, as the plain flame graph's do."""
    leaf, chain = deepest_leaf()
    capture(tmp_path / "before.txt", [([f"{BASE + leaf:#x}", *KERNEL], 5)])
    capture(tmp_path / "after.txt", [([f"{BASE + leaf:#x}", *KERNEL], 9)])
    assert main(["diff", str(tmp_path / "before.txt"), str(tmp_path / "after.txt"), "--module",
                 str(MODULES / "inl_legacy.ko"), "--base", f"{BASE:x}", "--inline",
                 "-o", str(tmp_path / "diff.svg"), "--format", "json", "--by", "total"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert_tooltips_follow_the_chain((tmp_path / "diff.svg").read_text(), chain)
    # The table still has one row per function, lines or not.
    assert sorted(row["function"] for row in rows) == sorted({function for function, _, _ in chain} |
                                                             {f.split("`")[1].split("+")[0] for f in KERNEL})
