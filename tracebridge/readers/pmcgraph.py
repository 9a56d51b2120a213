"""``pmcstat -R log -G`` callgraphs folded into stacks, as stackcollapse-pmc.pl folds them.

pmcstat (``pmcpl_callgraph.c``, ``pmcstat_cgnode_print``) prints, per PMC,
``@ EVENT [N samples]`` and one tree per sampled function: ``depth`` spaces,
the share of the parent (``100.0%`` or ``%05.2f%``), `` [count]`` padded to
12 columns, ``depth`` spaces, the symbol name (or the node's address as
``%p`` when pmcstat found no symbol) and `` @ /path`` whenever the image
differs from the previous line's.  Children are callers.

FlameGraph's ``stackcollapse-pmc.pl`` reads each line with
``^( *)[0-9.]+%  \\[([0-9]+)\\]\\s*(\\S+)``, skips lines that do not match,
keeps the last name seen at each depth, and when a line is no deeper than
the one before prints the stack down to that previous line with its count.
So the stack of a "leaf" line holds, at every depth, the most recent
matching line of that depth; a depth never seen prints as an empty frame,
written ``[unknown]`` here.  This module computes exactly that, a block of
lines at a time, natively (src/native/pmcgraph_scan.h, name_table.h) or with
numpy (line boundaries, fields and the most recent line per depth), because a
callgraph can have millions of lines; only the distinct names become Python
objects.  The native path needs no numpy (its columns are memoryviews): the
import alone (about 40 ms) would come before the fold can be split on two
cores, so numpy (and the address resolver, built on it) is imported where
the pure path or a module's ELF needs it.  :func:`scan_block` reads one block
(bytes in, arrays out); :class:`CallgraphFolder` keeps what must outlive a
block (the most recent frame per depth, the last image, the last line,
whose stack ends only if the next line is no deeper) and adds each
finished stack to the profile at once, so memory follows the distinct
stacks and frames, never the file's size.

pmcstat prints a module's unnamed node as its offset from the module base
(a module's ``pi_vaddr`` is 0) and a kernel node as its address, so with
the module's ELF at hand those nodes are named here from the layout.  The
names it did print for a per-function-section module are its own wrong
guesses (freebsd-facts §6): that is said once on standard error.
"""

from __future__ import annotations

import os
import re
from array import array
from bisect import bisect_left
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Union

from tracebridge.support import gcpause, native, quickexit
from tracebridge.support import parallel
from tracebridge.support.errors import InputError, warn
from tracebridge.support.records import int64s
from tracebridge.readers.options import Loaded
from tracebridge.readers.placement import KERNEL
from tracebridge.readers.pmcstat import (HEAD, image_name, open_input, options_images, refuse_binary, sniff_callgraph,
                                         sniff_log)
from tracebridge.profile.consistency import Evidence
from tracebridge.profile.model import UNKNOWN, Frame, Metadata, Profile, address_frame, offset_frame, shown_names

if TYPE_CHECKING:
    import numpy as np

    from tracebridge.profile.resolve import AddressSpace
    from tracebridge.readers.options import LoadOptions
    from tracebridge.readers.source import Source
    from tracebridge.image.elf import ModuleImage

#: Stands for a caller depth stackcollapse-pmc.pl would print empty (its line was malformed).
MISSING = "[unknown]"
_MISSING_FRAME = Frame(None, MISSING, MISSING, None, UNKNOWN, None)
#: Deeper than any callchain hwpmc records (``kern.hwpmc.callchaindepth`` is at most 512).
MAX_DEPTH = 1024
#: Longest percentage or count read: pmcstat prints at most 7 and 10 characters; a
#: longer run of digits is taken as not matching (stackcollapse-pmc.pl has no limit).
MAX_FIELD = 32

_HEX_NAME = re.compile(rb"^0x[0-9a-fA-F]{1,16}$")  # an address fits 64 bits
_HEADER = re.compile(rb"^@ (.*) \[[0-9]+ samples\]")
_NOT_SEEN = object()
#: An int64 column: a numpy array on the pure path, a memoryview of the native core's bytes on the native one.
Column = Union["np.ndarray", memoryview]
_NL, _SP, _PERCENT, _OPEN, _CLOSE, _AT = 10, 32, 37, 91, 93, 64


@dataclass
class _Lines:
    """The lines of a callgraph file, and for those stackcollapse-pmc.pl reads, their fields."""

    starts: np.ndarray
    ends: np.ndarray
    #: Indices of the lines the pattern matches, in file order.
    tree: np.ndarray
    depth: np.ndarray
    count_start: np.ndarray
    count_end: np.ndarray
    name_start: np.ndarray
    name_end: np.ndarray
    #: Per tree line: where the `` @ image`` path after the name starts and ends (equal: none).
    image_start: np.ndarray
    image_end: np.ndarray
    #: Indices of ``@ EVENT [N samples]`` lines.
    headers: np.ndarray
    #: Indices of the other non-blank lines (skipped, as the script skips them).
    skipped: np.ndarray


