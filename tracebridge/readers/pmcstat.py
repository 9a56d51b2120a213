"""pmcstat's text outputs: ``pmcstat -R log -o`` record logs, and recognising ``-G`` callgraphs.

Record logs (``usr.sbin/pmcstat/pmcstat_log.c``, ``pmcstat_print_log``)
print one record per line: the tag left-justified in 9 columns
(``"%-9s"``), a space, the fields.  A ``callchain PID 0xPMCID CPU NPC u|s``
record is followed by NPC lines ``...       0xPC``, the sampled PC first and
then the return addresses; ``map-in PID 0xSTART "path"`` places an image
(PID -1: the kernel or a kernel module at ``lf->address``, named by its
basename on old kernels and by its full path on new ones); ``map-out PID
0xSTART 0xEND`` removes one; ``allocate 0xPMCID "EVENT" 0xFLAGS`` names a
PMC.  Every other record (``initlog``, ``exec``, ``fork``, ``thr-create``,
``closelog``, IBS records, ``unknown event (type N).``) is skipped, and so
is an optional leading timestamp field.  tracebridge resolves the kernel
PCs itself, from the module layouts (pmcstat cannot: freebsd-facts §6), and
streams the log in chunks, so a log of many gigabytes needs little memory.

A raw hwpmc log (``pmcstat -O``) is read through :mod:`tracebridge.readers.pmclog`,
which turns its records into these same lines.  Callgraphs are folded by
:mod:`tracebridge.readers.pmcgraph`; this module tells the kinds apart and plugs
the text ones into :mod:`tracebridge.readers.registry`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from itertools import compress
from typing import IO, TYPE_CHECKING

from tracebridge.readers.callchain_scan import CHAIN_FIELDS, FULL, MAX_CALLCHAIN, OTHER
from tracebridge.readers.callchain_scan import scanner as callchain_scanner
from tracebridge.support.errors import InputError, excerpt, reading
from tracebridge.support.printable import printable
from tracebridge.profile.consistency import Evidence
from tracebridge.profile.model import Metadata, Profile, SampleLabels

if TYPE_CHECKING:
    import numpy as np

    from tracebridge.image.elf import ModuleImage
    from tracebridge.profile.resolve import AddressSpace, ResolutionCounts
    from tracebridge.readers.options import Loaded, LoadOptions
    from tracebridge.readers.source import Source

#: Record tags ``pmcstat -R -o`` prints (pmcstat_log.c): seeing one is enough to recognise a log.
LOG_TAGS = frozenset({
    "initlog", "closelog", "drop", "callchain", "sample", "map-in", "map-out", "allocate", "allocatedyn",
    "attach", "detach", "cswval", "create", "exec", "exitval", "fork", "userdata", "exit", "thr-create",
    "thr-exit",
})
#: PCs resolved per batch: bounds memory and keeps numpy's per-call cost negligible.
CHUNK = 1 << 20
#: Bytes of a log read at once.
BLOCK = 1 << 20
#: Bytes looked at to recognise a file.
HEAD = 64 * 1024
#: A kernel PID in map-in/map-out records.
KERNEL_PID = -1

_TAG = re.compile(rb"^[A-Za-z][A-Za-z0-9_.-]*$")
#: A PC line exactly as pmcstat prints a 64-bit kernel address: ``PMCSTAT_PRINT_ENTRY("...", "%p")``.
_PC_LINE = b"...       0x0123456789abcdef\n"
_MAP_IN = re.compile(rb'^\s*(?:\d+\s+)?map-in\s+(-?\d{1,10})\s+(0x[0-9a-fA-F]{1,16})\s+"(.*)"\s*$')
_QUOTED = re.compile(rb'"(.*)"')
#: A PMC id as ``--pmc`` may give it: ``f"{id:#x}"`` or ``f"{id:x}"``, lower-cased.
_PMC_ID = re.compile(r"(-?)(0x)?(0|[1-9a-f][0-9a-f]*)")
_CALLGRAPH_HEADER = re.compile(r"^@ .* \[\d+ samples\]\s*$")
_CALLGRAPH_LINE = re.compile(r"^ *[0-9.]+%  \[[0-9]+\]\s*\S")
_GRAPH_LINE = re.compile(_CALLGRAPH_LINE.pattern.encode())


def image_name(path: str) -> str:
    """How frames name an image: its file name (``if_rem.ko``; the kernel is ``kernel``), printable."""
    return printable(os.path.basename(path.rstrip("/")) or path)


# -- sniffing -------------------------------------------------------------


def _first_lines(lines: Iterable[str], limit: int = 20) -> list[str]:
    out = []
    for line in lines:
        if line.strip():
            out.append(line)
            if len(out) == limit:
                break
    return out


def sniff_log(first_lines: Iterable[str]) -> bool:
    """True when the first records carry ``pmcstat -o`` tags (a timestamp column allowed)."""
    for line in _first_lines(first_lines):
        words = line.split()
        if words[0].isdigit() and len(words) > 1:
            words = words[1:]
        if words[0] in LOG_TAGS:
            return True
        if words[0] != "...":
            return False
    return False


def sniff_callgraph(first_lines: Iterable[str]) -> bool:
    """True when the text starts like ``pmcstat -G``: a PMC header or a tree line."""
    lines = _first_lines(first_lines, 1)
    return bool(lines) and bool(_CALLGRAPH_HEADER.match(lines[0]) or _CALLGRAPH_LINE.match(lines[0]))


# -- record logs (-o) -------------------------------------------------------


class _LogReader:
    """The state of one pass over a record log: the pending callchain, the batch, the PMC names.

    The callchain records in pmcstat's exact form are read a block at a time by
    :mod:`tracebridge.readers.callchain_scan`; every other line (and a callchain in
    any other form) is read here, one line at a time, with the same results.
    """

    def __init__(self, path: str, space: AddressSpace, images: Mapping[str, ModuleImage], pmc: str | None,
                 profile: Profile, counts: ResolutionCounts, labels: bool = False,
                 evidence: Evidence | None = None, offsets: bool = False):
        self.path = path
        self.labels = labels
        self.offsets = offsets
        self.evidence = evidence if evidence is not None else Evidence()
        #: Where the modules were placed before the log's own map-in records (--base, kldstat).
        self.given = {m.name: m.base for m in space.modules if m.image is not None}
        self.mapped: dict[str, None] = {}  # kernel images the log maps in, in order
        self.space = space
        self.images = images
        self.pmc = pmc
        self.profile = profile
        self.counts = counts
        self.pmc_names: dict[int, str] = {}
        self.selected: set[int] = set()  # the PMC ids ``pmc`` names (unused when it is None)
        self.selected_ids: bytes | None = None  # those a callchain header can spell, for the scan (None: all)
        self.parts: list[np.ndarray | int] = []  # the batch: scanned PCs, or how many of pc_lines come next
        self.pc_lines: list[bytes] = []   # PC lines read here, as read, parsed in bulk by flush()
        self.pc_numbers: list[int] = []   # the line number of each of pc_lines (for messages)
        self.batched = 0                  # PCs in the batch
        self.lengths: list[int] = []      # PCs per sample of the batch
        self.contexts: list[SampleLabels] = []  # each sample's CPU and process, when labels are kept
        self.remaining = 0        # PCs still expected for the pending callchain
        self.keep = False         # the pending callchain passes the PMC filter
        self.header_line = 0      # where the pending callchain began
        self.records = 0          # records recognised (for "is this a log at all")
        self.samples = 0
        self.user_pcs = 0
        if pmc is not None:
            self._select()

    def error(self, message: str, line: int) -> InputError:
        return InputError(self.path, message, line)

    def run(self, lines: _Lines) -> None:
        scan = callchain_scanner()
        while True:
            self._scan(scan, lines)
            raw = lines.next()
            if raw is None:
                break
            number = lines.number
            words = raw.split()
            if not words:
                continue
            tag, fields = words[0], words[1:]
            if tag.isdigit() and fields:  # a leading timestamp
                tag, fields = fields[0], fields[1:]
            if tag == b"callchain":
                self._callchain(fields, number)
                self._pcs(lines)
            elif tag == b"map-in":
                self._map_in(raw, number)
            elif tag == b"map-out":
                self._map_out(fields, number)
            elif tag in (b"allocate", b"allocatedyn"):
                self._allocate(raw, fields, number)
            elif tag == b"sample":
                self._sample(fields, number)
            elif tag == b"...":
                raise self.error("a PC line (`...`) outside any callchain record", number)
            elif tag == b"@" or (not self.records and _GRAPH_LINE.match(raw)):
                raise self.error("this is pmcstat -G callgraph output, not a -o record log", number)
            elif not _TAG.match(tag):
                raise self.error(f"not a pmcstat record: {_show(raw)}", number)
            else:
                self.records += tag.decode() in LOG_TAGS
        if not lines.number:
            raise InputError(self.path, "is empty: no pmcstat records")
        if not self.records:
            raise InputError(self.path, "holds no pmcstat -o records (initlog, map-in, callchain, ...)", 1)
        self.flush()
        if self.mapped:  # a log without map-in records has its modules placed by the user
            for name, image in self.images.items():
                if image.fixed_base is None and name not in self.mapped and name not in self.given:
                    self.evidence.unmapped(name, list(self.mapped))

    def _scan(self, scan, lines: _Lines) -> None:
        """Read the callchain records ahead in bulk, up to the next line of another kind."""
        if lines.pos < len(lines.block) and not lines.block.startswith(b"callchain ", lines.pos):
            return  # a run of other records: no call per line
        while True:
            pos, number, reason, records, pcs, chains = scan(lines.block, lines.pos, lines.number,
                                                             self.selected_ids, self.batched, CHUNK)
            lines.pos, lines.number = pos, number
            self.records += records
            if chains:
                import numpy as np  # here, not at the top: the -G callgraph reader imports this module, numpy-free

                self._add_scanned(np.frombuffer(pcs, dtype=np.uint64),
                                  np.frombuffer(chains, dtype=np.int64).reshape(-1, CHAIN_FIELDS))
            if reason == FULL:
                self.flush()
            elif reason == OTHER or not lines.more():
                return

    def _add_scanned(self, pcs: np.ndarray, chains: np.ndarray) -> None:
        lengths = chains[:, 0]
        self.parts.append(pcs)
        self.batched += len(pcs)
        self.lengths += lengths.tolist()
        self.samples += len(chains)
        self.user_pcs += int(lengths[chains[:, 4] != 0].sum())
        if self.labels:
            self.contexts += map(_context, chains[:, 3].tolist(), chains[:, 2].tolist())

    def _pcs(self, lines: _Lines) -> None:
        """Take the pending callchain's PC lines as they are (flush() parses them)."""
        block = lines.take(self.remaining)
        if len(block) < self.remaining:
            raise self.error(f"truncated callchain: {self.remaining - len(block)} of its PCs are missing at the "
                             "end of the file", self.header_line)
        if self.keep:
            self._add_lines(block, self.header_line + 1)
        self.remaining = 0

    def _add_lines(self, block: list[bytes], first: int) -> None:
        self.parts.append(len(block))
        self.pc_lines += block
        self.pc_numbers += range(first, first + len(block))
        self.batched += len(block)

    def _pc(self, raw: bytes, number: int) -> int:
        """One PC line, read slowly: a leading timestamp is allowed, anything else is an error."""
        words = raw.split()
        if len(words) == 3 and words[0].isdigit():
            words = words[1:]
        if len(words) != 2 or words[0] != b"...":
            raise self.error(f"truncated callchain: a PC line was expected, found {_show(raw)}", number)
        try:
            pc = int(words[1], 16)
        except ValueError:
            raise self.error(f"bad PC {_show(words[1])} in a callchain", number) from None
        if not 0 <= pc < 1 << 64:
            raise self.error(f"PC {_show(words[1])} is not a 64-bit address", number)
        return pc

    def _parse_pcs(self) -> np.ndarray:
        """The PC lines read here as numbers: lines in pmcstat's exact 64-bit form in one go, others one by one."""
        import numpy as np

        lines = self.pc_lines
        pcs = np.empty(len(lines), dtype=np.uint64)
        exact = np.fromiter(map(len, lines), dtype=np.int64, count=len(lines)) == len(_PC_LINE)
        if exact.any():
            rows = np.frombuffer(b"".join(compress(lines, exact.tolist())), dtype=np.uint8).reshape(-1, len(_PC_LINE))
            form = (rows[:, :12] == np.frombuffer(_PC_LINE[:12], dtype=np.uint8)).all(axis=1) & (rows[:, -1] == 10)
            try:
                values = np.frombuffer(bytes.fromhex(rows[:, 12:-1].tobytes().decode("ascii")), dtype=">u8")
            except (ValueError, UnicodeDecodeError):
                form[:] = False
                values = np.zeros(len(rows), dtype=np.uint64)
            where = np.flatnonzero(exact)
            pcs[where[form]] = values[form]
            exact[where[~form]] = False
        for index in np.flatnonzero(~exact).tolist():
            pcs[index] = self._pc(lines[index], self.pc_numbers[index])
        return pcs

    def _callchain(self, fields: list[bytes], number: int) -> None:
        if len(fields) != 5 or fields[4] not in (b"u", b"s"):
            raise self.error("malformed callchain record (expected `callchain PID 0xPMCID CPU NPC u|s`)", number)
        try:
            pmcid = int(fields[1], 16)
            npc = int(fields[3])
            int(fields[0]), int(fields[2])
        except ValueError:
            raise self.error("malformed callchain record: a field is not a number", number) from None
        if not 0 <= npc <= MAX_CALLCHAIN:
            raise self.error(f"callchain with {npc} PCs (at most {MAX_CALLCHAIN} are possible)", number)
        self.records += 1
        self.remaining = npc
        self.header_line = number
        self.keep = npc > 0 and self._selected(pmcid)
        if self.keep:
            if self.batched >= CHUNK:
                self.flush()
            self.lengths.append(npc)
            if self.labels:
                self.contexts.append(_context(int(fields[2]), int(fields[0])))
            self.samples += 1
            if fields[4] == b"u":
                self.user_pcs += npc

    def _sample(self, fields: list[bytes], number: int) -> None:
        """``sample 0xPMCID PID 0xPC u|s``: a one-PC sample from hwpmc before version 2."""
        if len(fields) != 4 or fields[3] not in (b"u", b"s"):
            raise self.error("malformed sample record (expected `sample 0xPMCID PID 0xPC u|s`)", number)
        try:
            pmcid, pid, pc = int(fields[0], 16), int(fields[1]), int(fields[2], 16)
        except ValueError:
            raise self.error("malformed sample record: a field is not a number", number) from None
        self.records += 1
        if self._selected(pmcid):
            self._add_lines([b"...       %#x\n" % pc], number)
            self.lengths.append(1)
            if self.labels:
                self.contexts.append(_context(None, pid))
            self.samples += 1
            self.user_pcs += fields[3] == b"u"

    def _selected(self, pmcid: int) -> bool:
        return self.pmc is None or pmcid in self.selected

    def _select(self) -> None:
        """Find the PMC ids ``pmc`` names: by an allocate record's event name, or as Python prints the id
        (``%#x`` or ``%x``: ``0x20000``, ``20000``; any case)."""
        ids = {pmcid for pmcid, name in self.pmc_names.items() if name == self.pmc}
        spelled = _PMC_ID.fullmatch(self.pmc.lower())
        if spelled is not None:
            value = int(spelled[3], 16)
            if not (spelled[1] and not value):  # 0 is printed 0x0, never -0x0
                ids.add(-value if spelled[1] else value)
        self.selected = ids
        import numpy as np

        self.selected_ids = np.array(sorted(i for i in ids if 0 <= i < 1 << 64), dtype=np.uint64).tobytes()

    def _allocate(self, raw: bytes, fields: list[bytes], number: int) -> None:
        quoted = _QUOTED.search(raw)
        try:
            pmcid = int(fields[0], 16)
        except (ValueError, IndexError):
            raise self.error("malformed allocate record (expected `allocate 0xPMCID \"EVENT\" 0xFLAGS`)",
                             number) from None
        self.records += 1
        self.pmc_names[pmcid] = quoted.group(1).decode("utf-8", "replace") if quoted else f"{pmcid:#x}"
        if self.pmc is not None:
            self._select()

    def _map_in(self, raw: bytes, number: int) -> None:
        match = _MAP_IN.match(raw)
        if match is None:
            raise self.error('malformed map-in record (expected `map-in PID 0xSTART "path"`)', number)
        self.records += 1
        if int(match.group(1)) != KERNEL_PID:
            return  # user images: their files are not read
        path = match.group(3).decode("utf-8", "replace")
        self.flush()
        name, start = image_name(path), int(match.group(2), 16)
        if self.given.get(name, start) != start:
            self.evidence.base_conflict(name, self.given[name], start)
        self.mapped[name] = None
        self.evidence.placed(name, start)
        map_in(self.space, self.images, name, start, self.profile.metadata.notes)

    def _map_out(self, fields: list[bytes], number: int) -> None:
        try:
            pid, start = int(fields[0]), int(fields[1], 16)
            int(fields[2], 16)
        except (ValueError, IndexError):
            raise self.error("malformed map-out record (expected `map-out PID 0xSTART 0xEND`)", number) from None
        self.records += 1
        if pid == KERNEL_PID:
            self.flush()
            self.space.remove(start)

    def flush(self) -> None:
        """Resolve the batch in bulk and add its stacks (root first) to the profile."""
        if not self.lengths:
            return
        import numpy as np

        read = self._parse_pcs() if self.pc_lines else None
        pieces, taken = [], 0
        for part in self.parts:
            if isinstance(part, int):
                pieces.append(read[taken:taken + part])
                taken += part
            else:
                pieces.append(part)
        pcs = pieces[0] if len(pieces) == 1 else np.concatenate(pieces)
        ids, counts = self.space.frame_ids(pcs, self.profile, self.offsets)
        self.counts += counts
        if self.evidence.watching:  # the first PC of a callchain is the sampled one, the rest return addresses
            leaf = np.zeros(len(pcs), dtype=bool)
            leaf[np.cumsum([0, *self.lengths[:-1]])] = True
            self.evidence.observe(self.space, pcs, leaf)
        flat = ids.tolist()
        position = 0
        if self.contexts:
            add_labelled = self.profile.add_labelled
            for length, context in zip(self.lengths, self.contexts):
                end = position + length
                add_labelled(tuple(flat[position:end][::-1]), context, 1)
                position = end
        else:
            add = self.profile.add_ids
            for length in self.lengths:
                end = position + length
                add(tuple(flat[position:end][::-1]), 1)
                position = end
        self.parts = []
        self.pc_lines = []
        self.pc_numbers = []
        self.batched = 0
        self.lengths = []
        self.contexts = []


