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
written ``[unknown]`` here.  This module computes exactly that, but for the
whole file at once with numpy (line boundaries, fields and the most recent
line per depth), because a callgraph can have millions of lines; only the
distinct names become Python objects.

pmcstat prints a module's unnamed node as its offset from the module base
(a module's ``pi_vaddr`` is 0) and a kernel node as its address, so with
the module's ELF at hand those nodes are named here from the layout.  The
names it did print for a per-function-section module are its own wrong
guesses (freebsd-facts §6): that is said once on standard error.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from tracebridge.support.errors import InputError, warn
from tracebridge.readers.options import Loaded
from tracebridge.readers.pmcstat import (HEAD, image_name, open_input, options_images, refuse_binary, sniff_callgraph,
                                         sniff_log)
from tracebridge.profile.model import UNKNOWN, Frame, Metadata, Profile, symbol_frame
from tracebridge.profile.resolve import AddressSpace

if TYPE_CHECKING:
    from tracebridge.readers.options import LoadOptions
    from tracebridge.readers.source import Source
    from tracebridge.image.elf import ModuleImage

#: Stands for a caller depth stackcollapse-pmc.pl would print empty (its line was malformed).
MISSING = "[unknown]"
#: Deeper than any callchain hwpmc records (``kern.hwpmc.callchaindepth`` is at most 512).
MAX_DEPTH = 1024
#: Longest percentage or count read: pmcstat prints at most 7 and 10 characters; a
#: longer run of digits is taken as not matching (stackcollapse-pmc.pl has no limit).
MAX_FIELD = 32

_HEX_NAME = re.compile(rb"^0x[0-9a-fA-F]{1,16}$")  # an address fits 64 bits
_HEADER = re.compile(rb"^@ (.*) \[[0-9]+ samples\]")
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
    position = start.copy()
    active = np.flatnonzero(where)
    for _ in range(limit):
        byte = pad[position[active]]
        active = active[(byte >= 48) & (byte <= 57)]
        if not active.size:
            break
        position[active] += 1
    return position


def _intern(data: bytes, start: np.ndarray, end: np.ndarray) -> tuple[np.ndarray, list[bytes]]:
    """An id per byte string ``data[start:end]`` (equal strings, equal ids) and each id's string."""
    strings = [data[a:b] for a, b in zip(start.tolist(), end.tolist())]
    index = dict.fromkeys(strings)
    for ident, text in enumerate(index):
        index[text] = ident
    return np.fromiter(map(index.__getitem__, strings), dtype=np.int64, count=len(strings)), list(index)


class _Namer:
    """Node text in an image -> frame, naming hex nodes of images whose ELF is given."""

    def __init__(self, images: Mapping[str, ModuleImage]):
        self.images = images
        self.spaces: dict[str, AddressSpace] = {}

    def frame(self, name: bytes, image: bytes | None) -> Frame:
        module = image_name(image.decode("utf-8", "replace")) if image else None
        text = name.decode("utf-8", "replace")
        if not _HEX_NAME.match(name):
            return symbol_frame(module, text)
        space = self._space(module)
        if space is None:
            return Frame(module, text, text, None, UNKNOWN, None)
        return space.frames([int(name, 16)], offsets=False)[0]

    def _space(self, module: str | None) -> AddressSpace | None:
        """The module alone, based at 0 (pmcstat prints module nodes as offsets), or the kernel where linked."""
        image = self.images.get(module) if module else None
        if image is None:
            return None
        space = self.spaces.get(module)
        if space is None:
            space = self.spaces[module] = AddressSpace()
            space.add(image, None if image.fixed_base is not None else 0, module)
        return space


def fold_callgraph(data: bytes, path: str, images: Mapping[str, ModuleImage] | None = None, *,
                   pmc: str | None = None) -> Profile:
    """The stacks of a ``pmcstat -G`` callgraph, counted as stackcollapse-pmc.pl counts them."""
    lines, pad = _scan(data)
    if not len(lines.tree):
        raise InputError(path, "holds no pmcstat -G callgraph lines (`NN.NN%  [count]  function`)", 1)
    depth = lines.depth
    if int(depth.max()) > MAX_DEPTH:
        line = int(lines.tree[np.argmax(depth > MAX_DEPTH)]) + 1
        raise InputError(path, f"a callgraph line indented {int(depth.max())} deep: no pmcstat callchain is", line)
    digits = lines.count_end - lines.count_start
    if int(digits.max()) > 18:
        raise InputError(path, "a callgraph count too large to be a sample count",
                         int(lines.tree[np.argmax(digits > 18)]) + 1)
    events = [_event(data, lines, i) for i in lines.headers.tolist()]
    section = np.searchsorted(lines.headers, lines.tree) - 1   # which `@ EVENT` each tree line is under
    if pmc is not None and pmc not in events:
        raise InputError(path, f"has no callgraph for PMC {pmc!r} (it has: {', '.join(events) or 'none'})")

    profile = Profile(Metadata(source=path, event=pmc or ", ".join(dict.fromkeys(events)) or "samples"))
    ids = _frame_ids(data, pad, lines, profile, _Namer(images or {}))
    # A line ends a stack when the next tree line is no deeper (and, when one PMC is
    # chosen, when the next line belongs to another PMC's callgraph).
    leaf = np.ones(len(depth), dtype=bool)
    leaf[:-1] = depth[1:] <= depth[:-1]
    if pmc is not None:
        leaf[:-1] |= section[1:] != section[:-1]
        keep = np.array([event == pmc for event in events] + [False], dtype=bool)
        leaf &= keep[section]
    leaves = np.flatnonzero(leaf)
    _add_stacks(profile, ids, depth, leaves, _counts(pad, lines, leaves))

    if len(lines.skipped):
        warn(f"{path}:{int(lines.skipped[0]) + 1}: skipped {len(lines.skipped)} line(s) that are not callgraph "
             "entries (as stackcollapse-pmc.pl does)")
    given = images or {}
    modules = sorted({f.module for f in profile.frames if f.module and f.module.endswith(".ko")})
    misnamed = [m for m in modules if m in given and not _pmcstat_names_right(given[m])]
    unknown = [m for m in modules if m not in given]
    which = ([f"one section per function: {', '.join(misnamed)}"] if misnamed else []) + \
        ([f"no ELF given to check: {', '.join(unknown)}"] if unknown else [])
    if which:
        warn(f"{path}: pmcstat -G names functions of modules with one section per function (most Rust "
             f"modules) wrongly, as it ignores section offsets ({'; '.join(which)}); only its hex nodes are "
             "re-resolved "
             "here. For exact names convert with `pmcstat -R LOG -o out.txt` and read that instead")
    return profile


def _pmcstat_names_right(image: ModuleImage) -> bool:
    """Does pmcstat's raw-``st_value`` lookup (freebsd-facts §6) find this module's functions where they are?

    Only when every function's symbol value is its offset from the module
    base: an ET_REL whose functions all lie in one section loaded at offset 0
    (a merged ``.text`` placed first), or an ET_DYN linked at 0.
    """
    return all(f.offset == f.value for f in image.functions)


def _event(data: bytes, lines: _Lines, index: int) -> str:
    text = data[int(lines.starts[index]):int(lines.ends[index])]
    match = _HEADER.match(text)
    return (match.group(1) if match else text[2:].strip()).decode("utf-8", "replace")


def _frame_ids(data: bytes, pad: np.ndarray, lines: _Lines, profile: Profile, namer: _Namer) -> np.ndarray:
    """A profile frame id per tree line: each distinct (name, image) pair becomes a frame once."""
    name_ids, names = _intern(data, lines.name_start, lines.name_end)
    # The image is the last ` @ path` printed on this line or an earlier one.
    marked = np.flatnonzero(lines.image_end > lines.image_start)
    image_of_line = np.full(len(name_ids), -1, dtype=np.int64)
    paths: list[bytes] = []
    if len(marked):
        image_of_line[marked], paths = _intern(data, lines.image_start[marked], lines.image_end[marked])
    last_mark = np.maximum.accumulate(np.where(image_of_line >= 0, np.arange(len(name_ids)), -1))
    image_ids = np.where(last_mark >= 0, image_of_line[np.maximum(last_mark, 0)], -1)
    width = len(paths) + 1
    keys, inverse = np.unique(name_ids * width + image_ids + 1, return_inverse=True)
    frame_ids = np.array([profile.intern(namer.frame(names[key // width], paths[key % width - 1] if key % width
                                                     else None)) for key in keys.tolist()], dtype=np.int64)
    return frame_ids[inverse.ravel()]


def _counts(pad: np.ndarray, lines: _Lines, leaves: np.ndarray) -> np.ndarray:
    """The ``[count]`` of each leaf line (the only counts a stack uses)."""
    start, end = lines.count_start[leaves], lines.count_end[leaves]
    value = np.zeros(len(leaves), dtype=np.int64)
    active = np.arange(len(leaves))
    position = start.copy()
    while active.size:
        value[active] = value[active] * 10 + (pad[position[active]].astype(np.int64) - 48)
        position[active] += 1
        active = active[position[active] < end[active]]
    return value


def _add_stacks(profile: Profile, ids: np.ndarray, depth: np.ndarray, leaves: np.ndarray,
                counts: np.ndarray) -> None:
    """Each leaf's stack: at every depth the most recent tree line of that depth, root first."""
    deepest = int(depth[leaves].max()) if len(leaves) else -1
    missing = -1
    columns = np.full((len(leaves), deepest + 1), missing, dtype=np.int64)
    positions = np.arange(len(depth))
    for level in np.unique(depth[depth <= deepest]).tolist():
        latest = np.maximum.accumulate(np.where(depth == level, positions, -1))[leaves]
        columns[:, level] = np.where(latest >= 0, ids[np.maximum(latest, 0)], missing)
    if (columns == missing).any():
        unknown = profile.intern(Frame(None, MISSING, MISSING, None, UNKNOWN, None))
        columns[columns == missing] = unknown
    add = profile.add_ids
    for row, level, count in zip(columns.tolist(), depth[leaves].tolist(), counts.tolist()):
        add(tuple(row[level::-1]), count)


def read_callgraph(path: str | os.PathLike[str], images: Mapping[str, ModuleImage] | None = None, *,
                   pmc: str | None = None) -> Profile:
    """Read a ``pmcstat -R log -G`` callgraph file."""
    path = os.fspath(path)
    with open_input(path) as handle:
        data = handle.read()
    if not data.strip():
        raise InputError(path, "is empty: no callgraph")
    refuse_binary(path, data[:HEAD])
    if sniff_log(data[:4096].decode("utf-8", "replace").split("\n")):
        raise InputError(path, "this is a pmcstat -o record log, not -G callgraph output", 1)
    return fold_callgraph(data, path, images, pmc=pmc)


def sniff_callgraph_source(source: Source) -> bool:
    return sniff_callgraph(source.head.split("\n"))


def read_callgraph_source(source: Source, options: LoadOptions) -> Loaded:
    images, _ = options_images(options)
    return Loaded(fold_callgraph(source.data, source.path, images))