def _scan(data: bytes) -> tuple[_Lines, np.ndarray]:
    """Every line's fields, found for all lines at once from the file's words (runs of non-space).

    Returns the lines and the bytes, padded so that reads a little past a line stay in bounds.
    """
    import numpy as np

    arr = np.frombuffer(data, dtype=np.uint8)
    size = len(arr)
    pad = np.full(size + 16, _NL, dtype=np.uint8)   # reads a little past any line stay in bounds
    pad[:size] = arr
    ends = np.flatnonzero(arr == _NL)
    newlines = len(ends)
    if size and arr[-1] != _NL:
        ends = np.append(ends, size)
    starts = np.empty_like(ends)
    starts[:1] = 0
    starts[1:] = ends[:-1] + 1
    # Whitespace as perl's \s.  When the only control byte is the newline, "<= 32" is exactly that.
    controls = np.count_nonzero(arr < _SP) != newlines
    space = ((pad == _SP) | ((pad >= 9) & (pad <= 13))) if controls else pad <= _SP
    flips = np.flatnonzero(space[1:] != space[:-1]) + 1
    word_start = flips[~space[flips]]
    if not space[0]:
        word_start = np.concatenate([[0], word_start])
    beyond = np.array([size + 1])
    word_start = np.concatenate([word_start, beyond, beyond, beyond])
    word_end = np.concatenate([flips[space[flips]], beyond, beyond, beyond])

    word = np.searchsorted(word_start, starts)         # each line's first word
    first = word_start[word]
    blank = first >= ends
    ok = ~blank
    if controls:  # ^( *): the indentation must be spaces only, no tab or other control byte
        odd = np.append(np.flatnonzero((pad < _SP) & (pad != _NL)), size + 1)
        ok &= odd[np.searchsorted(odd, starts)] >= first
    # [0-9.]+%  \[ : the first word is digits and dots ending in '%', then exactly two spaces and '['.
    percent = word_end[word] - 1
    ok &= (percent > first) & (pad[percent] == _PERCENT) & (pad[percent + 1] == _SP) \
        & (pad[percent + 2] == _SP) & (word_start[word + 1] == percent + 3) & (pad[percent + 3] == _OPEN)
    ok &= _all_bytes(pad, first, percent, ok, b"0123456789.", MAX_FIELD)
    # ([0-9]+)\]\s*(\S+) : digits, ']', then the name (in the same word or the next one on the line).
    count_start = percent + 4
    count_end = _digits_end(pad, count_start, ok, MAX_FIELD)
    ok &= (count_end > count_start) & (pad[count_end] == _CLOSE)
    joined = count_end + 1 < word_end[word + 1]
    name_start = np.where(joined, count_end + 1, word_start[word + 2])
    name_end = np.where(joined, word_end[word + 1], word_end[word + 2])
    ok &= name_start < ends
    tree = np.flatnonzero(ok)
    name_start, name_end = name_start[tree], name_end[tree]
    # ` @ /path` after the name: the path runs to the end of the line's last word.
    marked = (pad[name_end] == _SP) & (pad[name_end + 1] == _AT) & (pad[name_end + 2] == _SP)
    last_word_end = word_end[np.searchsorted(word_start, ends[tree]) - 1]
    image_start = np.where(marked, name_end + 3, 0)
    image_end = np.where(marked, np.maximum(last_word_end, name_end + 3), 0)
    other = np.flatnonzero(~ok & ~blank)
    is_header = (pad[starts[other]] == _AT) & (pad[starts[other] + 1] == _SP)
    lines = _Lines(starts, ends, tree, (first - starts)[tree], count_start[tree], count_end[tree], name_start,
                   name_end, image_start, image_end, other[is_header], other[~is_header])
    return lines, pad


def _all_bytes(pad: np.ndarray, start: np.ndarray, stop: np.ndarray, where: np.ndarray, allowed: bytes,
               limit: int) -> np.ndarray:
    """Whether every byte in ``[start, stop)`` is one of ``allowed`` (ranges longer than ``limit``: no).

    Ranges of up to 8 bytes (every percentage pmcstat prints) are read as one
    8-byte row per line; longer ones a byte position at a time.
    """
    import numpy as np

    table = np.zeros(256, dtype=bool)
    table[list(allowed)] = True
    length = stop - start
    good = where & (length <= limit)
    short = np.flatnonzero(good & (length <= 8))
    rows = np.lib.stride_tricks.as_strided(pad, (len(pad) - 8, 8), (1, 1))[start[short]]
    good[short] = (table[rows] | (np.arange(8) >= length[short, None])).all(axis=1)
    active = np.flatnonzero(good & (length > 8))
    for offset in range(limit):
        active = active[start[active] + offset < stop[active]]
        if not active.size:
            break
        bad = ~table[pad[start[active] + offset]]
        good[active[bad]] = False
        active = active[~bad]
    return good


def _digits_end(pad: np.ndarray, start: np.ndarray, where: np.ndarray, limit: int) -> np.ndarray:
    """Where the run of ASCII digits from ``start`` ends; runs longer than ``limit`` end at ``start + limit``."""
    import numpy as np

    position = start.copy()
    active = np.flatnonzero(where)
    for _ in range(limit):
        byte = pad[position[active]]
        active = active[(byte >= 48) & (byte <= 57)]
        if not active.size:
            break
        position[active] += 1
    return position


def _texts(names: list[bytes]) -> tuple[list[str], list[int]]:
    """Each name as text (UTF-8, bad bytes replaced), and the indices of those that are addresses (``0x...``).

    ``names``: at least one, none holding white space (as the scan cuts them).
    """
    try:
        texts = b"\n".join(names).decode("ascii").split("\n")  # all ASCII, nearly always: one decode
    except UnicodeDecodeError:
        texts = [name.decode("utf-8", "replace") for name in names]
    return texts, [i for i, name in enumerate(names) if name.startswith(b"0x") and _HEX_NAME.match(name)]


def _intern(data: bytes, start: np.ndarray, end: np.ndarray) -> tuple[np.ndarray, list[bytes]]:
    """An id per byte string ``data[start:end]`` (equal strings, equal ids) and each id's string."""
    import numpy as np

    strings = [data[a:b] for a, b in zip(start.tolist(), end.tolist())]
    index = dict.fromkeys(strings)
    for ident, text in enumerate(index):
        index[text] = ident
    return np.fromiter(map(index.__getitem__, strings), dtype=np.int64, count=len(strings)), list(index)


