"""FBT's probe rules applied to GNU objdump's disassembly: the independent check.

tracebridge decodes x86 with iced-x86; this reads instruction boundaries and
bytes from ``objdump -d -w`` (tests/fixtures/expected/*.objdump.txt) and the
symbols from ``readelf -s``, and applies the kernel's rules (freebsd-facts.md
section 3, sys/cddl/dev/fbt/*/fbt_isa.c) on its own.  objdump's "(bad)" marks
where a length decoder fails.  The jump-table heuristic is not modelled: it
needs relocated pointer values, and the test checks separately that the
fixtures have no pointer-sized relocation inside any function (so, with no
load address given, the kernel's test cannot fire).
"""

from __future__ import annotations

from pathlib import Path

import readelf_text
from fixture_paths import EXPECTED
from objdump_text import Insn, disassembly


def excluded(name: str, machine: str) -> bool:
    if name.startswith("dtrace_") and not name.startswith("dtrace_safe_"):
        return True
    if name in ("owner_mtx", "owner_rm", "owner_rw", "owner_sx"):
        return True
    return machine in ("amd64", "i386") and name == "trap_check"


def expected_probes(name: str, machine: str, expected: Path = EXPECTED, chained: bool = True) -> dict[int, tuple[int | None, tuple[int, ...]]]:
    """symbol index -> (entry offset or None, return sites) for every function of a fixture whose views
    are in ``expected``; ``chained``: every entry probe at a patch point fires (x86 with fbtp_tracenext)."""
    secs = {s.index: s for s in readelf_text.sections(expected / f"{name}.readelf-S.txt")}
    code = disassembly(expected / f"{name}.objdump.txt", machine)
    out = {}
    placed = {}  # symbol index -> (section, value): where its probes patch
    for sym in readelf_text.symbols(expected / f"{name}.readelf-s.txt"):
        if sym.type not in ("FUNC", "IFUNC") or not sym.ndx.isdigit() or sym.value == 0 and sym.ndx == "0":
            continue
        section = secs[int(sym.ndx)]
        if section.name not in code or excluded(sym.name, machine) or sym.size == 0:
            out[sym.index] = (None, ())
            continue
        insns = code[section.name]
        out[sym.index] = _apply(machine, insns, sym.value, sym.size)
        placed[sym.index] = (section.index, sym.value)
    return _fired(out, placed, chained)


def _fired(probes: dict, placed: dict, chained: bool) -> dict:
    """Only the probes that fire where symbols share a patch point (HEAD's fbt_isa.c): every entry
    (chained by fbtp_tracenext), but at a return site only the return probe of the symbol listed last
    in .symtab (FBT makes probes in symbol order and fbt_invop fires the first on the hash chain).
    Not ``chained``: at an entry point too, only the last-listed symbol's probe fires."""
    entries: set = set()
    taken: set = set()
    for index in sorted(placed, reverse=True):
        entry, returns = probes[index]
        if entry is None:
            continue
        section, value = placed[index]
        fires = chained or (section, value + entry) not in entries
        probes[index] = (entry if fires else None, tuple(r for r in returns if (section, value + r) not in taken))
        entries.add((section, value + entry))
        taken.update((section, value + r) for r in returns)
    return probes


def _apply(machine: str, insns: list[Insn], start: int, size: int) -> tuple[int | None, tuple[int, ...]]:
    inside = [i for i in insns if start <= i.address < start + size]
    after = [i for i in insns if i.address >= start + size]
    if machine == "amd64":
        return _amd64(inside, start)
    if machine == "i386":
        return _i386(inside, after, start)
    return _arm64(inside, start, size)


def _amd64(inside: list[Insn], start: int):
    entry_at = None
    for k, insn in enumerate(inside):
        if insn.bad:
            return None, ()
        if insn.raw[0] == 0x55:
            entry_at = k
            break
    if entry_at is None:
        return None, ()
    returns = []
    for insn in inside[entry_at:]:
        if insn.bad:
            break
        if insn.raw[0] == 0xC3:
            returns.append(insn.address - start)
    return inside[entry_at].address - start, tuple(returns)


def _i386(inside: list[Insn], after: list[Insn], start: int):
    stream = b"".join(i.raw for i in inside)
    if stream[:1] != b"\x55" or stream[1:3] not in (b"\x8b\xec", b"\x89\xe5"):
        return None, ()
    returns = []
    following = inside[1:] + after[:1]
    for insn, nxt in zip(inside, following + [None] * (len(inside) - len(following))):
        if insn.bad:
            break
        next_byte = nxt.raw[0] if nxt is not None else 0
        if len(insn.raw) == 1 and insn.raw[0] in (0x5D, 0xC9) and next_byte in (0xC3, 0xC2):
            returns.append(insn.address - start)
    return 0, tuple(returns)


def _arm64(inside: list[Insn], start: int, size: int):
    words = [(i.address - start, int.from_bytes(i.raw, "little")) for i in inside]
    k = 1 if words and words[0][1] & 0xFFFFFF3F == 0xD503241F else 0
    if not (k < len(words) and words[k][1] == 0xD503201F):
        while k < len(words):
            w = words[k][1]
            if w & 0xFFC00000 == 0xA9800000 and (w >> 5) & 31 == 31:
                break
            if w & 0xFFC00000 == 0xD1000000 and w & 31 == 31 and (w >> 5) & 31 == 31:
                break
            k += 1
    if k >= len(words):
        return None, ()
    returns = []
    for offset, w in words[k:]:
        if w == 0xD65F03C0 or (w & 0xFF000000 == 0x14000000 and offset + (w & 0xFFFFFF) * 16 >= size):
            returns.append(offset)
    return words[k][0], tuple(returns)
