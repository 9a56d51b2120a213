"""Turning run-time addresses into functions of the kernel and its modules.

An :class:`AddressSpace` holds each image at its load address (``kldstat``
or a pmcstat ``map-in`` record) and resolves program counters in bulk: one
sorted array of address ranges for the whole space and ``searchsorted``
over numpy arrays, so ten million PCs cost no Python loop per sample.

Which function owns an address follows pmcstat (``libpmcstat_image.c``),
which reads the same symbol tables:

* a function owns ``[start, start + size)``;
* a zero-size symbol is stretched to the next higher symbol start (pmcstat
  does exactly this; such symbols usually come from assembly);
* several names at one address are aliases: one is shown (a global name,
  then the larger size, then the first by name), the others are listed;
* where functions overlap, the one that starts later owns its range and
  the earlier one owns what is left on either side of it, so every address
  has exactly one owner (pmcstat's binary search would pick either).

A PC inside a known module but outside every function is kept as
`` module`0xADDR `` (as DTrace prints it); a PC outside every module as its
bare hex address (:func:`~tracebridge.profile.model.address_frame`).  Nothing is
dropped.  Images whose ELF file is not at hand can still be placed as bare
regions (a pmcstat ``map-in`` of a module nobody passed), so their PCs at
least name the module.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from tracebridge.support.errors import UsageError
from tracebridge.profile.model import Frame, Profile, address_frame, symbol_frame

if TYPE_CHECKING:
    from tracebridge.image.elf import Function, ModuleImage

#: The end of a region whose extent nobody knows and no later region bounds.
_TOP = (1 << 64) - 1


@dataclass(frozen=True)
class LoadedModule:
    """An image at its base; ``image`` is None for a region known only by name."""

    image: ModuleImage | None
    base: int
    #: How frames name the module: the file name (``if_rem.ko``) or ``kernel``.
    name: str
    #: Explicit end for a region without an image (a ``map-out`` record's end).
    limit: int | None = None

    @property
    def end(self) -> int | None:
        """One past the last byte, or None when unknown (then the next region bounds it)."""
        if self.image is not None:
            return self.base + self.image.size
        return self.limit


@dataclass(frozen=True)
class Placement:
    """Where one function lives at run time, after the rules of this module."""

    module: int
    function: Function
    start: int
    #: Nominal end: ``start + size``, or the next symbol's start for a zero-size symbol.
    end: int
    #: True when the symbol had size 0 and was stretched to ``end``.
    stretched: bool
    #: Other names at the same address (not shown in frames).
    aliases: tuple[Function, ...] = ()


@dataclass(frozen=True)
class Segment:
    """A maximal address range owned by one placement (index into :attr:`AddressSpace.placements`)."""

    start: int
    end: int
    placement: int


@dataclass(frozen=True)
class _Table:
    """Contiguous ranges from address 0: where each starts, its owner, module, and offset base."""

    starts: np.ndarray
    placement: np.ndarray
    module: np.ndarray
    base: np.ndarray


@dataclass(frozen=True)
class Resolution:
    """Per PC: index into :attr:`AddressSpace.functions` (-1: none), module index (-1: none), offset.

    ``offset`` is from the function start, else from the module base, else the PC itself.
    """

    function: np.ndarray
    module: np.ndarray
    offset: np.ndarray


@dataclass
class ResolutionCounts:
    """A summary of a resolution; counts add up across chunks with ``+=``."""

    resolved: int = 0
    in_module: int = 0
    outside: int = 0
    #: PCs per module name (resolved or not); ``None`` counts PCs outside every module.
    by_module: Counter = field(default_factory=Counter)

    @property
    def total(self) -> int:
        return self.resolved + self.in_module + self.outside

    def __iadd__(self, other: ResolutionCounts) -> ResolutionCounts:
        self.resolved += other.resolved
        self.in_module += other.in_module
        self.outside += other.outside
        self.by_module.update(other.by_module)
        return self

    def describe(self) -> str:
        """One line for people: ``N PCs: R resolved (P%), M module+offset, O outside``."""
        if not self.total:
            return "no PCs"
        share = 100.0 * self.resolved / self.total
        return (f"{self.total} PCs: {self.resolved} resolved to functions ({share:.1f}%), "
                f"{self.in_module} inside a module but no function (kept as module`0xADDR), "
                f"{self.outside} outside every known module (kept as hex)")


class AddressSpace:
    """The kernel and loaded modules at their addresses."""

    def __init__(self) -> None:
        self.modules: list[LoadedModule] = []
        #: ``(module index, function)`` per shown function, in address order.
        self.functions: list[tuple[int, Function]] = []
        self.placements: list[Placement] = []
        self._table: _Table | None = None
        self._segments: list[Segment] = []
        self._frames: dict[tuple[int, int | None], Frame] = {}

    # -- building ---------------------------------------------------------

    def add(self, image: ModuleImage, base: int | None = None, name: str | None = None) -> LoadedModule:
        if base is None:
            base = image.fixed_base
        if base is None:
            raise UsageError(f"{image.path}: a load address is needed for this module "
                             "(--base, a kldstat file, or a pmcstat map-in record)")
        name = name or image.frame_module
        return self._insert(LoadedModule(image, base, name))

    def add_region(self, name: str, base: int, end: int | None = None) -> LoadedModule:
        """Place an image known only by name (no ELF file): its PCs become `` name`0xADDR ``."""
        return self._insert(LoadedModule(None, base, name, end))

    def _insert(self, module: LoadedModule) -> LoadedModule:
        self.modules.append(module)
        self._invalidate()
        return module

    def remove(self, base: int) -> LoadedModule | None:
        """Take out the module loaded at ``base`` (a ``map-out`` record); None if there is none."""
        for index, module in enumerate(self.modules):
            if module.base == base:
                del self.modules[index]
                self._invalidate()
                return module
        return None

    def find(self, name: str) -> LoadedModule | None:
        return next((m for m in self.modules if m.name == name), None)

    def _invalidate(self) -> None:
        self._table = None
        self._frames = {}

    def _build(self) -> _Table:
        """Lay every module and function out as one sorted table of range starts.

        The ranges cover the whole address space without gaps (the first
        starts at 0), so one ``searchsorted`` finds the range of any PC and
        three gathers give its function, module and the base its offset is
        measured from.
        """
        order = sorted(range(len(self.modules)), key=lambda i: self.modules[i].base)
        placements: list[Placement] = []
        segments: list[Segment] = []
        rows: list[tuple[int, int, int, int]] = [(0, -1, -1, 0)]  # (start, placement, module, base)

        def row(start: int, placement: int, module: int, base: int) -> None:
            if rows[-1][0] == start:
                rows.pop()
            rows.append((start, placement, module, base))

        for position, index in enumerate(order):
            module = self.modules[index]
            end = self._module_end(order, position)
            row(module.base, -1, index, module.base)
            if module.image is not None:
                own = _place(index, module)
                for segment in _flatten(own, len(placements)):
                    if segment.start >= end:
                        break
                    segment = Segment(segment.start, min(segment.end, end), segment.placement)
                    segments.append(segment)
                    row(segment.start, segment.placement, index, own[segment.placement - len(placements)].start)
                    row(segment.end, -1, index, module.base)
                placements.extend(own)
            if end <= _TOP:
                row(end, -1, -1, 0)
        self.placements = placements
        self.functions = [(p.module, p.function) for p in placements]
        self._segments = segments
        columns = list(zip(*rows))
        self._table = _Table(np.array(columns[0], dtype=np.uint64), np.array(columns[1], dtype=np.int32),
                             np.array(columns[2], dtype=np.int32), np.array(columns[3], dtype=np.uint64))
        return self._table

    def _module_end(self, order: list[int], position: int) -> int:
        """Where a module's range stops: its size, bounded by the next module; unknown extents reach the next."""
        module = self.modules[order[position]]
        following = self.modules[order[position + 1]] if position + 1 < len(order) else None
        limit = following.base if following is not None else _TOP + 1
        end = module.end
        if end is None:
            return limit
        if end > limit and following is None:
            raise past_the_top(module.name, module.base, end - module.base)
        if end > limit and module.image is not None and following.image is not None:
            raise UsageError(f"{module.name} at {module.base:#x} (size {end - module.base:#x}) overlaps "
                             f"{following.name} at {following.base:#x}: check the load addresses")
        return min(end, limit)

    @property
    def segments(self) -> list[Segment]:
        """Every range a function owns, in address order (what a symbol map lists)."""
        if self._table is None:
            self._build()
        return self._segments

    # -- resolving --------------------------------------------------------

    def resolve(self, pcs: np.ndarray | list[int]) -> Resolution:
        table = self._table or self._build()
        pcs = np.asarray(pcs, dtype=np.uint64)
        slot = np.searchsorted(table.starts, pcs, side="right")
        slot -= 1
        # The table starts at 0, so every slot is valid; `clip` skips numpy's bounds checks.
        offset = np.take(table.base, slot, mode="clip")
        np.subtract(pcs, offset, out=offset)
        return Resolution(np.take(table.placement, slot, mode="clip"), np.take(table.module, slot, mode="clip"),
                          offset)

    def count(self, resolution: Resolution, weights: np.ndarray | None = None) -> ResolutionCounts:
        """How many PCs (or how much weight per PC) named a function, a module only, or nothing."""
        if weights is None:
            weights = np.ones(len(resolution.function), dtype=np.int64)
        named = resolution.function >= 0
        in_module = ~named & (resolution.module >= 0)
        counts = ResolutionCounts(int(weights[named].sum()), int(weights[in_module].sum()),
                                  int(weights[~named & ~in_module].sum()))
        per_module = np.bincount(resolution.module + 1, weights=weights, minlength=len(self.modules) + 1)
        for index, hits in enumerate(per_module.tolist()):
            if hits:
                counts.by_module[self.modules[index - 1].name if index else None] += int(hits)
        return counts

    def frames(self, pcs: np.ndarray | list[int], offsets: bool = True) -> list[Frame]:
        """One frame per PC, resolved in bulk; ``offsets`` keeps the offset into the function."""
        pcs = np.asarray(pcs, dtype=np.uint64)
        result = self.resolve(pcs)
        return [self._frame(function, module, offset, pc, offsets) for function, module, offset, pc in zip(
            result.function.tolist(), result.module.tolist(), result.offset.tolist(), pcs.tolist())]

    def frame_ids(self, pcs: np.ndarray, profile: Profile,
                  offsets: bool = False) -> tuple[np.ndarray, ResolutionCounts]:
        """Profile frame ids for many PCs, one function-level frame per function.

        Each function present becomes one frame, found through a table indexed
        by function (no sorting of the PCs); only PCs that no function holds
        are made distinct and become a frame each.  ``offsets`` keeps each
        PC's offset into its function instead (one frame per distinct
        function and offset: what ``--inline`` needs to find the chain).
        """
        pcs = np.asarray(pcs, dtype=np.uint64)
        result = self.resolve(pcs)
        ids = np.empty(len(pcs), dtype=np.int64)
        named = result.function >= 0
        if offsets:
            keys = (result.function[named].astype(np.int64) << 32) | result.offset[named].astype(np.int64)
            distinct, which = np.unique(keys, return_inverse=True)
            ids[named] = np.array([profile.intern(self._frame(key >> 32, -1, key & 0xFFFFFFFF, 0, True))
                                   for key in distinct.tolist()], dtype=np.int64)[which.ravel()]
        else:
            present = np.flatnonzero(np.bincount(result.function[named], minlength=len(self.placements)))
            table = np.zeros(len(self.placements), dtype=np.int64)
            table[present] = [profile.intern(self._frame(f, -1, 0, 0, False)) for f in present.tolist()]
            ids[named] = table[result.function[named]]
        unnamed = np.flatnonzero(~named)
        distinct, first, which = np.unique(pcs[unnamed], return_index=True, return_inverse=True)
        at = unnamed[first]
        ids[unnamed] = np.array([profile.intern(self._frame(-1, module, offset, pc, False)) for module, offset, pc in
                                 zip(result.module[at].tolist(), result.offset[at].tolist(), distinct.tolist())],
                                dtype=np.int64)[which.ravel()]
        return ids, self.count(result)

    def _frame(self, function: int, module: int, offset: int, pc: int, with_offset: bool) -> Frame:
        if function >= 0:
            key = (function, offset if with_offset else None)
            frame = self._frames.get(key)
            if frame is None:
                module_index, fn = self.functions[function]
                frame = self._frames[key] = symbol_frame(self.modules[module_index].name, fn.name, key[1])
            return frame
        if module >= 0:
            return address_frame(self.modules[module].name, pc, offset)
        return address_frame(None, pc)


def past_the_top(name: str, base: int, size: int) -> UsageError:
    """The refusal of a module placed so that it runs past the top of the 64-bit address space."""
    return UsageError(f"{name} at {base:#x} (size {size:#x}) runs past the end of the address space: "
                      "check the load address")


def _place(index: int, module: LoadedModule) -> list[Placement]:
    """One placement per distinct start in a module: aliases merged, zero sizes stretched."""
    from tracebridge.image.elf import alias_rank  # with a module only: a callgraph alone needs no ELF reader

    image = module.image
    by_start: dict[int, list[Function]] = {}
    for function in image.functions:
        by_start.setdefault(module.base + function.offset, []).append(function)
    module_end = module.base + image.size
    starts = sorted(s for s in by_start if s < module_end)
    placements = []
    for position, start in enumerate(starts):
        names = sorted(by_start[start], key=alias_rank)
        shown = names[0]
        following = starts[position + 1] if position + 1 < len(starts) else module_end
        stretched = shown.size == 0
        end = following if stretched else min(start + shown.size, module_end)
        placements.append(Placement(index, shown, start, end, stretched, tuple(names[1:])))
    return placements


def _flatten(placements: list[Placement], first: int) -> list[Segment]:
    """Disjoint owned ranges: a later start takes over, an enclosing function resumes after it."""
    segments: list[Segment] = []
    open_: list[tuple[int, int]] = []  # (end, placement index), innermost last
    cursor = 0

    def advance(to: int) -> None:
        nonlocal cursor
        while open_ and cursor < to:
            end, owner = open_[-1]
            stop = min(end, to)
            if stop > cursor:
                segments.append(Segment(cursor, stop, owner))
                cursor = stop
            if end > to:
                break
            open_.pop()
        cursor = max(cursor, to)

    for offset, placement in enumerate(placements):
        advance(placement.start)
        if placement.end > placement.start:
            open_.append((placement.end, first + offset))
    advance(_TOP)
    return segments