class _Lines:
    """A log's lines over blocks of its bytes: one at a time for the reader, the block itself for the scan.

    ``block[pos:]`` is what is left to read of what was read so far; ``number`` counts the lines
    before ``pos``.  A line ends at b"\\n" (the last one may not).
    """

    def __init__(self, read: Callable[[int], bytes]):
        self.read = read
        self.block = b""
        self.pos = 0
        self.number = 0
        self.done = False

    def more(self) -> bool:
        """Add the next bytes to what is left; False at the end of the input.  Reads at least as much as is
        left, so that a line longer than a block costs linear time."""
        if self.done:
            return False
        rest = self.block[self.pos:]
        more = self.read(max(BLOCK, len(rest)))
        self.block, self.pos = rest + more, 0
        self.done = not more
        return not self.done

    def next(self) -> bytes | None:
        """The next line (None at the end)."""
        while True:
            end = self.block.find(b"\n", self.pos)
            if end >= 0 or not self.more():
                break
        if end < 0:
            end = len(self.block) - 1
            if end < self.pos:
                return None
        line = self.block[self.pos:end + 1]
        self.pos = end + 1
        self.number += 1
        return line

    def take(self, count: int) -> list[bytes]:
        """The next ``count`` lines, or as many as are left."""
        taken = []
        while len(taken) < count:
            line = self.next()
            if line is None:
                break
            taken.append(line)
        return taken

    def __iter__(self) -> Iterator[bytes]:
        return iter(self.next, None)


