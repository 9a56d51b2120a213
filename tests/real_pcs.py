"""Real PCs of a fixture module, for captures written by tests: instruction starts and return addresses.

A capture joined to the right module at the right address must pass
tracebridge's consistency checks (tracebridge.profile.consistency): a leaf
PC starts an instruction, a caller PC follows a call.  Captures a test makes
up therefore take their PCs from here, which reads GNU objdump's listing and
readelf's text of the fixture (tests/fixtures/expected/) and lays the
sections out as the kernel linker does, never from tracebridge.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass
from functools import cache

import readelf_text
from fixture_paths import EXPECTED
from objdump_text import disassembly

#: The mnemonic of a call, per machine, as objdump prints it.
_CALLS = {"amd64": ("call",), "i386": ("call",), "arm64": ("bl", "blr")}


def machine_of(name: str) -> str:
    return "arm64" if "arm64" in name else "i386" if "i386" in name else "amd64"


@dataclass(frozen=True)
class Code:
    """One function's instructions, as offsets from the module's base."""

    start: int
    size: int
    #: Where each instruction starts.
    starts: tuple[int, ...]
    #: The byte after each call instruction: a return address the call pushes.
    returns: tuple[int, ...]

    def leaf(self, near: int) -> int:
        """The instruction start at or before offset ``near`` (the first one if none is)."""
        return self.starts[max(bisect_right(self.starts, near) - 1, 0)]

    def caller(self, near: int) -> int | None:
        """The return address at or before offset ``near`` (else the first after), None without one.

        Only return addresses inside the function count: the one after a last call that does
        not return is the function's end, in the padding or the next function.
        """
        returns = [r for r in self.returns if r < self.start + self.size]
        if not returns:
            return None
        return returns[max(bisect_right(returns, near) - 1, 0)]


@cache
def functions(name: str) -> dict[int, Code]:
    """Code per function start (offset from the module's base) of fixture ``name``."""
    machine = machine_of(name)
    secs = readelf_text.sections(EXPECTED / f"{name}.readelf-S.txt")
    by_index = {s.index: s for s in secs}
    relocatable = all(s.addr == 0 for s in secs)
    placed, _ = readelf_text.kernel_layout(secs, machine)
    low = min(s.addr for s in secs if "A" in s.flags and s.size) // 4096 * 4096
    listing = disassembly(EXPECTED / f"{name}.objdump.txt", machine)
    out: dict[int, Code] = {}
    for sym in readelf_text.symbols(EXPECTED / f"{name}.readelf-s.txt"):
        if sym.type not in ("FUNC", "IFUNC") or not sym.ndx.isdigit():
            continue
        section = by_index[int(sym.ndx)]
        if section.name not in listing or not section.size:
            continue
        shift = placed[section.index] if relocatable else -low
        insns = listing[section.name]
        ends = [i.address + (4 if machine == "arm64" else len(i.raw)) for i in insns]
        limit = sym.value + (sym.size or 1)
        inside = [(i, end) for i, end in zip(insns, ends) if sym.value <= i.address < limit]
        start = sym.value + shift
        code = Code(start, sym.size, tuple(i.address + shift for i, _ in inside),
                    tuple(end + shift for i, end in inside if i.text.split()[0] in _CALLS[machine]))
        if code.starts and (start not in out or len(code.starts) > len(out[start].starts)):
            out[start] = code
    return out