class _Namer:
    """Node text in an image -> frame, naming hex nodes of images whose ELF is given.

    Each distinct node of a given module is also evidence whether the
    callgraph fits it (:mod:`tracebridge.profile.consistency`): a name pmcstat
    read from the module's symbols must be one of the file's, a hex node
    must fall in a function (its role in the stack is not known here).
    """

    def __init__(self, images: Mapping[str, ModuleImage], evidence: Evidence | None = None):
        self.images = images
        self.evidence = evidence if evidence is not None else Evidence()
        self.spaces: dict[str, AddressSpace] = {}
        #: The module name of each image path seen (a callgraph names few images on many lines).
        self.modules: dict[bytes | None, str | None] = {None: None, b"": None}
        #: The frame id of each (hex node, module) seen.
        self.hex_ids: dict[tuple[str, str | None], int] = {}

    def intern(self, profile: Profile, texts: list[str], modules: list[str | None], hexes: list[int],
               unplain: list[int] | None = None) -> list[int]:
        """The frame id of each distinct (name, module) pair, new frames interned in the pairs' order.

        ``hexes`` are the indices of the names that are addresses (``0x...``);
        ``unplain``, when the scan found them, those of the names that are
        not plain C (only they may need the demangler).  Named nodes, nearly
        all of them, are interned together as columns
        (:meth:`Profile.add_symbols`, which also finds those seen before: a
        callgraph can name 250k distinct functions, and a frame object each
        costs more than the rest of the fold); a hex node is resolved the
        first time it is seen.
        """
        shown = None if unplain is None else shown_names(texts, unplain)
        if not hexes:
            self._observe(modules, texts)
            return profile.add_symbols(modules, texts, shown)
        hexed = set(hexes)
        named = [i for i in range(len(texts)) if i not in hexed]
        modules_named, texts_named = [modules[i] for i in named], [texts[i] for i in named]
        if shown is not None:
            shown = tuple([column[i] for i in named] for column in shown)
        self._observe(modules_named, texts_named)
        ids = [-1] * len(texts)
        done = 0  # named nodes before the first new hex node are interned first: ids follow the pairs' order
        for i in hexes:
            key = (texts[i], modules[i])
            if key not in self.hex_ids:
                end = bisect_left(named, i, done)
                added = profile.add_symbols(modules_named[done:end], texts_named[done:end], _rows(shown, done, end))
                for j, ident in zip(named[done:end], added):
                    ids[j] = ident
                done = end
                self.hex_ids[key] = profile.intern(self.hex_frame(int(texts[i], 16), modules[i]))
            ids[i] = self.hex_ids[key]
        for j, ident in zip(named[done:], profile.add_symbols(modules_named[done:], texts_named[done:],
                                                              _rows(shown, done, len(named)))):
            ids[j] = ident
        return ids

    def _observe(self, modules: list[str | None], texts: list[str]) -> None:
        """Named nodes of watched modules are evidence."""
        evidence = self.evidence
        if any(module is not None and evidence.watches(module) for module in set(modules)):
            for module, text in zip(modules, texts):
                if module is not None:
                    evidence.observe_named(module, text, 0)

    def module(self, image: bytes | None) -> str | None:
        module = self.modules.get(image, _NOT_SEEN)
        if module is _NOT_SEEN:
            module = self.modules[image] = image_name(image.decode("utf-8", "replace"))
        return module

    def hex_frame(self, value: int, module: str | None) -> Frame:
        space = self._space(module)
        if space is not None:
            self.evidence.observe(space, [value], None)
            frame = space.frames([value], offsets=False)[0]
            if frame.resolved:
                return frame
        image = self.images.get(module) if module else None
        if module is None or module == KERNEL or (image is not None and image.fixed_base is not None):
            return address_frame(module, value)  # the kernel's nodes are addresses
        return offset_frame(module, value)  # a module's are offsets from its base

    def _space(self, module: str | None) -> AddressSpace | None:
        """The module alone, based at 0 (pmcstat prints module nodes as offsets), or the kernel where linked."""
        image = self.images.get(module) if module else None
        if image is None:
            return None
        space = self.spaces.get(module)
        if space is None:
            from tracebridge.profile.resolve import AddressSpace

            space = self.spaces[module] = AddressSpace()
            space.add(image, None if image.fixed_base is not None else 0, module)
        return space


def _rows(columns: tuple[list, ...] | None, start: int, stop: int) -> tuple[list, ...] | None:
    """Rows ``start`` to ``stop`` of each column (None: no columns)."""
    return None if columns is None else tuple(column[start:stop] for column in columns)


@dataclass
class BlockLines:
    """What every scan of one block of callgraph text gives, for the tree lines in order (line indices from the
    block's first); the columns are int64 (:data:`Column`)."""

    #: Index in the block of each tree line (one the pattern matches).
    tree: Column
    depth: Column
    #: Digits in each ``[count]``; :attr:`counts` holds its value where that is at most 18.
    digits: Column
    counts: Column
    #: Index of each ``@ EVENT [N samples]`` line, and its event.
    headers: Column
    events: list[str]
    #: Indices of the other non-blank lines (skipped, as the script skips them).
    skipped: Column
    #: The block's newlines (its lines, but a last one without a newline), and the greatest depth and number of
    #: count digits of its tree lines (0 without any): what the folder counts and checks, found by the scan.
    newlines: int
    deepest: int
    widest: int