def _context(cpu: int | None, pid: int) -> SampleLabels:
    """A sample's labels: the CPU, and the process unless the record's PID is -1 (no process)."""
    labels = [] if cpu is None else [("cpu", cpu)]
    return tuple(labels + [("pid", pid)] if pid >= 0 else labels)


def map_in(space: AddressSpace, images: Mapping[str, ModuleImage], name: str, start: int,
           notes: list[str]) -> None:
    """Apply a kernel ``map-in``: place the image by name (its ELF if known, else a bare region)."""
    image = images.get(name)
    if image is not None and image.fixed_base is not None:
        # The kernel runs where it was linked; the record only confirms it.
        if space.find(name) is None:
            space.add(image, None, name)
            if start != image.fixed_base:
                notes.append(f"{image.path} is linked at {image.fixed_base:#x} but the log maps {name} at "
                             f"{start:#x}: is it the kernel that ran?")
        return
    current = space.find(name)
    if current is not None and current.base == start:
        return
    for old in (current, next((m for m in space.modules if m.base == start), None)):
        if old is not None:
            space.remove(old.base)
    if image is not None:
        space.add(image, start, name)
    else:
        space.add_region(name, start)


def read_callchain_log(path: str | os.PathLike[str], space: AddressSpace,
                       images: Mapping[str, ModuleImage] | None = None, *, pmc: str | None = None,
                       counts: ResolutionCounts | None = None, labels: bool = False,
                       evidence: Evidence | None = None, offsets: bool = False) -> Profile:
    """Read a ``pmcstat -R log -o`` record log into a profile of kernel stacks.

    ``space`` holds modules placed beforehand (``--base``, kldstat); the
    log's kernel ``map-in`` records place the rest, using ``images`` (by
    file name, the kernel as ``kernel``) for the layouts.  ``pmc`` keeps
    one PMC (event name or hex id).  ``counts``, if given, receives the
    resolution summary.  ``labels`` keeps each sample's CPU and process
    (``Profile.labelled``); ``evidence`` receives whether the log fits the modules it watches;
    ``offsets`` keeps each frame's offset into its function (``--include-offset``, ``--inline``).
    """
    from tracebridge.profile.resolve import ResolutionCounts

    path = os.fspath(path)
    counts = counts if counts is not None else ResolutionCounts()
    profile = Profile(Metadata(source=path))
    reader = _LogReader(path, space, images or {}, pmc, profile, counts, labels, evidence, offsets)
    with open_log(path) as read:
        reader.run(_Lines(read))
    names = sorted(set(reader.pmc_names.values()))
    profile.metadata.event = pmc or (", ".join(names) if names else "samples")
    profile.metadata.notes.append(f"{reader.samples} callchains; {counts.describe()}")
    if reader.user_pcs:
        profile.metadata.notes.append(f"{reader.user_pcs} user-mode PCs kept as hex (user images are not read)")
    return profile


