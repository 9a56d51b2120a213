"""An address index over a module's DWARF: every code address to its inline chain and source lines.

For an address, the chain runs from the innermost ``DW_TAG_inlined_subroutine``
out to the ``DW_TAG_subprogram`` holding it, as ``addr2line -i`` and gimli's
``find_frames`` give it (``freebsd-facts.md`` section 8): the innermost
frame's file and line come from the line table, each outer frame's from the
call site (``DW_AT_call_file``/``DW_AT_call_line``) of the frame inside it.

pyelftools reads each unit's header, top DIE and line-table header; the
DIEs are walked by :mod:`tracebridge.image.diewalk` (the native core, or its
pure-Python twin) and the line programs run by
:mod:`tracebridge.image.lineprogram`.  The index itself is flat numpy
arrays, so that looking up a million sampled addresses is two
``searchsorted`` calls:

* every subprogram and inlined subroutine is a *node* (name, parent node,
  call file and line);
* their address ranges are cut into elementary *segments*, each holding the
  innermost node that covers it (painted outermost first);
* line table rows, sorted, with an end-of-sequence row marking each gap.

Hostile DWARF cannot hang or crash it: references are followed a bounded
number of times, nesting is bounded, and a unit that fails to parse is
skipped with a warning naming its offset.
"""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from elftools.common.exceptions import DWARFError, ELFError
from elftools.construct import ConstructError
from elftools.dwarf.dwarfinfo import DebugSectionDescriptor, DWARFInfo, DwarfConfig

from tracebridge.image import diewalk, dwarfcache
from tracebridge.image.debuginfo import DebugSections, find_debug_file
from tracebridge.image.elf import ModuleImage
from tracebridge.image.lineprogram import run_line_program
from tracebridge.image.demangle import demangle_symbol
from tracebridge.support.errors import InputError, warn

#: How far ``DW_AT_abstract_origin``/``DW_AT_specification`` chains are followed for a name.
MAX_REFERENCES = 16
#: Deepest DIE nesting read; deeper children are skipped (real Rust code nests tens deep).
MAX_DEPTH = 512
#: Highest address kept: the index holds module offsets in int64 arrays; more is corrupt DWARF.
MAX_ADDRESS = (1 << 63) - 1
#: Highest line number kept (larger is corrupt; taken as "no line").
MAX_LINE = (1 << 31) - 1
#: What a corrupt unit makes pyelftools (or our arithmetic on its values) raise.
_CORRUPT = (ELFError, DWARFError, ConstructError, KeyError, IndexError, ValueError, TypeError, AttributeError,
            OverflowError, AssertionError, UnicodeDecodeError, RecursionError, EOFError)


@dataclass(frozen=True, slots=True)
class Frame:
    """One frame of an address's chain: a function, and where in its source the address is."""

    function: str
    file: str | None
    #: None when the line table says 0 (no line: compiler-generated code).
    line: int | None
    #: True for an inlined copy, False for the out-of-line function holding it.
    inlined: bool

    @property
    def location(self) -> str:
        """``file:line`` as addr2line prints it (``??:?`` when unknown)."""
        return f"{self.file or '??'}:{self.line if self.line else '?'}"


