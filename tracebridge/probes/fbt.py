"""Which functions FreeBSD's FBT provider gives probes, and where (freebsd-facts.md section 3).

:func:`predict` answers, for every function of a module image, what
``fbt_provide_module`` and ``fbt_provide_module_function`` would create when
the module is loaded: the entry probe's patch point, the return sites, or the
reason there is no probe.  Module-wide refusals (a module named ``dtrace`` or
``cyclic``, or one that ``MODULE_DEPEND``s on a ``dtrace*`` module) come first,
then ``fbt_excluded()``'s names and the machine's own exclusions, then the
instruction rules of :mod:`tracebridge.probes.fbt_isa`.

The rules follow FreeBSD as it is now (``sys/cddl/dev/fbt`` on HEAD,
re-read for issue 15): ``fbt_excluded()`` refuses ``dtrace_*`` (but not
``dtrace_safe_*``), ``owner_mtx``/``owner_rm``/``owner_rw``/``owner_sx``,
and ``fbt_*`` only when FBT is compiled into the kernel (``#ifndef
_KLD_MODULE``: ``--fbt-in-kernel``).  The ``__*`` test of the old
``fbt_provide_module_function`` (fbt.c of 2008-2012) is gone and applies only
with ``--old-fbt-names``.

Symbols that share a patch point (aliases such as the ones LLVM's function
merging leaves, overlapping symbols) each get probes, but not all of them
fire.  FBT walks ``.symtab`` in order and puts each new probe first on its
address's hash chain; ``fbt_invop`` fires the first probe it finds there and
the ones chained to it by ``fbtp_tracenext``.  HEAD chains *entry* probes
only, and only on x86 (``x86/fbt_isa.c``; ``aarch64`` and ``riscv`` chain
nothing), so on amd64 and i386 every alias's entry fires, but at a return
site that aliases share only the return probe of the symbol listed last
fires: the others keep just the return sites they alone have (none, for
true aliases).  On arm64 and riscv, and with FBT before ``fbtp_tracenext``
(``--fbt-no-tracenext``), only the last-listed symbol's entry fires too: the
others get reason ``shadowed-alias``.  Whether a release branch chains entries could not be
checked here (no copy of stable/14, releng/14.x or stable/15 in the index):
look for ``fbtp_tracenext`` in the target's ``sys/cddl/dev/fbt/fbt.h``.

``entry`` and ``returns`` are offsets from the *function's start* (its symbol
value): that is how FBT itself reports a return site (the return probe's
``arg0``), and it stays meaningful whatever the module's load address; add the
function's ``offset`` for a position from the module base.
"""

from __future__ import annotations

import functools
import re
from array import array
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import chain, compress, count, repeat
from operator import attrgetter, lt, sub

from tracebridge.probes import fbt_isa

from tracebridge.support import gcpause, native
from tracebridge.support.records import int64s, names_starting, scatter, uint64_columns, uint64s

from tracebridge.image import modmeta
from tracebridge.probes.fbt_isa import DECODE_FAILED, NO_FRAME_POINTER, NO_PROLOGUE, FbtProbes, PointsInside
from tracebridge.image.elf import Function, ModuleImage
from tracebridge.support.parallel import split_map
from tracebridge.image.relocs import Relocations

EXCLUDED_NAME = "excluded-name"
EXCLUDED_MODULE = "excluded-module"
DTRACE_DEPENDENT = "dtrace-dependent-module"
LISTING_STOPPED = "listing-stopped"
ZERO_SIZE = "zero-size"
NO_CODE = "no-code"
IFUNC = "ifunc"
SHADOWED_ALIAS = "shadowed-alias"

