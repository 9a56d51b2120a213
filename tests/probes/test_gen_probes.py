"""gen-probes: every template on every fixture is valid D with descriptions that select exactly their function."""

from __future__ import annotations

import json

import pytest

from elf_surgery import ElfCopy
from fixture_paths import MODULE_NAMES, MODULES
from dcheck import PSPEC, check
from tracebridge.probes import dscript
from tracebridge.cli import main
from tracebridge.probes.dglob import SIGNED_CHAR, matches
from tracebridge.support.errors import UsageError
from tracebridge.image.elf import open_module
from tracebridge.probes.probemap import ProbeMap
from tracebridge.probes.probeplan import plan_module


def generate(tmp_path, module, *args):
    script, mapping = tmp_path / "probes.d", tmp_path / "probes.json"
    assert main(["gen-probes", str(module), "-o", str(script), "--map", str(mapping), *args]) == 0
    return script.read_text(), ProbeMap.load(mapping)


def assert_descriptions_exact(clauses, probe_map, names, signed_char):
    by_description = {d: e for e in probe_map for d in e.descriptions}
    distinct = set(names)
    described = 0
    for clause in clauses:
        for text in clause.descriptions:
            if not text.startswith("fbt:"):
                continue
            assert PSPEC.fullmatch(text) and "$" not in text
            provider, module, function, probe = text.split(":")
            assert len(function) <= 191 and len(module) <= 63 and probe in ("entry", "return")
            assert module == probe_map.modname
            entry = by_description[text]
            selected = {n for n in distinct if matches(n, function, signed_char=signed_char)}
            assert selected == {entry.mangled}, text
            described += 1
    return described


@pytest.mark.parametrize("template", dscript.TEMPLATES)
@pytest.mark.parametrize("name", MODULE_NAMES)
def test_every_template_on_every_fixture(tmp_path, name, template):
    module = MODULES / f"{name}.ko"
    source, probe_map = generate(tmp_path, module, "--template", template)
    clauses = check(source)
    image = open_module(module)
    names = [f.name for f in image.functions]
    described = assert_descriptions_exact(clauses, probe_map, names, SIGNED_CHAR[image.machine])
    assert source.startswith("/*\n * tracebridge template")
    assert "dtrace -s probes.d -o out.txt" in source
    if template == "stack":
        assert described == 0 and any(c.descriptions == ["profile-997"] for c in clauses)
    else:
        assert described > 0
        assert all(e.entry for e in probe_map)
    if template in ("latency", "flow"):
        assert all(e.ret for e in probe_map if any(d.endswith(":return") for d in e.descriptions))


def test_latency_pairs_only_functions_with_both_probes(tmp_path):
    source, probe_map = generate(tmp_path, MODULES / "rem_legacy_fp.ko", "--template", "latency")
    assert all(e.entry and e.ret for e in probe_map)
    assert "no-return-probe" in source  # rem_unload & co. have an entry but no return site
    assert "self->ts[probefunc, self->depth[probefunc]]" in source


def test_selection_and_module_name(tmp_path):
    source, probe_map = generate(tmp_path, MODULES / "rem_legacy_fp.ko", "--match", "*rx_frame*",
                                 "--module-name", "if_rem")
    assert len(probe_map.entries) == 3 and all("rx_frame" in e.demangled for e in probe_map)
    assert all(d.startswith("fbt:if_rem:") for e in probe_map for d in e.descriptions)
    assert probe_map.find(probe_map.entries[0].mangled) is probe_map.entries[0]
    assert probe_map.find(probe_map.entries[1].function) is probe_map.entries[1]


def test_stack_predicate_uses_base_and_size(tmp_path):
    source, _ = generate(tmp_path, MODULES / "rem_legacy_fp.ko", "--template", "stack", "--base", "ffffffff82a00000")
    size = open_module(MODULES / "rem_legacy_fp.ko").size
    assert f"/arg0 >= 0xffffffff82a00000 && arg0 < {0xffffffff82a00000 + size:#x}/" in source


def test_big_scripts_are_split(tmp_path):
    image = open_module(MODULES / "rem_legacy_fp.ko")
    template = dscript.load_template("latency")
    script = dscript.build(template, plan_module(image), budget=40_000)
    # 72 of the 77 probeable functions have a return probe that fires: <[u32; 4] as RxDesc>::length
    # shares its code with <ExtendedDesc as RxDesc>::length, listed after it, whose return probe fires there.
    assert len(script.parts) > 2 and sum(map(len, script.parts)) == 72
    files = dscript.part_files(str(tmp_path / "p.d"), len(script.parts))
    assert files[1].endswith("p.part2.d")
    for index in range(len(files)):
        text = script.text(index, files)
        check(text)
        assert "-s p.d -s p.part2.d" in text and f"Part {index + 1} of {len(files)}" in text
    with pytest.raises(UsageError):
        dscript.part_files(None, 2)


