"""kinst probes: every site from --at / --inlined checked against binutils (addr2line -i, objdump -d).

The reference (tests/fixtures/expected/inl_*.addr2line.txt) holds addr2line's
chain at every instruction start objdump found, on the kernel-layout copy:
a probe must lie on one of those addresses, with addr2line putting the asked
line (innermost frame) or the asked inlined function (anywhere inside the
chain) there.
"""

from __future__ import annotations

import json
import re

import pytest

from addr2line_oracle import line_sites, reference
from fixture_paths import DWARF_MODULE_NAMES, EXPECTED, MODULES
from tracebridge.cli import main
from tracebridge.image.dwarf import module_index
from tracebridge.image.elf import open_module
from tracebridge.probes.kinst import DOLLAR, SitePlanner

DESCRIPTION = re.compile(r"^kinst:(?P<module>[^:]+):(?P<function>[^:]+):(?P<offset>\d+)[,]?$", re.M)


@pytest.fixture(scope="module", params=DWARF_MODULE_NAMES)
def module(request):
    image = open_module(MODULES / f"{request.param}.ko")
    index, _ = module_index(image)
    return image, SitePlanner(image, index), reference(request.param)


def test_every_line_site_is_an_instruction_where_addr2line_gives_that_line(module):
    image, planner, expected = module
    placed = 0
    for file, line, site, chain in line_sites(planner, expected):
        assert chain[0][1].endswith(file.rsplit("/", 1)[-1]) and chain[0][2] == line, (file, line, site)
        assert "$" not in site.function.name
        placed += 1
    assert placed > 50


def test_every_inlined_site_starts_a_copy_of_that_function(module):
    image, planner, expected = module
    inlined = {name for chain in expected.values() for name, _, _ in chain[:-1]}
    placed = 0
    for name in sorted(inlined):
        pattern = name.replace("[", "[[]")  # a literal name as a glob
        sites, refusals = planner.inlined(pattern)
        for site in sites:
            assert name in [frame for frame, _, _ in expected[site.module_offset][:-1]], (name, site)
            placed += 1
        assert all(r.reason for r in refusals)
    assert placed > 20


def test_a_dollar_symbol_gets_no_probe_and_is_listed(capsys, tmp_path):
    status = main(["gen-probes", str(MODULES / "inl_legacy.ko"), "--provider", "kinst", "--inlined",
                   "inl::csum::fold", "--at", "src/lib.rs:87", "-o", str(tmp_path / "k.d"),
                   "--map", str(tmp_path / "k.json")])
    assert status == 0, capsys.readouterr().err
    script = (tmp_path / "k.d").read_text()
    found = DESCRIPTION.findall(script)
    assert found and all(m == "inl_legacy.ko" and "$" not in f for m, f, _ in found)
    assert "cannot be named" in script  # Drain::next holds csum::fold but has a '$' name
    sites = json.loads((tmp_path / "k.json").read_text())["kinst_sites"]
    assert {s["description"] for s in sites} == {f"kinst:{m}:{f}:{o}" for m, f, o in found}
    assert all(s["chain"] and s["chain"][0] == s["demangled"] for s in sites)


def test_planner_reports_the_dollar_reason(module):
    image, planner, _ = module
    _, refusals = planner.inlined("inl::csum::fold")
    if not image.filename.startswith("inl_v0"):  # legacy mangling: inl_legacy, inl_dwarf5
        assert any(r.reason == DOLLAR for r in refusals)
    else:  # v0 names have no '$'
        assert not any(r.reason == DOLLAR for r in refusals)


def test_function_templates_probe_entry_and_every_ret(capsys):
    assert main(["gen-probes", str(MODULES / "inl_legacy.ko"), "--provider", "kinst", "-t", "latency"]) == 0
    script = capsys.readouterr().out
    objdump = (EXPECTED / "inl_legacy.objdump.txt").read_text()
    rets = {}
    current = None
    for line in objdump.splitlines():
        head = re.match(r"^[0-9a-f]+ <(.+)>:$", line)
        if head:
            current = head.group(1)
        elif re.match(r"^\s+[0-9a-f]+:\t(c3|c2 )", line):
            rets.setdefault(current, set()).add(int(line.split(":")[0], 16))
    found = DESCRIPTION.findall(script)
    for _, function, offset in found:
        assert int(offset) == 0 or int(offset) in rets[function]
    for function, offsets in rets.items():
        if any(f == function for _, f, _ in found):
            assert {int(o) for _, f, o in found if f == function} == {0} | offsets


def test_at_and_inlined_need_kinst_and_a_counting_template(capsys):
    module_path = str(MODULES / "inl_legacy.ko")
    assert main(["gen-probes", module_path, "--at", "lib.rs:30"]) == 2
    assert main(["gen-probes", module_path, "--provider", "kinst", "--at", "lib.rs:30", "-t", "latency"]) == 2
    assert main(["gen-probes", module_path, "--provider", "kinst", "--at", "lib.rs"]) == 2
    err = capsys.readouterr().err
    assert err.count("tracebridge: ") == 3 and "Traceback" not in err
