"""Captured kinst output maps back to source through the probe map's ``kinst_sites``.

The captures are written by hand, because no FreeBSD box runs these tests:
they are what dtrace(1) prints for the scripts ``gen-probes --provider kinst``
writes for the inl fixture, in libdtrace's documented formats
(freebsd-facts.md section 5): a string key is ``"  %-50s"``, a count
``" %16lld"``, a ``stack()`` key a newline then one frame per line indented
14 spaces; kinst's ``probename`` is the offset in decimal (``"%d"`` in
kinst_make_probe, section 7).  The expected chains are binutils addr2line's
(tests/fixtures/expected/inl_legacy.addr2line.txt), not tracebridge's.
"""

from __future__ import annotations

import json
from collections import Counter

from addr2line_oracle import read_addr2line
from fixture_paths import EXPECTED, MODULES
from tracebridge.cli import main

BASE = 0xFFFFFFFF82A00000
KERNEL = ["kernel`intr_event_execute_handlers+0x99", "kernel`ithread_loop+0x1a6", "kernel`fork_exit+0x80"]


def generate(tmp_path, capsys, template: str) -> list[dict]:
    status = main(["gen-probes", str(MODULES / "inl_legacy.ko"), "--provider", "kinst", "--inlined", "inl::csum::fold",
                   "-t", template, "-o", str(tmp_path / f"{template}.d"), "--map", str(tmp_path / "map.json")])
    assert status == 0, capsys.readouterr().err
    return json.loads((tmp_path / "map.json").read_text())["kinst_sites"]


def folded(chain) -> str:
    """addr2line's chain (innermost first) as folded frames, outermost first, inlined ones marked."""
    last = len(chain) - 1
    return ";".join(name + ("_[i]" if i < last else "") for i, (name, _, _) in reversed(list(enumerate(chain))))


def function_of(description: str) -> tuple[str, str]:
    _, _, function, offset = description.split(":")
    return function, offset


def test_count_keys_probefunc_probename_become_the_sites_chain(capsys, tmp_path):
    sites = generate(tmp_path, capsys, "count")
    assert len(sites) >= 3
    expected = read_addr2line(EXPECTED / "inl_legacy.addr2line.txt")
    counts = {s["description"]: 10 + i for i, s in enumerate(sites)}
    text = "\n"  # @hits[probefunc, probename] = count(), printed at exit
    for site in sites:
        function, offset = function_of(site["description"])
        text += f"  {function:<50s}  {offset:<50s} {counts[site['description']]:16d}\n"
    (tmp_path / "count.txt").write_text(text)
    assert main(["fold", str(tmp_path / "count.txt"), "--module", str(MODULES / "inl_legacy.ko"),
                 "--probe-map", str(tmp_path / "map.json")]) == 0
    want = Counter()  # two probes of one chain (fold inlined twice into inl_rxeof) fold into one line
    for site in sites:
        want[folded(expected[site["offset"]])] += counts[site["description"]]
    assert sorted(capsys.readouterr().out.splitlines()) == sorted(f"{k} {v}" for k, v in want.items())
    assert main(["report", str(tmp_path / "count.txt"), "--module", str(MODULES / "inl_legacy.ko"),
                 "--probe-map", str(tmp_path / "map.json"), "--by", "line", "--format", "json"]) == 0
    rows = {row["line"]: row for row in json.loads(capsys.readouterr().out)}
    own, through = Counter(), Counter()
    for site in sites:  # hits land on addr2line's innermost file:line; every call site on the chain counts in total
        chain = expected[site["offset"]]
        own[f"{chain[0][1]}:{chain[0][2]}"] += counts[site["description"]]
        for place in {f"{file}:{line}" for _, file, line in chain}:
            through[place] += counts[site["description"]]
    assert {line: row["self"] for line, row in rows.items() if row["self"]} == dict(own)
    assert {line: row["total"] for line, row in rows.items()} == dict(through)


def test_stack_frames_get_the_site_at_their_leaf(capsys, tmp_path):
    sites = generate(tmp_path, capsys, "stack")
    expected = read_addr2line(EXPECTED / "inl_legacy.addr2line.txt")
    amd64, arm64 = sites[0], sites[1]
    text = "\n"  # @[probefunc, probename, stack()] = count()
    for site, leaf, count in ((amd64, [], 4), (arm64, [f"{BASE + arm64['offset']:#x}"], 6)):
        # amd64: kinst makes the word at %rsp DTrace's caller, so the callers are printed;
        # arm64/riscv: the probe address itself is the printed leaf.
        function, offset = function_of(site["description"])
        text += f"  {function:<50s}  {offset:<50s}\n"
        text += "".join(f"              {frame}\n" for frame in [*leaf, *KERNEL]) + f" {count:16d}\n\n"
    (tmp_path / "stack.txt").write_text(text)
    assert main(["fold", str(tmp_path / "stack.txt"), "--module", str(MODULES / "inl_legacy.ko"),
                 "--base", f"{BASE:x}", "--probe-map", str(tmp_path / "map.json")]) == 0
    kernel = ";".join(f.split("`")[1].split("+")[0] for f in reversed(KERNEL))
    out = sorted(capsys.readouterr().out.splitlines())
    assert out == sorted([f"{kernel};{folded(expected[amd64['offset']])} 4",
                          f"{kernel};{folded(expected[arm64['offset']])} 6"])