def test_clauses_hold_at_most_256_descriptions(monkeypatch):
    monkeypatch.setattr(dscript, "CLAUSE_MAX", 5)
    image = open_module(MODULES / "rem_legacy_fp.ko")
    script = dscript.build(dscript.load_template("count"), plan_module(image))
    clauses = check(script.text(0, ["-"]))
    assert len(clauses) == 16 and max(len(c.descriptions) for c in clauses) == 5


def test_map_round_trip(tmp_path):
    _, probe_map = generate(tmp_path, MODULES / "rem_v0_fp.ko", "--template", "args")
    data = json.loads((tmp_path / "probes.json").read_text())
    assert data["format"] == "tracebridge-probe-map" and data["scripts"] == ["probes.d"]
    assert set(data["functions"][0]) == {"function", "mangled", "demangled", "offset", "size", "entry", "return",
                                         "descriptions", "script"}
    probe_map.save(tmp_path / "again.json")
    assert ProbeMap.load(tmp_path / "again.json") == probe_map


@pytest.mark.parametrize("content", [b"not json", b"[]", b'{"format": "tracebridge-probe-map", "version": 1}',
                                     b'{"format": "tracebridge-probe-map", "version": 1, "module": 3}'])
def test_bad_maps(tmp_path, content):
    from tracebridge.support.errors import InputError
    path = tmp_path / "m.json"
    path.write_bytes(content)
    with pytest.raises(InputError):
        ProbeMap.load(path)


def test_run_line_names_the_files_written(tmp_path, capsys):
    out = tmp_path / "rx-stack.d"
    assert main(["gen-probes", str(MODULES / "rem_legacy_fp.ko"), "-t", "stack", "-o", str(out)]) == 0
    assert " * Run:    dtrace -s rx-stack.d -o out.txt" in out.read_text()
    assert main(["gen-probes", str(MODULES / "rem_legacy_fp.ko"), "-t", "count"]) == 0
    assert " * Run:    dtrace -s SCRIPT.d -o out.txt" in capsys.readouterr().out


def test_plan_halves_balance_functions_and_code():
    """One unit per function and one per 1,024 bytes of code: 100 empty functions and 100 of 10,240
    bytes (11 units each) are cut where 0.56 of the 1,200 units are reached: 0.56 * 1,200 is a hair
    over 672 in floating point, which the empties and 52 of the others make, so 53 of them."""
    from tracebridge.image.elf import Function
    from tracebridge.probes.probeplan import _middle_by_code

    functions = [Function(i, f"f{i}", ".text", 1, i, 0 if i < 100 else 10_240, "LOCAL", "FUNC", i)
                 for i in range(200)]
    assert _middle_by_code(functions) == 153
    assert _middle_by_code(functions[:1]) == 1


def test_plan_halves_of_many_functions_are_cut_from_a_sample():
    """Past COST_SAMPLES functions every n-th one stands for n (here 3): the cut is a multiple of 3
    within two samples of the exact one (empties first, then 10,240-byte functions, as above: 18,602)."""
    from tracebridge.image.elf import Function
    from tracebridge.probes.probeplan import _middle_by_code
    from tracebridge.support.parallel import COST_SAMPLES

    count = 3 * COST_SAMPLES - 100
    functions = [Function(i, f"f{i}", ".text", 1, i, 0 if i < count // 2 else 10_240, "LOCAL", "FUNC", i)
                 for i in range(count)]
    middle = _middle_by_code(functions)
    assert middle % 3 == 0 and abs(middle - 18_602) <= 2 * 3


@pytest.mark.parametrize("command", [["gen-probes", "--template", "stack"], ["symbols"], ["inspect"]])
def test_a_base_the_module_cannot_fit_above_is_refused(tmp_path, capsys, command):
    """A .bss of 2**63 fits the address space from 0x1000, not from kldstat's usual 0xffffffff82a1c000:
    gen-probes wrote the predicate 'arg0 < 0x17fffffff82a1ece0', a number past 2**64."""
    copy = ElfCopy(MODULES / "rem_legacy_fp.ko")
    copy.section(copy.section_index(".bss"), "size", 2**63)
    module = copy.write(tmp_path / "big.ko")
    size = open_module(module).size
    assert main([command[0], str(module), *command[1:], "--base", "1000"]) == 0
    if command[0] == "gen-probes":
        assert f"/arg0 >= 0x1000 && arg0 < {0x1000 + size:#x}/" in capsys.readouterr().out
    capsys.readouterr()
    assert main([command[0], str(module), *command[1:], "--base", "ffffffff82a1c000"]) == 2
    assert capsys.readouterr().err == (f"tracebridge: big.ko at 0xffffffff82a1c000 (size {size:#x}) runs past the end "
                                       "of the address space: check the load address\n")
