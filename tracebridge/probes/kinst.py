"""kinst probes: instruction-level DTrace probes inside a module's functions (FreeBSD 14+).

kinst (``sys/cddl/dev/kinst/``, ``freebsd-facts.md`` section 7) makes a probe
``kinst:MODULE.ko:FUNCTION:OFFSET`` on demand for one instruction of a
function, on amd64, arm64 and riscv.  Its rules, which every description
written here follows:

* MODULE is the linker file's name *with* ``.ko``; FUNCTION is compared with
  ``strcmp`` (no globs), cut at 191 characters: a name longer than that, or a
  legacy Rust name with ``$`` (libdtrace takes ``$`` for a macro, and with no
  glob there is no ``?`` to put in its place), cannot be named at all;
  ``kinst_excluded()`` (``kinst.c`` and each ``kinst_md_excluded()``) never
  probes a few names;
* each architecture's prologue test and the instructions it will not patch
  (:mod:`tracebridge.probes.kinst_isa`); OFFSET must be an instruction start
  of kinst's own walk.

Sites come from the function selection (an entry probe at offset 0 and one
per ``ret``, for the FBT-style templates) or from DWARF
(:mod:`tracebridge.image.dwarf`): the first instruction of each address range
the line table gives a source line, or the start of each range of an inlined
copy of a function.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from fnmatch import fnmatchcase

from tracebridge.image.demangle import demangle_symbol
from tracebridge.image.dwarf import AddressIndex
from tracebridge.image.elf import Function, ModuleImage
from tracebridge.probes import kinst_isa
from tracebridge.probes.fbt_isa import FbtProbes
from tracebridge.probes.probedesc import FUNCTION_MAX

PROVIDER = "kinst"
DOLLAR = "kinst-dollar"
TOO_LONG = "kinst-name-too-long"
EXCLUDED = "kinst-excluded"
ISA = "kinst-isa"
NO_CODE = "kinst-no-code"
NOT_INSTRUCTION = "kinst-not-instruction-start"
NO_RET = "kinst-no-ret"
REASONS = {
    DOLLAR: "a legacy Rust name with '$' cannot be named: libdtrace takes '$' for a macro and kinst matches "
            "names exactly (no glob to write '?' with)",
    TOO_LONG: f"the name is longer than {FUNCTION_MAX} characters: kinst cuts names there and matches exactly",
    EXCLUDED: "kinst never probes this name (kinst_excluded(): dtrace_* but dtrace_safe_*, db_*, kdb_*, "
              "owner_mtx/rm/rw/sx, trap_check and the architecture's trap handlers)",
    ISA: "kinst exists on amd64, arm64 and riscv only",
    NO_CODE: "the function has no code in the file",
    NOT_INSTRUCTION: "the address is not an instruction start of the function holding it",
    NO_RET: "kinst finds no ret it can patch in the function (it leaves by a tail call or never returns), "
            "and this template needs a return probe",
    **kinst_isa.REASONS,
}
# sys/cddl/dev/kinst/kinst.c kinst_excluded(): on every machine.
_EXCLUDED_PREFIXES = ("db_", "kdb_")
_EXCLUDED_NAMES = frozenset({"owner_mtx", "owner_rm", "owner_rw", "owner_sx", "trap_check"})
# kinst_md_excluded() of aarch64/kinst_isa.c and riscv/kinst_isa.c: each machine's own trap
# handlers, refused only on that machine (an amd64 function may be called do_trap_user).
_MACHINE_EXCLUDED_NAMES = {
    "arm64": frozenset({"handle_el1h_sync", "do_el1h_sync"}),
    "riscv": frozenset({"cpu_exception_handler", "cpu_exception_handler_supervisor",
                        "cpu_exception_handler_user", "do_trap_supervisor", "do_trap_user"}),
}


def _excluded(name: str, machine: str) -> bool:
    return (name.startswith(_EXCLUDED_PREFIXES) or name in _EXCLUDED_NAMES
            or name in _MACHINE_EXCLUDED_NAMES.get(machine, ())
            or (name.startswith("dtrace_") and not name.startswith("dtrace_safe_")))


def function_problem(image: ModuleImage, function: Function) -> str | None:
    """Why kinst cannot probe ``function`` at all (a reason key), or None."""
    if image.machine not in kinst_isa.MACHINES:
        return ISA
    if "$" in function.name:
        return DOLLAR
    if len(function.name) > FUNCTION_MAX:
        return TOO_LONG
    if _excluded(function.name, image.machine):
        return EXCLUDED
    code = image.code(function)
    if not code:
        return NO_CODE
    return kinst_isa.function_problem(image.machine, bytes(code))


def instructions(image: ModuleImage, function: Function) -> kinst_isa.Instructions:
    """kinst's walk of ``function`` (one it accepts): each instruction start and returns."""
    return kinst_isa.decode(image.machine, bytes(image.code(function)))