@dataclass
class GraphBlock(BlockLines):
    """One block's lines with the names and images it prints, interned within the block.

    The whole per-block scan: a function of the block's bytes alone, so a
    native scanner can stand in for :func:`scan_block`.
    """

    #: Per tree line, an index into :attr:`names`.
    name_ids: Column
    names: list[bytes]
    #: Per tree line, an index into :attr:`paths` of the `` @ path`` it prints, or -1.
    image_ids: Column
    paths: list[bytes]


@dataclass
class PairedBlock(BlockLines):
    """One block's lines with each line's (name, image) pair interned in a table kept across blocks.

    The native core's scan (src/native/name_table.h): the table carries the
    image from line to line and block to block, so Python sees each distinct
    pair of the file once, in the order :meth:`CallgraphFolder._frame_ids`
    interns a block's pairs.
    """

    #: Per tree line, the id of its (name, image) pair in the table.
    pairs: Column
    #: The pairs new to the table, in the order they are interned: their ids, names, image path ids (-1: none),
    #: the indices of those whose name is an address and of those whose name is not plain C (only those may
    #: need a demangler: :func:`~tracebridge.image.demangle.is_plain_c`).
    new_pairs: Column
    new_names: list[str]
    new_paths: Column
    hexes: list[int]
    unplain: list[int]
    #: Every image path in the table, by path id.
    paths: list[bytes]


def scan_block(data: bytes) -> GraphBlock:
    """The tree lines, headers and skipped lines of one block of whole lines.

    In one pass of the native core when it is built (src/native/pmcgraph_scan.h),
    else with numpy; the two give the same block.
    """
    core = native.core
    if core is None:
        return _scan_block_numpy(data)
    tree, depth, digits, counts, name_ids, names, image_ids, paths, headers, header_lines, skipped, found = \
        core.pmcgraph_scan(data)
    return GraphBlock(int64s(tree), int64s(depth), int64s(digits), int64s(counts), int64s(headers),
                      _events(header_lines), int64s(skipped), *found, int64s(name_ids), names, int64s(image_ids),
                      paths)


def scan_paired(table: object, data: bytes) -> PairedBlock:
    """One block of whole lines scanned natively, its pairs interned in ``table`` (``pmcgraph_names()``)."""
    tree, depth, digits, counts, pairs, (new_pairs, new_names, new_paths, hexes, unplain), paths, headers, \
        header_lines, skipped, found = native.core.pmcgraph_pairs(table, data)
    return PairedBlock(int64s(tree), int64s(depth), int64s(digits), int64s(counts), int64s(headers),
                       _events(header_lines), int64s(skipped), *found, int64s(pairs), int64s(new_pairs), new_names,
                       int64s(new_paths), int64s(hexes).tolist(), int64s(unplain).tolist(), paths)


def _scan_block_numpy(data: bytes | memoryview) -> GraphBlock:
    import numpy as np

    data = bytes(data)  # its names are slices of it, kept as bytes

    lines, pad = _scan(data)
    name_ids, names = _intern(data, lines.name_start, lines.name_end)
    marked = np.flatnonzero(lines.image_end > lines.image_start)
    image_ids = np.full(len(name_ids), -1, dtype=np.int64)
    paths: list[bytes] = []
    if len(marked):
        image_ids[marked], paths = _intern(data, lines.image_start[marked], lines.image_end[marked])
    digits = lines.count_end - lines.count_start
    counts = _counts(pad, lines.count_start, np.minimum(lines.count_end, lines.count_start + 18))
    events = _events([data[int(lines.starts[i]):int(lines.ends[i])] for i in lines.headers.tolist()])
    newlines = len(lines.ends) - (data[-1:] not in (b"", b"\n"))   # the last line may lack its newline
    deepest, widest = (int(lines.depth.max()), int(digits.max())) if len(lines.tree) else (0, 0)
    return GraphBlock(lines.tree, lines.depth, digits, counts, lines.headers, events, lines.skipped, newlines, deepest,
                      widest, name_ids, names, image_ids, paths)