#: Every ``fbt_reason`` value, with what it means (for reports and --help).
REASONS = {
    EXCLUDED_MODULE: "FBT never instruments the modules named dtrace and cyclic",
    DTRACE_DEPENDENT: "the module has a MODULE_DEPEND on a dtrace* module, so FBT skips all of it",
    EXCLUDED_NAME: "fbt_excluded() or the machine's fbt_isa.c refuses this name",
    LISTING_STOPPED: "arm64 FBT stops listing the file's functions at handle_el1h_sync or do_el1h_sync",
    IFUNC: "an IFUNC: FBT scans whatever the resolver picks at load time",
    SHADOWED_ALIAS: "a symbol at the same patch point, listed after it, owns the probe there: only that one "
                    "fires (arm64, riscv, and x86 FBT without fbtp_tracenext: --fbt-no-tracenext)",
    ZERO_SIZE: "the symbol's size is zero",
    NO_CODE: "the symbol's bytes are not in the file",
    NO_FRAME_POINTER: "no instruction FBT recognises as the frame setup (push %rbp; on i386 push %ebp, mov %esp,%ebp)",
    NO_PROLOGUE: "no prologue FBT recognises (arm64: stp ..., [sp, #imm]! or sub sp, sp, #imm; riscv: sd ra, off(sp))",
    DECODE_FAILED: "the kernel's instruction-length decoder fails before any push %rbp",
}

#: Module names ``fbt_provide_module`` skips outright.
_EXCLUDED_MODULES = ("dtrace", "cyclic")
_LOCK_OWNERS = frozenset({"owner_mtx", "owner_rm", "owner_rw", "owner_sx"})
#: Names each machine's fbt_isa.c refuses besides fbt_excluded().
_MACHINE_EXCLUDED = {
    "amd64": frozenset({"trap_check"}),
    "i386": frozenset({"trap_check"}),
    "arm64": frozenset({"handle_el1h_sync", "do_el1h_sync"}),
    "riscv": frozenset({"cpu_exception_handler", "cpu_exception_handler_user",
                        "cpu_exception_handler_supervisor", "do_trap_supervisor"}),
}
#: Scanners of one function's bytes without the jump-table heuristic (amd64 and i386 have it).
_SCANNERS = {"arm64": fbt_isa.scan_arm64, "riscv": fbt_isa.scan_riscv}
#: arm64 returns 1 (an error) for these, which ends linker_file_function_listall.
_STOPS_LISTING = {"arm64": frozenset({"handle_el1h_sync", "do_el1h_sync"})}


@dataclass(frozen=True, slots=True)
class FbtOptions:
    """Kernel build and version facts that change FBT's answer."""

    #: Kernels whose fbt.c still skipped every name starting with ``__``.
    old_dunder_rule: bool = False
    #: FBT compiled into the kernel (not fbt.ko): ``fbt_*`` names are then excluded.
    fbt_in_kernel: bool = False
    #: FBT chains the entry probes of symbols that share a patch point (``fbtp_tracenext``, as HEAD
    #: does): every alias's entry fires.  False: older FBT, where only the one listed last fires.
    tracenext: bool = True
    #: Load address (kldstat), to evaluate the jump-table heuristic on plain bytes.
    base: int | None = None


@dataclass(frozen=True, slots=True)
class ModuleVerdict:
    """FBT's module-wide answer, before any function is looked at."""

    reason: str | None
    dtrace_dependencies: tuple[str, ...]


def name_excluded(name: str, machine: str, options: FbtOptions) -> bool:
    """``fbt_excluded()`` plus the machine's own list (``fbt_isa.c``)."""
    heads, pattern = _exclusions(machine, options)
    return name.startswith(heads) and pattern.match(name) is not None


def _excluded_names(functions: Sequence[Function], machine: str, options: FbtOptions) -> list[int]:
    """Where the functions whose names :func:`name_excluded` refuses are: a name that starts with none of
    the rules' literal heads (nearly every name) is let through by the native core
    (:func:`~tracebridge.support.records.names_starting`), the others by the pattern."""
    heads, pattern = _exclusions(machine, options)
    match = pattern.match
    return [at for at in names_starting(functions, "name", heads) if match(functions[at].name)]


@functools.lru_cache(maxsize=None)
def _exclusions(machine: str, options: FbtOptions) -> tuple[tuple[str, ...], re.Pattern[str]]:
    """All of one kernel's name exclusions: the literal head of each, and all of them as one regular expression."""
    exact = sorted(_LOCK_OWNERS | _MACHINE_EXCLUDED.get(machine, frozenset()))
    heads = ["dtrace_", *exact]
    rules = [r"dtrace_(?!safe_)", "(?:" + "|".join(map(re.escape, exact)) + r")\Z"]
    if options.fbt_in_kernel:
        heads.append("fbt_")
        rules.append("fbt_")
    if options.old_dunder_rule:
        heads.append("__")
        rules.append("__")
    return tuple(heads), re.compile("|".join(rules), re.DOTALL)