class AddressIndex:
    """Module offset -> inline chain, built once from a module's relocated DWARF (or read from the cache)."""

    #: The arrays that, with the names, files and warnings, make a built index (what the cache keeps).
    ARRAYS = ("node_parent", "node_inlined", "node_call_file", "node_call_line", "range_low", "range_high",
              "range_node", "segment_starts", "segment_node", "row_address", "row_file", "row_line")

    def __init__(self, debug: DebugSections, entry_symbols: dict[int, str] | None = None, cache: bool = True):
        """``entry_symbols``: the module's function symbols by offset, naming functions DWARF gives no
        linkage name (``#[no_mangle]`` and C functions) as the symbol table does.  ``cache``: read and
        write the on-disk cache (:mod:`tracebridge.image.dwarfcache`)."""
        self.debug = debug
        self._entry_symbols = entry_symbols or {}
        key = dwarfcache.cache_key(debug.sections, self._entry_symbols) if cache else None
        state = dwarfcache.load(key, self.ARRAYS) if key else None
        if state is not None and self._restore(state):
            for message in self.warnings:
                warn(f"{debug.path}: {message}")
            return
        self._build()
        if key:
            dwarfcache.save(key, self._state())

    def _build(self) -> None:
        self.warnings: list[str] = []
        self._names: list[str] = []
        self._files: list[str] = []
        self._rows: list[np.ndarray] = []
        dwarf = open_dwarf(self.debug)
        if dwarf is not None:
            self._read_units(dwarf)
        else:
            self._add_nodes([])
        self._freeze()

    def _state(self) -> dict:
        state = {name: getattr(self, name) for name in self.ARRAYS}
        state.update(names=self._names, files=self._files, warnings=self.warnings)
        return state

    def _restore(self, state: dict) -> bool:
        """Take a cached state; False (nothing taken) when its columns do not fit together."""
        nodes = len(state["names"])
        columns = [state[name] for name in ("node_parent", "node_inlined", "node_call_file", "node_call_line")]
        ranges = {len(state[name]) for name in ("range_low", "range_high", "range_node")}
        rows = {len(state[name]) for name in ("row_address", "row_file", "row_line")}
        if any(len(c) != nodes for c in columns) or len(ranges) != 1 or len(rows) != 1 or \
                len(state["segment_starts"]) != len(state["segment_node"]):
            return False
        files = len(state["files"])
        bounds = (("node_parent", -1, nodes), ("segment_node", -1, nodes), ("range_node", 0, nodes),
                  ("row_file", -1, files), ("node_call_file", -1, files))
        for name, low, high in bounds:
            column = state[name]
            if column.dtype.kind != "i" or (len(column) and not low <= int(column.min()) <= int(column.max()) < high):
                return False
        if nodes and bool((state["node_parent"] >= np.arange(nodes)).any()):
            return False  # a parent is always indexed before its children: no loops
        for name in self.ARRAYS:
            setattr(self, name, state[name])
        self._names, self._files, self.warnings = state["names"], state["files"], state["warnings"]
        self._lists()
        return True

    def _lists(self) -> None:
        """Python lists of the node columns the chains read one element at a time (faster than numpy)."""
        self._call_file, self._call_line = self.node_call_file.tolist(), self.node_call_line.tolist()
        self._parent_list = self.node_parent.tolist()
        self._inlined_list = self.node_inlined.tolist()
        self._outer_cache: dict[int, tuple[Frame, ...]] = {}

    # ------------------------------------------------------------ lookups ---

    def __len__(self) -> int:
        """Number of nodes (subprograms and inlined copies) indexed."""
        return len(self._names)

    @property
    def inlined_count(self) -> int:
        return int(self.node_inlined.sum())

    def frames(self, address: int) -> list[Frame]:
        """The chain at ``address`` (a module offset), innermost first; empty outside any function."""
        return self.frames_many([address])[0]

    def frames_many(self, addresses: Sequence[int]) -> list[list[Frame]]:
        """Chains for many addresses at once (two ``searchsorted`` calls, then the chains)."""
        nodes = self.innermost(addresses)
        files, lines = self.lines(addresses)
        return [self.chain(int(n), int(f), int(l)) for n, f, l in zip(nodes, files, lines)]

    def innermost(self, addresses: Sequence[int]) -> np.ndarray:
        """The innermost node at each address (-1: none)."""
        query = np.asarray(addresses, dtype=np.uint64)
        if not len(self.segment_starts):
            return np.full(len(query), -1, dtype=np.int64)
        at = np.searchsorted(self.segment_starts, query, side="right") - 1
        return np.where(at >= 0, self.segment_node[np.maximum(at, 0)], -1)

    def lines(self, addresses: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        """File index (-1: none) and line (0: none) of each address, from the line tables."""
        query = np.asarray(addresses, dtype=np.uint64)
        if not len(self.row_address):
            return np.full(len(query), -1, dtype=np.int64), np.zeros(len(query), dtype=np.int64)
        at = np.searchsorted(self.row_address, query, side="right") - 1
        safe = np.maximum(at, 0)
        found = at >= 0
        return np.where(found, self.row_file[safe], -1), np.where(found, self.row_line[safe], 0)

    def chain(self, node: int, file: int, line: int) -> list[Frame]:
        """Frames from ``node`` outwards, the innermost at ``file``:``line``.

        The frames outside ``node`` depend on ``node`` alone (its call site,
        its ancestors'), so they are built once per node and shared.
        """
        if node < 0:
            return []
        head = Frame(self._names[node], self.file_name(file), line or None, self._inlined_list[node])
        return [head, *self._outer(node)]

    def _outer(self, node: int) -> tuple[Frame, ...]:
        """The frames around ``node``, outermost last (parents always precede their children)."""
        cache = self._outer_cache
        found = cache.get(node)
        if found is not None:
            return found
        pending = []  # nodes whose outer frames are not known yet, innermost first
        while node >= 0 and node not in cache and len(pending) < MAX_DEPTH:
            pending.append(node)
            node = self._parent_list[node]
        outer = cache.get(node, ())
        for child in reversed(pending):
            parent = self._parent_list[child]
            if parent >= 0:
                outer = (Frame(self._names[parent], self.file_name(self._call_file[child]),
                               self._call_line[child] or None, self._inlined_list[parent]), *outer)
            else:
                outer = ()
            cache[child] = outer
        return outer

    def file_name(self, file: int) -> str | None:
        return self._files[file] if 0 <= file < len(self._files) else None

    def nodes_named(self, match) -> list[int]:
        """Inlined nodes whose function name ``match`` accepts."""
        return [i for i, name in enumerate(self._names) if self.node_inlined[i] and match(name)]

    def node_ranges(self, node: int) -> list[tuple[int, int]]:
        """The address ranges ``[low, high)`` of one node, in address order."""
        chosen = np.flatnonzero(self.range_node == node)
        return sorted(zip(self.range_low[chosen].tolist(), self.range_high[chosen].tolist()))

    def line_ranges(self) -> list[tuple[int, int, str | None, int]]:
        """Every line table row as ``[start, end)``, file and line (end-of-sequence rows excluded)."""
        out = []
        addr, file, line = self.row_address.tolist(), self.row_file.tolist(), self.row_line.tolist()
        for i in range(len(addr) - 1):
            if file[i] >= 0 and addr[i + 1] > addr[i]:
                out.append((addr[i], addr[i + 1], self.file_name(file[i]), line[i]))
        return out

    # ---------------------------------------------------------- building ---

    def _read_units(self, dwarf: DWARFInfo) -> None:
        """Walk every unit's DIEs and line table, then make the nodes of all of them.

        Names are made last: an abstract origin may lie in another unit.
        """
        walked: list[_Unit] = []
        sections = tuple(self.debug.sections.get(name, b"") for name in diewalk.SECTIONS)
        units = dwarf.iter_CUs()
        while True:
            try:
                unit = next(units)
            except StopIteration:
                break
            except _CORRUPT as exc:
                self._warn(f"stopped reading .debug_info: {_reason(exc)}")
                break
            mark = (len(self._rows), len(self._files))
            try:
                walked.append(self._walk_unit(dwarf, unit, sections))
            except _CORRUPT as exc:
                del self._rows[mark[0]:]
                del self._files[mark[1]:]
                self._warn(f"skipped the unit at .debug_info offset {unit.cu_offset:#x}: {_reason(exc)}")
        self._add_nodes(walked)

    def _warn(self, message: str) -> None:
        self.warnings.append(message)
        warn(f"{self.debug.path}: {message}")

    def _walk_unit(self, dwarf: DWARFInfo, unit, sections: tuple[bytes, ...]) -> _Unit:
        top = unit.get_top_DIE()
        file_ids = self._read_lines(dwarf, unit, top)
        shape = unit_shape(dwarf, unit, top)
        records, ranges, strings = diewalk.walk_unit(sections, shape, self.debug.little_endian)
        return _Unit(np.frombuffer(records, dtype=np.int64).reshape(-1, len(diewalk.RECORD_COLUMNS)),
                     np.frombuffer(ranges, dtype=np.int64).reshape(-1, 3), strings, file_ids, shape.version)

    def _add_nodes(self, units: list[_Unit]) -> None:
        """Nodes from the walked units: every code DIE with address ranges is one.

        A code DIE without ranges (a declaration, an abstract instance) is
        no node: what nests in it belongs to the node around it.
        """
        names = _Names(units, self._entry_symbols)
        parents, inlined, call_files, call_lines, ranges = [], [], [], [], []
        nodes = 0
        for unit in units:
            records, unit_ranges = unit.records, unit.ranges
            count = len(records)
            first = np.searchsorted(unit_ranges[:, 2], np.arange(count + 1))
            has_ranges = first[1:] > first[:-1]
            node_of = np.full(count, -1, dtype=np.int64)
            node_of[has_ranges] = nodes + np.arange(int(has_ranges.sum()))
            tags = records[:, _TAG]
            code_parent = records[:, _CODE_PARENT]
            # Code DIEs without ranges pass their enclosing node on (each refers to an earlier record).
            node_list = node_of.tolist()
            for r in np.flatnonzero(~has_ranges & (tags <= diewalk.INLINED)).tolist():
                parent = int(code_parent[r])
                node_list[r] = node_list[parent] if parent >= 0 else -1
            node_of = np.array(node_list, dtype=np.int64)
            chosen = np.flatnonzero(has_ranges)
            is_inlined = tags[chosen] == diewalk.INLINED
            outer = code_parent[chosen]
            parents.append(np.where(is_inlined & (outer >= 0), node_of[np.maximum(outer, 0)], -1))
            inlined.append(is_inlined)
            # DWARF 5 numbers files from 0, earlier versions from 1 (as _file_id).
            file_ids = np.array(unit.file_ids, dtype=np.int64)
            position = records[chosen, _CALL_FILE] - (0 if unit.version >= 5 else 1)
            known = is_inlined & (records[chosen, _CALL_FILE] >= 0) & (position >= 0) & (position < len(file_ids))
            call_files.append(np.where(known, file_ids[np.where(known, position, 0)] if len(file_ids) else -1, -1))
            call_lines.append(np.where(is_inlined, records[chosen, _CALL_LINE], 0))
            self._names.extend(self._node_names(names, records[chosen], is_inlined,
                                                np.minimum.reduceat(unit_ranges[:, 0], first[:-1][has_ranges])
                                                if len(chosen) else chosen))
            ranges.append(np.column_stack([unit_ranges[:, :2], node_of[unit_ranges[:, 2]]]))
            nodes += len(chosen)
        self.node_parent = _joined(parents)
        self.node_inlined = _joined(inlined, bool)
        self.node_call_file = _joined(call_files)
        self.node_call_line = _joined(call_lines)
        self._range_rows = np.concatenate(ranges) if ranges else np.zeros((0, 3), dtype=np.int64)

    def _read_lines(self, dwarf: DWARFInfo, unit, top) -> list[int]:
        """Read the unit's line table into rows; return its file table as global file ids."""
        if "DW_AT_stmt_list" not in top.attributes:
            return []
        program = dwarf.line_program_for_CU(unit)
        if program is None:
            return []
        header = program.header
        version = header["version"]
        comp_dir = _text(top.attributes["DW_AT_comp_dir"].value) if "DW_AT_comp_dir" in top.attributes else ""
        directories = [_text(d) for d in header["include_directory"]]
        file_ids = []
        for entry in header["file_entry"]:
            name = _text(entry.name)
            index = entry.dir_index
            if version >= 5:
                directory = directories[index] if index < len(directories) else ""
            else:
                directory = comp_dir if index == 0 else (directories[index - 1] if index <= len(directories) else "")
            if directory and not os.path.isabs(directory) and comp_dir:
                directory = os.path.join(comp_dir, directory)
            if directory and not os.path.isabs(name):
                name = os.path.join(directory, name)
            file_ids.append(len(self._files))
            self._files.append(name)
        rows = []

        def row(address: int, file: int, line: int, end_sequence: bool) -> None:
            if address > MAX_ADDRESS:
                return
            if end_sequence:
                rows.append((address, 0, -1, 0))
            else:
                rows.append((address, 1, _file_id(file_ids, file, version), _line(line)))

        run_line_program(self.debug.sections[".debug_line"], program.program_start_offset,
                         program.program_end_offset, header, self.debug.little_endian, row)
        if rows:
            self._rows.append(np.array(rows, dtype=np.int64).reshape(-1, 4))
        return file_ids

    def _node_names(self, names: _Names, records: np.ndarray, inlined: np.ndarray, entries: np.ndarray) -> list[str]:
        """Names of the nodes of ``records`` (``entries``: their lowest addresses).  An inlined copy that
        names nothing itself is named as its abstract origin is, looked up once per origin (100k copies
        of a few functions); an out-of-line function may take the symbol at its entry."""
        by_origin = inlined & (records[:, _LINKAGE] < 0) & (records[:, _NAME] < 0) & (records[:, _ORIGIN] >= 0)
        unique, inverse = np.unique(records[by_origin, _ORIGIN], return_inverse=True)
        shared = [names.name(origin, None) for origin in unique.tolist()]
        out = [""] * len(records)
        for position, i in zip(np.flatnonzero(by_origin).tolist(), inverse.tolist()):
            out[position] = shared[i]
        for position in np.flatnonzero(~by_origin).tolist():
            out[position] = names.name(int(records[position, _OFFSET]),
                                       None if inlined[position] else int(entries[position]))
        return out

    def _freeze(self) -> None:
        """Turn the nodes' ranges and the line rows into the arrays lookups search."""
        self._lists()
        ranges = self._range_rows
        self.range_low, self.range_high, self.range_node = ranges[:, 0], ranges[:, 1], ranges[:, 2]
        # Segments: cut at every range boundary, each painted by the ranges
        # covering it, outermost first so the innermost node stays.
        bounds = np.unique(np.concatenate([self.range_low, self.range_high]))
        depth = _depths(self._parent_list)[self.range_node] if len(ranges) else np.zeros(0, np.int64)
        self.segment_starts = bounds.astype(np.uint64)
        self.segment_node = _paint(len(bounds), np.searchsorted(bounds, self.range_low),
                                   np.searchsorted(bounds, self.range_high), depth, self.range_node)
        # Line rows: sorted by address; at one address an end-of-sequence row
        # sorts before a real row, so a sequence starting where another ends wins.
        rows = np.concatenate(self._rows) if self._rows else np.zeros((0, 4), dtype=np.int64)
        order = np.lexsort((rows[:, 1], rows[:, 0]))
        rows = rows[order]
        self.row_address = rows[:, 0].astype(np.uint64)
        self.row_file = rows[:, 2]
        self.row_line = rows[:, 3]
        del self._range_rows, self._rows


class _Unit(NamedTuple):
    """One unit as walked (:mod:`tracebridge.image.diewalk`), with its file table as global file ids."""

    records: np.ndarray
    ranges: np.ndarray
    strings: list[bytes]
    file_ids: list[int]
    version: int


_OFFSET, _TAG, _PARENT, _CODE_PARENT, _ORIGIN, _CALL_FILE, _CALL_LINE, _NAME, _LINKAGE = range(9)


class _Names:
    """Function names of code DIEs over all walked units (an abstract origin may lie in another unit).

    The demangled linkage name when there is one (as ``symbols`` shows it),
    found on the DIE or by following ``DW_AT_abstract_origin`` and
    ``DW_AT_specification`` at most ``MAX_REFERENCES`` times (a loop ends
    there); else, for an out-of-line function (``#[no_mangle]``, C), the
    symbol at its entry -- ``inl_rxeof`` as ``symbols`` and addr2line say,
    not DWARF's ``inl::inl_rxeof``; else ``DW_AT_name`` with its enclosing
    namespaces and types.  Each DIE's answer is kept, so the 100k inlined
    copies of a few functions cost a few lookups each.
    """

    def __init__(self, units: list[_Unit], entry_symbols: dict[int, str]):
        self._entry_symbols = entry_symbols
        columns = [unit.records[:, (_TAG, _PARENT, _ORIGIN, _NAME, _LINKAGE)] for unit in units]
        #: Per recorded DIE, all units: (tag, parent offset, origin offset, name, linkage) with the
        #: strings themselves (None: absent), and where each DIE offset is among them.
        self._rows: list[tuple[int, int, int, bytes | None, bytes | None]] = []
        self._where: dict[int, int] = {}
        for unit, column in zip(units, columns):
            strings = unit.strings
            self._where.update(zip(unit.records[:, _OFFSET].tolist(), range(len(self._rows), len(self._rows) +
                                                                              len(column))))
            self._rows.extend((tag, parent, origin, strings[name] if name >= 0 else None,
                               strings[linkage] if linkage >= 0 else None)
                              for tag, parent, origin, name, linkage in column.tolist())
        self._resolved: dict[int, tuple[str | None, int | None]] = {}
        self._demangled: dict[bytes, str] = {}
        self._scoped: dict[int, str] = {}

    def name(self, offset: int, entry: int | None) -> str:
        """The name of the code DIE at ``offset``; ``entry``: its lowest address when it is out of line."""
        linkage, named = self._resolve(offset)
        if linkage is not None:
            return linkage
        if entry in self._entry_symbols:
            return demangle_symbol(self._entry_symbols[entry]).name
        return self._scoped_name(named) if named is not None else "??"

    def _resolve(self, offset: int) -> tuple[str | None, int | None]:
        """(demangled linkage name, first DIE with a name) along the references from ``offset``."""
        known = self._resolved.get(offset)
        if known is not None:
            return known
        path: list[tuple[int, int]] = []
        found: tuple[str | None, int | None] = (None, None)
        current = offset
        for _ in range(MAX_REFERENCES):
            known = self._resolved.get(current)
            if known is not None:
                found = known
                break
            row = self._where.get(current)
            if row is None or any(current == seen for seen, _ in path):
                break
            path.append((current, row))
            _, _, origin, _, linkage = self._rows[row]
            if linkage is not None:
                found = (self._demangle(linkage), None)
                break
            if origin < 0:
                break
            current = origin
        linkage, named = found
        for current, row in reversed(path):
            if self._rows[row][3] is not None:
                named = row
            self._resolved[current] = (linkage, named)
        return self._resolved.get(offset, found)

    def _demangle(self, raw: bytes) -> str:
        name = self._demangled.get(raw)
        if name is None:
            name = self._demangled[raw] = demangle_symbol(_text(raw)).name
        return name

    def _scoped_name(self, named: int) -> str:
        """``DW_AT_name`` with the names of its enclosing namespaces, types and functions (bounded)."""
        found = self._scoped.get(named)
        if found is not None:
            return found
        rows = self._rows
        parts = [_text(rows[named][3])]
        parent = self._where.get(rows[named][1])
        for _ in range(MAX_DEPTH):
            if parent is None or rows[parent][0] == diewalk.INLINED:
                break
            _, grandparent, _, name, _ = rows[parent]
            if name is not None:
                parts.append(_text(name))
            parent = self._where.get(grandparent)
        name = self._scoped[named] = "::".join(reversed(parts))
        return name


def _paint(segments: int, start: np.ndarray, end: np.ndarray, depth: np.ndarray, node: np.ndarray,
           chunk: int = 1 << 23) -> np.ndarray:
    """The node owning each segment: of the ranges covering it (segments ``start[i]:end[i]``), the deepest;
    among equally deep ones the last.  As painting the ranges outermost first, vectorised; ranges are taken
    ``chunk`` covered segments at a time, so absurd overlapping ranges cost time, not memory."""
    order = np.argsort(depth, kind="stable")
    if not len(order):
        return np.full(segments, -1, dtype=np.int64)
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
    best = np.full(segments, -1, dtype=np.int64)
    lengths = np.maximum(end - start, 0)
    covered = np.cumsum(lengths)
    first = 0
    while first < len(lengths):
        last = max(int(np.searchsorted(covered, covered[first] - lengths[first] + chunk, side="right")), first + 1)
        size = lengths[first:last]
        total = int(size.sum())
        offsets = np.repeat(np.cumsum(size) - size - start[first:last], size)
        np.maximum.at(best, np.arange(total) - offsets, np.repeat(rank[first:last], size))
        first = last
    return np.where(best >= 0, node[order[np.maximum(best, 0)]], -1)


def _joined(parts: list[np.ndarray], dtype=np.int64) -> np.ndarray:
    return np.concatenate(parts).astype(dtype) if parts else np.zeros(0, dtype=dtype)


def _depths(parents: list[int]) -> np.ndarray:
    """Each node's nesting depth (parents always precede their children)."""
    depth: list[int] = []
    for parent in parents:
        depth.append(depth[parent] + 1 if parent >= 0 else 0)
    return np.array(depth, dtype=np.int64)


def module_index(image: ModuleImage, debug_path: str | None = None) -> tuple[AddressIndex | None, list[str]]:
    """The address index of ``image``'s DWARF (None when there is none) and the places looked at."""
    debug, searched = find_debug_file(image, debug_path)
    if debug is None:
        return None, searched
    return AddressIndex(debug, {f.offset: f.name for f in image.functions_by_offset}), searched


def unit_shape(dwarf: DWARFInfo, unit, top) -> diewalk.UnitShape:
    """What :func:`diewalk.walk_unit` needs of a unit pyelftools has read the header and top DIE of."""
    attributes = top.attributes

    def base_of(name: str) -> int:
        value = attributes[name].value if name in attributes else -1
        return value if isinstance(value, int) and 0 <= value <= MAX_ADDRESS else -1

    base = _low_pc(dwarf, unit, top) or 0
    return diewalk.UnitShape(
        die_start=top.offset + top.size, unit_end=unit.cu_offset + unit.size, unit_offset=unit.cu_offset,
        top_offset=top.offset, version=unit.header.version, address_size=unit.header.address_size,
        offset_size=4 if unit.structs.dwarf_format == 32 else 8, abbrev_offset=unit.header.debug_abbrev_offset,
        base=base if 0 <= base < 1 << 64 else 0, str_offsets_base=base_of("DW_AT_str_offsets_base"),
        addr_base=base_of("DW_AT_addr_base"), rnglists_base=base_of("DW_AT_rnglists_base"),
        top_has_children=int(top.has_children), max_depth=MAX_DEPTH)


def open_dwarf(debug: DebugSections) -> DWARFInfo | None:
    """pyelftools' reader over our relocated section bytes (None without ``.debug_info``)."""
    if ".debug_info" not in debug.sections:
        return None

    def section(name: str) -> DebugSectionDescriptor | None:
        data = debug.sections.get(name)
        if data is None:
            return None
        return DebugSectionDescriptor(io.BytesIO(data), name, 0, len(data), 0)

    try:
        return DWARFInfo(
            config=DwarfConfig(little_endian=debug.little_endian, default_address_size=debug.address_size,
                               machine_arch="x64" if debug.machine == "amd64" else debug.machine),
            debug_info_sec=section(".debug_info"), debug_aranges_sec=None,
            debug_abbrev_sec=section(".debug_abbrev"), debug_frame_sec=None, eh_frame_sec=None,
            debug_str_sec=section(".debug_str"), debug_loc_sec=None,
            debug_ranges_sec=section(".debug_ranges"), debug_line_sec=section(".debug_line"),
            debug_pubtypes_sec=None, debug_pubnames_sec=None, debug_addr_sec=section(".debug_addr"),
            debug_str_offsets_sec=section(".debug_str_offsets"), debug_line_str_sec=section(".debug_line_str"),
            debug_loclists_sec=section(".debug_loclists"), debug_rnglists_sec=section(".debug_rnglists"), debug_sup_sec=None,
            gnu_debugaltlink_sec=None, debug_types_sec=None)
    except _CORRUPT as exc:
        raise InputError(debug.path, f"unreadable DWARF: {_reason(exc)}") from None


def _low_pc(dwarf: DWARFInfo, unit, die) -> int | None:
    attribute = die.attributes.get("DW_AT_low_pc")
    if attribute is None:
        return None
    # pyelftools has already looked DWARF 5's DW_FORM_addrx* up in .debug_addr; not the GNU extension.
    if attribute.form == "DW_FORM_GNU_addr_index":
        return dwarf.get_addr(unit, attribute.value)
    return int(attribute.value)


def _file_id(file_ids: list[int], index: int, version: int = 4) -> int:
    """A line-table file number as a global file id (-1 when it names no file).

    DWARF 5 numbers files from 0, earlier versions from 1.
    """
    position = index if version >= 5 else index - 1
    return file_ids[position] if 0 <= position < len(file_ids) else -1


def _line(value) -> int:
    line = int(value)
    return line if 0 < line <= MAX_LINE else 0


def _text(value) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _reason(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