class CallgraphFolder:
    """Folds a callgraph block by block, keeping between blocks only what the next block's stacks need.

    That is the most recent frame at every depth (stackcollapse-pmc.pl's
    state), the image of the last line, the last tree line (its stack is
    complete only if the line after it is no deeper), the events seen and
    the distinct frames (in the profile, named nodes kept as columns until
    an output needs frame objects): nothing that grows with repeated trees.
    """

    def __init__(self, path: str, images: Mapping[str, ModuleImage] | None = None, pmc: str | None = None,
                 evidence: Evidence | None = None, image: bytes | None = None):
        self.path, self.images, self.pmc = path, images or {}, pmc
        self.profile = Profile(Metadata(source=path))
        #: The most recent frame id at each depth (-1: none yet), int64 for the native fold to write in place.
        self.latest = array("q", [-1]) * (MAX_DEPTH + 1)
        #: The image of the last tree line (``image``: the one carried into the first block, when the
        #: blocks start inside a callgraph).
        self.image = image
        #: The events of the ``@ EVENT`` headers seen (each once), how many headers, and the last one's event.
        self.events: dict[str, None] = {}
        self.sections = 0
        self.event: str | None = None
        #: The last tree line so far: its depth, header section (None when no PMC is chosen), count, whether it is
        #: kept (its PMC) and stack (frame ids by depth, -1 none).
        self.pending: tuple[int, int | None, int, bool, Sequence[int]] | None = None
        #: The newlines of the last block fed (:meth:`newlines_of`).
        self._newlines: tuple[bytes | memoryview, int] | None = None
        self.tree_lines = 0
        self.skipped = 0
        self.first_skipped: int | None = None
        self._namer = _Namer(self.images, evidence)
        #: The modules of the frames of a later range folded by another process (:func:`fold_in_parts`).
        self.elsewhere: set[str | None] = set()
        #: With the native core: its table of the (name, image) pairs seen, and of their frame ids.
        self._table = None
        if native.core is not None:
            self._table = native.core.pmcgraph_names() if image is None else native.core.pmcgraph_names(image)
        self._numbers: list[int] = []

    def blocks(self, source: Source, start: int = 0, stop: int | None = None,
               line: int = 1) -> Iterator[tuple[int, memoryview]]:
        """The blocks of ``source`` (:meth:`Source.byte_blocks`) to :meth:`feed`, each a view of the one buffer the
        file is read into: the scans copy what they keep, so no block is copied out of it."""
        return source.byte_blocks(start, stop, line, newlines=self.newlines_of, reuse=True)

    def feed(self, first: int, data: bytes | memoryview) -> None:
        """Add the stacks that end in this block (``first``: the number of its first line)."""
        block = scan_block(data) if self._table is None else scan_paired(self._table, data)
        self._newlines = (data, block.newlines)
        self.add(first, block)

    def newlines_of(self, data: bytes | memoryview) -> int:
        """How many newlines ``data``, the block fed last, holds, as its scan counted them
        (:meth:`Source.byte_blocks`' ``newlines``, which asks once the block is fed)."""
        if self._newlines is None or self._newlines[0] is not data:
            raise ValueError("newlines_of: not the block fed last")
        return self._newlines[1]

    def add(self, first: int, block: GraphBlock | PairedBlock) -> None:
        if len(block.skipped):
            self.skipped += len(block.skipped)
            if self.first_skipped is None:
                self.first_skipped = first + int(block.skipped[0])
        section = keep = None   # no PMC chosen: every line is kept, whatever its section
        if self.pmc is not None:
            import numpy as np

            under = np.searchsorted(block.headers, block.tree)  # headers of this block before each tree line
            section = self.sections - 1 + under
            chosen = np.array([event == self.pmc for event in [self.event, *block.events]])
            keep = chosen[under]
        self.sections += len(block.events)
        self.events.update(dict.fromkeys(block.events))
        self.event = block.events[-1] if block.events else self.event
        depth = block.depth
        if not len(depth):
            return
        self.tree_lines += len(depth)
        self._check(first, block)
        ids = self._frame_ids(block) if isinstance(block, GraphBlock) else self._paired_ids(block)
        if self.pending is not None:  # the last line before this block: a leaf if this block's first is no deeper
            if depth[0] <= self.pending[0] or (section is not None and section[0] != self.pending[1]):
                self._add_pending()
            self.pending = None
        # A line ends a stack when the next tree line is no deeper (and, when one PMC is
        # chosen, when the next line belongs to another PMC's callgraph); the block's last
        # line waits for the next block.
        if native.core is not None and section is None:
            last_row = self._fold_natively(ids, depth, block.counts, None)  # it finds the leaves itself
        else:
            import numpy as np

            depth = np.asarray(depth)
            leaf = np.zeros(len(depth), dtype=bool)
            leaf[:-1] = depth[1:] <= depth[:-1]
            if section is not None:
                leaf[:-1] |= section[1:] != section[:-1]
            leaf[-1] = True
            if keep is None:
                keep = np.ones(len(depth), dtype=bool)
            if native.core is not None:
                last_row = self._fold_natively(ids, depth, block.counts, (leaf & keep).view(np.uint8))
            else:
                last_row = self._fold(ids, depth, block.counts, leaf, keep)
        self.pending = (int(depth[-1]), None if section is None else int(section[-1]), int(block.counts[-1]),
                        keep is None or bool(keep[-1]), last_row)

    def _fold(self, ids: np.ndarray, depth: np.ndarray, counts: np.ndarray, leaf: np.ndarray,
              keep: np.ndarray) -> list[int]:
        """Add the stacks of the leaves but the last, move :attr:`latest` on; the last leaf's stack."""
        import numpy as np

        leaves = np.flatnonzero(leaf)
        rows = self._rows(ids, depth, leaves)
        last = len(leaves) - 1
        self._add_rows(rows[:last], depth[leaves[:last]], counts[leaves[:last]], keep[leaves[:last]])
        positions = np.arange(len(depth))
        for level in np.unique(depth).tolist():
            self.latest[level] = int(ids[positions[depth == level][-1]])
        return rows[last].tolist()

    def _fold_natively(self, ids: Column, depth: Column, counts: Column, emit: np.ndarray | None) -> Sequence[int]:
        """:meth:`_fold` in one native pass over the lines (the frame for a depth never seen interned as late).

        ``emit``: one byte per line, whether it ends a kept stack; None when every line is kept (the native fold
        then finds the leaves itself, without numpy)."""
        if emit is not None:
            emit[-1] = False
        unknown = self.profile.frame_id(_MISSING_FRAME)
        fresh = unknown is None
        numbers = self._numbers  # each frame id as one int object, for every stack that holds it
        numbers.extend(range(len(numbers), self.profile.frame_count()))
        if native.core.pmcgraph_fold(ids, depth, counts, emit, self.latest, self.profile.stacks,
                                     self.profile.frame_count() if fresh else unknown, numbers) and fresh:
            self.profile.intern(_MISSING_FRAME)
        return self.latest[:int(depth[-1]) + 1]

    def _check(self, first: int, block: BlockLines) -> None:
        if block.deepest > MAX_DEPTH:
            line = first + _first_where(block.tree, block.depth, MAX_DEPTH)
            raise InputError(self.path, f"a callgraph line indented {block.deepest} deep: no pmcstat callchain is",
                             line)
        if block.widest > 18:
            raise InputError(self.path, "a callgraph count too large to be a sample count",
                             first + _first_where(block.tree, block.digits, 18))

    def _frame_ids(self, block: GraphBlock) -> np.ndarray:
        """A profile frame id per tree line: each distinct (name, image) pair becomes a frame once."""
        import numpy as np

        # The image is the last ` @ path` printed on this line or an earlier one (in an earlier block: carried).
        count = len(block.image_ids)
        last_mark = np.maximum.accumulate(np.where(block.image_ids >= 0, np.arange(count), -1))
        # The carried image may be printed again in this block: then it has one id, and the pairs stay distinct.
        carried = block.paths.index(self.image) if self.image in block.paths else len(block.paths)
        image_ids = np.where(last_mark >= 0, block.image_ids[np.maximum(last_mark, 0)], carried)
        paths = [*block.paths, self.image]
        width = len(paths)
        keys, inverse = _distinct(block.name_ids * width + image_ids, len(block.names) * width)
        name_of, path_of = np.divmod(keys, width)
        texts, hexes = _texts(list(map(block.names.__getitem__, name_of.tolist())))
        known = [self._namer.module(path) for path in paths]
        ids = self._namer.intern(self.profile, texts, list(map(known.__getitem__, path_of.tolist())), hexes)
        self.image = paths[int(image_ids[-1])]
        return np.array(ids, dtype=np.int64)[inverse]

    def _paired_ids(self, block: PairedBlock) -> memoryview:
        """:meth:`_frame_ids` of a block whose pairs the native table found: only the new pairs are interned."""
        known = [self._namer.module(path) for path in block.paths] + [None]   # path id -1: no image
        ids = self._namer.intern(self.profile, block.new_names, list(map(known.__getitem__, block.new_paths.tolist())),
                                 block.hexes, block.unplain)
        return int64s(native.core.pmcgraph_frame_ids(self._table, block.new_pairs, array("q", ids), block.pairs))

    def _rows(self, ids: np.ndarray, depth: np.ndarray, leaves: np.ndarray) -> np.ndarray:
        """Each leaf's stack by depth: at every depth the most recent tree line of that depth (-1: none yet)."""
        import numpy as np

        deepest = int(depth[leaves].max())
        rows = np.empty((len(leaves), deepest + 1), dtype=np.int64)
        rows[:] = self.latest[:deepest + 1]
        positions = np.arange(len(depth))
        for level in np.unique(depth[depth <= deepest]).tolist():
            latest = np.maximum.accumulate(np.where(depth == level, positions, -1))[leaves]
            rows[:, level] = np.where(latest >= 0, ids[np.maximum(latest, 0)], rows[:, level])
        return rows

    def _add_rows(self, rows: np.ndarray, depth: np.ndarray, counts: np.ndarray, keep: np.ndarray) -> None:
        import numpy as np

        rows, depth, counts = rows[keep], depth[keep], counts[keep]
        if not len(rows):
            return
        missing = (rows == -1) & (np.arange(rows.shape[1]) <= depth[:, None])  # in the stacks, not past their leaf
        if missing.any():
            rows = np.where(missing, self.profile.intern(_MISSING_FRAME), rows)
        add = self.profile.add_ids
        for row, level, count in zip(rows.tolist(), depth.tolist(), counts.tolist()):
            add(tuple(row[level::-1]), count)

    def _add_pending(self) -> None:
        """Add the stack of the last tree line (as :meth:`_add_rows` adds one), when it is kept."""
        depth, _, count, keep, row = self.pending
        if not keep:
            return
        stack = row[depth::-1]
        if -1 in stack:  # a depth no line set
            unknown = self.profile.intern(_MISSING_FRAME)
            stack = [unknown if ident == -1 else ident for ident in stack]
        self.profile.add_ids(tuple(stack), count)

    def finish(self) -> Profile:
        """The profile, once the last block is in; says on standard error what was skipped or misnamed."""
        if not self.tree_lines:
            raise InputError(self.path, "holds no pmcstat -G callgraph lines (`NN.NN%  [count]  function`)", 1)
        if self.pmc is not None and self.pmc not in self.events:
            raise InputError(self.path, f"has no callgraph for PMC {self.pmc!r} (it has: "
                             f"{', '.join(self.events) or 'none'})")
        self.close()
        profile = self.profile
        profile.metadata.event = self.pmc or ", ".join(self.events) or "samples"
        if self.skipped:
            warn(f"{self.path}:{self.first_skipped}: skipped {self.skipped} line(s) that are not callgraph "
                 "entries (as stackcollapse-pmc.pl does)")
        given = self.images
        modules = sorted(m for m in profile.modules() | self.elsewhere if m and m.endswith(".ko"))
        misnamed = [m for m in modules if m in given and not _pmcstat_names_right(given[m])]
        unknown = [m for m in modules if m not in given]
        which = ([f"one section per function: {', '.join(misnamed)}"] if misnamed else []) + \
            ([f"no ELF given to check: {', '.join(unknown)}"] if unknown else [])
        if which:
            warn(f"{self.path}: pmcstat -G names functions of modules with one section per function (most Rust "
                 f"modules) wrongly, as it ignores section offsets ({'; '.join(which)}); only its hex nodes are "
                 "re-resolved "
                 "here. For exact names convert with `pmcstat -R LOG -o out.txt` and read that instead")
        return profile

    def close(self) -> None:
        """Add the stack of the last tree line: the blocks end after it."""
        if self.pending is not None:
            self._add_pending()
            self.pending = None

    def range_read(self) -> RangeRead:
        """What these blocks held besides their stacks, for the folder of the blocks before them."""
        return RangeRead(self.tree_lines, self.skipped, self.first_skipped, list(self.events),
                         self.profile.modules())

    def absorb(self, later: RangeRead, first_line: int) -> None:
        """Count what the blocks after these held (read by another folder from line ``first_line`` on)."""
        self.tree_lines += later.tree_lines
        if later.skipped and self.first_skipped is None:
            self.first_skipped = first_line - 1 + later.first_skipped
        self.skipped += later.skipped
        self.events.update(dict.fromkeys(later.events))
        self.elsewhere |= later.modules