def log_map_ins(path: str | os.PathLike[str]) -> dict[str, int]:
    """The load address of every kernel image a record log maps (the latest ``map-in`` per name)."""
    path = os.fspath(path)
    placed: dict[str, int] = {}
    records = 0
    with open_log(path) as read:
        for number, raw in enumerate(_Lines(read), 1):
            if b"map-in" not in raw:
                records += b"callchain" in raw
                continue
            match = _MAP_IN.match(raw)
            if match is None:
                raise InputError(path, 'malformed map-in record (expected `map-in PID 0xSTART "path"`)', number)
            records += 1
            if int(match.group(1)) == KERNEL_PID:
                placed[image_name(match.group(3).decode("utf-8", "replace"))] = int(match.group(2), 16)
    if not records:
        raise InputError(path, "holds no pmcstat -o records (map-in, callchain): not a `pmcstat -R log -o` file")
    return placed


@contextmanager
def open_input(path: str) -> Iterator[IO[bytes]]:
    """Open a pmcstat output for reading as bytes; every failure is an InputError."""
    with reading(path, expected="a pmcstat output file"):  # only the opening: the caller's errors pass as they are
        handle = open(path, "rb", buffering=1 << 20)
    with handle:
        yield handle


@contextmanager
def open_log(path: str) -> Iterator[Callable[[int], bytes]]:
    """``read(size)`` of a record log: a text file's bytes, or a raw hwpmc log's records as ``pmcstat -o`` prints
    them (at least ``size`` bytes of whole lines while any are left; b"" at the end)."""
    from tracebridge.readers.pmclog import is_binary_log, log_lines

    with open_input(path) as handle:
        head = handle.peek(HEAD)
        if is_binary_log(head):
            yield _joined(log_lines(path))
        else:
            refuse_binary(path, head)
            yield handle.read