def module_verdict(image: ModuleImage, modname: str, relocations: Relocations | None = None) -> ModuleVerdict:
    """Does ``fbt_provide_module`` look at this module's functions at all?"""
    dependencies = tuple(modmeta.dtrace_dependencies(modmeta.module_metadata(image, relocations)))
    if modname in _EXCLUDED_MODULES:
        return ModuleVerdict(EXCLUDED_MODULE, dependencies)
    if dependencies:
        return ModuleVerdict(DTRACE_DEPENDENT, dependencies)
    return ModuleVerdict(None, dependencies)


def predict(image: ModuleImage, functions: Sequence[Function], modname: str,
            options: FbtOptions = FbtOptions()) -> tuple[ModuleVerdict, list[FbtProbes]]:
    """FBT's probes for each of ``functions`` (in the same order) and the module verdict."""
    with gcpause.paused():
        predictor = Predictor(image, modname, options)
        return predictor.verdict, split_map(predictor.scan, functions)


class Predictor:
    """FBT's answer for one module, prepared once; :meth:`scan` answers for any list of its functions.

    The module-wide part (relocations, the dtrace-dependency verdict, where
    arm64's listing stops) is read here; :meth:`scan` is independent per
    function, so callers that do more per-function work (demangling, probe
    descriptions) run it in the same :func:`~tracebridge.support.parallel.split_map`
    as their own work, forking once.
    """

    def __init__(self, image: ModuleImage, modname: str, options: FbtOptions = FbtOptions()):
        self.image = image
        self.options = options
        self.relocations = Relocations(image)
        self.verdict = module_verdict(image, modname, self.relocations)
        # The kernel's listing stops for every function after the stopper, selected or not.
        self._stop_index = _listing_stop(image.functions, image.machine)
        #: The groups of symbols whose ranges overlap (:func:`_overlap_groups`: every member's place in
        #: image.functions_by_offset, and where each group's members start among them) and each member's
        #: group by symbol index, found here, where the predictor is made: before split_map's fork, or in
        #: each process where a command forks before reading the module (librustc_driver: reading the
        #: columns of its 106k functions 5-7 ms, the native pass 1 ms, the dict of 18k members 2 ms; with
        #: numpy, in each process, 20 ms).
        self._members, indices, self._group_starts = _overlap_groups(image.functions_by_offset)
        sizes = map(sub, [*self._group_starts[1:], len(indices)], self._group_starts)
        self._cluster_of = dict(zip(indices, chain.from_iterable(map(repeat, count(), sizes))))
        #: The probes that fire, per symbol index, of the members of the groups answered so far.
        self._shared: dict[int, FbtProbes] = {}
        self._answered: set[int] = set()

    def scan(self, functions: Sequence[Function]) -> list[FbtProbes]:
        """The per-function rules, in order, with only the probes that fire where symbols share a patch point.

        A symbol that may share one is answered with its whole group of
        overlapping symbols, once (:meth:`_answer_groups`); only the others
        are walked here.  :func:`predict` and the commands ask for half the
        functions, by address, in each of two processes: each then walks only
        the groups of its own half.
        """
        cluster_of = self._cluster_of
        if not cluster_of:
            return self._scan(functions)
        indices = uint64s(uint64_columns(functions, ("symbol_index",))[0]).tolist()
        numbers = set(map(cluster_of.get, indices))
        numbers.discard(None)
        self._answer_groups(numbers)
        return self._scan(functions, list(map(self._shared.get, indices)))

    def _cluster(self, number: int) -> list[Function]:
        """The members of group ``number``, in (offset, symbol index) order."""
        starts, members = self._group_starts, self._members
        end = starts[number + 1] if number + 1 < len(starts) else len(members)
        return list(map(self.image.functions_by_offset.__getitem__, members[starts[number]:end]))

    def _answer_groups(self, numbers: set[int]) -> None:
        """Per symbol index of each member of these groups (not answered yet), the probes of it that fire.

        Only symbols whose ranges overlap can share a patch point, so only
        those are scanned here, a group at a time.  Walked from the symbol FBT
        lists last: its probes head their hash chains and fire; an earlier
        symbol's return probe at a taken return site never does, nor (without
        ``fbtp_tracenext``) its entry probe at a taken entry point.
        """
        clusters = list(map(self._cluster, numbers - self._answered))
        if not clusters:
            return
        self._answered.update(numbers)
        chained = entries_chain(self.image.machine, self.options)
        members = [function for cluster in clusters for function in cluster]
        scanned = dict(zip(map(_symbol_index, members), self._scan(members)))
        fired = self._shared
        fired.update(scanned)
        for cluster in clusters:
            entries: set[int] = set()
            returns: set[int] = set()
            for function in sorted(cluster, key=_symbol_index, reverse=True):
                probes = scanned[function.symbol_index]
                if probes.entry is None:
                    continue
                entry = function.offset + probes.entry
                kept = tuple(r for r in probes.returns if function.offset + r not in returns)
                if not chained and entry in entries:
                    fired[function.symbol_index] = FbtProbes(None, kept, SHADOWED_ALIAS)
                elif kept != probes.returns:
                    fired[function.symbol_index] = FbtProbes(probes.entry, kept)
                entries.add(entry)
                returns.update(function.offset + r for r in probes.returns)

    def _scan(self, functions: Sequence[Function], known: list[FbtProbes | None] | None = None) -> list[FbtProbes]:
        """Each function's probes as FBT creates them, whether they fire or not; where ``known[i]`` is not
        None, function ``i``'s answer is that (found with its group) and its bytes are not walked."""
        if self.verdict.reason is not None:
            return [FbtProbes(None, (), self.verdict.reason)] * len(functions)
        image, options, relocations, stop_index = self.image, self.options, self.relocations, self._stop_index
        machine = image.machine
        # Each function's first rule that refuses it, later rules first, from columns: the 100k functions
        # of a big module take no Python step each, and almost none is refused.
        shndx, value, size = uint64_columns(functions, ("shndx", "value", "size"))
        starts, lengths, empty = image.code_spans_of(shndx, value, size)
        refused = dict.fromkeys(_excluded_names(functions, machine, options), EXCLUDED_NAME)
        if stop_index is not None:
            index = uint64_columns(functions, ("symbol_index",))[0]
            for at in compress(count(), map(lt, repeat(stop_index), uint64s(index))):
                refused.setdefault(at, LISTING_STOPPED)
        for at in names_starting(functions, "type", ("IFUNC",)):
            refused.setdefault(at, IFUNC)
        sizes = uint64s(size)
        for at in empty:
            refused.setdefault(at, NO_CODE if sizes[at] else ZERO_SIZE)
        taken = [] if known is None else list(compress(count(), known))  # answers are never false
        if refused or taken:  # walked as functions without code
            lengths = array("q", lengths)
            scatter(lengths, chain(refused, taken), repeat(0))
        data, start_of, length_of = image.data, int64s(starts), int64s(lengths)

        def code(i: int) -> bytes:
            return data[start_of[i]:start_of[i] + length_of[i]]

        def points_inside_of(i: int) -> PointsInside | None:
            if not _may_point_inside(functions[i].shndx, relocations, options.base):
                return None  # without copying the function's bytes
            return _jump_table_test(image, functions[i], code(i), relocations, options.base)

        if machine == "amd64":
            # Asked once per section: most big modules have no window that can point anywhere.
            tested = any(_may_point_inside(section, relocations, options.base) for section in set(uint64s(shndx)))
            scanned = fbt_isa.scan_amd64_many(data, starts, lengths, points_inside_of if tested else None)
        else:
            skipped = {*refused, *taken}
            walked = [at for at in range(len(functions)) if at not in skipped]
            if machine == "i386":  # the other ISA with the jump-table heuristic
                scanned = [fbt_isa.scan_i386(code(i), points_inside_of(i)) for i in walked]
            else:
                scan = _SCANNERS[machine]
                scanned = [scan(code(i)) for i in walked]
            scanned = fbt_isa.one_per_answer(scanned)
            if skipped:
                answers: list[FbtProbes | None] = [None] * len(functions)
                scatter(answers, walked, scanned)
                scanned = answers
        for at, reason in refused.items():
            scanned[at] = _REFUSALS[reason]
        if taken:
            scatter(scanned, taken, map(known.__getitem__, taken))
        return scanned