@dataclass
class RangeRead:
    """What a folder read in a range of a callgraph besides its stacks (line numbers from the range's first)."""

    tree_lines: int
    skipped: int
    first_skipped: int | None
    events: list[str]
    modules: set[str | None]


def fold_callgraph(source: Source, images: Mapping[str, ModuleImage] | None = None, *,
                   pmc: str | None = None, evidence: Evidence | None = None) -> Profile:
    """The stacks of a ``pmcstat -G`` callgraph, counted as stackcollapse-pmc.pl counts them, read block by block.

    ``evidence`` receives whether the callgraph fits the modules it watches.
    """
    folder = CallgraphFolder(source.path, images, pmc, evidence)
    with gcpause.paused():  # a frame and a stack tuple per distinct name and stack, none in a cycle: see gcpause
        for first, data in folder.blocks(source):
            folder.feed(first, data)
    return folder.finish()


#: A callgraph smaller than this is folded in one process (:func:`fold_in_parts`): the second process, and
#: sending its folded text back, cost more than they save below it.
SPLIT_BYTES = 8 << 20
#: Bytes after that point (:data:`FIRST_SHARE`) searched for a line that starts a tree.
CUT_WINDOW = 1 << 20
#: Where the cut is looked for, as a share of the file: the middle, since the second process's text is read
#: where it left it.  While it also sent its text back (pickled) its range was made a little shorter; the CPU
#: times of the two ranges measured on the way (53 MB callgraph cut in the middle: 0.27-0.30 s
#: of CPU time for the first range, 0.30-0.33 s for the second, at load 6; at 0.53, with the second no
#: longer freeing its profile, 0.31-0.34 s and 0.30-0.32 s, at load 10; at 0.52, with the heap kept for
#: reuse, 0.23-0.27 s and 0.21-0.25 s to each range's text, at 0.505 0.23-0.25 s and 0.22-0.24 s, at load 2; with
#: the second's text no longer pickled, at 0.505 0.22-0.24 s and 0.21-0.23 s, at 0.495 0.21-0.22 s and 0.22 s, load 2).
FIRST_SHARE = 0.5


