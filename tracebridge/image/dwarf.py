"""An address index over a module's DWARF: every code address to its inline chain and source lines.

For an address, the chain runs from the innermost ``DW_TAG_inlined_subroutine``
out to the ``DW_TAG_subprogram`` holding it, as ``addr2line -i`` and gimli's
``find_frames`` give it (``freebsd-facts.md`` section 8): the innermost
frame's file and line come from the line table, each outer frame's from the
call site (``DW_AT_call_file``/``DW_AT_call_line``) of the frame inside it.

pyelftools parses the units; the index itself is flat numpy arrays, so that
looking up a million sampled addresses is two ``searchsorted`` calls:

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

import numpy as np
from elftools.common.exceptions import DWARFError, ELFError
from elftools.construct import ConstructError
from elftools.dwarf.dwarfinfo import DebugSectionDescriptor, DWARFInfo, DwarfConfig

from tracebridge.image import dwarfcache
from tracebridge.image.debuginfo import DebugSections, find_debug_file
from tracebridge.image.elf import ModuleImage
from tracebridge.image.lineprogram import run_line_program
from tracebridge.image.rangelists import RangeLists
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
_CODE_TAGS = ("DW_TAG_subprogram", "DW_TAG_inlined_subroutine")
_SCOPE_TAGS = ("DW_TAG_namespace", "DW_TAG_structure_type", "DW_TAG_class_type", "DW_TAG_union_type",
               "DW_TAG_enumeration_type", "DW_TAG_subprogram")


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
        self._parent: list[int] = []
        self._call_file: list[int] = []
        self._call_line: list[int] = []
        self._inlined: list[bool] = []
        self._depth: list[int] = []
        self._files: list[str] = []
        #: (low, high, node) per address range of a node.
        self._ranges: list[tuple[int, int, int]] = []
        self._rows: list[np.ndarray] = []
        self._name_cache: dict[int, str] = {}
        dwarf = open_dwarf(self.debug)
        sections = self.debug.sections
        self._range_lists = RangeLists(sections.get(".debug_ranges"), sections.get(".debug_rnglists"),
                                       self.debug.little_endian, self.debug.address_size)
        if dwarf is not None:
            self._read_units(dwarf)
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
        self._call_file, self._call_line = self.node_call_file.tolist(), self.node_call_line.tolist()
        self._lists()
        return True

    def _lists(self) -> None:
        """Python lists of the node columns the chains read one element at a time (faster than numpy)."""
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
        units = dwarf.iter_CUs()
        while True:
            try:
                unit = next(units)
            except StopIteration:
                return
            except _CORRUPT as exc:
                self._warn(f"stopped reading .debug_info: {_reason(exc)}")
                return
            mark = (len(self._names), len(self._ranges), len(self._rows), len(self._files))
            try:
                self._read_unit(dwarf, unit)
            except _CORRUPT as exc:
                self._rollback(mark)
                self._warn(f"skipped the unit at .debug_info offset {unit.cu_offset:#x}: {_reason(exc)}")

    def _warn(self, message: str) -> None:
        self.warnings.append(message)
        warn(f"{self.debug.path}: {message}")

    def _rollback(self, mark: tuple[int, int, int, int]) -> None:
        nodes, ranges, rows, files = mark
        for column in (self._names, self._parent, self._call_file, self._call_line, self._inlined, self._depth):
            del column[nodes:]
        del self._ranges[ranges:]
        del self._rows[rows:]
        del self._files[files:]

    def _read_unit(self, dwarf: DWARFInfo, unit) -> None:
        top = unit.get_top_DIE()
        file_ids = self._read_lines(dwarf, unit, top)
        base = _low_pc(dwarf, unit, top) or 0
        #: (DIE, node it belongs to) for DIEs that have children, innermost last.
        stack: list[tuple[object, int]] = []
        first = True
        for die in unit.iter_DIEs():
            if first:  # the unit DIE itself
                first = False
                if die.has_children:
                    stack.append((die, -1))
                continue
            if die.is_null():
                if stack:
                    stack.pop()
                continue
            parent_node = stack[-1][1] if stack else -1
            node = parent_node
            if die.tag in _CODE_TAGS and len(stack) < MAX_DEPTH:
                node = self._add_node(dwarf, unit, die, parent_node, base, file_ids)
            if die.has_children:
                stack.append((die, node))

    def _add_node(self, dwarf: DWARFInfo, unit, die, parent: int, base: int, file_ids: list[int]) -> int:
        ranges = [(low, high) for low, high in _ranges(dwarf, self._range_lists, unit, die, base)
                  if high <= MAX_ADDRESS]
        if not ranges:
            return parent  # a declaration or abstract instance: no code of its own
        inlined = die.tag == "DW_TAG_inlined_subroutine"
        if not inlined:
            parent = -1  # an out-of-line function (even nested in another's DIE) starts a chain
        node = len(self._names)
        self._names.append(self._name(die, None if inlined else min(low for low, _ in ranges)))
        self._parent.append(parent)
        call_file = die.attributes.get("DW_AT_call_file")
        call_line = die.attributes.get("DW_AT_call_line")
        self._call_file.append(_file_id(file_ids, call_file.value, unit.header.version)
                               if inlined and call_file else -1)
        self._call_line.append(_line(call_line.value) if inlined and call_line else 0)
        self._inlined.append(inlined)
        self._depth.append(self._depth[parent] + 1 if parent >= 0 else 0)
        self._ranges.extend((low, high, node) for low, high in ranges)
        return node

    def _name(self, die, entry: int | None = None) -> str:
        """The demangled linkage name when there is one (as ``symbols`` shows it), else the path in DWARF.

        An out-of-line function without a linkage name (``#[no_mangle]``, C)
        takes the symbol at its ``entry`` when there is one: ``inl_rxeof``, as
        ``symbols`` and addr2line say, not DWARF's ``inl::inl_rxeof``.  Abstract origins and specifications are followed ``MAX_REFERENCES``
        times at most, remembering offsets, so a loop ends.
        """
        cached = self._name_cache.get(die.offset)
        if cached is not None:
            return cached
        seen, current, named = set(), die, None
        for _ in range(MAX_REFERENCES):
            seen.add(current.offset)
            attributes = current.attributes
            linkage = attributes.get("DW_AT_linkage_name") or attributes.get("DW_AT_MIPS_linkage_name")
            if linkage is not None:
                name = demangle_symbol(_text(linkage.value)).name
                break
            if named is None and "DW_AT_name" in attributes:
                named = current
            reference = attributes.get("DW_AT_abstract_origin") or attributes.get("DW_AT_specification")
            if reference is None:
                name = None
                break
            current = current.get_DIE_from_attribute(reference.name)
            if current.offset in seen:
                name = None
                break
        else:
            name = None
        if name is None and entry in self._entry_symbols:
            name = demangle_symbol(self._entry_symbols[entry]).name
        if name is None:
            name = _scoped_name(named) if named is not None else "??"
        self._name_cache[die.offset] = name
        return name

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

    def _freeze(self) -> None:
        """Turn the lists into the arrays lookups search."""
        self.node_parent = np.array(self._parent, dtype=np.int64)
        self.node_inlined = np.array(self._inlined, dtype=bool)
        self.node_call_file = np.array(self._call_file, dtype=np.int64)
        self.node_call_line = np.array(self._call_line, dtype=np.int64)
        self._lists()
        ranges = np.array(self._ranges, dtype=np.int64).reshape(-1, 3)
        self.range_low, self.range_high, self.range_node = ranges[:, 0], ranges[:, 1], ranges[:, 2]
        # Segments: cut at every range boundary, each painted by the ranges
        # covering it, outermost first so the innermost node stays.
        bounds = np.unique(np.concatenate([self.range_low, self.range_high]))
        owner = np.full(len(bounds), -1, dtype=np.int64)
        depth = np.array(self._depth, dtype=np.int64)[self.range_node] if len(ranges) else np.zeros(0, np.int64)
        start = np.searchsorted(bounds, self.range_low)
        end = np.searchsorted(bounds, self.range_high)
        for i in np.argsort(depth, kind="stable").tolist():
            owner[start[i]:end[i]] = self.range_node[i]
        self.segment_starts = bounds.astype(np.uint64)
        self.segment_node = owner
        # Line rows: sorted by address; at one address an end-of-sequence row
        # sorts before a real row, so a sequence starting where another ends wins.
        rows = np.concatenate(self._rows) if self._rows else np.zeros((0, 4), dtype=np.int64)
        order = np.lexsort((rows[:, 1], rows[:, 0]))
        rows = rows[order]
        self.row_address = rows[:, 0].astype(np.uint64)
        self.row_file = rows[:, 2]
        self.row_line = rows[:, 3]
        del self._ranges, self._rows, self._name_cache


def module_index(image: ModuleImage, debug_path: str | None = None) -> tuple[AddressIndex | None, list[str]]:
    """The address index of ``image``'s DWARF (None when there is none) and the places looked at."""
    debug, searched = find_debug_file(image, debug_path)
    if debug is None:
        return None, searched
    return AddressIndex(debug, {f.offset: f.name for f in image.functions_by_offset}), searched


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


def _ranges(dwarf: DWARFInfo, lists: RangeLists, unit, die, base: int) -> list[tuple[int, int]]:
    """``[low, high)`` ranges of a DIE's code: low/high pc or a range list (DWARF 2-5)."""
    attributes = die.attributes
    low = _low_pc(dwarf, unit, die)
    if low is not None and "DW_AT_high_pc" in attributes:
        high = attributes["DW_AT_high_pc"]
        if high.form == "DW_FORM_addr" or high.form.startswith("DW_FORM_addrx"):  # addrx: looked up already
            end = high.value
        else:  # a constant class form: the length (DWARF 4+)
            end = low + high.value
        return [(low, end)] if end > low else []
    ranges_attribute = attributes.get("DW_AT_ranges")
    if ranges_attribute is None:
        return []
    # A DW_FORM_rnglistx index pyelftools has already made an offset.
    return lists.read(ranges_attribute.value, base, unit.header.version,
                      lambda index: dwarf.get_addr(unit, index))


def _file_id(file_ids: list[int], index: int, version: int = 4) -> int:
    """A line-table file number as a global file id (-1 when it names no file).

    DWARF 5 numbers files from 0, earlier versions from 1.
    """
    position = index if version >= 5 else index - 1
    return file_ids[position] if 0 <= position < len(file_ids) else -1


def _line(value) -> int:
    line = int(value)
    return line if 0 < line <= MAX_LINE else 0


def _scoped_name(die) -> str:
    """``DW_AT_name`` with the names of its enclosing namespaces and types (bounded)."""
    parts = [_text(die.attributes["DW_AT_name"].value)]
    parent = die.get_parent()
    for _ in range(MAX_DEPTH):
        if parent is None or parent.tag not in _SCOPE_TAGS:
            break
        if "DW_AT_name" in parent.attributes:
            parts.append(_text(parent.attributes["DW_AT_name"].value))
        parent = parent.get_parent()
    return "::".join(reversed(parts))


def _text(value) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _reason(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