def predict(image: ModuleImage, functions: list[Function]) -> list[FbtProbes]:
    """The kinst probes of the FBT-style templates: entry at offset 0, one per ``ret`` (or the reason)."""
    result = []
    for function in functions:
        problem = function_problem(image, function)
        if problem is None:
            decoded = instructions(image, function)
            problem = decoded.starts.get(0, NOT_INSTRUCTION)
        if problem is not None:
            result.append(FbtProbes(None, (), problem))
            continue
        result.append(FbtProbes(0, decoded.returns))
    return result


def description(image: ModuleImage, function: Function, offset: int) -> str:
    return f"{PROVIDER}:{image.filename}:{function.name}:{offset}"


@dataclass(frozen=True)
class Site:
    """One kinst probe placed from DWARF, with what the probe map records of it."""

    function: Function
    #: Offset from the function's start (kinst's probe name).
    offset: int
    #: Source file and line at the probe's instruction, and the inline chain there, outermost first.
    file: str | None
    line: int | None
    chain: tuple[str, ...]
    #: Each chain frame's (file, line), outermost first: an outer frame's is the call site of the one inside it.
    places: tuple[tuple[str | None, int | None], ...] = ()

    @property
    def module_offset(self) -> int:
        return self.function.offset + self.offset


@dataclass(frozen=True)
class Refusal:
    """An address DWARF asked for that gets no probe, and why (a reason key)."""

    module_offset: int
    function: str
    reason: str


class SitePlanner:
    """Turns DWARF addresses into kinst sites: finds the function, checks kinst's rules, dedups."""

    def __init__(self, image: ModuleImage, index: AddressIndex):
        self.image = image
        self.index = index
        self._functions = [f for f in image.functions_by_offset if f.size]
        self._starts = [f.offset for f in self._functions]
        self._decoded: dict[int, kinst_isa.Instructions] = {}

    def at_line(self, file_suffix: str, line: int) -> tuple[list[Site], list[Refusal]]:
        """A probe at the first instruction of each address range the line table gives ``FILE:LINE``.

        Adjacent rows of the same line are one range.  ``file_suffix`` matches
        the end of the path at a ``/`` (``rx.rs``, ``src/em/rx.rs``).
        """
        starts = []
        previous_end = None
        for start, end, file, row_line in self.index.line_ranges():
            if row_line == line and file is not None and _suffix(file, file_suffix):
                if start != previous_end:
                    starts.append(start)
                previous_end = end
        return self._place(starts)

    def inlined(self, pattern: str) -> tuple[list[Site], list[Refusal]]:
        """A probe at the start of each address range of each inlined copy of the functions ``pattern`` matches."""
        starts = [low for node in self.index.nodes_named(lambda name: fnmatchcase(name, pattern))
                  for low, _ in self.index.node_ranges(node)]
        return self._place(starts)

    def _place(self, addresses: list[int]) -> tuple[list[Site], list[Refusal]]:
        sites: dict[int, Site] = {}
        refusals: dict[int, Refusal] = {}
        addresses = sorted(set(addresses))
        chains = self.index.frames_many(addresses) if addresses else []
        for address, chain in zip(addresses, chains):
            function = self._holder(address)
            if function is None:
                refusals[address] = Refusal(address, "??", NOT_INSTRUCTION)
                continue
            name = demangle_symbol(function.name).name
            problem = function_problem(self.image, function)
            offset = address - function.offset
            decoded = self._decoded.get(function.offset)
            if decoded is None and problem is None:
                decoded = self._decoded[function.offset] = instructions(self.image, function)
            if problem is None:
                problem = decoded.starts.get(offset, NOT_INSTRUCTION)
            if problem is not None:
                refusals[address] = Refusal(address, name, problem)
                continue
            innermost = chain[0] if chain else None
            sites[address] = Site(function, offset, innermost.file if innermost else None,
                                  innermost.line if innermost else None,
                                  tuple(f.function for f in reversed(chain)),
                                  tuple((f.file, f.line) for f in reversed(chain)))
        return list(sites.values()), list(refusals.values())

    def _holder(self, address: int) -> Function | None:
        i = bisect.bisect_right(self._starts, address) - 1
        if i >= 0 and address < self._functions[i].offset + self._functions[i].size:
            return self._functions[i]
        return None


def _suffix(path: str, suffix: str) -> bool:
    return path == suffix or path.endswith("/" + suffix.lstrip("/"))