def worth_cutting(path: str) -> bool:
    """Is this callgraph file big enough (:data:`SPLIT_BYTES`) to fold in two parts, where two processes can?"""
    return os.path.getsize(path) >= SPLIT_BYTES and parallel.can_split()


def fold_in_parts(source: Source, write: Callable[[Profile], bytes],
                  cut: int | None = None) -> Iterator[bytes | memoryview] | None:
    """A big callgraph's stacks written by ``write`` (its folded text, say) on two cores: each half's, or the whole's.

    Cut where a tree starts (a tree line of depth 0) near :data:`FIRST_SHARE` of the file, the
    callgraph is two ranges: this process folds the first and ``write`` s its
    profile; a second process folds the second, starting with the image
    the first carries into it, and sends back what ``write`` made of it.
    A stack in the second range depends on the first only through that
    image and the frames at depths the range never set; a range that used
    such a depth (a malformed line skipped, which only hand-cut files have)
    or failed (its errors must name their line in the file) is folded
    again after the first, as one pass folds it, and the whole's text is
    the answer.  Every other thing the ranges read (lines, skipped lines,
    modules) is added up before the first range's folder says it on
    standard error.  None when the callgraph is small (below
    :data:`SPLIT_BYTES`), no second process can run (:func:`worth_cutting`), or no tree starts near that
    point (``cut``: where to cut, for tests).

    The texts come one at a time: the second range's is a read-only view of
    what the second process left, valid until the next is asked for (it is
    not copied out of the memory the two processes share); closing the
    iterator, or reading it to its end, lets that process go.
    """
    if cut is None and worth_cutting(source.path):
        cut = _tree_start(source, int(os.path.getsize(source.path) * FIRST_SHARE))
    if cut is None:
        return None
    return _folded_parts(source, write, cut)


def _folded_parts(source: Source, write: Callable[[Profile], bytes], cut: int) -> Iterator[bytes | memoryview]:
    """:func:`fold_in_parts`' texts, once it has found where to cut."""
    import pickle

    folder = CallgraphFolder(source.path)
    quickexit.keep(folder.profile)  # its frames and stacks, not to free one by one

    def fold_first() -> tuple[int, bytes]:
        """Fold and write the first range here, its errors raised as one pass raises them; the number of the
        line after it, and the text."""
        for line, data in folder.blocks(source, stop=cut):  # the cut is a line start
            folder.feed(line, data)  # past the file's first byte: there is a block, the last ending where the cut is
        folder.close()  # its last line ends a stack: the next tree line has depth 0
        return line + folder.newlines_of(data), write(folder.profile)

    def fold(starts: list[int]) -> Iterator:
        """The first range's next line and text; for the second, what it read (pickled: bytes, which cross from
        the other process as they are) and its text, or None pickled when it must be folded again."""
        for start in starts:
            if start == 0:
                yield fold_first()
                continue
            later = _fold_later(source, cut, write)
            yield pickle.dumps(None if later is None else later[1])
            if later is not None:
                yield later[0]

    with gcpause.paused():
        parts = parallel.split_iter(fold, [0, cut], min_items=2)
        try:
            next_line, text = next(parts)
            later = pickle.loads(next(parts))
            if later is None:
                parts.close()
                for first, data in folder.blocks(source, start=cut, line=next_line):
                    folder.feed(first, data)
                yield write(folder.finish())
                return
            folder.absorb(later, next_line)
            folder.finish()
            yield text
            yield next(parts)
        finally:
            parts.close()  # the second process is waited for