#: The refusals :meth:`Predictor.scan` finds per function (one object each).
_REFUSALS = {reason: FbtProbes(None, (), reason) for reason in (NO_CODE, ZERO_SIZE, IFUNC, LISTING_STOPPED,
                                                                  EXCLUDED_NAME)}


_symbol_index = attrgetter("symbol_index")


def entries_chain(machine: str, options: FbtOptions) -> bool:
    """Do all entry probes at one patch point fire?  x86 FBT with ``fbtp_tracenext`` chains them;
    aarch64 and riscv ``fbt_invop`` fire the first probe on the hash chain only."""
    return options.tracenext and machine in ("amd64", "i386")


def _overlap_groups(by_offset: Sequence[Function]) -> tuple[list[int], list[int], list[int]]:
    """The groups of two or more functions whose byte ranges overlap, as columns: every member's place in
    ``by_offset`` (functions in (offset, symbol index) order, as ``ModuleImage.functions_by_offset``
    holds them) and its symbol index, group after group in that order, and where each group starts
    among them.

    In that order, a function starts a new group unless it starts at or
    before the last byte any earlier one reaches: one pass (natively, over
    the columns ``src/native/fbt_columns.h`` reads; :func:`_overlap_groups_py`
    is its twin).  A big module has 100k functions, 18k of them in 4k
    groups, and each process of a split builds the lists of only the groups
    of its half.  A last byte past 2**64 - 1 (a hostile size) is taken as
    2**64 - 1, which no offset lies beyond.
    """
    offset, size, index = uint64_columns(by_offset, ("offset", "size", "symbol_index"))
    core = native.core
    members, starts = (_overlap_groups_py if core is None else core.overlap_groups)(offset, size)
    return members, list(map(uint64s(index).__getitem__, members)), starts


