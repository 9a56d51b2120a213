"""One profile model for every input and every output.

Parsers (DTrace output, pmcstat logs and callgraphs, folded stacks) turn what
they read into :class:`Frame` stacks with weights and add them to a
:class:`Profile`; renderers (folded, flame graph, speedscope, tables) read
from it.  Frames are interned to integer ids and stacks are tuples of ids,
so millions of samples over a few thousand distinct frames stay cheap.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from itertools import chain, compress, filterfalse, repeat
from operator import attrgetter, is_not, lt
from typing import TYPE_CHECKING

from tracebridge.image.demangle import C, RUST_LEGACY, RUST_V0, crate_of, demangle_names, demangle_symbol, is_plain_c
from tracebridge.support.errors import InputError, shown

if TYPE_CHECKING:
    import pandas as pd

    from tracebridge.image.elf import ModuleImage

UNKNOWN = "unknown"
_RUST = (RUST_LEGACY, RUST_V0)


@dataclass(slots=True, unsafe_hash=True)
class Frame:
    """One stack frame: a value, hashed by all its fields and never changed once built.

    Not ``frozen``: a frozen dataclass builds each instance through
    ``object.__setattr__`` per field, 2 µs a frame against 0.2 µs, and a
    ``pmcstat -G`` callgraph can hold hundreds of thousands of distinct
    frames.  Change one with :func:`dataclasses.replace`, as everywhere.

    ``symbol`` is the name as the symbol table (or the input) spells it,
    mangled; ``name`` is what people read (rustc-demangle without hash).
    An inlined frame has no symbol of its own: ``symbol`` is its name.
    A frame that could not be resolved has ``symbol`` and ``name`` set to
    its hex address text and ``scheme`` ``"unknown"``.
    """

    module: str | None
    symbol: str
    name: str
    offset: int | None = None
    scheme: str = C
    crate: str | None = None
    #: An inlined copy of ``name`` inside the frame below it (``--inline``), not a real call.
    inlined: bool = False
    #: Source file and line of the frame's address (``--inline``, ``report --by line``); None when unknown.
    file: str | None = None
    line: int | None = None

    @property
    def is_rust(self) -> bool:
        return self.scheme.startswith("rust")

    @property
    def resolved(self) -> bool:
        return self.scheme != UNKNOWN


def symbol_frame(module: str | None, symbol: str, offset: int | None = None) -> Frame:
    """A frame for a named symbol; the name is demangled here, once per distinct symbol."""
    if is_plain_c(symbol):  # what demangle_symbol would say, without building its answer
        return Frame(module, symbol, symbol, offset)
    d = demangle_symbol(symbol)
    return Frame(module, symbol, d.name, offset, d.scheme, d.crate)


def address_frame(module: str | None, address: int, offset: int | None = None) -> Frame:
    """A frame at a run-time address that no symbol names: kept, never dropped.

    It is spelled as DTrace spells such a frame (``dt_print_stack``):
    `` module`0xADDR `` when something tells which file holds the address
    (DTrace's own prefix, a ``--module``/``--kernel`` layout, a kldstat
    listing, a pmcstat ``map-in`` record), a bare ``0xADDR`` when nothing
    does.  Every reader makes its unnamed frames here, so one address reads
    the same from DTrace and pmcstat input and the two can be compared.
    ``offset`` is the address's offset from the module's base, when the base
    is known (pprof places the frame in its mapping with it).
    """
    text = f"0x{address:x}"
    return Frame(module, text, f"{module}`{text}" if module else text, offset, UNKNOWN, None)


def offset_frame(module: str, offset: int) -> Frame:
    """A frame known only by its offset from a module's base, not by address: `` module+0xOFF ``.

    ``pmcstat -G`` prints an unnamed node of a ``.ko`` so (its addresses are
    taken relative to the image); the kernel's nodes are addresses, which
    :func:`address_frame` spells.
    """
    text = f"0x{offset:x}"
    return Frame(module, text, f"{module}+{text}", offset, UNKNOWN, None)


