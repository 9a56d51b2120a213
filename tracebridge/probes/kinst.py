"""kinst probes: instruction-level DTrace probes inside a module's functions (FreeBSD 14+).

kinst (``sys/cddl/dev/kinst/``, ``freebsd-facts.md`` section 7) makes a probe
``kinst:MODULE.ko:FUNCTION:OFFSET`` on demand for one instruction of a
function.  Its rules, which every description written here follows:

* MODULE is the linker file's name *with* ``.ko``; FUNCTION is compared with
  ``strcmp`` (no globs), cut at 191 characters: a name longer than that, or a
  legacy Rust name with ``$`` (libdtrace takes ``$`` for a macro, and with no
  glob there is no ``?`` to put in its place), cannot be named at all;
* on amd64 the function's byte 0 must be ``push %rbp`` (0x55);
* OFFSET must be an instruction start; kinst refuses ``jrcxz`` and skips
  ``popf`` and ``sti``, so probes there are left out with that reason.

Sites come from the function selection (an entry probe at offset 0 and one
per ``ret``, for the FBT-style templates) or from DWARF
(:mod:`tracebridge.image.dwarf`): the first instruction of each address range
the line table gives a source line, or the start of each range of an inlined
copy of a function.  tracebridge places kinst probes on amd64 only.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from fnmatch import fnmatchcase

from iced_x86 import Decoder, Mnemonic

from tracebridge.image.demangle import demangle_symbol
from tracebridge.image.dwarf import AddressIndex
from tracebridge.image.elf import Function, ModuleImage
from tracebridge.probes.fbt_isa import FbtProbes
from tracebridge.probes.probedesc import FUNCTION_MAX

PROVIDER = "kinst"
PUSH_RBP = 0x55
DOLLAR = "kinst-dollar"
TOO_LONG = "kinst-name-too-long"
NO_PUSH = "kinst-no-push-rbp"
ISA = "kinst-isa"
NO_CODE = "kinst-no-code"
NOT_INSTRUCTION = "kinst-not-instruction-start"
REFUSED = "kinst-refused-instruction"
REASONS = {
    DOLLAR: "a legacy Rust name with '$' cannot be named: libdtrace takes '$' for a macro and kinst matches "
            "names exactly (no glob to write '?' with)",
    TOO_LONG: f"the name is longer than {FUNCTION_MAX} characters: kinst cuts names there and matches exactly",
    NO_PUSH: "the function does not start with push %rbp, which kinst needs at byte 0 on amd64",
    ISA: "tracebridge places kinst probes on amd64 only",
    NO_CODE: "the function has no code in the file",
    NOT_INSTRUCTION: "the address is not an instruction start of the function holding it",
    REFUSED: "kinst refuses jrcxz and skips popf and sti",
}
_REFUSED_MNEMONICS = frozenset({Mnemonic.JRCXZ, Mnemonic.POPF, Mnemonic.POPFQ, Mnemonic.POPFD, Mnemonic.STI})
_RETURNS = frozenset({Mnemonic.RET})


def function_problem(image: ModuleImage, function: Function) -> str | None:
    """Why kinst cannot probe ``function`` at all (a reason key), or None."""
    if image.machine != "amd64":
        return ISA
    if "$" in function.name:
        return DOLLAR
    if len(function.name) > FUNCTION_MAX:
        return TOO_LONG
    code = image.code(function)
    if not code:
        return NO_CODE
    if code[0] != PUSH_RBP:
        return NO_PUSH
    return None


def instructions(image: ModuleImage, function: Function) -> dict[int, int]:
    """Offset from the function's start -> iced mnemonic, for every instruction decoded."""
    code = bytes(image.code(function))
    decoder = Decoder(64, code)
    found = {}
    for instruction in decoder:
        if instruction.is_invalid:
            break
        found[instruction.ip] = instruction.mnemonic
    return found


def predict(image: ModuleImage, functions: list[Function]) -> list[FbtProbes]:
    """The kinst probes of the FBT-style templates: entry at offset 0, one per ``ret`` (or the reason)."""
    result = []
    for function in functions:
        problem = function_problem(image, function)
        if problem is not None:
            result.append(FbtProbes(None, (), problem))
            continue
        returns = tuple(offset for offset, mnemonic in instructions(image, function).items() if mnemonic in _RETURNS)
        result.append(FbtProbes(0, returns))
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
        self._decoded: dict[int, dict[int, int]] = {}

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
            if problem is None and offset not in decoded:
                problem = NOT_INSTRUCTION
            if problem is None and decoded[offset] in _REFUSED_MNEMONICS:
                problem = REFUSED
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