def _joined(lines: Iterator[bytes]) -> Callable[[int], bytes]:
    def read(size: int) -> bytes:
        block, length = [], 0
        for line in lines:
            block.append(line)
            length += len(line)
            if length >= size:
                break
        return b"".join(block)
    return read


def refuse_binary(path: str, head: bytes) -> None:
    """Refuse binary data where text is expected (a NUL byte; a raw hwpmc log or a compressed file named as such)."""
    from tracebridge.readers.kinds import binary_kind
    from tracebridge.readers.pmclog import is_binary_log

    if is_binary_log(head):
        raise InputError(path, "is a raw hwpmc log (pmcstat -O), not callgraph text: read it as a log")
    kind = binary_kind(head)
    if kind is not None:
        raise InputError(path, f"this looks like {kind}")
    nul = head.find(b"\0")
    if nul >= 0:
        raise InputError(path, "contains binary data (a NUL byte), not pmcstat text output",
                         head.count(b"\n", 0, nul) + 1)


def _show(raw: bytes) -> str:
    return repr(raw.strip()[:60].decode("utf-8", "replace"))


# -- detection and the shared input table --------------------------------------


def detect(path: str | os.PathLike[str]) -> str:
    """``"log"`` (``-o``) or ``"callgraph"`` (``-G``) for a pmcstat output file; InputError otherwise."""
    path = os.fspath(path)
    from tracebridge.readers.pmclog import is_binary_log

    with open_input(path) as handle:
        head = handle.read(HEAD)
    if is_binary_log(head):
        return "log"
    refuse_binary(path, head)
    if not head.strip():
        raise InputError(path, "is empty: no pmcstat output")
    # Lines end at "\n" only: str.splitlines() also splits at \x1c-\x1e, \x85 and U+2028, and
    # str.strip() takes \x1c-\x1f for blanks (fuzz_pmcstat: a file of one \x1c byte had no first line).
    lines = head.decode("utf-8", "replace").split("\n")
    if sniff_callgraph(lines):
        return "callgraph"
    if sniff_log(lines):
        return "log"
    first = next((i for i, line in enumerate(lines, 1) if line.strip(" \t\r")), None)
    if first is None:
        raise InputError(path, "is empty: no pmcstat output")
    start = excerpt(path, lines[first - 1].strip(" \t\r"))
    raise InputError(path, f"is neither `pmcstat -R LOG -o` nor `-G` output; it starts with {start}", first)


def sniff_log_source(source: Source) -> bool:
    return sniff_log(source.head.split("\n"))


def options_images(options: LoadOptions) -> tuple[dict[str, ModuleImage], dict[str, int]]:
    """The modules of the shared reading options by name, and the addresses given for them."""
    from tracebridge.readers.placement import BaseSpec, by_name, load_addresses

    images = by_name(options.images)  # opened once per command, as every reader and export sees them
    specs = [BaseSpec(os.path.basename(m), b) for m, b in zip(options.modules, options.bases) if b is not None]
    return images, load_addresses(images, specs, options.kldstat)


def read_log_source(source: Source, options: LoadOptions) -> Loaded:
    from tracebridge.readers.options import Loaded
    from tracebridge.readers.placement import build_space

    images, placed = options_images(options)
    space = build_space(images, placed, require_all=False)  # options.images watch themselves for evidence
    return Loaded(read_callchain_log(source.path, space, images, labels=options.sample_labels,
                                     evidence=options.evidence, offsets=options.read_offsets))  # streamed
