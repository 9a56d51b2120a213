"""Does a capture fit the module it is joined to?  Evidence gathered while frames are resolved.

Naming a capture's addresses with the wrong ``.ko`` (another build of the
driver) or at the wrong load address gives names that look right and are
wrong.  The capture carries the evidence to notice, and this module counts
it per module, over distinct addresses, as the readers resolve them:

* a caller frame's PC is a return address, so the instruction that ends
  just before it must be a call (decoded with iced-x86, as the FBT rules
  decode; arm64: the word before is ``bl``/``blr``);
* a leaf PC (the sampled or probed PC) starts an instruction of its function
  (the function decoded from its start, as FBT walks it);
* a PC inside the module's range lies inside some function, not in padding
  or data between them;
* a frame the tracer named itself (DTrace's `` if_rem.ko`func+0xOFF ``, a
  ``pmcstat -G`` node) names a function of the given file, at an offset
  inside it, and a `` if_rem.ko`0xADDR `` frame lies inside the module where
  it was placed;
* a pmcstat ``map-in`` record agrees with the load address given for the module;
* when a module was placed and the capture's unnamed addresses are
  numerous, some of them fall inside it.

:meth:`Evidence.findings` turns the counts into one warning per module that
does not fit (with the evidence, the likely cause and the fix); a capture of
the right build at the right address says nothing.  Thresholds allow for the
odd frame that is legitimately off (a trap frame's PC is no return address).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from tracebridge.support.errors import TracebridgeError, warn
from tracebridge.support.printable import printable

if TYPE_CHECKING:  # numpy loads when a capture is read, not when the command line is parsed
    import numpy as np

    from tracebridge.image.elf import Function, ModuleImage
    from tracebridge.profile.resolve import AddressSpace

#: A check fails when more than this share of its (distinct) cases is off ...
BAD_SHARE = 0.2
#: ... and at least this many are (or all of them, when fewer were seen).
BAD_AT_LEAST = 3
#: The role of a PC whose place in its stack is not known.
_UNKNOWN_ROLE = 2
#: Unnamed addresses that must be seen before "none falls inside the module" says anything.
STRAY_AT_LEAST = 3

_X86 = {"amd64": 64, "i386": 32}


@dataclass
class Check:
    """One kind of evidence for one module: how many distinct cases were looked at, how many were off."""

    seen: int = 0
    off: int = 0
    #: Failures needed at least: a function the tracer named that the file lacks says more than an odd PC.
    at_least: int = BAD_AT_LEAST

    def add(self, ok: bool) -> None:
        self.seen += 1
        self.off += not ok

    @property
    def failed(self) -> bool:
        return self.off > BAD_SHARE * self.seen and self.off >= min(self.at_least, self.seen)


@dataclass
class ModuleEvidence:
    """What the capture says about one module placed in the address space."""

    name: str
    path: str
    base: int | None = None
    #: Distinct PCs inside the module's range: do they fall inside a function?
    in_function: Check = field(default_factory=Check)
    #: Distinct caller PCs inside a function: is the instruction before them a call?
    after_call: Check = field(default_factory=Check)
    #: Distinct leaf PCs inside a function: do they start an instruction?
    on_start: Check = field(default_factory=Check)
    #: Distinct ``module`func+0xOFF`` frames: is there such a function, and is the offset inside it?
    named: Check = field(default_factory=lambda: Check(at_least=1))
    #: Distinct ``module`0xADDR`` frames: do they fall inside the module where it is placed?
    module_hex: Check = field(default_factory=lambda: Check(at_least=1))
    #: Named functions missing from the file (a few, for the message).
    missing: list[str] = field(default_factory=list)
    #: (given base, address a map-in record gives).
    base_conflict: tuple[int, int] | None = None
    #: The names a log mapped, when none of them is this module's (None: it was placed).
    unmapped: tuple[str, ...] | None = None

    def problems(self) -> list[str]:
        """The evidence that the module does not fit, one phrase each (empty: it fits)."""
        found = []
        for attribute, off, _, _ in _CHECKS:
            check = getattr(self, attribute)
            if check.failed:
                missing = (f" (not in the file: {', '.join(self.missing[:2])})"
                           if attribute == "named" and self.missing else "")
                found.append(f"{check.off} of {check.seen} {off}{missing}")
        if self.unmapped is not None:
            found.append(f"the log maps no module of that name (it maps {', '.join(self.unmapped) or 'none'}), "
                         "so none of its PCs can be named from this file")
        if self.base_conflict is not None:
            given, logged = self.base_conflict
            found.append(f"the log's map-in record loads it at {logged:#x}, not at the given {given:#x}")
        return found

    def summary(self) -> str:
        """One line of counts, for ``-v``."""
        where = f" at {self.base:#x}" if self.base is not None else ""
        parts = []
        for attribute, _, ok, always in _CHECKS:
            check = getattr(self, attribute)
            if always or check.seen:
                parts.append(f"{check.seen - check.off} of {check.seen} {ok}")
        return f"{self.path} ({self.name}{where}): {'; '.join(parts)}"


#: Each check: its attribute, what its failures are, what its passes are, shown in ``-v`` even when unused.
_CHECKS = (
    ("in_function", "addresses inside its range fall in no function", "addresses in functions", True),
    ("after_call", "caller frames are not after a call instruction", "caller frames after a call", True),
    ("on_start", "leaf PCs are not at an instruction start", "leaf PCs on instruction starts", True),
    ("named", "frames the capture names in it name no function of the file at that offset",
     "named frames inside their function", False),
    ("module_hex", "addresses DTrace placed in it lie outside it at the given base", "module`0xADDR frames inside it",
     False),
)


@dataclass(frozen=True)
class Finding:
    """A module the capture does not fit: the warning line."""

    module: str
    message: str


class Evidence:
    """Counters per module, filled by the readers as they resolve frames (distinct PCs only)."""

    def __init__(self) -> None:
        self.modules: dict[str, ModuleEvidence] = {}
        self._images: dict[str, ModuleImage] = {}
        self._seen: set[tuple[int, int]] = set()  # (pc, role: 1 leaf, 0 caller, 2 unknown)
        self._placed: set[int] = set()
        self._named_seen: set[tuple[str, str, int]] = set()
        #: Distinct addresses no module holds and no module was named for (bare hex frames).
        self._stray: set[int] = set()
        self._decoded_functions: dict[tuple[str, int], Decoded] = {}
        #: Per module, each function name's sizes (aliases and local twins share a name), built
        #: once when a named frame first needs it: a scan of every function per frame was quadratic.
        self._sizes_by_name: dict[str, dict[str, list[int]]] = {}
        #: Modules a warning was printed for.
        self.warned: set[str] = set()

    # -- what was given -----------------------------------------------------

    def watch(self, name: str, image: ModuleImage) -> None:
        """Gather evidence for ``image``, which frames name ``name`` (``if_rem.ko``)."""
        if image.fixed_base is None and name not in self._images:
            self._images[name] = image

    @property
    def watching(self) -> bool:
        """Is any module given whose fit can be checked?"""
        return bool(self._images)

    def _module(self, name: str) -> ModuleEvidence:
        evidence = self.modules.get(name)
        if evidence is None:
            evidence = self.modules[name] = ModuleEvidence(name, self._images[name].path)
        return evidence

    def placed(self, name: str, base: int) -> None:
        if name in self._images:
            self._module(name).base = base

    def unmapped(self, name: str, mapped: list[str]) -> None:
        """A log whose ``map-in`` records never place the module (by its file name)."""
        if name in self._images:
            self._module(name).unmapped = tuple(mapped)

    def base_conflict(self, name: str, given: int, logged: int) -> None:
        """A ``map-in`` record puts a module elsewhere than the base the user gave."""
        if name in self._images and self._module(name).base_conflict is None:
            self._module(name).base_conflict = (given, logged)

    # -- what the capture holds ---------------------------------------------

    def observe(self, space: AddressSpace, pcs: np.ndarray, leaf: np.ndarray | None, *,
                named_module: bool = False) -> None:
        """Distinct PCs and their role (leaf or caller) as resolved in ``space``.

        ``leaf`` None: the roles are not known (a ``pmcstat -G`` node), only
        whether each PC lies in a function is checked.  ``named_module``: the
        PCs came in frames that named their module (`` kernel`0xADDR ``), so an
        address outside every module is no stray.
        """
        if not self._images or not len(pcs):
            return
        import numpy as np

        # One 1-D unique per role: np.unique(axis=1) of (pc, role) rows sorts them as opaque records, 50x slower.
        pcs = np.asarray(pcs, dtype=np.uint64)
        if leaf is None:
            by_role = [(_UNKNOWN_ROLE, pcs)]
        else:
            leaf = np.asarray(leaf, dtype=bool)
            by_role = [(0, pcs[~leaf]), (1, pcs[leaf])]
        fresh = [(pc, role) for role, some in by_role for pc in np.unique(some).tolist() if (pc, role) not in self._seen]
        if not fresh:
            return
        self._seen.update(fresh)
        result = space.resolve([pc for pc, _ in fresh])
        for (pc, role), function, module in zip(fresh, result.function.tolist(), result.module.tolist()):
            if module < 0:
                if not named_module:
                    self._stray.add(pc)
                continue
            loaded = space.modules[module]
            if loaded.name not in self._images or loaded.image is None:
                continue
            evidence = self._module(loaded.name)
            evidence.base = loaded.base
            if pc not in self._placed:  # one in-function verdict per address, whatever its roles
                self._placed.add(pc)
                evidence.in_function.add(function >= 0)
            if function < 0 or role == _UNKNOWN_ROLE:
                continue
            placement = space.placements[function]
            offset = pc - placement.start
            if role:
                verdict = self._on_instruction_start(loaded.name, loaded.image, placement.function, offset)
                if verdict is not None:
                    evidence.on_start.add(verdict)
            else:
                verdict = self._after_call(loaded.name, loaded.image, space, function, offset)
                if verdict is not None:
                    evidence.after_call.add(verdict)

    def watches(self, module: str) -> bool:
        """Whether frames of ``module`` are evidence (its file is among those watched)."""
        return self._images.get(module) is not None

    def observe_named(self, module: str, function: str, offset: int) -> None:
        """A frame the tracer named itself, `` module`function+0xOFF ``."""
        image = self._images.get(module)
        if image is None or (module, function, offset) in self._named_seen:
            return
        self._named_seen.add((module, function, offset))
        evidence = self._module(module)
        by_name = self._sizes_by_name.get(module)
        if by_name is None:
            by_name = self._sizes_by_name[module] = {}
            for f in image.functions:
                by_name.setdefault(f.name, []).append(f.size)
        sizes = by_name.get(function)
        if not sizes:
            evidence.named.add(False)
            if len(evidence.missing) < 2:
                evidence.missing.append(function)
            return
        # A return address may sit right at the end of a function that ends in a call.
        evidence.named.add(any(offset <= size for size in sizes))

    def observe_module_hex(self, space: AddressSpace | None, module: str, pc: int) -> None:
        """A `` module`0xADDR `` frame: the tracer placed ``pc`` in ``module``."""
        if module not in self._images or ("hex", module, pc) in self._named_seen:
            return
        self._named_seen.add(("hex", module, pc))
        loaded = space.find(module) if space is not None else None
        if loaded is None:
            return
        self._module(module).module_hex.add(loaded.base <= pc < (loaded.end or loaded.base))

    # -- verdicts -----------------------------------------------------------

    def _decoded(self, name: str, image: ModuleImage, function: Function) -> Decoded | None:
        bits = _X86.get(image.machine)
        if bits is None:
            return None
        key = (name, function.symbol_index)
        decoded = self._decoded_functions.get(key)
        if decoded is None:
            decoded = self._decoded_functions[key] = decode(image.code(function), bits)
        return decoded

    def _on_instruction_start(self, name: str, image: ModuleImage, function: Function, offset: int) -> bool | None:
        if image.machine == "arm64":
            return offset % 4 == 0
        decoded = self._decoded(name, image, function)
        return None if decoded is None else offset in decoded.starts

    def _after_call(self, name: str, image: ModuleImage, space: AddressSpace, index: int,
                    offset: int) -> bool | None:
        """Is the instruction before ``offset`` into placement ``index`` a call?  None: ISA not checked here."""
        function = space.placements[index].function
        if offset == 0:  # after a call that ends the function before (one that does not return)
            previous = space.placements[index - 1] if index else None
            if previous is None or previous.end != space.placements[index].start:
                return False
            function, offset = previous.function, previous.end - previous.start
        if image.machine == "arm64":
            code = image.code(function)
            if offset < 4 or offset % 4 or offset > len(code):
                return False
            word = int.from_bytes(code[offset - 4:offset], "little" if image.little_endian else "big")
            return (word & _A64_BL_MASK) == _A64_BL or (word & _A64_BLR_MASK) == _A64_BLR
        decoded = self._decoded(name, image, function)
        return None if decoded is None else offset in decoded.call_ends

    def findings(self) -> list[Finding]:
        """One warning per module whose evidence says it does not fit; nothing for one that fits."""
        found = []
        for name, image in self._images.items():
            evidence = self.modules.get(name)
            problems = evidence.problems() if evidence is not None else []
            if problems:
                found.append(Finding(name, _message(image.path, name, problems, evidence)))
            elif evidence is not None and evidence.base is not None and not evidence.in_function.seen:
                # Placed, yet none of the kernel addresses nobody could name falls inside it.
                stray = [pc for pc in self._stray if pc >> (image.bits - 1) == 1 and pc >> image.bits == 0]
                if len(stray) < STRAY_AT_LEAST:
                    continue
                low, high = min(stray), max(stray)
                found.append(Finding(name, (
                    f"{image.path}: none of the {len(stray)} unnamed kernel addresses in the capture "
                    f"({low:#x}..{high:#x}) falls inside {name} at {evidence.base:#x}: the load address is "
                    f"probably wrong; give the address kldstat printed for {name} on the traced machine "
                    "(--base or --kldstat)")))
        return found

    def summaries(self) -> list[str]:
        lines = [self.modules[name].summary() for name in self._images if name in self.modules]
        if self._stray:
            lines.append(f"{len(self._stray)} unnamed addresses outside every placed module")
        return lines


def _message(path: str, name: str, problems: list[str], evidence: ModuleEvidence) -> str:
    if evidence.unmapped is not None:
        cause = (f"pass the .ko under the name it was loaded as, or give its load address (--base) if {name} is "
                 "what ran")
    elif evidence.base_conflict is not None:
        cause = (f"the given load address is wrong: drop --base/--kldstat for {name} (the log's map-in "
                 "records place it), or pass the capture that goes with that address")
    elif evidence.named.failed:
        cause = ("the .ko is another build than the one traced: pass the .ko of that run "
                 "(or rebuild it exactly from the same sources and flags)")
    else:
        cause = (f"the load address is wrong or the .ko is another build than the one traced: give the address "
                 f"kldstat printed for {name} on the traced machine (--base/--kldstat) and the .ko of that run")
    return f"{path}: the capture does not fit {name}: {'; '.join(problems)}; {cause}"


@dataclass(frozen=True)
class Decoded:
    """A function's instructions, walked from its start as FBT walks it (x86)."""

    #: Where each instruction starts.
    starts: frozenset[int]
    #: Where each call instruction ends: the return addresses a call in this function pushes.
    call_ends: frozenset[int]


def decode(code: bytes, bits: int) -> Decoded:
    """Walk ``code`` from its first byte; an undecodable byte ends the walk (as FBT's does)."""
    from iced_x86 import Code, Decoder, FlowControl, Instruction

    calls = (FlowControl.CALL, FlowControl.INDIRECT_CALL)
    decoder = Decoder(bits, code)
    instruction = Instruction()
    starts, call_ends = [], []
    while decoder.can_decode:
        position = decoder.position
        decoder.decode_out(instruction)
        if instruction.code == Code.INVALID:
            break
        starts.append(position)
        if instruction.flow_control in calls:
            call_ends.append(decoder.position)
    return Decoded(frozenset(starts), frozenset(call_ends))


_A64_BL_MASK, _A64_BL = 0xFC000000, 0x94000000
_A64_BLR_MASK, _A64_BLR = 0xFFFFFC1F, 0xD63F0000


class CaptureMismatch(TracebridgeError):
    """``--strict``: a module the capture does not fit is an error (exit status 2)."""


def report_fit(evidence: Evidence, *, strict: bool = False, verbose: bool = False) -> None:
    """Say on standard error which modules the capture does not fit (``-v``: how each was checked).

    Called after each reading; a module already warned about (``diff`` reads
    twice with one set of options) is not warned about again.
    """
    if verbose:
        for line in evidence.summaries():
            print(f"tracebridge: {printable(line)}", file=sys.stderr)
    findings = [f for f in evidence.findings() if f.module not in evidence.warned]
    for finding in findings:
        warn(finding.message)
        evidence.warned.add(finding.module)
    if findings and strict:
        names = ", ".join(f.module for f in findings)
        raise CaptureMismatch(f"--strict: the capture does not fit {names} (see the warning above)")