@dataclass
class Metadata:
    """Where a profile came from: shown in titles and kept in exports."""

    source: str = ""
    event: str = "samples"
    unit: str = "samples"
    duration: float | None = None
    notes: list[str] = field(default_factory=list)
    #: Where it ran, for exports that put several machines' runs side by side (a bundle's
    #: ``uname`` node name; None when the input does not say).
    host: str | None = None
    #: ``freebsd-version -k`` of the machine that ran, when a bundle recorded it.
    kernel_version: str | None = None
    #: SHA-256 of the traced module file (a bundle's manifest, or the one ``--module``).
    module_sha256: str | None = None
    #: The module files whose layout named the frames (``--module``, a bundle's copy), for exports
    #: that place frames in their module (pprof's mappings).
    modules: list[ModuleImage] = field(default_factory=list)
    #: SHA-256 of the debug file whose DWARF expanded each module's frames (``--inline``), by module name.
    debug_sha256: dict[str, str] = field(default_factory=dict)
    #: Debug file to use for a module file (path -> path): a bundle's recorded one.
    debug_files: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.source = shown(self.source)  # a piped input is named as the user gave it

    @property
    def over(self) -> str:
        """`` over 30.8 s`` when the capture's length is known (a bundle's manifest), else nothing."""
        return f" over {self.duration:.1f} s" if self.duration is not None else ""


#: Per-sample context a reader can keep (``(("cpu", 1), ("pid", 812))``): sorted (key, value) pairs.
SampleLabels = tuple[tuple[str, int], ...]


@dataclass
class _SymbolColumns:
    """Symbol frames interned by :meth:`Profile.add_symbols` and not built yet, one row per frame.

    Each row is ``symbol_frame(module, symbol)`` to be: its name and scheme
    are known (demangled in bulk), its crate is found when the frame is built.
    """

    #: (first id, first row) of each batch of rows: a batch's ids run on from its first (:meth:`ids`), kept as
    #: ranges, not an int object per row (128k a callgraph's half).
    runs: list[tuple[int, int]] = field(default_factory=list)
    modules: list[str | None] = field(default_factory=list)
    symbols: list[str] = field(default_factory=list)
    names: list[str] = field(default_factory=list)
    schemes: list[str] = field(default_factory=list)
    #: (module, symbol) of the frames built when the rows began, and of those interned since.
    built: set[tuple[str | None, str]] = field(default_factory=set)
    #: Every symbol of the rows and of :attr:`built`: a frame whose symbol is not here is neither.  One set
    #: of strings costs a fraction of a (module, symbol) index, which is made only when this cannot tell.
    seen: set[str] = field(default_factory=set)
    #: (module, symbol) -> id, for every row (and for pairs found built by add_symbols); None until needed.
    keys: dict[tuple[str | None, str], int] | None = None

    def batches(self) -> Iterator[tuple[int, int, int]]:
        """(first id, first row, end row) of each batch of rows."""
        ends = [row for _, row in self.runs[1:]] + [len(self.symbols)]
        for (first, row), end in zip(self.runs, ends):
            yield first, row, end

    def ids(self) -> Iterator[int]:
        """The id of each row."""
        return chain.from_iterable(range(first, first + end - row) for first, row, end in self.batches())

    def index(self) -> dict[tuple[str | None, str], int]:
        """:attr:`keys`, made from the rows the first time it is needed."""
        if self.keys is None:
            self.keys = dict(zip(zip(self.modules, self.symbols), self.ids()))
        return self.keys


