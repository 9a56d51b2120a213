"""kinst on arm64 and riscv, checked against llvm-objdump and addr2line, not against our own decoding.

The modules (tests/fixtures/cross/xinl_*.ko) are rustc-compiled Rust with
DWARF; their views were made by llvm-objdump (which reads arm64 and riscv:
binutils here is x86-only) and binutils addr2line at every instruction
address of that listing (tests/fixtures/build.sh).  From the listing: where
instructions start, which are ``ret``, and where the atomic sequences,
``adr``/``adrp`` and SYSTEM instructions kinst will not patch sit.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

import pytest

from addr2line_oracle import line_sites, read_addr2line
from fixture_paths import CROSS, CROSS_MODULE_NAMES, MODULES
from tracebridge.cli import main
from tracebridge.image.dwarf import module_index
from tracebridge.image.elf import open_module
from tracebridge.probes import kinst, kinst_isa
from tracebridge.probes.kinst import SitePlanner

DESCRIPTION = re.compile(r"^kinst:(?P<module>[^:]+):(?P<function>[^:]+):(?P<offset>\d+)[,]?$", re.M)
HEADER = re.compile(r"^([0-9a-f]+) <(.+)>:$")
INSTRUCTION = re.compile(r"^ +([0-9a-f]+): ((?:[0-9a-f]{2} )+)\s*\t(\S+)\s*(.*)$")

#: What llvm-objdump calls the instructions kinst skips, per reason: atomic sequences run from the
#: load-reserved/exclusive to the store-conditional/exclusive, both included.
SEQUENCES = {"arm64": (("ldxr", "ldaxr"), ("stxr", "stlxr")), "riscv": (("lr.w", "lr.d"), ("sc.w", "sc.d"))}
SYSTEM = re.compile(r"^(rdtime|rdcycle|rdinstret|csrr\w*|csrw\w*|csrs\w*|csrc\w*|ecall|ebreak|c\.ebreak)$")


@dataclass
class Listed:
    start: int
    #: Module offset -> mnemonic (suffixes such as .aqrl cut), in listing order.
    instructions: dict[int, str]
    #: Module offset -> operands as printed.
    operands: dict[int, str]


def listing(name: str) -> dict[str, Listed]:
    """Each function llvm-objdump shows in .text (local .L labels fold into the function they sit in)."""
    functions: dict[str, Listed] = {}
    current = None
    text = False
    for line in (CROSS / f"{name}.llvm-objdump.txt").read_text().splitlines():
        if line.startswith("Disassembly of section "):
            text = line == "Disassembly of section .text:"  # not the .plt stubs
            current = None
        head = HEADER.match(line)
        if head and text and not head.group(2).startswith(".L"):
            current = functions[head.group(2)] = Listed(int(head.group(1), 16), {}, {})
        elif (m := INSTRUCTION.match(line)) and current is not None:
            mnemonic = m.group(3)
            current.instructions[int(m.group(1), 16)] = re.sub(r"\.(aq|rl|aqrl)$", "", mnemonic)
            current.operands[int(m.group(1), 16)] = m.group(4)
    return functions


@pytest.fixture(scope="module", params=CROSS_MODULE_NAMES)
def module(request):
    image = open_module(CROSS / f"{request.param}.ko")
    return request.param, image, listing(request.param)


def _accepted(image):
    return [f for f in image.functions_by_offset if kinst.function_problem(image, f) is None]


def test_instruction_starts_are_llvm_objdumps(module):
    _, image, listed = module
    accepted = _accepted(image)
    assert len(accepted) >= 3
    for function in accepted:
        expected = {a - function.offset for a in listed[function.name].instructions
                    if a < function.offset + function.size}
        assert set(kinst.instructions(image, function).starts) == expected, function.name
    if image.machine == "riscv":  # the C extension: both lengths occur
        lengths = {b - a for f in accepted for a, b in zip(sorted(kinst.instructions(image, f).starts),
                                                          sorted(kinst.instructions(image, f).starts)[1:])}
        assert lengths == {2, 4}


def test_skipped_instructions_are_the_atomic_sequences_adr_and_system(module):
    _, image, listed = module
    loads, stores = SEQUENCES[image.machine]
    seen = set()
    for function in _accepted(image):
        want = {}
        inside = False
        for address, mnemonic in listed[function.name].instructions.items():
            offset = address - function.offset
            if image.machine == "riscv" and SYSTEM.match(mnemonic):
                want[offset] = kinst_isa.RV_SYSTEM
                continue
            inside = inside or mnemonic in loads
            if inside:
                want[offset] = kinst_isa.A64_EXCLUSIVE if image.machine == "arm64" else kinst_isa.RV_LRSC
            elif image.machine == "arm64" and mnemonic in ("adr", "adrp"):
                want[offset] = kinst_isa.A64_ADR
            inside = inside and mnemonic not in stores
        got = {o: r for o, r in kinst.instructions(image, function).starts.items() if r is not None}
        assert got == want, function.name
        seen |= set(got.values())
    # The fixture holds every kind: an atomic loop in xinl_ref and xinl_rxeof, adrp / rdtime in xinl_rxeof.
    assert seen == ({kinst_isa.A64_EXCLUSIVE, kinst_isa.A64_ADR} if image.machine == "arm64"
                    else {kinst_isa.RV_LRSC, kinst_isa.RV_SYSTEM})


def test_function_template_probes_entry_and_every_ret_llvm_objdump_shows(module, capsys):
    name, image, listed = module
    assert main(["gen-probes", str(CROSS / f"{name}.ko"), "--provider", "kinst", "-t", "latency"]) == 0
    script = capsys.readouterr().out
    found = {}
    for module_name, function, offset in DESCRIPTION.findall(script):
        assert module_name == f"{name}.ko" and "$" not in function
        found.setdefault(function, set()).add(int(offset))
    assert len(found) >= 3
    for function, offsets in found.items():
        start = listed[function].start
        rets = {a - start for a, m in listed[function].instructions.items() if m == "ret"}
        assert rets and offsets == {0} | rets, function
    # Why the others are left out, in kinst's words (never FBT's "no return probe").
    assert "FBT gives it no return probe" not in script and "no-return-probe" not in script
    assert "xinl_nop  [xinl_nop]: " + (kinst_isa.A64_NO_FRAME if image.machine == "arm64"
                                       else kinst_isa.RV_NO_FRAME) in script
    # xinl_refill leaves by a tail call (no ret in the listing): arm64 kinst accepts the function but
    # has no return site for the template; riscv kinst wants a ret before it probes anything.
    assert "ret" not in listed["xinl_refill"].instructions.values()
    assert "xinl_refill  [xinl_refill]: " + (kinst.NO_RET if image.machine == "arm64"
                                             else kinst_isa.RV_NO_FRAME) in script
    if image.machine == "arm64":  # legacy mangling: the trait impl's name holds '$'
        assert re.search(r"\[_ZN\d+_\$LT\$xinl..Ring.*\]: " + kinst.DOLLAR, script)


def test_dwarf_sites_lie_where_addr2line_puts_that_line_or_function(module):
    name, image, _ = module
    expected = read_addr2line(CROSS / f"{name}.addr2line.txt")
    index, _ = module_index(image)
    planner = SitePlanner(image, index)
    placed = 0
    for file, line, site, chain in line_sites(planner, expected):
        assert chain[0][1] == file and chain[0][2] == line, (file, line, site)
        # What the probe map records: the whole chain, outermost first, each frame's file and line.
        assert site.chain == tuple(frame for frame, _, _ in reversed(chain)), site
        assert site.places == tuple((f, n) for _, f, n in reversed(chain)), site
        placed += 1
    assert placed > 20
    refused = set()
    for inlined in sorted({frame for chain in expected.values() for frame, _, _ in chain[:-1]}):
        sites, refusals = planner.inlined(inlined)
        for site in sites:
            assert inlined in [frame for frame, _, _ in expected[site.module_offset][:-1]], (inlined, site)
            placed += 1
        refused |= {r.reason for r in refusals}
    # The atomic loop is inlined: its copies start on instructions kinst will not patch.
    assert (kinst_isa.A64_EXCLUSIVE if image.machine == "arm64" else kinst_isa.RV_LRSC) in refused


def test_kinst_scripts_on_amd64_give_kinsts_reason_for_no_return(capsys):
    assert main(["gen-probes", str(MODULES / "inl_legacy.ko"), "--provider", "kinst", "-t", "latency"]) == 0
    script = capsys.readouterr().out
    assert "no-return-probe" not in script and "FBT gives it" not in script
    assert f"{kinst.NO_RET} (1): {kinst.REASONS[kinst.NO_RET]}" in script
    assert main(["gen-probes", str(MODULES / "inl_legacy.ko"), "-t", "latency"]) == 0  # FBT keeps its own
    assert "FBT gives it no return probe" in capsys.readouterr().out


def test_i386_has_no_kinst():
    image = open_module(MODULES / "rem_i386.ko")
    assert {kinst.function_problem(image, f) for f in image.functions} == {kinst.ISA}


def test_amd64_refuses_opcode_e3_and_skips_only_one_byte_popf_and_sti():
    # objdump -D -b binary -mi386:x86-64: 0 push %rbp, 1 popf, 2 popfw (66 9d), 4 sti,
    # 5 jrcxz, 7 jecxz (67 e3), a nop, b ret.
    decoded = kinst_isa.decode("amd64", bytes.fromhex("559d669dfbe30067e30090c3"))
    refused = kinst_isa.REFUSED
    assert decoded.starts == {0: None, 1: refused, 2: None, 4: refused, 5: refused, 7: refused, 10: None, 11: None}
    assert decoded.returns == (11,)


def _has_frame(machine: str, listed: Listed) -> bool:
    """The prologue kinst wants, as llvm-objdump prints it (c.sdsp prints as sd)."""
    text = [f"{m} {o}" for m, o in zip(listed.instructions.values(), listed.operands.values())]
    if machine == "arm64":
        return any(re.match(r"stp x\d+, x\d+, \[sp, #-\d+\]!$|sub sp, sp, #", t) for t in text)
    return any(re.match(r"sd ra, -?\d+\(sp\)$", t) for t in text) and "ret " in [t[:4] for t in text]


def test_inspect_counts_the_functions_kinst_accepts(module, capsys):
    name, image, listed = module
    assert main(["inspect", str(CROSS / f"{name}.ko"), "--format", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    no_frame = sorted(f for f in listed if not _has_frame(image.machine, listed[f]))
    dollar = sorted(f for f in listed if "$" in f)
    assert no_frame and report["kinst"] == len(listed) - len(no_frame) - len(dollar)
    reason = kinst_isa.A64_NO_FRAME if image.machine == "arm64" else kinst_isa.RV_NO_FRAME
    assert report["kinst_reasons"] == {reason: len(no_frame), **({kinst.DOLLAR: len(dollar)} if dollar else {})}


@pytest.mark.parametrize(("name", "refused_on"), [
    ("owner_mtx", {"amd64", "arm64", "riscv"}),  # kinst.c kinst_excluded(): every machine
    ("kdb_trap", {"amd64", "arm64", "riscv"}),
    ("handle_el1h_sync", {"arm64"}),  # aarch64 kinst_md_excluded() only
    ("do_trap_user", {"riscv"}),  # riscv kinst_md_excluded() only: an amd64 function may have the name
    ("do_trap_userx", set()),
])
def test_machine_dependent_exclusions_apply_on_their_machine_only(name, refused_on):
    for machine in ("amd64", "arm64", "riscv"):
        assert kinst._excluded(name, machine) is (machine in refused_on), (name, machine)
