"""Turning run-time addresses into functions of the kernel and its modules.

An :class:`AddressSpace` holds each image at its load address (``kldstat``
or a pmcstat ``map-in`` record) and resolves program counters in bulk: one
sorted array of function starts for the whole space and ``searchsorted``
over numpy arrays, so ten million PCs cost no Python loop per sample.

Rules, as pmcstat and libdtrace apply them to sized symbols: a PC belongs to
the function whose ``[start, start + size)`` holds it; a zero-size symbol is
stretched to the next symbol.  A PC inside a known module but outside every
function is kept as ``module+0xOFF``; a PC outside every module as its hex
address.  Nothing is dropped.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tracebridge.errors import UsageError
from tracebridge.image import Function, ModuleImage
from tracebridge.profile import UNKNOWN, Frame, address_frame, symbol_frame


@dataclass(frozen=True)
class LoadedModule:
    image: ModuleImage
    base: int
    #: How frames name the module: the file name (``if_rem.ko``) or ``kernel``.
    name: str

    @property
    def end(self) -> int:
        return self.base + self.image.size


@dataclass(frozen=True)
class Resolution:
    """Per PC: index into :attr:`AddressSpace.functions` (-1: none), module index (-1: none), offset."""

    function: np.ndarray
    module: np.ndarray
    offset: np.ndarray


class AddressSpace:
    """The kernel and loaded modules at their addresses."""

    def __init__(self) -> None:
        self.modules: list[LoadedModule] = []
        self.functions: list[tuple[int, Function]] = []  # (module index, function)
        self._tables: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        self._frames: dict[tuple[int, int], Frame] = {}

    def add(self, image: ModuleImage, base: int | None = None, name: str | None = None) -> LoadedModule:
        if base is None:
            base = image.fixed_base
        if base is None:
            raise UsageError(f"{image.path}: a load address is needed for this module "
                             "(--base, a kldstat file, or a pmcstat map-in record)")
        module = LoadedModule(image, base, name or ("kernel" if image.elf_type == "ET_EXEC" else image.filename))
        self.modules.append(module)
        self._tables = None
        return module

    def _build(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        starts: list[int] = []
        sizes: list[int] = []
        self.functions = []
        for index, module in enumerate(self.modules):
            # Aliases at one address: prefer a global name, then the larger size.
            chosen: dict[int, Function] = {}
            for function in module.image.functions:
                start = module.base + function.offset
                best = chosen.get(start)
                if best is None or _rank(function) < _rank(best):
                    chosen[start] = function
            for start in sorted(chosen):
                self.functions.append((index, chosen[start]))
                starts.append(start)
                sizes.append(chosen[start].size)
        order = np.argsort(np.array(starts, dtype=np.uint64), kind="stable")
        self.functions = [self.functions[i] for i in order]
        start_arr = np.array(starts, dtype=np.uint64)[order]
        end_arr = start_arr + np.array(sizes, dtype=np.uint64)[order]
        # Zero-size symbols reach to the next symbol (or the end of their module).
        zero = np.flatnonzero(end_arr == start_arr)
        module_of = np.array([m for m, _ in self.functions], dtype=np.int64)
        module_end = np.array([m.end for m in self.modules], dtype=np.uint64)
        for i in zero.tolist():
            nxt = start_arr[i + 1] if i + 1 < len(start_arr) else module_end[module_of[i]]
            end_arr[i] = min(nxt, module_end[module_of[i]]) if module_of.size else nxt
        self._tables = (start_arr, end_arr, module_of)
        return self._tables

    def resolve(self, pcs: np.ndarray | list[int]) -> Resolution:
        starts, ends, module_of = self._tables or self._build()
        pcs = np.asarray(pcs, dtype=np.uint64)
        slot = np.searchsorted(starts, pcs, side="right").astype(np.int64) - 1
        valid = slot >= 0
        safe = np.where(valid, slot, 0)
        inside = valid & (pcs < ends[safe]) if len(starts) else np.zeros(pcs.shape, dtype=bool)
        function = np.where(inside, slot, -1)
        module = self._module_indices(pcs)
        offset = np.where(inside, pcs - (starts[safe] if len(starts) else 0), pcs)
        return Resolution(function, module, offset)

    def _module_indices(self, pcs: np.ndarray) -> np.ndarray:
        if not self.modules:
            return np.full(pcs.shape, -1, dtype=np.int64)
        order = sorted(range(len(self.modules)), key=lambda i: self.modules[i].base)
        bases = np.array([self.modules[i].base for i in order], dtype=np.uint64)
        ends = np.array([self.modules[i].end for i in order], dtype=np.uint64)
        slot = np.searchsorted(bases, pcs, side="right").astype(np.int64) - 1
        safe = np.where(slot >= 0, slot, 0)
        inside = (slot >= 0) & (pcs < ends[safe])
        return np.where(inside, np.array(order, dtype=np.int64)[safe], -1)

    def frames(self, pcs: np.ndarray | list[int]) -> list[Frame]:
        """One frame per PC, resolved in bulk; frames are shared between equal PCs' functions."""
        result = self.resolve(pcs)
        pcs = np.asarray(pcs, dtype=np.uint64)
        out = []
        for function, module, offset, pc in zip(result.function.tolist(), result.module.tolist(),
                                                result.offset.tolist(), pcs.tolist()):
            out.append(self._frame(function, module, offset, pc))
        return out

    def _frame(self, function: int, module: int, offset: int, pc: int) -> Frame:
        if function >= 0:
            key = (function, offset)
            frame = self._frames.get(key)
            if frame is None:
                module_index, fn = self.functions[function]
                frame = self._frames[key] = symbol_frame(self.modules[module_index].name, fn.name, offset)
            return frame
        if module >= 0:
            loaded = self.modules[module]
            off = pc - loaded.base
            return Frame(loaded.name, f"0x{pc:x}", f"{loaded.name}+0x{off:x}", off, UNKNOWN, None)
        return address_frame(None, pc)


def _rank(function: Function) -> tuple[int, int, str]:
    return (0 if function.binding == "GLOBAL" else 1, -function.size, function.name)