class Profile:
    """Weighted stacks of interned frames, root first.

    :attr:`labelled` optionally splits the stacks' weights by the context of
    their samples (CPU, process), for outputs that keep it (pprof labels);
    it is filled only when a reader was asked to and its input says
    (``LoadOptions.sample_labels``), and what it does not cover of a stack is
    that stack's unlabelled rest.

    A reader that names hundreds of thousands of distinct symbols (a
    ``pmcstat -G`` callgraph) interns them with :meth:`add_symbols`, which
    keeps them as columns: building a :class:`Frame` each costs more than
    folding the whole file, and the folded writer needs only their names
    (:meth:`labels`).  :attr:`frames` builds them on first use.
    """

    def __init__(self, metadata: Metadata | None = None):
        self.metadata = metadata or Metadata()
        self._frames: list[Frame | None] = []   # None: a row of _columns, not built yet
        self._ids: dict[Frame, int] = {}
        self._columns: _SymbolColumns | None = None
        self.stacks: dict[tuple[int, ...], float] = {}
        self.labelled: dict[tuple[tuple[int, ...], SampleLabels], float] = {}

    @property
    def frames(self) -> list[Frame]:
        """Every frame by id."""
        if self._columns is not None:
            self._build()
        return self._frames

    def _build(self) -> None:
        columns, self._columns = self._columns, None
        frames, ids = self._frames, self._ids
        for ident, module, symbol, name, scheme in zip(columns.ids(), columns.modules, columns.symbols, columns.names,
                                                       columns.schemes):
            frame = frames[ident] = Frame(module, symbol, name, None, scheme,
                                          crate_of(name) if scheme in _RUST else None)
            ids[frame] = ident

    def frame_count(self) -> int:
        """How many frames are interned, without building those kept as columns."""
        return len(self._frames)

    def intern(self, frame: Frame) -> int:
        columns = self._columns
        if columns is not None:
            key = (frame.module, frame.symbol)
            if frame.symbol in columns.seen and key in columns.index():  # it may be one of the rows: build
                self._build()                                            # them, then look it up
            else:
                columns.built.add(key)
                columns.seen.add(frame.symbol)
        ident = self._ids.setdefault(frame, len(self._frames))  # one hash of the frame, not two
        if ident == len(self._frames):
            self._frames.append(frame)
        return ident

    def frame_id(self, frame: Frame) -> int | None:
        """The id of ``frame`` if it is interned, else None."""
        columns = self._columns
        if columns is not None and frame.symbol in columns.seen and (frame.module, frame.symbol) in columns.index():
            self._build()
        return self._ids.get(frame)

    def add_symbols(self, modules: list[str | None], symbols: list[str],
                    shown: tuple[list[str], list[str]] | None = None) -> list[int]:
        """Intern ``symbol_frame(module, symbol)`` of each pair, returning the ids, without building the frames.

        The names are demangled together (:func:`demangle_names`), unless
        ``shown`` gives each symbol's name and scheme as it does
        (:func:`shown_names`).  A pair that may equal a frame already built
        goes through :meth:`intern`.  A batch of symbols all distinct and
        never seen (a callgraph's new names, nearly always) is added without a
        (module, symbol) pair each.
        """
        columns = self._columns
        if columns is None:
            built = {(f.module, f.symbol) for f in self._ids}
            columns = self._columns = _SymbolColumns(built=built, seen={symbol for _, symbol in built})
        seen, frames = columns.seen, self._frames
        before = len(seen)
        seen.update(symbols)
        if len(seen) == before + len(symbols):  # all distinct and new: rows, numbered in order
            fresh = pairs = None
        else:
            keys, built = columns.index(), columns.built
            pairs = list(zip(modules, symbols))
            fresh = list(filterfalse(keys.__contains__, dict.fromkeys(pairs)))
            if not built.isdisjoint(fresh):
                for key in [key for key in fresh if key in built]:
                    keys[key] = self.intern(symbol_frame(*key))
                fresh = list(filterfalse(keys.__contains__, fresh))
            modules, symbols = (list(column) for column in zip(*fresh)) if fresh else ([], [])
        first = len(frames)
        added = range(first, first + len(symbols))
        if symbols:
            columns.runs.append((first, len(columns.symbols)))
            if columns.keys is not None:
                columns.keys.update(zip(fresh or zip(modules, symbols), added))
            frames.extend([None] * len(symbols))
            names, schemes = shown if shown is not None and pairs is None else demangle_names(symbols)
            columns.modules += modules
            columns.symbols += symbols
            columns.names += names
            columns.schemes += schemes
        if pairs is None:
            return list(added)
        return list(map(columns.keys.__getitem__, pairs))

    def frame_labels(self, label: Callable[[Frame], str]) -> list[str]:
        """``label(frame)`` of each frame by id, a frame still kept as columns labelled by its name.

        For a ``label`` that writes a symbol frame (no offset, not inlined) as
        its name, as the text outputs do by default: the frames of
        :meth:`add_symbols` are then never built.
        """
        columns = self._columns
        if columns is None:
            return [label(frame) for frame in self._frames]
        frames = self._frames
        labels: list[str | None] = [None] * len(frames)
        for ident in compress(range(len(frames)), map(is_not, frames, repeat(None))):  # the few built, found in C
            labels[ident] = label(frames[ident])
        for first, row, end in columns.batches():  # a batch's names at once (128k a half, in 7 batches)
            labels[first:first + end - row] = columns.names[row:end]
        return labels

    def modules(self) -> set[str | None]:
        """The module of every frame, without building those kept as columns.

        A callgraph's folder asks it once per range: the 128k ids of a half, nearly all kept as columns (None
        here), are stepped over in C (``filter``), not by a Python loop."""
        found = set(map(attrgetter("module"), filter(None, self._frames)))
        if self._columns is not None:
            found.update(self._columns.modules)
        return found

    def add_ids(self, stack: tuple[int, ...], weight: float = 1) -> None:
        self.stacks[stack] = self.stacks.get(stack, 0) + weight

    def add_labelled(self, stack: tuple[int, ...], labels: SampleLabels, weight: float = 1) -> None:
        """Add one stack of samples taken in the context ``labels``."""
        self.add_ids(stack, weight)
        key = (stack, labels)
        self.labelled[key] = self.labelled.get(key, 0) + weight

    def add(self, frames: Sequence[Frame], weight: float = 1) -> None:
        """Add one stack, root first."""
        intern = self.intern
        self.add_ids(tuple(intern(f) for f in frames), weight)

    def __iter__(self) -> Iterator[tuple[list[Frame], float]]:
        frames = self.frames
        for stack, weight in self.stacks.items():
            yield [frames[i] for i in stack], weight

    @property
    def total(self) -> float:
        return sum(self.stacks.values())

    def __len__(self) -> int:
        return len(self.stacks)

    def merge(self, other: Profile) -> None:
        self._take(other, [self.intern(f) for f in other.frames])

    def map_frames(self, change) -> Profile:
        """A new profile with every frame replaced by ``change(frame)`` (stacks re-merged)."""
        result = Profile(self.metadata)
        result._take(self, [result.intern(change(f)) for f in self.frames])
        return result

    def _take(self, other: Profile, mapping: list[int]) -> None:
        """Add ``other``'s stacks (and their labelled parts), its frame ids turned into ours by ``mapping``."""
        for stack, weight in other.stacks.items():
            self.add_ids(tuple(mapping[i] for i in stack), weight)
        for (stack, labels), weight in other.labelled.items():
            key = (tuple(mapping[i] for i in stack), labels)
            self.labelled[key] = self.labelled.get(key, 0) + weight

    def require_widths(self, output: str) -> None:
        """Refuse weights that cannot be widths: ``output`` draws each stack as wide as its weight.

        A ``sum()`` of signed numbers can be negative; a flame graph would
        draw a parent wider than everything and drop the negative child.
        """
        if any(map(lt, self.stacks.values(), repeat(0))):  # weight < 0 for each, without a Python loop
            raise InputError(self.metadata.source or None,
                             f"holds negative values (a sum() of signed numbers?), which {output} cannot show "
                             "as widths: list them with `tracebridge report`")

    def without_offsets(self) -> Profile:
        return self.map_frames(lambda f: replace(f, offset=None) if f.offset is not None else f)

    def frame_table(self) -> pd.DataFrame:
        """One row per frame id: module, symbol, name, scheme, crate, is_rust."""
        import pandas as pd

        return pd.DataFrame(
            {
                "module": [f.module for f in self.frames],
                "symbol": [f.symbol for f in self.frames],
                "name": [f.name for f in self.frames],
                "offset": [f.offset for f in self.frames],
                "scheme": [f.scheme for f in self.frames],
                "crate": [f.crate for f in self.frames],
                "is_rust": [f.is_rust for f in self.frames],
            }
        )


def shown_names(symbols: list[str], unplain: list[int]) -> tuple[list[str], list[str]]:
    """:func:`demangle_names` of ``symbols`` when those not at the indices ``unplain`` are plain C
    (:func:`is_plain_c`): only the others are looked at."""
    names, schemes = list(symbols), [C] * len(symbols)
    if unplain:
        for i, name, scheme in zip(unplain, *demangle_names([symbols[i] for i in unplain])):
            names[i], schemes[i] = name, scheme
    return names, schemes


def from_stacks(stacks: Iterable[tuple[Sequence[Frame], float]], metadata: Metadata | None = None) -> Profile:
    profile = Profile(metadata)
    for frames, weight in stacks:
        profile.add(frames, weight)
    return profile