def _overlap_groups_py(offset: bytes, size: bytes) -> tuple[list[int], list[int]]:
    """The members and group starts of :func:`_overlap_groups`, from its uint64 columns, in Python."""
    members: list[int] = []
    starts: list[int] = []
    group: list[int] = []
    reach = -1  # the last byte any function so far reaches
    for at, (first, length) in enumerate(zip(uint64s(offset), uint64s(size))):
        if not length:
            continue
        if first > reach:
            if len(group) > 1:
                starts.append(len(members))
                members += group
            group = []
        group.append(at)
        reach = max(reach, first + length - 1)  # past 2**64 - 1 all the same: no offset lies beyond
    if len(group) > 1:
        starts.append(len(members))
        members += group
    return members, starts


def _listing_stop(functions: Sequence[Function], machine: str) -> int | None:
    """Symbol index at which the kernel's function listing ends, if it does."""
    stoppers = _STOPS_LISTING.get(machine)
    if not stoppers:
        return None
    indices = [f.symbol_index for f in functions if f.name in stoppers]
    return min(indices) if indices else None


def _may_point_inside(shndx: int, relocations: Relocations, base: int | None) -> bool:
    """Can a window of a function of section ``shndx`` read as a pointer into it?  Not without a base or
    a relocation."""
    return base is not None or relocations.may_patch(shndx)


def _jump_table_test(image: ModuleImage, function: Function, code: bytes, relocations: Relocations,
                     base: int | None) -> PointsInside | None:
    """The kernel's "does this window hold a pointer into the function?" for one function.

    A window that is exactly one absolute pointer relocation to this module
    points to ``base + target``: inside the function iff ``target`` is, for any
    base.  A window of plain bytes holds a constant, which can only point into
    the function for one load address: it is tested when ``base`` is known and
    taken as "no" otherwise.  A window that mixes relocated and plain bytes
    holds part of some other address, never one of this function's.
    """
    shndx = function.shndx
    if not _may_point_inside(shndx, relocations, base):
        return None
    width = image.bits // 8
    in_section = image.offset_in_section(function)
    low, high = function.offset, function.offset + function.size
    order = "little" if image.little_endian else "big"

    def points_inside(check: int) -> bool:
        where = in_section + check
        target = relocations.pointer(shndx, where)
        if target is not None:
            return low <= target < high
        if base is None or relocations.overlaps(shndx, where, where + width):
            return False
        return base + low <= int.from_bytes(code[check:check + width], order) < base + high

    return points_inside