def _fold_later(source: Source, cut: int, write: Callable[[Profile], bytes]) -> tuple[bytes, RangeRead] | None:
    """The range from ``cut`` on, folded alone; None when that cannot be its part of the whole (see fold_in_parts)."""
    try:
        folder = CallgraphFolder(source.path, image=_image_before(source, cut))
        quickexit.keep(folder)  # the second process ends right after: its frames and stacks are not freed one by one
        for first, data in folder.blocks(source, start=cut):
            folder.feed(first, data)
        folder.close()
        if folder.profile.frame_id(_MISSING_FRAME) is not None:  # a depth the first range may have set
            return None
        return write(folder.profile), folder.range_read()
    except Exception:  # noqa: BLE001 - folded again after the first range, where it raises as one pass would
        return None


def _tree_start(source: Source, position: int) -> int | None:
    """Where the first line from ``position`` on that is a tree line of depth 0 starts (None: none near)."""
    base = max(position - 1, 0)   # the byte before position says whether a line starts there
    window = source.read_at(base, CUT_WINDOW)
    at = window.find(b"\n") + 1 if position else 0
    if position and not at:
        return None
    while end := window.find(b"\n", at) + 1:
        if window[at] in b"0123456789.":   # a depth-0 tree line starts with its percentage
            block = scan_block(window[at:end])
            if len(block.tree) and not block.depth[0]:
                return base + at
        at = end
    return None


def _image_before(source: Source, cut: int) -> bytes | None:
    """The image carried past ``cut``: the last one a tree line before it printed (None: none did)."""
    size = 1 << 16
    while True:
        start = max(cut - size, 0)
        data = source.read_at(start, cut - start)
        if start:
            data = data[data.find(b"\n") + 1:] if b"\n" in data else b""   # from the first whole line
        block = scan_block(data)
        marked = [ident for ident in block.image_ids if ident >= 0]
        if marked:
            return block.paths[marked[-1]]
        if not start:
            return None
        size *= 4


def _distinct(keys: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """``np.unique(keys, return_inverse=True)`` for keys in ``[0, size)``: by a table when it is small, not a sort."""
    import numpy as np

    if size > 4 * len(keys) + 1024:
        distinct, inverse = np.unique(keys, return_inverse=True)
        return distinct, inverse.ravel()
    seen = np.zeros(size, dtype=bool)
    seen[keys] = True
    distinct = np.flatnonzero(seen)
    position = np.zeros(size, dtype=np.int64)
    position[distinct] = np.arange(len(distinct))
    return distinct, position[keys]


def _first_where(tree: Column, values: Column, limit: int) -> int:
    """The index in the block of the first tree line whose value is over ``limit`` (there is one)."""
    return int(tree[next(i for i, value in enumerate(values) if value > limit)])


def _pmcstat_names_right(image: ModuleImage) -> bool:
    """Does pmcstat's raw-``st_value`` lookup (freebsd-facts §6) find this module's functions where they are?

    Only when every function's symbol value is its offset from the module
    base: an ET_REL whose functions all lie in one section loaded at offset 0
    (a merged ``.text`` placed first), or an ET_DYN linked at 0.
    """
    return all(f.offset == f.value for f in image.functions)


def _events(lines: list[bytes]) -> list[str]:
    """The event of each header line, read once per distinct line (a callgraph repeats its few headers)."""
    events = {line: _event(line) for line in set(lines)}
    return list(map(events.__getitem__, lines))


def _event(text: bytes) -> str:
    match = _HEADER.match(text)
    return (match.group(1) if match else text[2:].strip()).decode("utf-8", "replace")


def _counts(pad: np.ndarray, start: np.ndarray, end: np.ndarray) -> np.ndarray:
    """The number written in each ``pad[start:end]`` (ASCII digits)."""
    import numpy as np

    value = np.zeros(len(start), dtype=np.int64)
    active = np.flatnonzero(end > start)
    position = start.copy()
    while active.size:
        value[active] = value[active] * 10 + (pad[position[active]].astype(np.int64) - 48)
        position[active] += 1
        active = active[position[active] < end[active]]
    return value


def read_callgraph(path: str | os.PathLike[str], images: Mapping[str, ModuleImage] | None = None, *,
                   pmc: str | None = None, evidence: Evidence | None = None) -> Profile:
    """Read a ``pmcstat -R log -G`` callgraph file."""
    from tracebridge.readers.source import Source

    with open_input(os.fspath(path)):  # the error a missing or unreadable pmcstat output gets
        pass
    source = Source(path)
    if source.blank:
        raise InputError(source.path, "is empty: no callgraph")
    refuse_binary(source.path, source.head_bytes[:HEAD])
    if sniff_log(source.head_bytes[:4096].decode("utf-8", "replace").split("\n")):
        raise InputError(source.path, "this is a pmcstat -o record log, not -G callgraph output", 1)
    return fold_callgraph(source, images, pmc=pmc, evidence=evidence)


def sniff_callgraph_source(source: Source) -> bool:
    return sniff_callgraph(source.head.split("\n"))


def read_callgraph_source(source: Source, options: LoadOptions) -> Loaded:
    images, _ = options_images(options)  # options.images watch themselves for evidence
    return Loaded(fold_callgraph(source, images, evidence=options.evidence))
